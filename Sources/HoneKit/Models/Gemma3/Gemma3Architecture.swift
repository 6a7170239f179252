import Foundation

// MARK: - Registry entry

extension ModelArchitecture {
    /// Google's Gemma 3 text models (`gemma3_text`: 270M, 1B; GGUF `gemma3`, which llama.cpp also uses for the
    /// language model of the 4B–27B checkpoints): Llama's block with a norm on each half's output too, per-head q/k
    /// norms, a GeGLU MLP, embeddings × √hidden, and five local layers in every six that attend within a sliding
    /// window and rotate with a base of their own. It runs on `LlamaModel`.
    public static let gemma3 = ModelArchitecture(
        name: "gemma3",
        huggingFaceModelTypes: ["gemma3_text": "Gemma3ForCausalLM"],
        ggufArchitectures: ["gemma3"],
        configFromHuggingFace: { json, modelType in try Gemma3Config.configFromHuggingFace(json, modelType: modelType) },
        configFromGGUF: { gguf, architecture in try Gemma3Config.configFromGGUF(gguf, architecture: architecture) },
        build: { config, weights in try LlamaModel(config: config, weights: weights) },
        adaptableModules: ModelArchitecture.llama.adaptableModules,
        ggufNames: GGUFTensorNames(
            architecture: { _ in "gemma3" },
            gguf: { LlamaTensorNames.gguf(fromHuggingFace: $0, perLayer: Gemma3Config.tensorNames) },
            huggingFace: { LlamaTensorNames.huggingFace(fromGGUF: $0, perLayer: Gemma3Config.tensorNames) },
            // llama.cpp rotates Gemma as NEOX (HF's halves): the converter keeps the rows as they are.
            permutedRows: { _, _ in [:] },
            normWeightOffset: 1),
        summaryLines: { config in
            let local = config.slidingWindowLayers.sorted()
            return ["rope:         theta \(config.ropeTheta) (global layers, scaling \(config.ropeScaling.summary)), \(config.localRopeTheta) (local layers)",
                    "windows:      " + (config.slidingWindow.map { "sliding window of \($0) keys on \(local.count) of \(config.layerCount) layers" } ?? "none (every layer global)")
                        + ", scale \(config.attentionMultiplier.map { "\($0)" } ?? "1/√head_dim")",
                    "norm eps:     \(config.normEpsilon), tied embeddings \(config.tieWordEmbeddings), q/k norms per head, norms after attention and MLP, GeGLU"]
        })
}

// MARK: - Config

enum Gemma3Config {
    /// Per-layer HF ↔ GGUF module names (llama.cpp's tensor map for GEMMA3). Gemma's post_attention_layernorm is the
    /// attention's output norm, not the MLP's input norm as in Llama.
    static let tensorNames: [(hf: String, gguf: String)] = [
        ("input_layernorm", "attn_norm"), ("self_attn.q_proj", "attn_q"), ("self_attn.k_proj", "attn_k"),
        ("self_attn.v_proj", "attn_v"), ("self_attn.o_proj", "attn_output"), ("self_attn.q_norm", "attn_q_norm"),
        ("self_attn.k_norm", "attn_k_norm"), ("post_attention_layernorm", "post_attention_norm"),
        ("pre_feedforward_layernorm", "ffn_norm"), ("mlp.gate_proj", "ffn_gate"), ("mlp.up_proj", "ffn_up"),
        ("mlp.down_proj", "ffn_down"), ("post_feedforward_layernorm", "post_ffw_norm"),
    ]

    /// transformers' and llama.cpp's default: every sixth layer is global, the five before it local.
    static let defaultSlidingWindowPattern = 6

    /// The settings every Gemma 3 has, whatever the file.
    private static func applyGemmaBlock(_ config: inout ModelConfig) {
        applyGemmaBlock(&config, modelType: "gemma3_text")
        config.queryKeyNorm = true
    }

    /// What Gemma 2 and 3 share: GeGLU, norms after each half, embeddings × √hidden.
    static func applyGemmaBlock(_ config: inout ModelConfig, modelType: String) {
        config.modelType = modelType
        config.hiddenActivation = "gelu_pytorch_tanh"
        config.sandwichNorms = true
        config.embeddingMultiplier = Float(Double(config.hiddenSize).squareRoot())
    }

    /// config.json settings Gemma 2 and 3 share: the activation, norms of 1 + w, a tied output unless the config
    /// says otherwise, the attention scale query_pre_attn_scalar^-1/2; EmbeddingGemma's bidirectional attention
    /// refused.
    static func readGemmaSettings(_ json: JSONConfig, into config: inout ModelConfig) throws {
        let path = json.path
        config.normWeightOffset = 1
        config.tieWordEmbeddings = try json.bool("tie_word_embeddings", default: true)
        let activation = json.string("hidden_activation") ?? json.string("hidden_act") ?? "gelu_pytorch_tanh"
        guard activation == "gelu_pytorch_tanh" else {
            throw HoneError.invalidConfig(path: path, message: "hidden_activation '\(activation)' is not supported (gelu_pytorch_tanh is)")
        }
        guard try !json.bool("use_bidirectional_attention", default: false) else {
            throw HoneError.invalidConfig(path: path, message: "use_bidirectional_attention (EmbeddingGemma) is not supported")
        }
        let scalar = try json.double("query_pre_attn_scalar", default: 256)
        guard scalar.isFinite, scalar > 0 else {
            throw HoneError.invalidConfig(path: path, message: "query_pre_attn_scalar must be positive, not \(scalar)")
        }
        config.attentionMultiplier = Float(1 / scalar.squareRoot())
    }

