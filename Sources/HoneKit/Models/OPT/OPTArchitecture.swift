import Foundation

// MARK: - Registry entry

extension ModelArchitecture {
    /// OPT (pre- and post-norm blocks, OPT-350m's projections). llama.cpp has no OPT architecture, so no GGUF form.
    public static let opt = ModelArchitecture(
        name: "opt",
        huggingFaceModelTypes: ["opt": "OPTForCausalLM"],
        ggufArchitectures: [],
        configFromHuggingFace: { json, _ in try OPTConfig.configFromHuggingFace(json) },
        configFromGGUF: nil,
        build: { config, weights in try OPTModel(config: config, weights: weights) },
        adaptableModules: AdaptableModules(
            names: ["q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"],
            shortNames: ["q": "q_proj", "k": "k_proj", "v": "v_proj", "o": "out_proj", "up": "fc1", "down": "fc2"],
            path: { layer, name in
                let group = ["fc1", "fc2"].contains(name) ? "" : "self_attn."
                return "model.decoder.layers.\(layer).\(group)\(name)"
            }),
        ggufNames: nil,
        summaryLines: { config in
            ["opt:          word_embed_proj_dim \(config.wordEmbedProjectionDimension), layer norm \(config.layerNormBefore ? "before" : "after")"]
        })
}

// MARK: - Config

enum OPTConfig {
    static func configFromHuggingFace(_ json: JSONConfig) throws -> ModelConfig {
        let hidden = try json.int("hidden_size")
        let heads = try json.int("num_attention_heads")
        guard heads > 0, hidden % heads == 0 else {
            throw HoneError.invalidConfig(path: json.path, message: "hidden_size must be a multiple of num_attention_heads")
        }
        var config = ModelConfig(
            modelType: "opt",
            vocabularySize: try json.int("vocab_size"),
            hiddenSize: hidden,
            intermediateSize: try json.int("ffn_dim"),
            layerCount: try json.int("num_hidden_layers"),
            headCount: heads,
            keyValueHeadCount: heads,
            headDimension: hidden / heads,
            maxPositionEmbeddings: try json.int("max_position_embeddings", default: 2048),
            normEpsilon: 1e-5,
            tieWordEmbeddings: try json.bool("tie_word_embeddings", default: true))
        config.wordEmbedProjectionDimension = try json.int("word_embed_proj_dim", default: hidden)
        config.layerNormBefore = try json.bool("do_layer_norm_before", default: true)
        config.enableBias = try json.bool("enable_bias", default: true)
        config.layerNormElementwiseAffine = try json.bool("layer_norm_elementwise_affine", default: true)
        config.removeFinalLayerNorm = try json.bool("_remove_final_layer_norm", default: false)
        config.hiddenActivation = json.string("activation_function") ?? "relu"
        guard config.hiddenActivation == "relu" else {
            throw HoneError.invalidConfig(path: json.path, message: "activation_function '\(config.hiddenActivation)' is not supported (relu is)")
        }
        try ModelConfig.readTokens(json, into: &config)
        return config
    }
}
