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
    /// Phi-3's LongRoPE: every frequency divided by its own factor, the short list while a sequence reaches no
    /// further than `originalContext` positions and the long list beyond; cos and sin × `attentionFactor`.
    case longRoPE(shortFactors: [Double], longFactors: [Double], originalContext: Int, attentionFactor: Double)
    /// YaRN (Qwen2.5/Qwen3 past their native context): frequencies between `factor`-interpolated and unchanged,
    /// ramped over the dimensions whose rotations in `originalContext` positions lie between `betaSlow` and
    /// `betaFast`; cos and sin × `attentionFactor`.
    case yarn(factor: Double, originalContext: Int, betaFast: Double, betaSlow: Double, attentionFactor: Double)

    public var summary: String {
        switch self {
        case .none: return "none"
        case .linear(let factor): return "linear ×\(factor)"
        case .dynamic(let factor): return "dynamic ×\(factor)"
        case .llama3(let factor, let low, let high, let original):
            return "llama3 ×\(factor) (low \(low), high \(high), original \(original))"
        case .longRoPE(_, _, let original, let attention):
            return "longrope (short factors up to \(original) positions, long beyond; attention factor \(attention))"
        case .yarn(let factor, let original, let fast, let slow, let attention):
            return "yarn ×\(factor) (original \(original), beta fast \(fast), slow \(slow), attention factor \(attention))"
        }
    }
}

/// The hyper-parameters of a model, in Hugging Face's terms, read from `config.json` or GGUF metadata.
/// One struct serves every architecture; fields an architecture does not use keep their defaults.
public struct ModelConfig: Sendable {
    /// `model_type` (HF) or `general.architecture` (GGUF): "llama", "mistral", "qwen2", "qwen3", "smollm3", "granite",
    /// "granitemoe", "mixtral", "qwen2_moe", "qwen3_moe" (GGUF "qwen2moe", "qwen3moe"), "phi3", "gemma", "gemma2",
    /// "gemma3_text" (GGUF "gemma3"), "olmo2", "olmo3" (GGUF "olmo2"), "olmoe", "exaone4", "opt", "gpt_neox".
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
    /// RMSNorm over each head's query and key before the rotation (Qwen3's q_norm / k_norm).
    public var queryKeyNorm = false
    /// With `queryKeyNorm`: one RMSNorm over all heads' queries (and one over all keys) instead of one per head
    /// (OLMo 2's q_norm of width heads × head_dim).
    public var queryKeyNormAcrossHeads = false
    /// Layers whose attention uses no rotary positions (SmolLM3's NoPE layers); empty: every layer rotates.
    public var layersWithoutRotation: Set<Int> = []
    /// Granite's scalars: embeddings × `embeddingMultiplier`, each block's attention and MLP outputs ×
    /// `residualMultiplier` before the residual add, attention scores × `attentionMultiplier` (instead of
    /// 1/√head_dim), logits ÷ `logitsScaling`.
    public var embeddingMultiplier: Float = 1
    public var residualMultiplier: Float = 1
    public var attentionMultiplier: Float? = nil
    public var logitsScaling: Float = 1
    /// Phi-3 stores q, k and v as one matrix (`qkv_proj`: the rows of q, then k, then v) and gate and up as one
    /// (`gate_up_proj`: gate's rows, then up's).
    public var fusedProjections = false
    /// The attention window the config declares (Phi-3's `sliding_window`), shown by `hone info`; attention stays
    /// full, as llama.cpp runs these models.
    public var declaredSlidingWindow: Int? = nil

    // Gemma 3
    /// The keys a query of a sliding-window layer sees, itself included (a query at p sees p - window + 1 ... p).
    public var slidingWindow: Int? = nil
    /// The layers that attend within `slidingWindow` and rotate with `localRopeTheta`, unscaled (Gemma 3's
    /// "sliding_attention" layers: five of every six); the others attend to every earlier key.
    public var slidingWindowLayers: Set<Int> = []
    public var localRopeTheta: Double = 10000
    /// False where the sliding-window layers rotate as the global ones do, scaling included (EXAONE 4, whose
    /// global layers do not rotate at all); true: with `localRopeTheta`, unscaled (Gemma 3, OLMo 3).
    public var localLayersOwnRope = true
    /// Norms on the attention's and the MLP's outputs too, before each residual add (Gemma's
    /// post_attention_layernorm and post_feedforward_layernorm).
    public var sandwichNorms = false
    /// False where a block has no norms on its inputs, only on its halves' outputs (OLMo 2 and 3:
    /// x + norm(attention(x)), then h + norm(mlp(h))).
    public var inputNorms = true
    /// Added to every RMSNorm weight on loading: 1 for Gemma's HF checkpoints, whose norms multiply by 1 + w
    /// (llama.cpp's converter stores 1 + w, so 0 for GGUF files).
    public var normWeightOffset: Float = 0
    /// Gemma 2's soft caps: attention scores become c·tanh(s/c) before the softmax, and the logits
    /// c·tanh(z/c); nil: none.
    public var attentionLogitSoftcap: Float? = nil
    public var finalLogitSoftcap: Float? = nil
    /// The MLP is gelu_tanh(gate) · up (Gemma's GeGLU, hidden_activation gelu_pytorch_tanh), not SwiGLU.
    public var gatedGELU: Bool { hiddenActivation == "gelu_pytorch_tanh" }

