import Foundation

// MARK: - Registry entry

extension ModelArchitecture {
    /// AI2's OLMo 2 (`olmo2`: 1B, 7B, 13B, 32B) and OLMo 3 (`olmo3`: 7B, 32B), fully open models whose post-training
    /// (Tülu 3: SFT, DPO, RLVR) is itself a subject of alignment research. Llama's attention and SwiGLU MLP, but
    /// the block norms each half's output instead of its input (x + norm(attention(x)), then h + norm(mlp(h))), and
    /// one RMSNorm spans all heads' queries (and one all keys) before the rotation. OLMo 3 adds sliding-window
    /// layers: three in every four, rotated unscaled. llama.cpp reads both as GGUF `olmo2`. It runs on `LlamaModel`.
    public static let olmo2 = ModelArchitecture(
        name: "olmo2",
        huggingFaceModelTypes: ["olmo2": "Olmo2ForCausalLM", "olmo3": "Olmo3ForCausalLM"],
        ggufArchitectures: ["olmo2"],
        configFromHuggingFace: { json, modelType in try OLMo2Config.configFromHuggingFace(json, modelType: modelType) },
        configFromGGUF: { gguf, architecture in try OLMo2Config.configFromGGUF(gguf, architecture: architecture) },
        build: { config, weights in try LlamaModel(config: config, weights: weights) },
        adaptableModules: ModelArchitecture.llama.adaptableModules,
        ggufNames: GGUFTensorNames(
            architecture: { _ in "olmo2" },
            gguf: { LlamaTensorNames.gguf(fromHuggingFace: $0, perLayer: OLMo2Config.tensorNames) },
            huggingFace: { LlamaTensorNames.huggingFace(fromGGUF: $0, perLayer: OLMo2Config.tensorNames) },
            // llama.cpp rotates OLMo as NEOX (HF's halves): the converter keeps the rows as they are.
            permutedRows: { _, _ in [:] }),
        summaryLines: { config in
            let local = config.slidingWindowLayers.sorted()
            return ["rope:         theta \(config.ropeTheta), scaling \(config.ropeScaling.summary)"
                        + (local.isEmpty ? "" : "; sliding layers unscaled"),
                    "windows:      " + (config.slidingWindow.map { "sliding window of \($0) keys on \(local.count) of \(config.layerCount) layers" } ?? "none (every layer global)"),
                    "norm eps:     \(config.normEpsilon), tied embeddings \(config.tieWordEmbeddings), q/k norms across the heads, norms after attention and MLP only"]
        })
}

// MARK: - Config

enum OLMo2Config {
    /// Per-layer HF ↔ GGUF module names (llama.cpp's tensor map for OLMO2): no input norms; post_attention_layernorm
    /// is the attention's output norm, as in Gemma.
    static let tensorNames: [(hf: String, gguf: String)] = [
        ("self_attn.q_proj", "attn_q"), ("self_attn.k_proj", "attn_k"), ("self_attn.v_proj", "attn_v"),
        ("self_attn.o_proj", "attn_output"), ("self_attn.q_norm", "attn_q_norm"), ("self_attn.k_norm", "attn_k_norm"),
        ("post_attention_layernorm", "post_attention_norm"), ("mlp.gate_proj", "ffn_gate"), ("mlp.up_proj", "ffn_up"),
        ("mlp.down_proj", "ffn_down"), ("post_feedforward_layernorm", "post_ffw_norm"),
    ]

    /// transformers' and llama.cpp's default for OLMo 3: every fourth layer global, the three before it local.
    static let defaultSlidingWindowPattern = 4

    /// What every OLMo 2 and 3 block is.
    static func applyBlock(_ config: inout ModelConfig) {
        config.queryKeyNorm = true
        config.queryKeyNormAcrossHeads = true
        config.sandwichNorms = true
        config.inputNorms = false
    }

    static func configFromHuggingFace(_ json: JSONConfig, modelType: String) throws -> ModelConfig {
        let path = json.path
        var config = try LlamaConfig.configFromHuggingFace(json, modelType: modelType)
        applyBlock(&config)
        guard json.values["clip_qkv"] == nil || json.values["clip_qkv"] is NSNull else {
            throw HoneError.invalidConfig(path: path, message: "clip_qkv is not supported")
        }
        guard modelType == "olmo3" else { return config }
        // OLMo 3: transformers 5 keeps one set of rope parameters per layer type; the Hub's config.json files have
        // rope_theta and rope_scaling, which transformers applies to the full-attention layers only.
        if try !LlamaConfig.readRopePerLayerType(json, into: &config, globalTheta: 500_000, localTheta: 500_000) {
            config.ropeTheta = try json.double("rope_theta", default: 500_000)
            config.localRopeTheta = config.ropeTheta
        }
        if let (window, local) = try Gemma3Config.slidingLayers(json, layerCount: config.layerCount,
                                                                defaultPattern: defaultSlidingWindowPattern, defaultWindow: 4096) {
            (config.slidingWindow, config.slidingWindowLayers) = (window, local)
        }
        return config
    }

    static func configFromGGUF(_ gguf: GGUFFile, architecture: String) throws -> ModelConfig {
        var config = try LlamaConfig.configFromGGUF(gguf, architecture: architecture)
        applyBlock(&config)
        for name in ["blk.0.attn_q_norm.weight", "blk.0.post_attention_norm.weight"]
        where !gguf.tensorInfos.contains(where: { $0.name == name }) {
            throw HoneError.missingTensor(name: name, path: gguf.path)
        }
        // A window: OLMo 3 (transformers' olmo3); its local layers as listed, else llama.cpp's default pattern.
        let window = gguf.integer("\(architecture).attention.sliding_window") ?? 0
        if window > 0 {
            config.modelType = "olmo3"
            config.slidingWindow = window
            config.slidingWindowLayers = try Gemma3Config.slidingLayers(gguf, architecture: architecture,
                                                                        layerCount: config.layerCount,
                                                                        defaultPattern: defaultSlidingWindowPattern)
            // llama.cpp's olmo2 rotates the sliding layers with the global base (rope.freq_base_swa is not used
            // there), unscaled.
            config.localRopeTheta = config.ropeTheta
        }
        return config
    }
}
