import Foundation
import Testing
@testable import HoneKit

/// OLMo 2, OLMo 3 and OLMoE settings as read from config.json (both layouts) and from llama.cpp's GGUF files, and
/// the configs refused. Their numbers (log-probs, LoRA gradients, conversion) are checked with the other families
/// in GoldenLogprobTests, LoRATrainingTests and QuantizeConvertTests.
@Suite struct OLMoTests {
    static func config(_ fixture: String) throws -> ModelConfig {
        try ModelConfig.fromHuggingFace(path: Repository.fixture("models/\(fixture)/config.json"))
    }

    static func gguf(_ fixture: String) throws -> ModelConfig {
        try ModelConfig.fromGGUF(GGUFFile(path: Repository.fixture("gguf/\(fixture)-f32.gguf")))
    }

    @Test func olmo2Block() throws {
        for config in [try Self.config("olmo2-post"), try Self.gguf("olmo2-post")] {
            #expect(config.modelType == "olmo2" && config.architecture.name == "olmo2")
            #expect(config.queryKeyNorm && config.queryKeyNormAcrossHeads && config.sandwichNorms && !config.inputNorms)
            #expect(config.slidingWindow == nil && config.slidingWindowLayers.isEmpty && !config.ropeInterleaved)
            #expect(config.ropeTheta == 500_000 && !config.tieWordEmbeddings)
        }
    }

    /// transformers 5's rope_parameters per layer type: YaRN on the global layer only; the GGUF lists the local
    /// layers and is read back as olmo3.
    @Test func olmo3Layers() throws {
        let hf = try Self.config("olmo3-swa")
        let gguf = try Self.gguf("olmo3-swa")
        for config in [hf, gguf] {
            #expect(config.modelType == "olmo3" && !config.inputNorms && config.queryKeyNormAcrossHeads)
            #expect(config.slidingWindow == 8 && config.slidingWindowLayers == [0, 1, 2])
            #expect(config.ropeTheta == 500_000 && config.localRopeTheta == 500_000)
            guard case .yarn(let factor, let original, _, _, _) = config.ropeScaling else {
                Issue.record("\(config.ropeScaling) is not YaRN")
                continue
            }
            #expect(factor == 2 && original == 32)
        }
    }

    /// The Hub's OLMo 3 config.json: rope_theta and rope_scaling at the top (the global layers'), no layer_types
    /// (every fourth layer global), transformers' window of 4,096 when none is given.
    @Test func olmo3HubLayout() throws {
        let path = Repository.fixture("models/olmo3-swa/config.json")
        var values = try JSONConfig(path: path).values
        for key in ["rope_parameters", "layer_types", "sliding_window"] { values.removeValue(forKey: key) }
        values["num_hidden_layers"] = 8
        values["rope_theta"] = 250_000.0
        values["rope_scaling"] = ["rope_type": "yarn", "factor": 8.0, "original_max_position_embeddings": 8192,
                                  "attention_factor": 1.2079441541679836]
        let config = try OLMo2Config.configFromHuggingFace(JSONConfig(values: values, path: path), modelType: "olmo3")
        #expect(config.slidingWindow == 4096 && config.slidingWindowLayers == [0, 1, 2, 4, 5, 6])
        #expect(config.ropeTheta == 250_000 && config.localRopeTheta == 250_000)
        guard case .yarn(let factor, let original, _, _, let attention) = config.ropeScaling else {
            Issue.record("\(config.ropeScaling) is not YaRN")
            return
        }
        #expect(factor == 8 && original == 8192 && abs(attention - 1.2079441541679836) < 1e-12)
    }

    @Test func olmoeExperts() throws {
        for config in [try Self.config("olmoe-experts"), try Self.gguf("olmoe-experts")] {
            #expect(config.modelType == "olmoe" && config.isMixtureOfExperts && config.inputNorms && !config.sandwichNorms)
            #expect(config.expertCount == 4 && config.expertsPerToken == 2 && config.expertIntermediateSize == 32)
            #expect(!config.normalizesExpertWeights && config.queryKeyNorm && config.queryKeyNormAcrossHeads)
            #expect(config.modulesWithoutAdapters == ["gate_proj", "up_proj", "down_proj"])
        }
        #expect(!LlamaConfig.renormalizesExperts("olmoe") && LlamaConfig.renormalizesExperts("qwen3moe"))
    }

    @Test(arguments: ["olmo2-post", "olmoe-experts"])
    func clipQKVRefused(fixture: String) throws {
        let path = Repository.fixture("models/\(fixture)/config.json")
        var values = try JSONConfig(path: path).values
        values["clip_qkv"] = 8.0
        let modelType = try #require(values["model_type"] as? String)
        do {
            _ = try ModelArchitectures.forModelType(modelType)!.configFromHuggingFace(JSONConfig(values: values, path: path), modelType)
            Issue.record("clip_qkv was accepted")
        } catch let error as HoneError {
            #expect("\(error)".contains("clip_qkv") && "\(error)".contains(path), "\(error)")
        }
    }

    /// `hone info` says what kind of block it is.
    @Test func summary() throws {
        let olmo3 = try Self.config("olmo3-swa")
        let lines = olmo3.architecture.summaryLines(olmo3).joined(separator: "\n")
        #expect(lines.contains("sliding window of 8 keys on 3 of 4 layers") && lines.contains("q/k norms across the heads"))
        let olmoe = try Self.config("olmoe-experts")
        #expect(olmoe.architecture.summaryLines(olmoe).joined().contains("4 per layer of intermediate size 32, 2 per token, weights the router's probabilities"))
    }
}
