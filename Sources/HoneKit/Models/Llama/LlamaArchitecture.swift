import Foundation

// MARK: - Registry entry

extension ModelArchitecture {
    /// Llama 1/2/3, TinyLlama, SmolLM, Mistral (full attention), Qwen2 (q/k/v biases), Qwen3 (per-head q/k norms),
    /// SmolLM3 (every fourth layer without rotary positions), Granite 3 (scalar multipliers), and the mixtures of
    /// experts Mixtral (GGUF: llama with expert tensors), Qwen2-MoE (a shared expert too; GGUF: qwen2moe),
    /// Qwen3-MoE (GGUF: qwen3moe) and Granite-MoE (Granite's multipliers; GGUF: granitemoe).
    public static let llama = ModelArchitecture(
        name: "llama",
        huggingFaceModelTypes: ["llama": "LlamaForCausalLM", "mistral": "MistralForCausalLM", "qwen2": "Qwen2ForCausalLM",
                                "qwen3": "Qwen3ForCausalLM", "smollm3": "SmolLM3ForCausalLM", "granite": "GraniteForCausalLM",
                                "mixtral": "MixtralForCausalLM", "qwen2_moe": "Qwen2MoeForCausalLM",
                                "qwen3_moe": "Qwen3MoeForCausalLM", "granitemoe": "GraniteMoeForCausalLM"],
        ggufArchitectures: ["llama", "mistral", "qwen2", "qwen3", "smollm3", "granite", "qwen2moe", "qwen3moe", "granitemoe"],
        configFromHuggingFace: { json, modelType in try LlamaConfig.configFromHuggingFace(json, modelType: modelType) },
        configFromGGUF: { gguf, architecture in try LlamaConfig.configFromGGUF(gguf, architecture: architecture) },
        build: { config, weights in try LlamaModel(config: config, weights: weights) },
        adaptableModules: AdaptableModules(
            names: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
            shortNames: ["q": "q_proj", "k": "k_proj", "v": "v_proj", "o": "o_proj", "gate": "gate_proj", "up": "up_proj",
                         "down": "down_proj"],
            path: { layer, name in
                let group = ["gate_proj", "up_proj", "down_proj"].contains(name) ? "mlp" : "self_attn"
                return "model.layers.\(layer).\(group).\(name)"
            }),
        ggufNames: GGUFTensorNames(
            architecture: { modelType in
                ["qwen2_moe": "qwen2moe", "qwen3_moe": "qwen3moe"][modelType]
                    ?? (["qwen2", "qwen3", "smollm3", "granite", "granitemoe"].contains(modelType) ? modelType : "llama")
            },
            gguf: { LlamaTensorNames.gguf(fromHuggingFace: $0) },
            huggingFace: { LlamaTensorNames.huggingFace(fromGGUF: $0) },
            // llama.cpp's converter permutes Llama's (and Mistral's, SmolLM3's) Q/K rows for its adjacent-pair
            // rotation; Qwen2 and Qwen3 keep HF's layout.
            permutedRows: { architecture, config in
                LlamaConfig.keepsRotaryLayout(architecture) ? [:] : ["attn_q": config.headCount, "attn_k": config.keyValueHeadCount]
            }),
        summaryLines: { config in
            let unrotated = config.layersWithoutRotation.sorted()
            let multipliers = !LlamaConfig.isGranite(config.modelType) ? [] : [
                "multipliers:  embedding \(config.embeddingMultiplier), residual \(config.residualMultiplier), attention \(config.attentionMultiplier.map { "\($0)" } ?? "1/√head_dim"), logits ÷ \(config.logitsScaling)"]
            let experts = !config.isMixtureOfExperts ? [] : [
                "experts:      \(config.expertCount) per layer of intermediate size \(config.expertIntermediateSize), \(config.expertsPerToken) per token"
                    + (config.normalizesExpertWeights ? ", weights renormalized over those" : ", weights the router's probabilities")
                    + (config.sharedExpertIntermediateSize > 0 ? "; a gated shared expert of \(config.sharedExpertIntermediateSize)" : "")]
            return ["rope:         theta \(config.ropeTheta), scaling \(config.ropeScaling.summary)\(config.ropeInterleaved ? ", interleaved (GGUF)" : "")"
                        + (unrotated.isEmpty ? "" : ", none on layers \(unrotated.map(String.init).joined(separator: ","))"),
                    "norm eps:     \(config.normEpsilon), tied embeddings \(config.tieWordEmbeddings)"
                        + (config.queryKeyNorm ? ", q/k norms per head" : "")] + multipliers + experts
        })
}

