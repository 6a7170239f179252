import Foundation
import HoneKernels
import Testing
@testable import HoneKit

/// Gemma 2's and 3's settings as read from both config.json layouts and from a GGUF, the configs refused, and the
/// sliding-window attention as the causal kernels run it (rows past the window as sequences of their own).
@Suite struct GemmaTests {
    static func config(_ fixture: String) throws -> ModelConfig {
        try ModelConfig.fromHuggingFace(path: Repository.fixture("models/\(fixture)/config.json"))
    }

    @Test func transformers5Layout() throws {
        let config = try Self.config("gemma3-swa")
        #expect(config.modelType == "gemma3_text" && config.sandwichNorms && config.queryKeyNorm && config.gatedGELU)
        #expect(config.slidingWindow == 8 && config.slidingWindowLayers == [0, 1])
        #expect(config.ropeTheta == 1_000_000 && config.localRopeTheta == 10000 && config.ropeScaling == .linear(factor: 4))
        #expect(config.normWeightOffset == 1 && config.tieWordEmbeddings)
        #expect(config.embeddingMultiplier == Float(64.0.squareRoot()))
        #expect(config.attentionMultiplier == 1 / Float(32).squareRoot())
    }

    @Test func hubLayout() throws {
        let config = try Self.config("gemma3-legacy")
        // sliding_window_pattern 2: every second layer global.
        #expect(config.slidingWindow == 16 && config.slidingWindowLayers == [0, 2])
        #expect(config.ropeTheta == 1_000_000 && config.localRopeTheta == 10000 && config.ropeScaling == .none)
        #expect(config.attentionMultiplier == Float(1 / 12.0.squareRoot()) && !config.tieWordEmbeddings)
    }

    /// llama.cpp's file: 1 + w already stored, the layer list from attention.sliding_window_pattern, the attention
    /// scale by its rule.
    @Test func fromGGUF() throws {
        let gguf = try GGUFFile(path: Repository.fixture("gguf/gemma3-swa-f32.gguf"))
        let config = try ModelConfig.fromGGUF(gguf)
        #expect(config.modelType == "gemma3_text" && config.normWeightOffset == 0 && !config.ropeInterleaved)
        #expect(config.slidingWindow == 8 && config.slidingWindowLayers == [0, 1] && config.localRopeTheta == 10000)
        #expect(config.attentionMultiplier == 1 / Float(32).squareRoot())
        var twentySeven = config
        (twentySeven.layerCount, twentySeven.hiddenSize, twentySeven.headCount) = (62, 5376, 32)
        #expect(Gemma3Config.llamaCppAttentionScale(twentySeven) == 1 / Float(168).squareRoot())
    }

    /// Gemma 2: every other layer local (no layer_types in the Hub's files), the caps the config gives, and
    /// transformers' defaults (50, 30) when it gives none; null switches one off.
    @Test func gemma2Settings() throws {
        let config = try Self.config("gemma2-softcap")
        #expect(config.modelType == "gemma2" && config.sandwichNorms && !config.queryKeyNorm && config.gatedGELU)
        #expect(config.slidingWindow == 8 && config.slidingWindowLayers == [0, 2] && config.localRopeTheta == config.ropeTheta)
        #expect(config.attentionLogitSoftcap == 5 && config.finalLogitSoftcap == 3)
        let path = Repository.fixture("models/gemma2-softcap/config.json")
        var values = try JSONConfig(path: path).values
        values.removeValue(forKey: "attn_logit_softcapping")
        values["final_logit_softcapping"] = NSNull()
        let defaults = try Gemma2Config.configFromHuggingFace(JSONConfig(values: values, path: path), modelType: "gemma2")
        #expect(defaults.attentionLogitSoftcap == 50 && defaults.finalLogitSoftcap == nil)
        let gguf = try ModelConfig.fromGGUF(GGUFFile(path: Repository.fixture("gguf/gemma2-softcap-f32.gguf")))
        #expect(gguf.attentionLogitSoftcap == 5 && gguf.finalLogitSoftcap == 3 && gguf.slidingWindowLayers == [0, 2])
        #expect(gguf.tieWordEmbeddings && gguf.normWeightOffset == 0)
    }

    /// The first Gemma: no post norms, q/k norms, windows or caps; the Hub's legacy hidden_act "gelu" read as the
    /// tanh approximation; 1/√head_dim; the GGUF tied as llama.cpp runs it.
    @Test func gemmaSettings() throws {
        let config = try Self.config("gemma-geglu")
        let gguf = try ModelConfig.fromGGUF(GGUFFile(path: Repository.fixture("gguf/gemma-geglu-f32.gguf")))
        for (config, offset) in [(config, Float(1)), (gguf, 0)] {
            #expect(config.modelType == "gemma" && config.architecture.name == "gemma" && config.gatedGELU)
            #expect(!config.sandwichNorms && config.inputNorms && !config.queryKeyNorm && config.slidingWindow == nil)
            #expect(config.attentionLogitSoftcap == nil && config.finalLogitSoftcap == nil && config.attentionMultiplier == nil)
            #expect(config.embeddingMultiplier == Float(64.0.squareRoot()) && config.tieWordEmbeddings)
            #expect(config.normWeightOffset == offset && config.headDimension == 32 && !config.ropeInterleaved)
        }
        let path = Repository.fixture("models/gemma-geglu/config.json")
        var values = try JSONConfig(path: path).values
        values["hidden_act"] = "relu"
        #expect(throws: HoneError.self) { try GemmaConfig.configFromHuggingFace(JSONConfig(values: values, path: path), modelType: "gemma") }
    }

