import Foundation

// MARK: - Registry entry

extension ModelArchitecture {
    /// Google's first Gemma (`gemma`: 2B, 7B, Gemma 1.1, CodeGemma; GGUF `gemma`): Llama's pre-norm block with a
    /// GeGLU MLP, norms that multiply by 1 + w, embeddings × √hidden and a tied output; the attention scale is
    /// 1/√head_dim. Gemma 2 and 3 add norms on the halves' outputs and more (their own entries). It runs on
    /// `LlamaModel`.
    public static let gemma = ModelArchitecture(
        name: "gemma",
        huggingFaceModelTypes: ["gemma": "GemmaForCausalLM"],
        ggufArchitectures: ["gemma"],
        configFromHuggingFace: { json, modelType in try GemmaConfig.configFromHuggingFace(json, modelType: modelType) },
        configFromGGUF: { gguf, architecture in try GemmaConfig.configFromGGUF(gguf, architecture: architecture) },
        build: { config, weights in try LlamaModel(config: config, weights: weights) },
        adaptableModules: ModelArchitecture.llama.adaptableModules,
        ggufNames: GGUFTensorNames(
            architecture: { _ in "gemma" },
            gguf: { LlamaTensorNames.gguf(fromHuggingFace: $0) },
            huggingFace: { LlamaTensorNames.huggingFace(fromGGUF: $0) },
            permutedRows: { _, _ in [:] },  // NEOX rotation in llama.cpp: HF's row order kept
            normWeightOffset: 1),
        summaryLines: { config in
            ["rope:         theta \(config.ropeTheta), scaling \(config.ropeScaling.summary)",
             "norm eps:     \(config.normEpsilon), tied embeddings \(config.tieWordEmbeddings), GeGLU, embeddings × √hidden"]
        })
}

// MARK: - Config

enum GemmaConfig {
    /// The GGUF's eot_token_id the converter always writes (Gemma's <end_of_turn>).
    static let endOfTurnTokenID = 107

    static func applyBlock(_ config: inout ModelConfig) {
        config.hiddenActivation = "gelu_pytorch_tanh"
        config.embeddingMultiplier = Float(Double(config.hiddenSize).squareRoot())
    }

    static func configFromHuggingFace(_ json: JSONConfig, modelType: String) throws -> ModelConfig {
        var config = try LlamaConfig.configFromHuggingFace(json, modelType: modelType, gatedSiLU: false)
        applyBlock(&config)
        config.normWeightOffset = 1
        config.tieWordEmbeddings = try json.bool("tie_word_embeddings", default: true)
        // Gemma 1's files say "gelu", which transformers runs as the tanh approximation (as llama.cpp does).
        let activation = json.string("hidden_activation") ?? json.string("hidden_act") ?? "gelu_pytorch_tanh"
        guard ["gelu", "gelu_pytorch_tanh"].contains(activation) else {
            throw HoneError.invalidConfig(path: json.path, message: "hidden_act '\(activation)' is not supported (gelu_pytorch_tanh is)")
        }
        return config
    }

    static func configFromGGUF(_ gguf: GGUFFile, architecture: String) throws -> ModelConfig {
        var config = try LlamaConfig.configFromGGUF(gguf, architecture: architecture)
        applyBlock(&config)
        // llama.cpp always projects to the vocabulary with the embedding, whatever output.weight the file has.
        config.tieWordEmbeddings = true
        return config
    }
}