// MARK: - Config

enum LlamaConfig {
    /// Whether llama.cpp divides the chosen experts' probabilities by their sum, which it decides by architecture
    /// (never in qwen2moe and olmoe; always in qwen3moe and llama), whatever norm_topk_prob the model had.
    static func renormalizesExperts(_ architecture: String) -> Bool {
        !["qwen2moe", "olmoe"].contains(architecture)
    }

    /// GGUF architectures whose Q/K rows stay in HF's order (llama.cpp's NEOX rope), not permuted for adjacent pairs.
    static func keepsRotaryLayout(_ architecture: String) -> Bool {
        ["qwen2", "qwen3", "qwen2moe", "qwen3moe", "phi3", "gemma", "gemma2", "gemma3", "olmo2", "olmoe", "exaone4"].contains(architecture)
    }

    /// Granite 3's dense and mixture-of-experts models (the same `model_type` and GGUF architecture names), whose
    /// blocks take the four multipliers.
    static func isGranite(_ name: String) -> Bool { name == "granite" || name == "granitemoe" }

    /// llama.cpp's SmolLM3: every fourth layer (3, 7, ...) attends without rotary positions.
    static let smolLM3NoRopeInterval = 4

    /// `gatedSiLU` false: the caller reads the activation itself (Gemma's GeGLU, whose Hub configs also say
    /// hidden_act).
    static func configFromHuggingFace(_ json: JSONConfig, modelType: String, gatedSiLU: Bool = true) throws -> ModelConfig {
        let hidden = try json.int("hidden_size")
        let heads = try json.int("num_attention_heads")
        guard heads > 0, hidden > 0 else {
            throw HoneError.invalidConfig(path: json.path, message: "hidden_size and num_attention_heads must be positive")
        }
        let kvHeads = try json.int("num_key_value_heads", default: heads)
        guard kvHeads > 0, heads % kvHeads == 0 else {
            throw HoneError.invalidConfig(path: json.path, message: "num_attention_heads (\(heads)) must be a multiple of num_key_value_heads (\(kvHeads))")
        }
        let headDimension = try json.int("head_dim", default: hidden / heads)
        var config = ModelConfig(
            modelType: modelType,
            vocabularySize: try json.int("vocab_size"),
            hiddenSize: hidden,
            intermediateSize: try json.int("intermediate_size"),
            layerCount: try json.int("num_hidden_layers"),
            headCount: heads,
            keyValueHeadCount: kvHeads,
            headDimension: headDimension,
            maxPositionEmbeddings: try json.int("max_position_embeddings", default: 2048),
            normEpsilon: Float(try json.double("rms_norm_eps", default: 1e-6)),
            tieWordEmbeddings: try json.bool("tie_word_embeddings", default: false))
        config.hiddenActivation = gatedSiLU ? json.string("hidden_act") ?? "silu" : "silu"
        guard config.hiddenActivation == "silu" else {
            throw HoneError.invalidConfig(path: json.path, message: "hidden_act '\(config.hiddenActivation)' is not supported (silu is)")
        }
        if modelType == "qwen3" || modelType == "qwen3_moe" { config.queryKeyNorm = true }
        if ["mixtral", "qwen2_moe", "qwen3_moe", "granitemoe"].contains(modelType) { try readExperts(json, modelType: modelType, into: &config) }
        if isGranite(modelType) {
            config.embeddingMultiplier = Float(try json.double("embedding_multiplier", default: 1))
            config.residualMultiplier = Float(try json.double("residual_multiplier", default: 1))
            config.attentionMultiplier = Float(try json.double("attention_multiplier", default: 1))
            config.logitsScaling = Float(try json.double("logits_scaling", default: 1))
            guard config.logitsScaling != 0 else { throw HoneError.invalidConfig(path: json.path, message: "logits_scaling must not be 0") }
        }
        if modelType == "smollm3" {
            // transformers: no_rope_layers[i] is 1 where layer i rotates (from no_rope_layer_interval when absent).
            if let list = json.values["no_rope_layers"] as? [Any] {
                let flags = list.compactMap(jsonInteger)
                guard flags.count == config.layerCount, flags.allSatisfy({ $0 == 0 || $0 == 1 }) else {
                    throw HoneError.invalidConfig(path: json.path, message: "no_rope_layers must hold one 0 or 1 per layer (\(config.layerCount))")
                }
                config.layersWithoutRotation = Set(flags.indices.filter { flags[$0] == 0 })
            } else {
                let interval = try json.int("no_rope_layer_interval", default: smolLM3NoRopeInterval)
                guard interval > 0 else { throw HoneError.invalidConfig(path: json.path, message: "no_rope_layer_interval must be positive") }
                config.layersWithoutRotation = Set((0..<config.layerCount).filter { ($0 + 1) % interval == 0 })
            }
        }
        if modelType == "qwen2" {
            config.queryKeyValueBias = true
        } else if modelType == "qwen2_moe" {
            config.queryKeyValueBias = try json.bool("qkv_bias", default: true)
        } else {
            let bias = try json.bool("attention_bias", default: false)
            config.queryKeyValueBias = bias
            config.outputBias = bias
            config.mlpBias = try json.bool("mlp_bias", default: false)
        }
        // transformers 5 nests rope settings in rope_parameters; 4 has rope_theta and rope_scaling.
        let rope = json.object("rope_parameters")
        config.ropeTheta = try rope?.double("rope_theta", default: 10000) ?? json.double("rope_theta", default: 10000)
        let partial = try (rope?.has("partial_rotary_factor") == true ? rope!.double("partial_rotary_factor")
                                                                       : json.double("partial_rotary_factor", default: 1))
        config.rotaryDimension = try ModelConfig.rotatedFeatures(headDimension: headDimension, fraction: partial,
                                                                 key: "partial_rotary_factor", path: json.path) / 2 * 2
        if let scaling = rope ?? json.object("rope_scaling") {
            config.ropeScaling = try ropeScaling(scaling, top: json, modelType: modelType)
        }
        try ModelConfig.readTokens(json, into: &config)
        return config
    }