    /// The Hub's Gemma 2 and 3 config.json files also say hidden_act (gelu_pytorch_tanh), which the Llama reader
    /// alone refuses.
    @Test func hubConfigsWithHiddenAct() throws {
        for fixture in ["gemma2-softcap", "gemma3-legacy"] {
            let path = Repository.fixture("models/\(fixture)/config.json")
            var values = try JSONConfig(path: path).values
            values["hidden_act"] = "gelu_pytorch_tanh"
            let modelType = try #require(values["model_type"] as? String)
            let config = try ModelArchitectures.forModelType(modelType)!.configFromHuggingFace(JSONConfig(values: values, path: path), modelType)
            #expect(config.gatedGELU, "\(fixture)")
        }
    }

    /// Each value is JSON text, set in the fixture's config.json in place of the key's value.
    @Test(arguments: [
        ("final_logit_softcapping", "30.0", "final_logit_softcapping"),
        ("attn_logit_softcapping", "50.0", "attn_logit_softcapping"),
        ("use_bidirectional_attention", "true", "use_bidirectional_attention"),
        ("hidden_activation", "\"gelu\"", "hidden_activation 'gelu'"),
        ("layer_types", "[\"sliding_attention\"]", "layer_types"),
        ("query_pre_attn_scalar", "0", "query_pre_attn_scalar"),
        ("sliding_window", "0", "sliding_window"),
    ])
    func refusedConfigs(key: String, json: String, named: String) throws {
        let path = Repository.fixture("models/gemma3-swa/config.json")
        var values = try JSONConfig(path: path).values
        values[key] = try JSONSerialization.jsonObject(with: Data(json.utf8), options: .fragmentsAllowed)
        do {
            _ = try Gemma3Config.configFromHuggingFace(JSONConfig(values: values, path: path), modelType: "gemma3_text")
            Issue.record("\(key) = \(json) was accepted")
        } catch let error as HoneError {
            #expect("\(error)".contains(named) && "\(error)".contains(path), "\(error)")
        }
    }

    /// Rows of a prefill past the window, with and without keys already cached: the kernels on `windowed`'s
    /// sequences equal the windowed reference.
    @Test func windowedAttentionEqualsTheReference() {
        var state: UInt64 = 99
        func random() -> Float {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return Float(Int64(bitPattern: state >> 11) % 2000) / 500 - 2
        }
        let (heads, kvHeads, headDimension) = (4, 2, 16)
        let (queryWidth, keyWidth) = (heads * headDimension, kvHeads * headDimension)
        for (count, start, window) in [(12, 0, 5), (7, 3, 5), (1, 20, 8), (9, 2, 64), (6, 4, 1)] {
            let q = (0..<count * queryWidth).map { _ in random() }
            let k = (0..<(start + count) * keyWidth).map { _ in random() }
            let v = (0..<(start + count) * keyWidth).map { _ in random() }
            var expected = [Float](repeating: .nan, count: count * queryWidth)
            hk_attention_ref(q, k, v, &expected, Int32(count), Int32(start), Int32(heads), Int32(kvHeads),
                             Int32(headDimension), 0.25, Int32(window), 0)
            var actual = [Float](repeating: .nan, count: count * queryWidth)
            q.withUnsafeBufferPointer { q in
                k.withUnsafeBufferPointer { k in
                    v.withUnsafeBufferPointer { v in
                        actual.withUnsafeMutableBufferPointer { out in
                            let whole = hk_attention_sequence(q: q.baseAddress, k: k.baseAddress, v: v.baseAddress,
                                                              out: out.baseAddress, n_q: Int32(count), q_start: Int32(start))
                            let parts = windowed(whole, window: window, queryWidth: queryWidth, keyWidth: keyWidth)
                            #expect(parts.count == (start + count > window ? min(count, start + count - window) + (start < window ? 1 : 0) : 1))
                            hk_attention_batch(parts, Int32(parts.count), Int32(heads), Int32(kvHeads), Int32(headDimension), 0.25)
                        }
                    }
                }
            }
            let difference = zip(actual, expected).map { abs(Double($0 - $1)) }.max() ?? .nan
            #expect(difference <= 1e-5, "\(count) rows from \(start), window \(window): max |Δ| \(difference)")
        }
    }
}
