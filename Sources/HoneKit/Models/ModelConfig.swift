import Foundation

/// How rotary frequencies are rescaled (HF `rope_scaling` / `rope_parameters`).
public enum RopeScaling: Sendable, Equatable {
    case none
    /// Positions divided by `factor` (inv_freq / factor).
    case linear(factor: Double)
    /// NTK-aware base growth once a forward pass reaches beyond `max_position_embeddings`.
    case dynamic(factor: Double)
    /// Llama 3.1's frequency-band rescaling.
    case llama3(factor: Double, lowFrequencyFactor: Double, highFrequencyFactor: Double, originalContext: Int)

    public var summary: String {
        switch self {
        case .none: return "none"
        case .linear(let factor): return "linear ×\(factor)"
        case .dynamic(let factor): return "dynamic ×\(factor)"
        case .llama3(let factor, let low, let high, let original):
            return "llama3 ×\(factor) (low \(low), high \(high), original \(original))"
        }
    }
}

/// The hyper-parameters of a model, in Hugging Face's terms, read from `config.json` or GGUF metadata.
/// One struct serves every architecture; fields an architecture does not use keep their defaults.
public struct ModelConfig: Sendable {
    /// `model_type` (HF) or `general.architecture` (GGUF): "llama", "mistral", "qwen2", "opt".
    public var modelType: String
    public var vocabularySize: Int
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var layerCount: Int
    public var headCount: Int
    public var keyValueHeadCount: Int
    public var headDimension: Int
    public var maxPositionEmbeddings: Int
    public var normEpsilon: Float
    public var tieWordEmbeddings: Bool

    // Llama family
    public var ropeTheta: Double = 10000
    public var ropeScaling: RopeScaling = .none
    /// Features per head that are rotated (head_dim × partial_rotary_factor).
    public var rotaryDimension: Int = 0
    /// GGML's "normal" rope on adjacent pairs: GGUF Llama files store Q/K rows permuted for it.
    public var ropeInterleaved = false
    /// Per-frequency divisors from a GGUF `rope_freqs.weight` tensor (Llama 3 scaling as llama.cpp stores it).
    public var ropeFrequencyFactors: [Float]? = nil
    /// Biases on q, k, v projections (Qwen2, `attention_bias`).
    public var queryKeyValueBias = false
    /// Bias on o_proj (`attention_bias` in Llama; never in Qwen2).
    public var outputBias = false
    public var mlpBias = false
    public var hiddenActivation = "silu"

    // OPT
    public var wordEmbedProjectionDimension: Int = 0
    public var layerNormBefore = true
    public var enableBias = true
    public var layerNormElementwiseAffine = true
    public var removeFinalLayerNorm = false

    // Tokens
    public var bosTokenID: Int? = nil
    public var eosTokenIDs: [Int] = []
    public var padTokenID: Int? = nil
    /// The dtype the config names ("float32", "bfloat16", ...), for display only.
    public var declaredDType: String? = nil

    public init(modelType: String, vocabularySize: Int, hiddenSize: Int, intermediateSize: Int, layerCount: Int,
                headCount: Int, keyValueHeadCount: Int, headDimension: Int, maxPositionEmbeddings: Int,
                normEpsilon: Float, tieWordEmbeddings: Bool) {
        self.modelType = modelType
        self.vocabularySize = vocabularySize
        self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize
        self.layerCount = layerCount
        self.headCount = headCount
        self.keyValueHeadCount = keyValueHeadCount
        self.headDimension = headDimension
        self.maxPositionEmbeddings = maxPositionEmbeddings
        self.normEpsilon = normEpsilon
        self.tieWordEmbeddings = tieWordEmbeddings
        rotaryDimension = headDimension
    }
}

// MARK: - config.json

/// Typed access to a JSON object with errors that name the file and key.
struct JSONConfig {
    let values: [String: Any]
    let path: String

    init(path: String) throws {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw HoneError.fileNotFound(path: path)
        }
        let object: Any
        do {
            object = try parseJSON(data)
        } catch {
            throw HoneError.malformedFile(path: path, message: "not valid JSON (truncated or corrupt)")
        }
        guard let dictionary = object as? [String: Any] else {
            throw HoneError.malformedFile(path: path, message: "expected a JSON object")
        }
        self.init(values: dictionary, path: path)
    }

    init(values: [String: Any], path: String) {
        self.values = values
        self.path = path
    }

    func has(_ key: String) -> Bool { values[key] != nil && !(values[key] is NSNull) }

    func int(_ key: String) throws -> Int {
        guard let value = values[key], !(value is NSNull) else { throw HoneError.missingConfigKey(path: path, key: key) }
        guard let integer = jsonInteger(value) else {
            throw HoneError.invalidConfig(path: path, message: "'\(key)' must be an integer")
        }
        return integer
    }

    func int(_ key: String, default fallback: Int) throws -> Int { has(key) ? try int(key) : fallback }

    func double(_ key: String) throws -> Double {
        guard let value = values[key], !(value is NSNull) else { throw HoneError.missingConfigKey(path: path, key: key) }
        guard let number = jsonDouble(value) else {
            throw HoneError.invalidConfig(path: path, message: "'\(key)' must be a number")
        }
        return number
    }

    func double(_ key: String, default fallback: Double) throws -> Double { has(key) ? try double(key) : fallback }

    func bool(_ key: String, default fallback: Bool) throws -> Bool {
        guard has(key) else { return fallback }
        guard let value = values[key] as? Bool else {
            throw HoneError.invalidConfig(path: path, message: "'\(key)' must be true or false")
        }
        return value
    }

    func string(_ key: String) -> String? { values[key] as? String }

    func object(_ key: String) -> JSONConfig? {
        (values[key] as? [String: Any]).map { JSONConfig(values: $0, path: "\(path) \(key)") }
    }

    /// An id or a list of ids (`eos_token_id` may be either).
    func ids(_ key: String) -> [Int] {
        if let value = values[key], let id = jsonInteger(value) { return [id] }
        if let list = values[key] as? [Any] { return list.compactMap(jsonInteger) }
        return []
    }
}