    /// Mixtral's, Qwen2-MoE's and Qwen3-MoE's sparse MLP: every block's MLP is `num_experts` (Mixtral:
    /// `num_local_experts`) SwiGLU experts of which each token goes through `num_experts_per_tok`, and in Qwen2-MoE
    /// a gated shared expert every token goes through.
    static func readExperts(_ json: JSONConfig, modelType: String, into config: inout ModelConfig) throws {
        func refuse(_ message: String) -> HoneError { HoneError.invalidConfig(path: json.path, message: message) }
        if modelType == "granitemoe" {
            // Granite-MoE: intermediate_size is each expert's; the softmax over the chosen experts' logits is the
            // full softmax renormalized over them. A shared MLP (granitemoeshared) is another model type.
            config.expertCount = try json.int("num_local_experts", default: 8)
            config.expertsPerToken = try json.int("num_experts_per_tok", default: 2)
            config.expertIntermediateSize = config.intermediateSize
            config.normalizesExpertWeights = true
        } else if modelType == "olmoe" {
            // OLMoE: intermediate_size is each expert's; the chosen probabilities are used as they are by default.
            config.expertCount = try json.int("num_experts", default: json.int("num_local_experts", default: 64))
            config.expertsPerToken = try json.int("num_experts_per_tok", default: 8)
            config.expertIntermediateSize = config.intermediateSize
            config.normalizesExpertWeights = try json.bool("norm_topk_prob", default: false)
        } else if modelType == "mixtral" {
            config.expertCount = try json.int("num_local_experts", default: 8)
            config.expertsPerToken = try json.int("num_experts_per_tok", default: 2)
            config.expertIntermediateSize = config.intermediateSize
            config.normalizesExpertWeights = true  // the top-k softmax is the full softmax renormalized
        } else {
            // The Hub's files say num_experts; transformers 5 writes num_local_experts. Defaults: transformers'.
            let qwen2 = modelType == "qwen2_moe"
            config.expertCount = try json.int("num_experts", default: json.int("num_local_experts", default: qwen2 ? 60 : 128))
            config.expertsPerToken = try json.int("num_experts_per_tok", default: qwen2 ? 4 : 8)
            config.expertIntermediateSize = try json.int("moe_intermediate_size", default: qwen2 ? 1408 : 768)
            config.normalizesExpertWeights = try json.bool("norm_topk_prob", default: false)
            if qwen2 { config.sharedExpertIntermediateSize = try json.int("shared_expert_intermediate_size", default: 5632) }
            // Dense layers among the sparse ones have no form in llama.cpp's qwen3moe either.
            let denseLayers = (json.values["mlp_only_layers"] as? [Any])?.compactMap(jsonInteger) ?? []
            guard denseLayers.isEmpty, try json.int("decoder_sparse_step", default: 1) == 1 else {
                throw refuse("dense MLP layers (mlp_only_layers, decoder_sparse_step other than 1) are not supported: every layer must be sparse")
            }
        }
        guard config.expertCount > 0 else { throw refuse("the expert count must be positive, not \(config.expertCount)") }
    }

