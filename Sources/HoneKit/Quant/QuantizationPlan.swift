import Foundation

// MARK: - Schemes

/// What `hone quantize --type` and `hone convert --type` ask for: one of llama.cpp's file types. A scheme names a
/// base tensor type; the K schemes mix types per tensor as llama-quantize does (see `QuantizationPlanner`).
public enum QuantizationScheme: String, CaseIterable, Sendable {
    case q8_0
    case q4_0
    case q4_1
    case q5_0
    case q5_1
    case iq4_NL = "iq4_nl"
    case q2_K = "q2_k"
    case q3_K_S = "q3_k_s"
    case q3_K_M = "q3_k_m"
    case q3_K_L = "q3_k_l"
    case q4_K_S = "q4_k_s"
    case q4_K_M = "q4_k_m"
    case q5_K_S = "q5_k_s"
    case q5_K_M = "q5_k_m"
    case q6_K = "q6_k"
    case iq4_xs
    case f16
    case bf16
    case f32

    /// The spellings `--type` accepts, for help texts and errors.
    public static let accepted = "q8_0, q4_0, q4_1, q5_0, q5_1, iq4_nl, q2_k, q3_k_s, q3_k_m (alias q3_k), q3_k_l, q4_k_s, "
        + "q4_k_m (alias q4_k), q5_k_s, q5_k_m (alias q5_k), q6_k, iq4_xs, f16, bf16, f32"

    /// Parses a `--type` value, case-insensitively; `q3_k`, `q4_k` and `q5_k` are the _M mixes, as in llama-quantize.
    public init?(name: String) {
        let lowered = name.lowercased()
        let aliases: [String: QuantizationScheme] = ["q3_k": .q3_K_M, "q4_k": .q4_K_M, "q5_k": .q5_K_M]
        if let scheme = aliases[lowered] {
            self = scheme
            return
        }
        guard let scheme = QuantizationScheme(rawValue: lowered) else { return nil }
        self = scheme
    }

    /// Why a llama.cpp file type Hone does not write is refused, for the error message (nil: not a known name).
    public static func refusal(name: String) -> String? {
        let needsImportanceMatrix = ["iq2_xxs", "iq2_xs", "iq2_s", "iq2_m", "iq1_s", "iq1_m", "iq3_xxs", "q2_k_s"]
        let lowered = name.lowercased()
        if needsImportanceMatrix.contains(lowered) {
            return "--type \(lowered) needs an importance matrix (llama-quantize --imatrix), which hone quantize does not compute; use llama-quantize with an imatrix, or one of \(accepted)"
        }
        return nil
    }

    /// The type most tensors get.
    public var baseType: DType {
        switch self {
        case .q8_0: return .q8_0
        case .q4_0: return .q4_0
        case .q4_1: return .q4_1
        case .q5_0: return .q5_0
        case .q5_1: return .q5_1
        case .iq4_NL: return .iq4_NL
        case .q2_K: return .q2_K
        case .q3_K_S, .q3_K_M, .q3_K_L: return .q3_K
        case .q4_K_S, .q4_K_M: return .q4_K
        case .q5_K_S, .q5_K_M: return .q5_K
        case .q6_K: return .q6_K
        case .iq4_xs: return .iq4_xs
        case .f16: return .f16
        case .bf16: return .bf16
        case .f32: return .f32
        }
    }

    /// llama.cpp's `llama_ftype`, stored as `general.file_type`.
    public var fileType: UInt32 {
        switch self {
        case .f32: return 0
        case .f16: return 1
        case .q4_0: return 2
        case .q4_1: return 3
        case .q5_0: return 8
        case .q5_1: return 9
        case .iq4_NL: return 25
        case .q8_0: return 7
        case .q2_K: return 10
        case .q3_K_S: return 11
        case .q3_K_M: return 12
        case .q3_K_L: return 13
        case .q4_K_S: return 14
        case .q4_K_M: return 15
        case .q5_K_S: return 16
        case .q5_K_M: return 17
        case .q6_K: return 18
        case .iq4_xs: return 30
        case .bf16: return 32
        }
    }

    public var isQuantized: Bool { baseType.isQuantized }
}

