import Foundation
import Testing
@testable import HoneKit

/// The default model chatting as llama.cpp does (Fixtures/smollm2/greedy-chat.json, made by
/// tools/oracle/make_smollm2_greedy_fixtures.py with transformers' chat-template rendering and llama-completion).
/// Both decode greedily from a Q4_1 file with 8-bit activations, rounded differently (Hone keeps f32 scales and
/// exact integer sums, llama.cpp rounds Q8_1's to f16), so where the model's two best tokens are nearly tied they may
/// part. The test requires: the same prompt text; identical answers for most questions; and, where an answer
/// differs, a near tie at the first differing token in the log-probs Hone's greedy decoding chose from.
///
/// Those log-probs are recomputed the way the generator makes them (the prompt in one pass, then one token at a
/// time), not by scoring the whole prefix in one pass: the two sum the same 8-bit products in different orders
/// (int8 GEMM against the row kernel), and this model's activations, rounded to 8 bits again at every layer,
/// carry that f32 rounding to a few hundredths in log-prob (measured: each product agreed to 2.5e-7 of its
/// largest output, the haiku answer's first token moved by 0.023), which reorders near ties.
@Suite struct SmolLM2GreedyChatTests {
    struct Case { let question: String, prompt: String, completion: String, stopped: Bool }

    static func cases() throws -> (maxNewTokens: Int, cases: [Case]) {
        let data = try Data(contentsOf: URL(fileURLWithPath: Repository.fixture("smollm2/greedy-chat.json")))
        let root = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        let cases = (root["cases"] as! [[String: Any]]).map {
            Case(question: $0["question"] as! String, prompt: $0["prompt"] as! String, completion: $0["completion"] as! String,
                 stopped: $0["stopped"] as! Bool)
        }
        return (root["max_new_tokens"] as! Int, cases)
    }

    /// Log-probs over the vocabulary of the token after prompt + answer, computed as the generator does.
    static func decodingLogProbs(_ model: any CausalLanguageModel, prompt: [Int32], answer: [Int32]) throws -> [Float] {
        let cache = model.makeCache()
        var hidden = try model.forward([SequenceInput(tokens: prompt, cache: cache)], outputRows: [prompt.count - 1])
        for token in answer { hidden = try model.forward([SequenceInput(tokens: [token], cache: cache)]) }
        var logits = [Float](repeating: 0, count: model.config.vocabularySize)
        model.projectToVocabulary(hidden.values.pointer, rows: 1, into: &logits)
        let largest = logits.max()!
        let logSum = largest + log(logits.reduce(Float(0)) { $0 + exp($1 - largest) })
        return logits.map { $0 - logSum }
    }

    @Test(.enabled(if: SmolLM2Tests.modelPresent, "models/SmolLM2-135M-Instruct.Q4_1.gguf is absent (tools/fetch-default-model)"))
    func greedyChatEqualsLlamaCpp() throws {
        let loaded = try LoadedModel.open(SmolLM2Tests.modelPath)
        let template = try loaded.promptTemplate("auto")
        #expect(template.name == PromptTemplate.chatTemplateName, "the model's own ChatML template, without being told")
        let tokenizer = try loaded.tokenizer()
        let generator = try loaded.makeGenerator(template: template)
        let (maxNewTokens, cases) = try Self.cases()
        var identical = 0
        for item in cases {
            let prompt = try template.prompt(conversation: [.user(item.question)])
            #expect(prompt == item.prompt, "transformers renders \(item.prompt.debugDescription)")
            let ids = template.encode(try template.pieces(conversation: [.user(item.question)]), with: tokenizer)
            var result: GenerationResult?
            try generator.generate([GenerationRequest(promptTokens: ids, maxNewTokens: maxNewTokens)], batchSize: 1,
                                   onFinish: { _, finished in result = finished })
            let answer = try #require(result)
            if answer.text == item.completion, (answer.finishReason == .endOfSequence) == item.stopped {
                identical += 1
                continue
            }
            // Where the two part: llama.cpp's token there against Hone's, in Hone's own log-probs.
            let theirs = Array(tokenizer.encode(item.prompt + item.completion, addSpecialTokens: false, parseSpecial: true)
                .dropFirst(ids.count))
            let split = zip(answer.tokens, theirs).prefix { $0 == $1 }.count
            try #require(split < min(answer.tokens.count, theirs.count), "\(item.question): one answer is a prefix of the other")
            let logProbs = try Self.decodingLogProbs(loaded.model, prompt: ids, answer: Array(answer.tokens.prefix(split)))
            let ours = logProbs[Int(answer.tokens[split])]
            #expect(ours == logProbs.max()!, "\(item.question): Hone's token \(split) is the greedy choice")
            let gap = Double(ours) - Double(logProbs[Int(theirs[split])])
            #expect(gap >= 0 && gap < 0.5, "\(item.question): parts at token \(split) with a log-prob gap of \(gap)")
        }
        #expect(identical * 2 >= cases.count, "\(identical) of \(cases.count) answers identical")
    }
}