    /// `json`: rope_parameters or rope_scaling; `top`: the whole config (Phi-3 keeps original_max_position_embeddings
    /// there).
    static func ropeScaling(_ json: JSONConfig, top: JSONConfig, modelType: String) throws -> RopeScaling {
        let path = top.path
        let kind = json.string("rope_type") ?? json.string("type") ?? "default"
        switch kind {
        case "yarn":
            let original = try json.int("original_max_position_embeddings",
                                        default: top.int("original_max_position_embeddings", default: top.int("max_position_embeddings", default: 2048)))
            let factor = try json.double("factor")
            func mscale(_ scale: Double) -> Double { factor <= 1 ? 1 : 0.1 * scale * log(factor) + 1 }
            var attention = mscale(1)
            if json.has("attention_factor") {
                attention = try json.double("attention_factor")
            } else if json.has("mscale"), json.has("mscale_all_dim"), try json.double("mscale") != 0, try json.double("mscale_all_dim") != 0 {
                attention = mscale(try json.double("mscale")) / mscale(try json.double("mscale_all_dim"))
            }
            guard try json.bool("truncate", default: true) else {
                throw HoneError.invalidConfig(path: path, message: "yarn with truncate false is not supported")
            }
            return .yarn(factor: factor, originalContext: original, betaFast: try json.double("beta_fast", default: 32),
                         betaSlow: try json.double("beta_slow", default: 1), attentionFactor: attention)
        case "longrope", "su" where modelType == "phi3":
            // transformers: the attention factor from `factor`, or max_position_embeddings ÷ the original context.
            let maximum = try top.int("max_position_embeddings", default: 2048)
            let original = try json.int("original_max_position_embeddings",
                                        default: top.int("original_max_position_embeddings", default: maximum))
            guard original > 0 else { throw HoneError.invalidConfig(path: path, message: "original_max_position_embeddings must be positive") }
            let factor = try json.double("factor", default: Double(maximum) / Double(original))
            let attention = try json.double("attention_factor", default: factor <= 1 ? 1 : (1 + log(factor) / log(Double(original))).squareRoot())
            return .longRoPE(shortFactors: try json.doubles("short_factor"), longFactors: try json.doubles("long_factor"),
                             originalContext: original, attentionFactor: attention)
        case "default": return .none
        case "linear": return .linear(factor: try json.double("factor"))
        case "dynamic": return .dynamic(factor: try json.double("factor"))
        case "llama3":
            return .llama3(factor: try json.double("factor"),
                           lowFrequencyFactor: try json.double("low_freq_factor"),
                           highFrequencyFactor: try json.double("high_freq_factor"),
                           originalContext: try json.int("original_max_position_embeddings"))
        default:
            throw HoneError.invalidConfig(path: path, message: "rope scaling type '\(kind)' is not supported (linear, dynamic, llama3, yarn\(modelType == "phi3" ? ", longrope" : "") are)")
        }
    }