// MARK: - Per-tensor options

/// llama-quantize's options that change single tensors' types on top of a scheme: --output-tensor-type,
/// --token-embedding-type, --leave-output-tensor and --tensor-type PATTERN=TYPE (see `QuantizationPlanner` for where
/// each applies).
public struct QuantizationOverrides: Sendable, Equatable {
    /// One --tensor-type: the first rule whose pattern (a regular expression, lower-cased as llama-quantize does)
    /// is found in a tensor's name gives that tensor its type.
    public struct TensorTypeRule: Sendable, Equatable {
        public let pattern: String
        public let type: DType

        /// Parses `PATTERN=TYPE` as llama-quantize does (split at the first '=', the pattern lower-cased).
        public init(argument: String) throws {
            guard let equals = argument.firstIndex(of: "=") else {
                throw HoneError.invalidArgument("\(OptionName("tensor_type")) '\(argument)' is not PATTERN=TYPE (as attn_v=q8_0)")
            }
            let pattern = String(argument[..<equals]).lowercased(), typeName = String(argument[argument.index(after: equals)...])
            guard !pattern.isEmpty else {
                throw HoneError.invalidArgument("\(OptionName("tensor_type")) '\(argument)' has no tensor name before '='")
            }
            guard !typeName.isEmpty else {
                throw HoneError.invalidArgument("\(OptionName("tensor_type")) '\(argument)' has no type after '='")
            }
            do {
                _ = try NSRegularExpression(pattern: pattern)
            } catch {
                throw HoneError.invalidArgument("\(OptionName("tensor_type")) '\(argument)': '\(pattern)' is not a regular expression")
            }
            self.pattern = pattern
            self.type = try QuantizationOverrides.writableType(typeName, option: "tensor_type")
        }
    }

    /// output.weight's type (and a tied token_embd's, unless `tokenEmbeddingType` names it).
    public var outputTensorType: DType?
    public var tokenEmbeddingType: DType?
    /// output.weight keeps the type it has.
    public var leaveOutputTensor: Bool
    public var tensorTypes: [TensorTypeRule]
    /// llama-quantize's --prune-layers: these blocks are left out and the rest renumbered in order (ascending,
    /// distinct).
    public var pruneLayers: [Int]

    public init(outputTensorType: DType? = nil, tokenEmbeddingType: DType? = nil, leaveOutputTensor: Bool = false,
                tensorTypes: [TensorTypeRule] = [], pruneLayers: [Int] = []) {
        self.outputTensorType = outputTensorType
        self.tokenEmbeddingType = tokenEmbeddingType
        self.leaveOutputTensor = leaveOutputTensor
        self.tensorTypes = tensorTypes
        self.pruneLayers = Array(Set(pruneLayers)).sorted()
    }

    /// `L0,L1,...` as llama-quantize's --prune-layers takes it (layer numbers, any order, repeats allowed).
    public static func pruneLayers(_ argument: String) throws -> [Int] {
        try argument.split(separator: ",", omittingEmptySubsequences: false).map { part in
            guard let layer = Int(part.trimmingCharacters(in: .whitespaces)), layer >= 0 else {
                throw HoneError.invalidArgument("\(OptionName("prune_layers")) '\(argument)': '\(part)' is not a layer number")
            }
            return layer
        }
    }

    /// The tensor types `hone quantize` writes.
    public static let writableTypes: [DType] = [.f32, .f16, .bf16, .q8_0, .q4_0, .q4_1, .q5_0, .q5_1, .iq4_NL, .q2_K, .q3_K,
                                                .q4_K, .q5_K, .q6_K, .iq4_xs]

    /// A ggml type name (case-insensitive, as llama-quantize's: q8_0, q4_K, iq4_nl, bf16, ...) that Hone writes.
    public static func writableType(_ name: String, option: String) throws -> DType {
        let lowered = name.lowercased()
        let accepted = writableTypes.map { $0.rawValue.lowercased() }.joined(separator: ", ")
        guard let type = DType.allCases.first(where: { $0.rawValue.lowercased() == lowered }) else {
            throw HoneError.invalidArgument("\(OptionName(option)): unknown tensor type '\(name)' (expected one of \(accepted))")
        }
        guard writableTypes.contains(type) else {
            let reason = type == .tq1_0 || type == .tq2_0 ? "hone quantize does not write the ternary types"
                : "\(type.rawValue) needs an importance matrix (llama-quantize --imatrix), which hone quantize does not compute"
            throw HoneError.invalidArgument("\(OptionName(option)) \(name): \(reason); use one of \(accepted)")
        }
        return type
    }
}

