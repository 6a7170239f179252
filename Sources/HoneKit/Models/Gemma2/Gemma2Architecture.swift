import Foundation

// MARK: - Registry entry

extension ModelArchitecture {
    /// Google's Gemma 2 (`gemma2`, GGUF `gemma2`: 2B, 9B, 27B): Gemma 3's block without the per-head q/k norms,
    /// with every other layer local (a sliding window, the same rope), and soft caps on the attention scores and
    /// the logits (c·tanh(x/c)). It runs on `LlamaModel`.
    public static let gemma2 = ModelArchitecture(
        name: "gemma2",
        huggingFaceModelTypes: ["gemma2": "Gemma2ForCausalLM"],
        ggufArchitectures: ["gemma2"],
        configFromHuggingFace: { json, modelType in try Gemma2Config.configFromHuggingFace(json, modelType: modelType) },
        configFromGGUF: { gguf, architecture in try Gemma2Config.configFromGGUF(gguf, architecture: architecture) },
        build: { config, weights in try LlamaModel(config: config, weights: weights) },
        adaptableModules: ModelArchitecture.llama.adaptableModules,
        ggufNames: GGUFTensorNames(
            architecture: { _ in "gemma2" },
            gguf: { LlamaTensorNames.gguf(fromHuggingFace: $0, perLayer: Gemma2Config.tensorNames) },
            huggingFace: { LlamaTensorNames.huggingFace(fromGGUF: $0, perLayer: Gemma2Config.tensorNames) },
            permutedRows: { _, _ in [:] },
            normWeightOffset: 1),
        summaryLines: { config in
            let local = config.slidingWindowLayers.sorted()
            return ["rope:         theta \(config.ropeTheta)",
                    "windows:      " + (config.slidingWindow.map { "sliding window of \($0) keys on \(local.count) of \(config.layerCount) layers" } ?? "none (every layer global)")
                        + ", scale \(config.attentionMultiplier.map { "\($0)" } ?? "1/√head_dim")",
                    "soft caps:    attention \(config.attentionLogitSoftcap.map { "\($0)" } ?? "none"), logits \(config.finalLogitSoftcap.map { "\($0)" } ?? "none")",
                    "norm eps:     \(config.normEpsilon), tied embeddings \(config.tieWordEmbeddings), norms after attention and MLP, GeGLU"]
        })
}

// MARK: - Config

enum Gemma2Config {
    /// Per-layer HF ↔ GGUF module names (llama.cpp's tensor map for GEMMA2): Gemma 3's without the q/k norms.
    static let tensorNames = Gemma3Config.tensorNames.filter { !["self_attn.q_norm", "self_attn.k_norm"].contains($0.hf) }

    /// transformers' and llama.cpp's default: layers 0, 2, 4, ... local.
    static let defaultSlidingWindowPattern = 2

    static func configFromHuggingFace(_ json: JSONConfig, modelType: String) throws -> ModelConfig {
        let path = json.path
        var config = try LlamaConfig.configFromHuggingFace(json, modelType: modelType, gatedSiLU: false)
        Gemma3Config.applyGemmaBlock(&config, modelType: "gemma2")
        try Gemma3Config.readGemmaSettings(json, into: &config)
        guard config.ropeScaling == .none else {
            throw HoneError.invalidConfig(path: path, message: "rope scaling is not supported on Gemma 2")
        }
        config.localRopeTheta = config.ropeTheta  // one rotary embedding for both kinds of layer
        // transformers' defaults: 50 and 30; null switches a cap off.
        func cap(_ key: String, _ fallback: Double) throws -> Float? {
            if json.values[key] is NSNull { return nil }
            let value = try json.double(key, default: fallback)
            guard value.isFinite, value >= 0 else {
                throw HoneError.invalidConfig(path: path, message: "\(key) must be positive, not \(value)")
            }
            return value == 0 ? nil : Float(value)
        }
        config.attentionLogitSoftcap = try cap("attn_logit_softcapping", 50)
        config.finalLogitSoftcap = try cap("final_logit_softcapping", 30)
        if let (window, local) = try Gemma3Config.slidingLayers(json, layerCount: config.layerCount,
                                                                defaultPattern: defaultSlidingWindowPattern, defaultWindow: 4096) {
            (config.slidingWindow, config.slidingWindowLayers) = (window, local)
        }
        return config
    }

    static func configFromGGUF(_ gguf: GGUFFile, architecture: String) throws -> ModelConfig {
        var config = try LlamaConfig.configFromGGUF(gguf, architecture: architecture)
        Gemma3Config.applyGemmaBlock(&config, modelType: "gemma2")
        config.queryKeyNorm = false
        // llama.cpp always ties the output to the embedding for Gemma 2, whatever output.weight the file has.
        config.tieWordEmbeddings = true
        config.attentionMultiplier = llamaCppAttentionScale(config)
        config.localRopeTheta = gguf.double("\(architecture).rope.freq_base_swa") ?? config.ropeTheta
        // llama.cpp's defaults when the keys are absent: 50, 30, and a window of 4,096.
        let attentionCap = gguf.double("\(architecture).attn_logit_softcapping") ?? 50
        let finalCap = gguf.double("\(architecture).final_logit_softcapping") ?? 30
        config.attentionLogitSoftcap = attentionCap > 0 ? Float(attentionCap) : nil
        config.finalLogitSoftcap = finalCap > 0 ? Float(finalCap) : nil
        let window = gguf.integer("\(architecture).attention.sliding_window") ?? 4096
        if window > 0 {
            config.slidingWindow = window
            config.slidingWindowLayers = try Gemma3Config.slidingLayers(gguf, architecture: architecture,
                                                                        layerCount: config.layerCount,
                                                                        defaultPattern: defaultSlidingWindowPattern)
        }
        return config
    }

    /// llama.cpp scales by 1/√head_dim, and for the 27B (46 layers) by 1/√(hidden / heads) (its
    /// query_pre_attn_scalar, 144).
    static func llamaCppAttentionScale(_ config: ModelConfig) -> Float {
        let perHead = config.layerCount == 46 ? config.hiddenSize / config.headCount : config.headDimension
        return 1 / Float(perHead).squareRoot()
    }
}
