import Foundation

// MARK: - Registry entry

extension ModelArchitecture {
    /// LG's EXAONE 4.0 (`exaone4`: 1.2B, 32B; GGUF `exaone4`): OLMo 2's block (norms on each half's output only)
    /// with Qwen3's per-head q/k norms; with a sliding window, three layers in four attend within it and rotate as
    /// usual (rope scaling included) while every fourth attends to everything without rotary positions. llama.cpp
    /// runs the window for the 64-layer 32B only (the others as all-global, all-rotated), and Hone reads its GGUFs
    /// the same way. It runs on `LlamaModel`.
    public static let exaone4 = ModelArchitecture(
        name: "exaone4",
        huggingFaceModelTypes: ["exaone4": "Exaone4ForCausalLM"],
        ggufArchitectures: ["exaone4"],
        configFromHuggingFace: { json, modelType in try EXAONE4Config.configFromHuggingFace(json, modelType: modelType) },
        configFromGGUF: { gguf, architecture in try EXAONE4Config.configFromGGUF(gguf, architecture: architecture) },
        build: { config, weights in try LlamaModel(config: config, weights: weights) },
        adaptableModules: ModelArchitecture.llama.adaptableModules,
        ggufNames: GGUFTensorNames(
            architecture: { _ in "exaone4" },
            gguf: { LlamaTensorNames.gguf(fromHuggingFace: $0, perLayer: EXAONE4Config.tensorNames) },
            huggingFace: { LlamaTensorNames.huggingFace(fromGGUF: $0, perLayer: EXAONE4Config.tensorNames) },
            permutedRows: { _, _ in [:] }),  // NEOX rotation in llama.cpp: HF's row order kept
        summaryLines: { config in
            let local = config.slidingWindowLayers.sorted()
            return ["rope:         theta \(config.ropeTheta), scaling \(config.ropeScaling.summary)"
                        + (config.layersWithoutRotation.isEmpty ? "" : "; none on the \(config.layersWithoutRotation.count) global layers"),
                    "windows:      " + (config.slidingWindow.map { "sliding window of \($0) keys on \(local.count) of \(config.layerCount) layers" } ?? "none (every layer global)"),
                    "norm eps:     \(config.normEpsilon), tied embeddings \(config.tieWordEmbeddings), q/k norms per head, norms after attention and MLP only"]
        })
}

// MARK: - Config

enum EXAONE4Config {
    /// OLMo 2's names (llama.cpp's tensor map for EXAONE4 is the same: no input norms, q/k norms, post norms).
    static let tensorNames = OLMo2Config.tensorNames

    /// transformers' and llama.cpp's default: every fourth layer global.
    static let defaultSlidingWindowPattern = 4

    /// llama.cpp's exaone4 runs sliding windows for a model of this many layers only (EXAONE-4.0-32B).
    static let llamaCppWindowedLayerCount = 64

    static func applyBlock(_ config: inout ModelConfig) {
        config.queryKeyNorm = true
        config.sandwichNorms = true
        config.inputNorms = false
        config.localLayersOwnRope = false
    }

    /// The local layers window `window`; the others attend to every key without rotary positions.
    static func setLayers(_ config: inout ModelConfig, window: Int, local: Set<Int>) {
        config.slidingWindow = window
        config.slidingWindowLayers = local
        config.layersWithoutRotation = Set(0..<config.layerCount).subtracting(local)
    }

    static func configFromHuggingFace(_ json: JSONConfig, modelType: String) throws -> ModelConfig {
        let path = json.path
        var config = try LlamaConfig.configFromHuggingFace(json, modelType: modelType)
        applyBlock(&config)
        // sliding_window null: every layer global and rotated. Otherwise the local layers from layer_types, else
        // from sliding_window_pattern: a period (every n-th layer global) or a string such as "LLLG".
        guard json.values["sliding_window"] != nil, !(json.values["sliding_window"] is NSNull) else { return config }
        let window = try json.int("sliding_window")
        guard window > 0 else { throw HoneError.invalidConfig(path: path, message: "sliding_window must be positive, not \(window)") }
        let local: Set<Int>
        if json.values["layer_types"] != nil {
            local = try Gemma3Config.slidingLayers(json, layerCount: config.layerCount, defaultPattern: defaultSlidingWindowPattern,
                                                   defaultWindow: window)?.layers ?? []
        } else if let pattern = json.string("sliding_window_pattern") {
            guard !pattern.isEmpty, pattern.allSatisfy({ $0 == "L" || $0 == "G" }) else {
                throw HoneError.invalidConfig(path: path, message: "sliding_window_pattern '\(pattern)' must be a string of L and G")
            }
            let letters = Array(pattern)
            local = Set((0..<config.layerCount).filter { letters[$0 % letters.count] == "L" })
        } else {
            let period = try json.int("sliding_window_pattern", default: defaultSlidingWindowPattern)
            guard period > 0 else { throw HoneError.invalidConfig(path: path, message: "sliding_window_pattern must be positive") }
            local = Set((0..<config.layerCount).filter { ($0 + 1) % period != 0 })
        }
        setLayers(&config, window: window, local: local)
        return config
    }

    static func configFromGGUF(_ gguf: GGUFFile, architecture: String) throws -> ModelConfig {
        var config = try LlamaConfig.configFromGGUF(gguf, architecture: architecture)
        applyBlock(&config)
        guard config.queryKeyNorm else { throw HoneError.missingTensor(name: "blk.0.attn_q_norm.weight", path: gguf.path) }
        if config.layerCount == llamaCppWindowedLayerCount {
            let window = gguf.integer("\(architecture).attention.sliding_window") ?? 4096
            let local = try Gemma3Config.slidingLayers(gguf, architecture: architecture, layerCount: config.layerCount,
                                                       defaultPattern: defaultSlidingWindowPattern)
            setLayers(&config, window: window, local: local)
        }
        return config
    }
}