// MARK: - Per-tensor types

/// Chooses each tensor's type as llama-quantize does (src/llama-quant.cpp, no importance matrix, a Llama-family
/// model, dense or with experts):
/// - only tensors of two or more dimensions whose names end in "weight", norms and experts' routers
///   (ffn_gate_inp) excepted, are converted; the others (norms, biases, rope_freqs), and output.weight under
///   --leave-output-tensor, keep their type;
/// - --token-embedding-type and --output-tensor-type give token_embd.weight and output.weight their types outright
///   (no fallback: rows the type's block does not divide are an error, where llama.cpp would abort);
/// - otherwise, when the scheme's type is quantized: the first --tensor-type pattern found in the name gives the
///   type; else, unless `pure`, the mixture rules below; then the shape fallbacks;
/// - `output.weight`, and `token_embd.weight` when the output is tied to it, get --output-tensor-type when given,
///   else Q6_K (Q8_0 stays Q8_0), or Q8_0 when their rows are not a multiple of the base type's block; untied
///   embeddings keep the base type;
/// - per scheme, with i counting the attn_v (or attn_qkv) tensors these rules decide (a tensor a --tensor-type
///   pattern decides does not advance it, as in llama.cpp), n all attn_v tensors, the ffn_down layers counted the
///   same way, and `usesMoreBits` the first and last eighth and every third layer between:
///   attn_v       Q2_K: Q4_K when heads / KV heads >= 4, else Q3_K; Q3_K_M: Q5_K for i < 2, else Q4_K; Q3_K_L: Q5_K;
///                Q4_K_S: Q5_K for i < 4; Q4_K_M, Q5_K_M: Q6_K where usesMoreBits; IQ4_XS, IQ4_NL: Q5_K when
///                heads / KV heads >= 4;
///   ffn_down     Q2_K: Q3_K; Q3_K_M: Q5_K for i < n / 16, else Q4_K; Q3_K_L: Q5_K; Q4_K_S, IQ4_XS, IQ4_NL: Q5_K
///                for i < n / 8; Q4_K_M, Q5_K_M: Q6_K where usesMoreBits;
///   attn_output  Q2_K: Q3_K; Q3_K_M: Q4_K; Q3_K_L: Q5_K;
///   (llama.cpp's choices without an importance matrix); with eight experts (Mixtral) attn_v and attn_k are Q8_0
///   and attn_output is Q5_K for Q2_K, Q3_K_S, Q3_K_M, Q4_K_S, Q4_K_M, IQ4_NL and IQ4_XS (the base type for the
///   others); with experts ffn_down's i is the layer its name gives;
/// - a type whose block does not divide the row length falls back: Q2_K and Q3_K to Q4_0, Q4_K to Q5_0, Q5_K to
///   Q5_1, Q6_K to Q8_0, IQ4_XS to IQ4_NL, and to F16 when even that does not divide it; the 32-value types go to
///   F16 directly.
public struct QuantizationPlanner {
    public struct Tensor: Sendable {
        public let name: String
        /// HF order (outermost first); the row length is the last dimension (GGML's ne[0]).
        public let shape: [Int]
        /// The type the tensor has (or, from an HF directory, would have after llama.cpp's converter).
        public let type: DType

        public init(name: String, shape: [Int], type: DType) {
            self.name = name
            self.shape = shape
            self.type = type
        }
    }

    public struct Choice: Sendable, Equatable {
        public let type: DType
        /// Whether the shape forced a fallback (llama.cpp warns and counts these).
        public let fellBack: Bool
    }