extension ModelConfig {
    /// Reads an HF `config.json` (transformers 4 `rope_theta`/`rope_scaling` or 5 `rope_parameters`).
    static func fromHuggingFace(path: String) throws -> ModelConfig {
        let json = try JSONConfig(path: path)
        guard let modelType = json.string("model_type") else {
            throw HoneError.missingConfigKey(path: path, key: "model_type")
        }
        switch modelType {
        case "llama", "mistral", "qwen2":
            return try llamaFamily(json, modelType: modelType)
        case "opt":
            return try opt(json)
        default:
            throw HoneError.unsupportedArchitecture(name: modelType, path: path)
        }
    }

    private static func llamaFamily(_ json: JSONConfig, modelType: String) throws -> ModelConfig {
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
        config.hiddenActivation = json.string("hidden_act") ?? "silu"
        guard config.hiddenActivation == "silu" else {
            throw HoneError.invalidConfig(path: json.path, message: "hidden_act '\(config.hiddenActivation)' is not supported (silu is)")
        }
        if modelType == "qwen2" {
            config.queryKeyValueBias = true
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
        config.rotaryDimension = Int((Double(headDimension) * partial).rounded(.down)) / 2 * 2
        if let scaling = rope ?? json.object("rope_scaling") {
            config.ropeScaling = try ropeScaling(scaling, path: json.path)
        }
        try readTokens(json, into: &config)
        return config
    }

    private static func ropeScaling(_ json: JSONConfig, path: String) throws -> RopeScaling {
        let kind = json.string("rope_type") ?? json.string("type") ?? "default"
        switch kind {
        case "default": return .none
        case "linear": return .linear(factor: try json.double("factor"))
        case "dynamic": return .dynamic(factor: try json.double("factor"))
        case "llama3":
            return .llama3(factor: try json.double("factor"),
                           lowFrequencyFactor: try json.double("low_freq_factor"),
                           highFrequencyFactor: try json.double("high_freq_factor"),
                           originalContext: try json.int("original_max_position_embeddings"))
        default:
            throw HoneError.invalidConfig(path: path, message: "rope scaling type '\(kind)' is not supported (linear, dynamic, llama3 are)")
        }
    }

    private static func opt(_ json: JSONConfig) throws -> ModelConfig {
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
        try readTokens(json, into: &config)
        return config
    }

    private static func readTokens(_ json: JSONConfig, into config: inout ModelConfig) throws {
        config.bosTokenID = json.ids("bos_token_id").first
        config.eosTokenIDs = json.ids("eos_token_id")
        config.padTokenID = json.ids("pad_token_id").first
        config.declaredDType = json.string("dtype") ?? json.string("torch_dtype")
        for (name, value) in [("vocab_size", config.vocabularySize), ("hidden_size", config.hiddenSize),
                              ("num_hidden_layers", config.layerCount), ("intermediate_size", config.intermediateSize)] {
            guard value > 0 else {
                throw HoneError.invalidConfig(path: json.path, message: "'\(name)' must be positive, not \(value)")
            }
        }
    }

    /// `generation_config.json` overrides the EOS ids (it may list several, as Llama 3 does).
    mutating func applyGenerationConfig(path: String) throws {
        guard FileManager.default.fileExists(atPath: path) else { return }
        let json = try JSONConfig(path: path)
        let eos = json.ids("eos_token_id")
        if !eos.isEmpty { eosTokenIDs = eos }
        if let bos = json.ids("bos_token_id").first { bosTokenID = bos }
    }
}

// MARK: - GGUF metadata

extension ModelConfig {
    static func fromGGUF(_ gguf: GGUFFile) throws -> ModelConfig {
        guard let architecture = gguf.architecture else {
            throw HoneError.missingConfigKey(path: gguf.path, key: "general.architecture")
        }
        guard ["llama", "mistral", "qwen2"].contains(architecture) else {
            throw HoneError.unsupportedArchitecture(name: architecture, path: gguf.path)
        }
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
            modelType: architecture == "mistral" ? "mistral" : architecture,
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
        // llama.cpp's converter permutes Llama's Q/K rows for GGML's adjacent-pair rope; Qwen2 keeps HF's layout.
        config.ropeInterleaved = architecture != "qwen2"
        config.queryKeyValueBias = gguf.tensorInfos.contains { $0.name == "blk.0.attn_q.bias" }
        config.outputBias = gguf.tensorInfos.contains { $0.name == "blk.0.attn_output.bias" }
        config.mlpBias = gguf.tensorInfos.contains { $0.name == "blk.0.ffn_up.bias" }
        let scalingType = gguf.string("\(architecture).rope.scaling.type") ?? "none"
        let factor = gguf.double("\(architecture).rope.scaling.factor") ?? 1
        switch scalingType {
        case "none": break
        case "linear": if factor != 1 { config.ropeScaling = .linear(factor: factor) }
        default:
            throw HoneError.invalidConfig(path: gguf.path, message: "rope scaling type '\(scalingType)' is not supported")
        }
        config.bosTokenID = gguf.integer("tokenizer.ggml.bos_token_id")
        config.eosTokenIDs = gguf.integer("tokenizer.ggml.eos_token_id").map { [$0] } ?? []
        config.padTokenID = gguf.integer("tokenizer.ggml.padding_token_id")
        return config
    }
}