    /// transformers 5's rope_parameters with one set per layer type (Gemma 3, OLMo 3): the full-attention layers'
    /// base and scaling, the sliding-window layers' base (their scaling must be none). False when the config keeps
    /// rope settings otherwise (then nothing is read).
    static func readRopePerLayerType(_ json: JSONConfig, into config: inout ModelConfig, globalTheta: Double,
                                     localTheta: Double) throws -> Bool {
        guard let perType = json.object("rope_parameters"), perType.has("full_attention") || perType.has("sliding_attention") else {
            return false
        }
        let global = perType.object("full_attention")
        config.ropeTheta = try global?.double("rope_theta", default: globalTheta) ?? globalTheta
        config.ropeScaling = try global.map { try ropeScaling($0, top: json, modelType: config.modelType) } ?? .none
        let local = perType.object("sliding_attention")
        config.localRopeTheta = try local?.double("rope_theta", default: localTheta) ?? localTheta
        if let local, try ropeScaling(local, top: json, modelType: config.modelType) != .none {
            throw HoneError.invalidConfig(path: json.path, message: "rope scaling on the sliding-window layers is not supported")
        }
        return true
    }

    static func configFromGGUF(_ gguf: GGUFFile, architecture: String) throws -> ModelConfig {
        func required(_ key: String) throws -> Int {
            guard let value = gguf.integer("\(architecture).\(key)") else {
                throw HoneError.missingConfigKey(path: gguf.path, key: "\(architecture).\(key)")
            }
            return value
        }
        let hidden = try required("embedding_length")
        let heads = try required("attention.head_count")
        guard heads > 0 else { throw HoneError.invalidConfig(path: gguf.path, message: "head_count must be positive") }
        let kvHeads = gguf.integer("\(architecture).attention.head_count_kv") ?? heads
        let headDimension = gguf.integer("\(architecture).attention.key_length") ?? hidden / heads
        let embedding = gguf.tensorInfos.first { $0.name == "token_embd.weight" }
        let vocabulary = gguf.integer("\(architecture).vocab_size")
            ?? gguf.metadata["tokenizer.ggml.tokens"]?.arrayValue?.count
            ?? embedding?.shape.first
        guard let vocabulary else { throw HoneError.missingConfigKey(path: gguf.path, key: "\(architecture).vocab_size") }
        var config = ModelConfig(
            modelType: ["qwen2moe": "qwen2_moe", "qwen3moe": "qwen3_moe"][architecture] ?? architecture,
            vocabularySize: vocabulary,
            hiddenSize: hidden,
            intermediateSize: try required("feed_forward_length"),
            layerCount: try required("block_count"),
            headCount: heads,
            keyValueHeadCount: kvHeads,
            headDimension: headDimension,
            maxPositionEmbeddings: gguf.integer("\(architecture).context_length") ?? 2048,
            normEpsilon: Float(gguf.double("\(architecture).attention.layer_norm_rms_epsilon") ?? 1e-5),
            tieWordEmbeddings: !gguf.tensorInfos.contains { $0.name == "output.weight" })
        config.ropeTheta = gguf.double("\(architecture).rope.freq_base") ?? 10000
        config.rotaryDimension = gguf.integer("\(architecture).rope.dimension_count") ?? headDimension
        // llama.cpp's converter permutes Llama's Q/K rows for GGML's adjacent-pair rope; Qwen2/3 and Phi-3 keep HF's layout.
        config.ropeInterleaved = !keepsRotaryLayout(architecture)
        config.queryKeyNorm = gguf.tensorInfos.contains { $0.name == "blk.0.attn_q_norm.weight" }
        if isGranite(architecture) {
            // llama.cpp reads these four only for its Granite architectures.
            config.embeddingMultiplier = Float(gguf.double("\(architecture).embedding_scale") ?? 1)
            config.residualMultiplier = Float(gguf.double("\(architecture).residual_scale") ?? 1)
            config.attentionMultiplier = gguf.double("\(architecture).attention.scale").map(Float.init)
            config.logitsScaling = Float(gguf.double("\(architecture).logit_scale") ?? 1)
            guard config.logitsScaling != 0 else { throw HoneError.invalidConfig(path: gguf.path, message: "\(architecture).logit_scale must not be 0") }
        }
        if architecture == "smollm3" {
            config.layersWithoutRotation = Set((0..<config.layerCount).filter { ($0 + 1) % smolLM3NoRopeInterval == 0 })
        }
        if let experts = gguf.integer("\(architecture).expert_count"), experts > 0 {
            // llama.cpp: the experts' width from expert_feed_forward_length (qwen3moe), else feed_forward_length
            // ÷ the experts used (qwen3moe) or feed_forward_length itself (llama: Mixtral); the chosen experts'
            // probabilities always renormalized.
            config.expertCount = experts
            config.expertsPerToken = gguf.integer("\(architecture).expert_used_count") ?? 0
            let qwen = architecture == "qwen3moe" || architecture == "qwen2moe"
            config.expertIntermediateSize = gguf.integer("\(architecture).expert_feed_forward_length")
                ?? (qwen ? config.intermediateSize / max(config.expertsPerToken, 1) : config.intermediateSize)
            config.normalizesExpertWeights = renormalizesExperts(architecture)
            if architecture == "qwen2moe" {
                config.sharedExpertIntermediateSize = gguf.integer("qwen2moe.expert_shared_feed_forward_length") ?? config.intermediateSize
            }
            if architecture == "llama" { config.modelType = "mixtral" }  // Mixtral's GGUFs say llama
        } else if architecture == "qwen3moe" || architecture == "qwen2moe" {
            throw HoneError.missingConfigKey(path: gguf.path, key: "\(architecture).expert_count")
        }
        config.queryKeyValueBias = gguf.tensorInfos.contains { $0.name == "blk.0.attn_q.bias" }
        config.outputBias = gguf.tensorInfos.contains { $0.name == "blk.0.attn_output.bias" }
        config.mlpBias = gguf.tensorInfos.contains { $0.name == "blk.0.ffn_up.bias" }
        let scalingType = gguf.string("\(architecture).rope.scaling.type") ?? "none"
        let factor = gguf.double("\(architecture).rope.scaling.factor") ?? 1
        switch scalingType {
        case "none": break
        case "linear": if factor != 1 { config.ropeScaling = .linear(factor: factor) }
        case "yarn":
            // llama.cpp: the attention factor is YaRN's 0.1·ln(factor) + 1 (a yarn_attn_factor key does not change
            // it) times rope.scaling.attn_factor.
            let original = gguf.integer("\(architecture).rope.scaling.original_context_length") ?? config.maxPositionEmbeddings
            let attention = (factor <= 1 ? 1 : 0.1 * log(factor) + 1) * (gguf.double("\(architecture).rope.scaling.attn_factor") ?? 1)
            config.ropeScaling = .yarn(factor: factor, originalContext: original,
                                       betaFast: gguf.double("\(architecture).rope.scaling.yarn_beta_fast") ?? 32,
                                       betaSlow: gguf.double("\(architecture).rope.scaling.yarn_beta_slow") ?? 1,
                                       attentionFactor: attention)
        default:
            throw HoneError.invalidConfig(path: gguf.path, message: "rope scaling type '\(scalingType)' is not supported")
        }
        // Negative ids mean none, as in config.json; ids past the vocabulary are dropped once its size is known.
        func id(_ key: String) -> Int? { gguf.integer(key).flatMap { $0 >= 0 ? $0 : nil } }
        config.bosTokenID = id("tokenizer.ggml.bos_token_id")
        config.eosTokenIDs = id("tokenizer.ggml.eos_token_id").map { [$0] } ?? []
        config.padTokenID = id("tokenizer.ggml.padding_token_id")
        return config
    }
}