    // Mixture of experts (Mixtral, Qwen2-MoE, Qwen3-MoE)
    /// Experts in each block's sparse MLP; 0: a dense MLP.
    public var expertCount = 0
    /// The experts each token goes through (`num_experts_per_tok`).
    public var expertsPerToken = 0
    /// Each expert's intermediate size (Qwen3-MoE's `moe_intermediate_size`; Mixtral's `intermediate_size`).
    public var expertIntermediateSize = 0
    /// The chosen experts' router probabilities are divided by their sum (`norm_topk_prob`; Mixtral always, as
    /// llama.cpp does for every file it runs).
    public var normalizesExpertWeights = true
    /// Qwen2-MoE's shared expert: a SwiGLU MLP of this intermediate size every token goes through, its output × a
    /// sigmoid gate of the input (`shared_expert_intermediate_size`); 0: none.
    public var sharedExpertIntermediateSize = 0
    public var isMixtureOfExperts: Bool { expertCount > 0 }
    /// Adaptable module names this model lacks: a mixture of experts has no gate, up or down projection of its own.
    public var modulesWithoutAdapters: Set<String> { isMixtureOfExperts ? ["gate_proj", "up_proj", "down_proj"] : [] }

    // OPT
    public var wordEmbedProjectionDimension: Int = 0
    public var layerNormBefore = true
    public var enableBias = true
    public var layerNormElementwiseAffine = true
    public var removeFinalLayerNorm = false

    // GPT-NeoX
    /// x + attn(LN1(x)) + mlp(LN2(x)) instead of two residual steps (`use_parallel_residual`).
    public var parallelResidual = false

    // Sequence classification
    /// The module of the score head: "score" (transformers) or "out_proj" (OpenAssistant's GPTNeoXRewardModel).
    public var scoreModule = "score"
    public var scorePooling = ScorePooling.lastNonPadding

    // Tokens
    public var bosTokenID: Int? = nil
    public var eosTokenIDs: [Int] = []
    public var padTokenID: Int? = nil
    /// The dtype the config names ("float32", "bfloat16", ...), for display only.
    public var declaredDType: String? = nil
    /// The prompt template `hone merge` recorded from the adapter it merged (what `--template auto` uses).
    public var recordedPromptTemplate: String? = nil