    public let scheme: QuantizationScheme
    public let layerCount: Int
    public let pure: Bool
    /// llama.cpp's n_gqa: query heads per key/value head, which some attn_v rules look at.
    public let headsPerKeyValueHead: Int
    public let overrides: QuantizationOverrides

    /// llama.cpp's n_expert: experts per sparse MLP (0 for a dense model); eight experts (Mixtral's) change the
    /// attention's types, and with experts ffn_down's layer is read from its name.
    public let expertCount: Int

    public init(scheme: QuantizationScheme, layerCount: Int, pure: Bool = false, headsPerKeyValueHead: Int = 1,
                expertCount: Int = 0, overrides: QuantizationOverrides = QuantizationOverrides()) {
        self.scheme = scheme
        self.layerCount = layerCount
        self.pure = pure
        self.headsPerKeyValueHead = headsPerKeyValueHead
        self.expertCount = expertCount
        self.overrides = overrides
    }

    /// llama.cpp's `use_more_bits`: the first and last eighth of the layers and every third one between.
    public static func usesMoreBits(layer: Int, of count: Int) -> Bool {
        layer < count / 8 || layer >= 7 * count / 8 || (layer - count / 8) % 3 == 2
    }

    /// Whether llama-quantize converts this tensor at all.
    public static func allowsConversion(name: String, shape: [Int]) -> Bool {
        // ggml_n_dims ignores trailing 1s in GGML's order (leading here): Qwen2-MoE's [1, hidden] shared-expert gate
        // is a vector to it.
        shape.drop(while: { $0 == 1 }).count >= 2 && name.hasSuffix("weight") && !name.contains("_norm.weight")
            && !name.contains("ffn_gate_inp.weight")
    }

    /// The order llama.cpp's model loader lists tensors in (and so writes them): tensors outside the blocks first,
    /// then block by block, by name within each. The per-layer counters below depend on it.
    public static func loaderOrder(_ lhs: String, _ rhs: String) -> Bool {
        let (left, right) = (blockIndex(lhs), blockIndex(rhs))
        return left != right ? left < right : lhs.utf8.lexicographicallyPrecedes(rhs.utf8)
    }

    /// The block number of a "blk.N." name, -1 otherwise.
    static func blockIndex(_ name: String) -> Int {
        guard name.hasPrefix("blk.") else { return -1 }
        let digits = name.dropFirst(4).prefix { $0.isASCII && $0.isNumber }
        return Int(digits) ?? -1
    }

    /// llama.cpp's attn_v category (attn_v, attn_qkv, attn_kv_b).
    static func isValueTensor(_ name: String) -> Bool {
        name.contains("attn_v.weight") || name.contains("attn_qkv.weight") || name.contains("attn_kv_b.weight")
    }