// MARK: - Tensor names and row order in GGUF files

/// llama.cpp's converter stores Llama's Q and K rows in GGML's adjacent-pair rope order: within each head the
/// rows (first half, second half) become interleaved pairs. Viewed as [heads, 2, half] → [heads, half, 2].
enum RotaryPermutation {
    /// GGUF row → HF row it comes from (used when writing a GGUF from HF weights).
    static func ggufRowSource(rows: Int, heads: Int) -> (Int) -> Int {
        let half = rows / heads / 2
        return { row in
            let (head, within) = row.quotientAndRemainder(dividingBy: 2 * half)
            let (pair, side) = within.quotientAndRemainder(dividingBy: 2)
            return head * 2 * half + side * half + pair
        }
    }

    /// HF row → GGUF row it comes from (used when writing HF weights from a GGUF).
    static func huggingFaceRowSource(rows: Int, heads: Int) -> (Int) -> Int {
        let half = rows / heads / 2
        return { row in
            let (head, within) = row.quotientAndRemainder(dividingBy: 2 * half)
            let (side, pair) = within.quotientAndRemainder(dividingBy: half)
            return head * 2 * half + pair * 2 + side
        }
    }
}

/// HF ↔ GGUF tensor names of the Llama family (llama.cpp's tensor map for LLAMA, QWEN2, QWEN3, SMOLLM3 and GRANITE).
enum LlamaTensorNames {
    static let topLevel: [(hf: String, gguf: String)] = [
        ("model.embed_tokens", "token_embd"), ("model.norm", "output_norm"), ("lm_head", "output"),
    ]
    static let perLayer: [(hf: String, gguf: String)] = [
        ("input_layernorm", "attn_norm"), ("self_attn.q_proj", "attn_q"), ("self_attn.k_proj", "attn_k"),
        ("self_attn.v_proj", "attn_v"), ("self_attn.o_proj", "attn_output"), ("post_attention_layernorm", "ffn_norm"),
        ("mlp.gate_proj", "ffn_gate"), ("mlp.up_proj", "ffn_up"), ("mlp.down_proj", "ffn_down"),
        ("self_attn.q_norm", "attn_q_norm"), ("self_attn.k_norm", "attn_k_norm"),
        // The experts' routers (Qwen3-MoE's, Mixtral's); the experts are stacked (`ExpertNames`).
        ("mlp.gate", "ffn_gate_inp"), ("block_sparse_moe.gate", "ffn_gate_inp"), ("block_sparse_moe.router.layer", "ffn_gate_inp"),
        // Qwen2-MoE's shared expert and its gate.
        ("mlp.shared_expert.gate_proj", "ffn_gate_shexp"), ("mlp.shared_expert.up_proj", "ffn_up_shexp"),
        ("mlp.shared_expert.down_proj", "ffn_down_shexp"), ("mlp.shared_expert_gate", "ffn_gate_inp_shexp"),
    ]