    static func configFromHuggingFace(_ json: JSONConfig, modelType: String) throws -> ModelConfig {
        let path = json.path
        var config = try LlamaConfig.configFromHuggingFace(json, modelType: modelType, gatedSiLU: false)
        applyGemmaBlock(&config)
        try readGemmaSettings(json, into: &config)
        for key in ["final_logit_softcapping", "attn_logit_softcapping"] where json.has(key) && !(json.values[key] is NSNull) {
            throw HoneError.invalidConfig(path: path, message: "\(key) is not supported on Gemma 3 (Gemma 2 has it)")
        }

        // Rope: transformers 5 keeps one set of parameters per layer type; config.json files from transformers 4
        // have rope_theta (global), rope_local_base_freq and rope_scaling (global only).
        if try !LlamaConfig.readRopePerLayerType(json, into: &config, globalTheta: 1_000_000, localTheta: 10000) {
            config.ropeTheta = try json.double("rope_theta", default: 1_000_000)
            config.localRopeTheta = try json.double("rope_local_base_freq", default: 10000)
        }
        guard config.localRopeTheta.isFinite, config.localRopeTheta > 0 else {
            throw HoneError.invalidConfig(path: path, message: "the local rope base \(config.localRopeTheta) must be positive")
        }

        if let (window, local) = try slidingLayers(json, layerCount: config.layerCount,
                                                   defaultPattern: defaultSlidingWindowPattern, defaultWindow: 4096) {
            (config.slidingWindow, config.slidingWindowLayers) = (window, local)
        }
        return config
    }

    /// Which layers are local and their window, from config.json: layer_types, else sliding_window_pattern (every
    /// pattern-th layer global); nil when no layer is local. Shared with Gemma 2.
    static func slidingLayers(_ json: JSONConfig, layerCount: Int, defaultPattern: Int,
                              defaultWindow: Int) throws -> (window: Int, layers: Set<Int>)? {
        let path = json.path
        let window = try json.int("sliding_window", default: defaultWindow)
        var local: Set<Int>
        if let types = json.values["layer_types"] as? [Any] {
            let names = types.compactMap { $0 as? String }
            guard names.count == layerCount, names.allSatisfy({ $0 == "sliding_attention" || $0 == "full_attention" }) else {
                throw HoneError.invalidConfig(path: path, message: "layer_types must name sliding_attention or full_attention for each of the \(layerCount) layers")
            }
            local = Set(names.indices.filter { names[$0] == "sliding_attention" })
        } else {
            let pattern = try json.int("sliding_window_pattern", default: defaultPattern)
            guard pattern > 0 else { throw HoneError.invalidConfig(path: path, message: "sliding_window_pattern must be positive") }
            local = Set((0..<layerCount).filter { ($0 + 1) % pattern != 0 })
        }
        guard !local.isEmpty else { return nil }
        guard window > 0 else { throw HoneError.invalidConfig(path: path, message: "sliding_window must be positive, not \(window)") }
        return (window, local)
    }

    /// The GGUF's local layers: attention.sliding_window_pattern as a list of flags or a pattern (every n-th layer
    /// global, llama.cpp's default given), as llama.cpp reads it. Shared with Gemma 2.
    static func slidingLayers(_ gguf: GGUFFile, architecture: String, layerCount: Int, defaultPattern: Int) throws -> Set<Int> {
        let key = "\(architecture).attention.sliding_window_pattern"
        if let flags = gguf.metadata[key]?.arrayValue {
            guard flags.count >= layerCount else {
                throw HoneError.invalidConfig(path: gguf.path, message: "\(key) has \(flags.count) entries for \(layerCount) layers")
            }
            return Set((0..<layerCount).filter { layer in
                if case .bool(let isLocal) = flags[layer] { return isLocal }
                return (flags[layer].intValue ?? 0) != 0
            })
        }
        let pattern = gguf.integer(key) ?? defaultPattern
        return Set((0..<layerCount).filter { pattern == 0 || $0 % pattern < pattern - 1 })
    }

    /// GGUF files do not store query_pre_attn_scalar: llama.cpp scales by 1/√head_dim, and for the 27B (62
    /// layers) by 1/√(hidden / heads), which is what that model's scalar (168) gives.
    static func llamaCppAttentionScale(_ config: ModelConfig) -> Float {
        let perHead = config.layerCount == 62 ? config.hiddenSize / config.headCount : config.headDimension
        return 1 / Float(perHead).squareRoot()
    }

    static func configFromGGUF(_ gguf: GGUFFile, architecture: String) throws -> ModelConfig {
        var config = try LlamaConfig.configFromGGUF(gguf, architecture: architecture)
        applyGemmaBlock(&config)
        guard config.queryKeyNorm, gguf.tensorInfos.contains(where: { $0.name == "blk.0.attn_q_norm.weight" }) else {
            throw HoneError.missingTensor(name: "blk.0.attn_q_norm.weight", path: gguf.path)
        }
        if let cap = gguf.double("\(architecture).final_logit_softcapping"), cap != 0 {
            throw HoneError.invalidConfig(path: gguf.path, message: "\(architecture).final_logit_softcapping \(cap) is not supported")
        }
        config.attentionMultiplier = llamaCppAttentionScale(config)
        config.localRopeTheta = gguf.double("\(architecture).rope.freq_base_swa") ?? 10000
        // A window of 0 or none: every layer global. The layers: a per-layer list of flags or a pattern (every
        // n-th layer global), as llama.cpp reads sliding_window_pattern.
        let window = gguf.integer("\(architecture).attention.sliding_window") ?? 0
        if window > 0 {
            config.slidingWindow = window
            config.slidingWindowLayers = try slidingLayers(gguf, architecture: architecture, layerCount: config.layerCount,
                                                           defaultPattern: defaultSlidingWindowPattern)
        }
        return config
    }
}