    /// Types for `tensors`, which must be in `loaderOrder`.
    public func choose(_ tensors: [Tensor]) throws -> [Choice] {
        let tied = !tensors.contains { $0.name == "output.weight" }
        let valueTensorCount = tensors.filter { QuantizationPlanner.isValueTensor($0.name) }.count
        // Validated when the rules were parsed.
        let rules = overrides.tensorTypes.map { (regex: try! NSRegularExpression(pattern: $0.pattern), type: $0.type) }
        var valueIndex = 0
        var downIndex = 0
        var choices: [Choice] = []
        for tensor in tensors {
            guard QuantizationPlanner.allowsConversion(name: tensor.name, shape: tensor.shape),
                  !(overrides.leaveOutputTensor && tensor.name == "output.weight") else {
                choices.append(Choice(type: tensor.type, fellBack: false))
                continue
            }
            if let explicit = tensor.name == "token_embd.weight" ? overrides.tokenEmbeddingType
                : tensor.name == "output.weight" ? overrides.outputTensorType : nil {
                let option = tensor.name == "output.weight" ? "output_tensor_type" : "token_embedding_type"
                guard tensor.shape.last! % explicit.blockSize == 0 else {
                    throw HoneError.invalidArgument("\(OptionName(option)) \(explicit.rawValue.lowercased()): tensor '\(tensor.name)' has rows of \(tensor.shape.last!) values, not a multiple of \(explicit.blockSize)")
                }
                choices.append(Choice(type: explicit, fellBack: false))
                continue
            }
            var type = scheme.baseType
            guard type.isQuantized else {
                choices.append(Choice(type: type, fellBack: false))
                continue
            }
            let range = NSRange(tensor.name.startIndex..., in: tensor.name)
            if let rule = rules.first(where: { $0.regex.firstMatch(in: tensor.name, range: range) != nil }) {
                type = rule.type
            } else if pure {
                // No mixture; only the shape fallbacks below.
            } else if tensor.name == "output.weight" || (tied && tensor.name == "token_embd.weight") {
                if let requested = overrides.outputTensorType {
                    type = requested
                } else if tensor.shape.last! % type.blockSize != 0 {
                    type = .q8_0
                } else if type != .q8_0 {
                    type = .q6_K
                }
            } else if tensor.name == "token_embd.weight" {
                // Untied embeddings keep the base type for these schemes.
            } else if QuantizationPlanner.isValueTensor(tensor.name) {
                type = expertCount == 8 ? .q8_0 : valueType(index: valueIndex, count: valueTensorCount) ?? type
                valueIndex += 1
            } else if tensor.name.contains("attn_k.weight") {
                if expertCount == 8 { type = .q8_0 }
            } else if tensor.name.contains("attn_output.weight") {
                if expertCount == 8 {
                    if [.q2_K, .q3_K_S, .q3_K_M, .iq4_NL, .q4_K_S, .q4_K_M, .iq4_xs].contains(scheme) { type = .q5_K }
                } else {
                    let attentionOutput: [QuantizationScheme: DType] = [.q2_K: .q3_K, .q3_K_M: .q4_K, .q3_K_L: .q5_K]
                    type = attentionOutput[scheme] ?? type
                }
            } else if tensor.name.contains("ffn_down") {
                // With experts llama.cpp reads the layer from the name (a layer may hold several ffn_down tensors).
                type = downType(layer: expertCount > 1 ? QuantizationPlanner.blockIndex(tensor.name) : downIndex) ?? type
                downIndex += 1
            }
            choices.append(fallback(type, tensor: tensor))
        }
        return choices
    }

    /// attn_v's type, or nil for the base type.
    private func valueType(index: Int, count: Int) -> DType? {
        switch scheme {
        case .q2_K: return headsPerKeyValueHead >= 4 ? .q4_K : .q3_K
        case .q3_K_M: return index < 2 ? .q5_K : .q4_K
        case .q3_K_L: return .q5_K
        case .iq4_xs, .iq4_NL: return headsPerKeyValueHead >= 4 ? .q5_K : nil
        case .q4_K_M, .q5_K_M: return QuantizationPlanner.usesMoreBits(layer: index, of: count) ? .q6_K : nil
        case .q4_K_S: return index < 4 ? .q5_K : nil
        default: return nil
        }
    }

    /// ffn_down's type on its `layer`-th occurrence, or nil for the base type.
    private func downType(layer: Int) -> DType? {
        switch scheme {
        case .q2_K: return .q3_K
        case .q3_K_M: return layer < layerCount / 16 ? .q5_K : .q4_K
        case .q3_K_L: return .q5_K
        case .q4_K_M, .q5_K_M: return QuantizationPlanner.usesMoreBits(layer: layer, of: layerCount) ? .q6_K : nil
        case .q4_K_S, .iq4_xs, .iq4_NL: return layer < layerCount / 8 ? .q5_K : nil
        default: return nil
        }
    }

    private func fallback(_ type: DType, tensor: Tensor) -> Choice {
        let rowLength = tensor.shape.last!
        guard rowLength % type.blockSize != 0 else { return Choice(type: type, fellBack: false) }
        var replacement: DType
        switch type {
        case .q2_K, .q3_K: replacement = .q4_0
        case .q4_K: replacement = .q5_0
        case .q5_K: replacement = .q5_1
        case .q6_K: replacement = .q8_0
        case .iq4_xs: replacement = .iq4_NL
        default: replacement = .f16 // the 32-value types: no smaller block to go to
        }
        if rowLength % replacement.blockSize != 0 { replacement = .f16 }
        return Choice(type: replacement, fellBack: true)
    }
}
