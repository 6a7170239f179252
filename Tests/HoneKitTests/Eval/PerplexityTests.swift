import Foundation
import Testing
@testable import HoneKit

@Suite struct PerplexityTests {
    /// llama.cpp's method, recomputed independently from per-token log-probs of each chunk (BOS first).
    @Test func matchesChunkedLogprobs() throws {
        let path = Repository.root.appendingPathComponent("models/hone-tiny").path
        let loaded = try LoadedModel.open(path)
        let tokenizer = try TokenizerLoader.load(modelPath: path)
        let text = (0..<40).map { "Sentence number \($0) tells a short story about item \($0 * 7 % 13)." }.joined(separator: " ")
        let tokens = tokenizer.encode(text)
        let context = 64
        let result = try Perplexity.evaluate(model: loaded.model, tokens: tokens, contextLength: context, bos: 1, chunksPerPass: 3)
        #expect(result.chunks == tokens.count / context)
        #expect(result.scoredTokens == result.chunks * (context - 1 - context / 2))

        let chunks = (0..<result.chunks).map { index -> [Int32] in
            var chunk = Array(tokens[(index * context)..<((index + 1) * context)])
            chunk[0] = 1
            return chunk
        }
        let logprobs = try Scorer(model: loaded.model).score(chunks)
        // lp[i] scores token i+1; the scored predictions are from positions context/2 … context−2.
        let scored = logprobs.flatMap { $0[(context / 2)...] }.map(Double.init)
        #expect(scored.count == result.scoredTokens)
        let expected = exp(-scored.reduce(0, +) / Double(scored.count))
        #expect(abs(result.perplexity - expected) / expected < 1e-5)
        #expect(abs(result.running.last! - result.perplexity) < 1e-9)
        #expect(result.uncertainty > 0)
    }

    /// A NaN weight must not end in "PPL = nan" and exit 0: the run stops, naming the chunk and position.
    @Test func aPoisonedWeightStopsTheRun() throws {
        let model = try NonFiniteTrainingTests.poisonedModel("model.layers.1.mlp.down_proj.weight")
        let loaded = try LoadedModel.open(model.path)
        let tokens = (0..<128).map { Int32(3 + $0 % 50) }
        #expect(throws: HoneError.nonFinite(message: "perplexity stopped: chunk 1, position 33: the log-probability is nan; the model produces non-finite numbers")) {
            try Perplexity.evaluate(model: loaded.model, tokens: tokens, contextLength: 64, bos: 1)
        }
        let file = model.appendingPathComponent("text.txt")
        try String(repeating: "Sentence number one tells a short story. ", count: 40).write(to: file, atomically: true, encoding: .utf8)
        let (status, out, err) = try runProcess(Repository.honeExecutable, ["perplexity", "-m", model.path, "-f", file.path, "-c", "64"])
        #expect(status == 1)
        #expect(!out.contains("Final estimate"))
        #expect(err.contains("position 33: the log-probability is nan"), "\(err)")
    }

    @Test func tooShortTextIsAClearError() throws {
        let loaded = try LoadedModel.open(Repository.root.appendingPathComponent("models/hone-tiny").path)
        #expect(throws: HoneError.self) {
            try Perplexity.evaluate(model: loaded.model, tokens: [1, 2, 3], contextLength: 64, bos: 1)
        }
    }
}
