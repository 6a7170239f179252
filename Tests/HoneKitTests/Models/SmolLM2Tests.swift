import Foundation
import Testing
@testable import HoneKit

/// The default model, SmolLM2-135M-Instruct as a Q4_1 GGUF (models/, fetched by tools/fetch-default-model, not in
/// git), against llama.cpp on the same file (Fixtures/smollm2/llama-cpp.json, tools/oracle/make_smollm2_fixtures.py).
/// Skipped when the file is absent.
@Suite struct SmolLM2Tests {
    static let modelPath = Repository.root.appendingPathComponent("models/SmolLM2-135M-Instruct.Q4_1.gguf").path
    static let modelPresent = FileManager.default.fileExists(atPath: modelPath)

    struct Fixture {
        let tokenize: [(text: String, ids: [Int32])]
        let context: Int, chunks: Int, perplexity: Double, text: String
    }

    static func fixture() throws -> Fixture {
        let data = try Data(contentsOf: URL(fileURLWithPath: Repository.fixture("smollm2/llama-cpp.json")))
        let root = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let tokenize = try #require(root["tokenize"] as? [[String: Any]]).map { entry in
            (entry["text"] as! String, (entry["ids"] as! [Int]).map(Int32.init))
        }
        let perplexity = try #require(root["perplexity"] as? [String: Any])
        return Fixture(tokenize: tokenize, context: perplexity["context"] as! Int, chunks: perplexity["chunks"] as! Int,
                       perplexity: perplexity["ppl"] as! Double, text: perplexity["text"] as! String)
    }

    @Test(.enabled(if: modelPresent, "models/SmolLM2-135M-Instruct.Q4_1.gguf is absent (tools/fetch-default-model)"))
    func loadsAsQ4_1AndTokenizesAsLlamaCpp() throws {
        let loaded = try LoadedModel.open(Self.modelPath)
        #expect(try loaded.weights.tensor("blk.0.ffn_up.weight").dtype == .q4_1)
        #expect(try loaded.weights.tensor("blk.29.attn_v.weight").dtype == .q4_1)
        let tokenizer = try TokenizerLoader.load(modelPath: Self.modelPath)
        for (text, ids) in try Self.fixture().tokenize {
            #expect(tokenizer.encode(text, addSpecialTokens: true, parseSpecial: true) == ids, "\(text.debugDescription)")
        }
    }

    /// llama-perplexity's estimate on the same text and file: Hone's integer kernels (A32 activations with f32
    /// scales and exact sums, where llama.cpp rounds Q8_1's scale and sum to f16) land within 1 % of it (measured
    /// 0.1-0.4 % on longer texts for every 32-value type).
    @Test(.enabled(if: modelPresent, "models/SmolLM2-135M-Instruct.Q4_1.gguf is absent (tools/fetch-default-model)"))
    func perplexityMatchesLlamaCpp() throws {
        let fixture = try Self.fixture()
        let loaded = try LoadedModel.open(Self.modelPath)
        let tokenizer = try TokenizerLoader.load(modelPath: Self.modelPath)
        let tokens = tokenizer.encode(fixture.text, addSpecialTokens: true, parseSpecial: false)
        let result = try Perplexity.evaluate(model: loaded.model, tokens: tokens, contextLength: fixture.context,
                                             bos: tokenizer.addsBOS ? tokenizer.bosTokenID : nil, maxChunks: fixture.chunks)
        #expect(result.chunks == fixture.chunks)
        #expect(abs(result.perplexity / fixture.perplexity - 1) < 0.01,
                "Hone \(result.perplexity) vs llama.cpp \(fixture.perplexity)")
    }
}
