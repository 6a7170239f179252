import Foundation

// MARK: - Registry entry

extension ModelArchitecture {
    /// Microsoft's Phi-3, Phi-3.5 and Phi-4-mini (`phi3`): Llama's block with q, k and v in one matrix (`qkv_proj`)
    /// and gate and up in one (`gate_up_proj`), LongRoPE on the long-context models, a partial rotation on
    /// Phi-4-mini. It runs on `LlamaModel`, whose blocks take fused projections. The sliding window Phi-3-mini's
    /// config declares is not applied, as llama.cpp does not apply it either (the two agree up to 2,047 tokens).
    public static let phi3 = ModelArchitecture(
        name: "phi3",
        huggingFaceModelTypes: ["phi3": "Phi3ForCausalLM"],
        ggufArchitectures: ["phi3"],
        configFromHuggingFace: { json, modelType in try Phi3Config.configFromHuggingFace(json, modelType: modelType) },
        configFromGGUF: { gguf, architecture in try Phi3Config.configFromGGUF(gguf, architecture: architecture) },
        build: { config, weights in try LlamaModel(config: config, weights: weights) },
        adaptableModules: AdaptableModules(
            names: ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"],
            // Llama's names (the recipes' defaults are written with them) map onto the fused modules: the default
            // [q_proj,v_proj] adapts qkv_proj.
            shortNames: ["qkv": "qkv_proj", "o": "o_proj", "gate_up": "gate_up_proj", "down": "down_proj",
                         "q": "qkv_proj", "k": "qkv_proj", "v": "qkv_proj", "gate": "gate_up_proj", "up": "gate_up_proj",
                         "q_proj": "qkv_proj", "k_proj": "qkv_proj", "v_proj": "qkv_proj",
                         "gate_proj": "gate_up_proj", "up_proj": "gate_up_proj"],
            path: { layer, name in
                let group = ["gate_up_proj", "down_proj"].contains(name) ? "mlp" : "self_attn"
                return "model.layers.\(layer).\(group).\(name)"
            }),
        ggufNames: GGUFTensorNames(
            architecture: { _ in "phi3" },
            gguf: { LlamaTensorNames.gguf(fromHuggingFace: $0, perLayer: Phi3Config.tensorNames) },
            huggingFace: { LlamaTensorNames.huggingFace(fromGGUF: $0, perLayer: Phi3Config.tensorNames) },
            // llama.cpp rotates Phi-3 as NEOX (HF's halves): the converter keeps the rows as they are.
            permutedRows: { _, _ in [:] }),
        summaryLines: { config in
            ["rope:         theta \(config.ropeTheta), \(config.rotaryDimension) of \(config.headDimension) features per head, scaling \(config.ropeScaling.summary)",
             "norm eps:     \(config.normEpsilon), tied embeddings \(config.tieWordEmbeddings), q/k/v and gate/up fused"
                + (config.declaredSlidingWindow.map { ", sliding window \($0) declared (not applied, as in llama.cpp)" } ?? "")]
        })
}

// MARK: - Config

enum Phi3Config {
    /// Per-layer HF ↔ GGUF module names (llama.cpp's tensor map for PHI3).
    static let tensorNames: [(hf: String, gguf: String)] = [
        ("input_layernorm", "attn_norm"), ("self_attn.qkv_proj", "attn_qkv"), ("self_attn.o_proj", "attn_output"),
        ("post_attention_layernorm", "ffn_norm"), ("mlp.gate_up_proj", "ffn_up"), ("mlp.down_proj", "ffn_down"),
    ]

    /// LongRoPE's per-frequency factors in llama.cpp's files (F32, one per rotated pair).
    static let longFactorsTensor = "rope_factors_long.weight"
    static let shortFactorsTensor = "rope_factors_short.weight"

    static func configFromHuggingFace(_ json: JSONConfig, modelType: String) throws -> ModelConfig {
        var config = try LlamaConfig.configFromHuggingFace(json, modelType: modelType)
        config.fusedProjections = true
        let window = try json.int("sliding_window", default: 0)
        config.declaredSlidingWindow = window > 0 ? window : nil
        return config
    }

    static func configFromGGUF(_ gguf: GGUFFile, architecture: String) throws -> ModelConfig {
        var config = try LlamaConfig.configFromGGUF(gguf, architecture: architecture)
        config.fusedProjections = true
        config.queryKeyValueBias = gguf.tensorInfos.contains { $0.name == "blk.0.attn_qkv.bias" }
        // The converter writes 0 where the config has no window (Phi-4-mini).
        let window = gguf.integer("\(architecture).attention.sliding_window") ?? 0
        config.declaredSlidingWindow = window > 0 ? window : nil
        func factors(_ name: String) throws -> [Double]? {
            guard let info = gguf.tensorInfos.first(where: { $0.name == name }) else { return nil }
            return try gguf.tensorView(info).floats().map(Double.init)
        }
        switch (try factors(longFactorsTensor), try factors(shortFactorsTensor)) {
        case (nil, nil):
            break
        case (let long?, let short?):
            config.ropeScaling = .longRoPE(
                shortFactors: short, longFactors: long,
                originalContext: gguf.integer("\(architecture).rope.scaling.original_context_length") ?? config.maxPositionEmbeddings,
                attentionFactor: gguf.double("\(architecture).rope.scaling.attn_factor") ?? 1)
        default:
            throw HoneError.invalidConfig(path: gguf.path, message: "LongRoPE needs both \(longFactorsTensor) and \(shortFactorsTensor)")
        }
        return config
    }
}
