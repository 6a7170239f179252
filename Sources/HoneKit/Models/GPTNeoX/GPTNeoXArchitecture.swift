import Foundation

// MARK: - Registry entry

extension ModelArchitecture {
    /// EleutherAI's GPT-NeoX and Pythia (the reward models of PRO's evaluation): fused per-head Q/K/V, partial
    /// NeoX-style rotary positions, LayerNorm with bias, GELU MLP, parallel or sequential residual, untied output.
    /// Also OpenAssistant's Pythia reward models (`gpt_neox_reward_model`: the trunk plus `out_proj`, pooled).
    /// GGUF files of this architecture are not read (llama.cpp's "gptneox" layout is not mapped here).
    public static let gptNeoX = ModelArchitecture(
        name: "gpt_neox",
        huggingFaceModelTypes: ["gpt_neox": "GPTNeoXForCausalLM", "gpt_neox_reward_model": "GPTNeoXRewardModel"],
        ggufArchitectures: [],
        configFromHuggingFace: { json, modelType in try GPTNeoXConfig.configFromHuggingFace(json, modelType: modelType) },
        configFromGGUF: nil,
        build: { config, weights in try GPTNeoXModel(config: config, weights: weights) },
        adaptableModules: AdaptableModules(
            names: ["query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"],
            // Llama's names (the recipes' defaults are written with them) map onto NeoX's modules, the three
            // projections onto the fused one: the default [q_proj,v_proj] is then PEFT's own default for
            // gpt_neox, [query_key_value].
            shortNames: ["qkv": "query_key_value", "o": "dense", "up": "dense_h_to_4h", "down": "dense_4h_to_h",
                         "q": "query_key_value", "k": "query_key_value", "v": "query_key_value", "gate": "dense_h_to_4h",
                         "q_proj": "query_key_value", "k_proj": "query_key_value", "v_proj": "query_key_value",
                         "o_proj": "dense", "gate_proj": "dense_h_to_4h", "up_proj": "dense_h_to_4h",
                         "down_proj": "dense_4h_to_h"],
            path: { layer, name in
                let group = ["dense_h_to_4h", "dense_4h_to_h"].contains(name) ? "mlp" : "attention"
                return "gpt_neox.layers.\(layer).\(group).\(name)"
            }),
        ggufNames: nil,
        summaryLines: { config in
            ["gpt_neox:     rotary \(config.rotaryDimension) of \(config.headDimension) features per head (theta \(config.ropeTheta)), "
                + "\(config.parallelResidual ? "parallel" : "sequential") residual, \(config.hiddenActivation)",
             "norm eps:     \(config.normEpsilon), attention bias \(config.queryKeyValueBias), tied embeddings \(config.tieWordEmbeddings)"]
        })
}

// MARK: - Config

enum GPTNeoXConfig {
    /// HF "hidden_act" values and whether each is the tanh form of GELU (false: the exact erf form).
    static let activations: [String: Bool] = ["gelu": false, "gelu_new": true, "gelu_fast": true, "gelu_pytorch_tanh": true]

    static func configFromHuggingFace(_ json: JSONConfig, modelType: String) throws -> ModelConfig {
        let hidden = try json.int("hidden_size")
        let heads = try json.int("num_attention_heads")
        guard heads > 0, hidden > 0, hidden % heads == 0 else {
            throw HoneError.invalidConfig(path: json.path, message: "hidden_size must be a positive multiple of num_attention_heads")
        }
        let headDimension = hidden / heads
        var config = ModelConfig(
            modelType: modelType,
            vocabularySize: try json.int("vocab_size"),
            hiddenSize: hidden,
            intermediateSize: try json.int("intermediate_size"),
            layerCount: try json.int("num_hidden_layers"),
            headCount: heads,
            keyValueHeadCount: heads,
            headDimension: headDimension,
            maxPositionEmbeddings: try json.int("max_position_embeddings", default: 2048),
            normEpsilon: Float(try json.double("layer_norm_eps", default: 1e-5)),
            tieWordEmbeddings: try json.bool("tie_word_embeddings", default: false))
        config.hiddenActivation = json.string("hidden_act") ?? "gelu"
        guard activations[config.hiddenActivation] != nil else {
            throw HoneError.invalidConfig(path: json.path, message: "hidden_act '\(config.hiddenActivation)' is not supported "
                                          + "(\(activations.keys.sorted().joined(separator: ", ")) are)")
        }
        config.parallelResidual = try json.bool("use_parallel_residual", default: true)
        let bias = try json.bool("attention_bias", default: true)
        config.queryKeyValueBias = bias
        config.outputBias = bias
        config.mlpBias = true
        // transformers 4 and the released Pythia configs write rotary_pct / rotary_emb_base; transformers 5
        // nests them in rope_parameters as partial_rotary_factor / rope_theta.
        let rope = json.object("rope_parameters")
        if let kind = rope?.string("rope_type"), kind != "default" {
            throw HoneError.invalidConfig(path: json.path, message: "rope_type '\(kind)' is not supported for gpt_neox (default is)")
        }
        config.ropeTheta = try rope.flatMap { $0.has("rope_theta") ? try $0.double("rope_theta") : nil }
            ?? json.double("rotary_emb_base", default: 10000)
        let fraction = try rope.flatMap { $0.has("partial_rotary_factor") ? try $0.double("partial_rotary_factor") : nil }
            ?? json.double("rotary_pct", default: 0.25)
        // transformers truncates head_dim × fraction to an integer.
        config.rotaryDimension = try ModelConfig.rotatedFeatures(headDimension: headDimension, fraction: fraction,
                                                                 key: rope?.has("partial_rotary_factor") == true
                                                                     ? "partial_rotary_factor" : "rotary_pct",
                                                                 path: json.path)
        guard fraction > 0, config.rotaryDimension % 2 == 0 else {
            throw HoneError.invalidConfig(path: json.path, message: "rotary_pct \(fraction) of head size \(headDimension) "
                                          + "must give an even number of rotated features")
        }
        if modelType == "gpt_neox_reward_model" {
            // OpenAssistant's GPTNeoXRewardModel: out_proj (with bias) on the last attended token or the mean.
            config.scoreModule = "out_proj"
            let pooling = json.string("pooling") ?? "last"
            guard pooling == "last" || pooling == "mean" else {
                throw HoneError.invalidConfig(path: json.path, message: "pooling '\(pooling)' is not supported (last, mean are)")
            }
            config.scorePooling = pooling == "mean" ? .mean : .last
        }
        try ModelConfig.readTokens(json, into: &config)
        return config
    }
}