    /// Where `hone merge` records the adapter's template: a config.json key and a GGUF metadata key.
    public static let huggingFacePromptTemplateKey = "hone_prompt_template"
    public static let ggufPromptTemplateKey = "hone.prompt_template"

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

// MARK: - Checks no tensor shape makes

extension ModelConfig {
    /// Hyper-parameters that no weight's shape pins down, checked before a kernel trusts them: a GQA group size
    /// that does not divide the heads, or a rotary dimension past the head, would send attention or RoPE outside
    /// their rows. (The weights' shapes are checked against the sizes when the model is built.)
    func checkConsistency(path: String) throws {
        func refuse(_ message: String) -> HoneError { HoneError.invalidConfig(path: path, message: message) }
        for (name, value) in [("vocabulary size", vocabularySize), ("hidden size", hiddenSize),
                              ("intermediate size", intermediateSize), ("layer count", layerCount),
                              ("head count", headCount), ("key/value head count", keyValueHeadCount),
                              ("head dimension", headDimension), ("context length", maxPositionEmbeddings)] {
            guard value > 0 else { throw refuse("the \(name) must be positive, not \(value)") }
        }
        if isMixtureOfExperts {
            guard expertsPerToken > 0, expertsPerToken <= expertCount else {
                throw refuse("each token must go through 1 to \(expertCount) experts, not \(expertsPerToken)")
            }
            guard expertIntermediateSize > 0 else {
                throw refuse("the experts' intermediate size must be positive, not \(expertIntermediateSize)")
            }
        }
        guard headCount % keyValueHeadCount == 0 else {
            throw refuse("\(headCount) attention heads cannot share \(keyValueHeadCount) key/value heads evenly")
        }
        guard rotaryDimension >= 0, rotaryDimension <= headDimension, rotaryDimension % 2 == 0 else {
            throw refuse("the rotary dimension \(rotaryDimension) must be even and at most the head dimension \(headDimension)")
        }
        guard ropeTheta.isFinite, ropeTheta > 0 else { throw refuse("the rope base \(ropeTheta) must be positive") }
        guard normEpsilon.isFinite, normEpsilon >= 0 else {
            throw refuse("the norm epsilon \(normEpsilon) must be finite and not negative")
        }
        // Rope scaling divides frequencies by these factors: zero, a negative or an infinite one makes every
        // logit NaN (a perplexity of "nan" that looked like a result).
        func positive(_ name: String, _ value: Double) throws {
            guard value.isFinite, value > 0 else { throw refuse("the rope scaling \(name) \(value) must be positive") }
        }
        switch ropeScaling {
        case .none: break
        case .linear(let factor), .dynamic(let factor): try positive("factor", factor)
        case .llama3(let factor, let low, let high, let original):
            try positive("factor", factor)
            try positive("low_freq_factor", low)
            try positive("high_freq_factor", high)
            guard original > 0 else { throw refuse("the rope scaling original_max_position_embeddings \(original) must be positive") }
        case .longRoPE(let short, let long, let original, let attention):
            for (name, factors) in [("short_factor", short), ("long_factor", long)] {
                guard factors.count == rotaryDimension / 2 else {
                    throw refuse("the rope scaling \(name) has \(factors.count) values; the rotary dimension \(rotaryDimension) needs \(rotaryDimension / 2)")
                }
                for factor in factors { try positive(name, factor) }
            }
            try positive("attention factor", attention)
            guard original > 0 else { throw refuse("the rope scaling original_max_position_embeddings \(original) must be positive") }
        case .yarn(let factor, let original, let fast, let slow, let attention):
            for (name, value) in [("factor", factor), ("beta_fast", fast), ("beta_slow", slow), ("attention factor", attention)] {
                try positive(name, value)
            }
            guard original > 0 else { throw refuse("the rope scaling original_max_position_embeddings \(original) must be positive") }
        }
    }
}

// MARK: - config.json

extension ModelConfig {
    /// Reads an HF `config.json` through the registry entry of its `model_type`.
    static func fromHuggingFace(path: String) throws -> ModelConfig {
        let json = try JSONConfig(path: path)
        guard let modelType = json.string("model_type") else {
            throw HoneError.missingConfigKey(path: path, key: "model_type")
        }
        guard let architecture = ModelArchitectures.forModelType(modelType) else {
            throw HoneError.unsupportedArchitecture(name: modelType, path: path)
        }
        var config = try architecture.configFromHuggingFace(json, modelType)
        try config.checkConsistency(path: path)
        config.dropTokenIDsOutsideVocabulary()
        return config
    }

    /// The number of rotated features, head_dim × `fraction` truncated as transformers does. The fraction is checked
    /// before the conversion: a product outside Int's range (a fraction of 1e300, or a huge head_dim) would trap.
    static func rotatedFeatures(headDimension: Int, fraction: Double, key: String, path: String) throws -> Int {
        guard fraction.isFinite, fraction >= 0, fraction <= 1 else {
            throw HoneError.invalidConfig(path: path, message: "'\(key)' must be between 0 and 1, not \(fraction)")
        }
        guard let features = Int(exactly: (Double(headDimension) * fraction).rounded(.towardZero)) else {
            throw HoneError.invalidConfig(path: path, message: "the head dimension \(headDimension) is out of range")
        }
        return features
    }

    static func readTokens(_ json: JSONConfig, into config: inout ModelConfig) throws {
        config.bosTokenID = json.ids("bos_token_id").first
        config.eosTokenIDs = json.ids("eos_token_id")
        config.padTokenID = json.ids("pad_token_id").first
        config.declaredDType = json.string("dtype") ?? json.string("torch_dtype")
        config.recordedPromptTemplate = json.string(huggingFacePromptTemplateKey)
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
        dropTokenIDsOutsideVocabulary()
    }

    /// A special token id past the vocabulary is no token of the model: it is dropped, as llama.cpp drops such an
    /// id from a GGUF ("bad special token", using none) and as transformers never matches it when padding or
    /// stopping. (Kept, an eos id of 10^11 made `generate` trap converting it to Int32.)
    mutating func dropTokenIDsOutsideVocabulary() {
        let size = vocabularySize
        if let bos = bosTokenID, bos >= size { bosTokenID = nil }
        if let pad = padTokenID, pad >= size { padTokenID = nil }
        eosTokenIDs = eosTokenIDs.filter { $0 < size }
    }
}

// MARK: - GGUF metadata

extension ModelConfig {
    /// Reads a GGUF's hyper-parameters through the registry entry of its `general.architecture`.
    static func fromGGUF(_ gguf: GGUFFile) throws -> ModelConfig {
        guard let name = gguf.architecture else {
            throw HoneError.missingConfigKey(path: gguf.path, key: "general.architecture")
        }
        guard let architecture = ModelArchitectures.forGGUF(name), let read = architecture.configFromGGUF else {
            throw HoneError.unsupportedArchitecture(name: name, path: gguf.path)
        }
        var config = try read(gguf, name)
        config.recordedPromptTemplate = gguf.string(ggufPromptTemplateKey)
        try config.checkConsistency(path: gguf.path)
        config.dropTokenIDsOutsideVocabulary()
        return config
    }
}
