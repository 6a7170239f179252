import Foundation

// MARK: - Registry entry

extension ModelArchitecture {
    /// AI2's OLMoE (`olmoe`: OLMoE-1B-7B, 64 experts of which 8 per token; GGUF `olmoe`): Llama's pre-norm block
    /// with OLMo's q/k norms across the heads and a sparse MLP in place of the dense one, the chosen experts weighted
    /// by the router's probabilities as they are. It runs on `LlamaModel`.
    public static let olmoe = ModelArchitecture(
        name: "olmoe",
        huggingFaceModelTypes: ["olmoe": "OlmoeForCausalLM"],
        ggufArchitectures: ["olmoe"],
        configFromHuggingFace: { json, modelType in try OLMoEConfig.configFromHuggingFace(json, modelType: modelType) },
        configFromGGUF: { gguf, architecture in try OLMoEConfig.configFromGGUF(gguf, architecture: architecture) },
        build: { config, weights in try LlamaModel(config: config, weights: weights) },
        adaptableModules: ModelArchitecture.llama.adaptableModules,
        ggufNames: GGUFTensorNames(
            architecture: { _ in "olmoe" },
            gguf: { LlamaTensorNames.gguf(fromHuggingFace: $0) },
            huggingFace: { LlamaTensorNames.huggingFace(fromGGUF: $0) },
            permutedRows: { _, _ in [:] }),  // NEOX rotation in llama.cpp: HF's row order kept
        summaryLines: { config in
            ["rope:         theta \(config.ropeTheta), scaling \(config.ropeScaling.summary)",
             "norm eps:     \(config.normEpsilon), tied embeddings \(config.tieWordEmbeddings), q/k norms across the heads",
             "experts:      \(config.expertCount) per layer of intermediate size \(config.expertIntermediateSize), \(config.expertsPerToken) per token"
                + (config.normalizesExpertWeights ? ", weights renormalized over those" : ", weights the router's probabilities")]
        })
}

// MARK: - Config

enum OLMoEConfig {
    static func configFromHuggingFace(_ json: JSONConfig, modelType: String) throws -> ModelConfig {
        var config = try LlamaConfig.configFromHuggingFace(json, modelType: modelType)
        (config.queryKeyNorm, config.queryKeyNormAcrossHeads) = (true, true)
        guard json.values["clip_qkv"] == nil || json.values["clip_qkv"] is NSNull else {
            throw HoneError.invalidConfig(path: json.path, message: "clip_qkv is not supported")
        }
        try LlamaConfig.readExperts(json, modelType: modelType, into: &config)
        return config
    }

    static func configFromGGUF(_ gguf: GGUFFile, architecture: String) throws -> ModelConfig {
        var config = try LlamaConfig.configFromGGUF(gguf, architecture: architecture)
        guard config.isMixtureOfExperts else { throw HoneError.missingConfigKey(path: gguf.path, key: "\(architecture).expert_count") }
        guard config.queryKeyNorm else { throw HoneError.missingTensor(name: "blk.0.attn_q_norm.weight", path: gguf.path) }
        config.queryKeyNormAcrossHeads = true
        return config
    }
}
