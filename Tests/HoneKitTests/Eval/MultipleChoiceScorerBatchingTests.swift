import Foundation
import Testing
@testable import HoneKit

/// How the scorer batches (vocabulary projection rows per call, context tokens per forward pass, choices' shared
/// opening tokens run once) changes no score beyond rounding: every task of the tiny-llama fixture, 0-shot, scored
/// with one-row projections, one document per pass and every choice on its own against the defaults. (The defaults
/// themselves are checked against lm-eval by MultipleChoiceEvalTests.)
struct MultipleChoiceScorerBatchingTests {
    @Test func batchingDoesNotChangeScores() throws {
        let loaded = try LoadedModel.open(Repository.fixture("eval/tiny-llama"))
        let tokenizer = try loaded.tokenizer()
        let selection = try MultipleChoiceEvaluation.select("arc_easy,piqa,hellaswag,truthfulqa_mc2,mmlu_anatomy", numFewShot: 0)
        let tasks = try selection.leafTasks.map { try MultipleChoiceEvaluation.loadTask($0, directory: MultipleChoiceEvalTests.data) }
        let batched = MultipleChoiceScorer(model: loaded.model, tokenizer: tokenizer)
        let single = MultipleChoiceScorer(model: loaded.model, tokenizer: tokenizer, tokenBudget: 1)
        single.logitChunk = 1
        single.shareChoicePrefixes = false
        var sharedChoiceTokens = 0
        for task in tasks {
            let requests = try task.requests(fewShot: 0, limit: nil)
            let expected = try single.score(requests)
            let actual = try batched.score(requests)
            sharedChoiceTokens += batched.sharedChoiceTokens
            #expect(single.sharedChoiceTokens == 0)
            #expect(actual.count == expected.count)
            for (document, (ours, reference)) in zip(actual, expected).enumerated() {
                #expect(ours.map(\.isGreedy) == reference.map(\.isGreedy), "\(task.name) doc \(document) is_greedy")
                for (a, b) in zip(ours, reference) {
                    #expect(abs(a.loglikelihood - b.loglikelihood) <= 1e-4 * max(1, abs(b.loglikelihood)),
                            "\(task.name) doc \(document): \(a.loglikelihood) vs \(b.loglikelihood)")
                }
            }
        }
        // The fixture's choices do share opening tokens (PIQA's and TruthfulQA's), so that route ran.
        #expect(sharedChoiceTokens > 0)
    }
}