    /// "model.layers.3.self_attn.q_proj.weight" → "blk.3.attn_q.weight"; nil for names without a GGUF counterpart.
    /// `perLayer`: the block's module names (Phi-3 has its own; the top-level names are shared).
    static func gguf(fromHuggingFace name: String, perLayer: [(hf: String, gguf: String)] = perLayer) -> String? {
        guard let dot = name.lastIndex(of: ".") else { return nil }
        let (module, suffix) = (String(name[..<dot]), String(name[name.index(after: dot)...]))
        if let entry = topLevel.first(where: { $0.hf == module }) { return "\(entry.gguf).\(suffix)" }
        let parts = module.split(separator: ".", maxSplits: 3).map(String.init)
        guard parts.count == 4, parts[0] == "model", parts[1] == "layers", let layer = Int(parts[2]),
              let entry = perLayer.first(where: { $0.hf == parts[3] }) else { return nil }
        return "blk.\(layer).\(entry.gguf).\(suffix)"
    }

    /// The inverse of `gguf(fromHuggingFace:)`.
    static func huggingFace(fromGGUF name: String, perLayer: [(hf: String, gguf: String)] = perLayer) -> String? {
        guard let dot = name.lastIndex(of: ".") else { return nil }
        let (module, suffix) = (String(name[..<dot]), String(name[name.index(after: dot)...]))
        if let entry = topLevel.first(where: { $0.gguf == module }) { return "\(entry.hf).\(suffix)" }
        let parts = module.split(separator: ".", maxSplits: 2).map(String.init)
        guard parts.count == 3, parts[0] == "blk", let layer = Int(parts[1]),
              let entry = perLayer.first(where: { $0.gguf == parts[2] }) else { return nil }
        return "model.layers.\(layer).\(entry.hf).\(suffix)"
    }
}
