import Foundation

// MARK: - Schemes

/// What `hone quantize --type` and `hone convert --type` ask for: one of llama.cpp's file types. A scheme names a
/// base tensor type; `q4_k_m` mixes types per tensor as llama-quantize does.
public enum QuantizationScheme: String, CaseIterable, Sendable {
    case q8_0
    case q4_0
    case q4_1
    case q5_0
    case q5_1
    case iq4_NL = "iq4_nl"
    case q4_K_M = "q4_k_m"
    case q6_K = "q6_k"
    case f16
    case bf16
    case f32

    /// The spellings `--type` accepts, for help texts and errors.
    public static let accepted = "q8_0, q4_0, q4_1, q5_0, q5_1, iq4_nl, q4_k_m (alias q4_k), q6_k, f16, bf16, f32"

    /// Parses a `--type` value, case-insensitively; `q4_k` is the same as `q4_k_m` (llama.cpp's Q4_K_M mix).
    public init?(name: String) {
        let lowered = name.lowercased()
        if lowered == "q4_k" {
            self = .q4_K_M
            return
        }
        guard let scheme = QuantizationScheme(rawValue: lowered) else { return nil }
        self = scheme
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
        case .q4_K_M: return .q4_K
        case .q6_K: return .q6_K
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
        case .q4_K_M: return 15
        case .q6_K: return 18
        case .bf16: return 32
        }
    }

    public var isQuantized: Bool { baseType.isQuantized }
}

// MARK: - Per-tensor types

/// Chooses each tensor's type as llama-quantize does (src/llama-quant.cpp, no importance matrix, no overrides):
/// - only tensors of two or more dimensions whose names end in "weight", norms excepted, are converted; the others
///   (norms, biases, rope_freqs) keep their type;
/// - `output.weight`, and `token_embd.weight` when the output is tied to it, get Q6_K (Q8_0 stays Q8_0), or Q8_0
///   when their rows are not a multiple of the base type's block;
/// - with Q4_K_M, `attn_v` and `ffn_down` get Q6_K on the layers `usesMoreBits` picks;
/// - with IQ4_NL, `attn_v` gets Q5_K when there are 4 or more query heads per key/value head, and `ffn_down` on the
///   first eighth of the layers Q5_K (llama.cpp's choice without an importance matrix);
/// - `pure` (llama-quantize --pure) skips the three rules above: every converted tensor gets the base type;
/// - a type whose block does not divide the row length falls back: Q4_K to Q5_0, Q5_K to Q5_1, Q6_K to Q8_0, and
///   to F16 when even that does not divide it; Q4_1, Q5_0, Q5_1 and IQ4_NL go to F16 directly (as the llama.cpp
///   these fixtures come from does); Q8_0 and Q4_0 have no fallback, so such a tensor is an error (as in earlier
///   llama.cpp).
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
    /// llama.cpp's n_gqa: query heads per key/value head.
    public let headsPerKeyValueHead: Int

    public init(scheme: QuantizationScheme, layerCount: Int, pure: Bool = false, headsPerKeyValueHead: Int = 1) {
        self.scheme = scheme
        self.layerCount = layerCount
        self.pure = pure
        self.headsPerKeyValueHead = headsPerKeyValueHead
    }

    /// Q5_K, which the IQ4_NL mix uses, when this build knows the type (DType lists the types with kernels).
    private func q5K(for tensor: Tensor) throws -> DType {
        guard let type = DType(ggmlType: 13) else {
            throw HoneError.invalidArgument(
                "iq4_nl puts '\(tensor.name)' in Q5_K as llama-quantize does, and this build has no Q5_K: use --pure (every tensor IQ4_NL)")
        }
        return type
    }

    /// llama.cpp's `use_more_bits`: the first and last eighth of the layers and every third one between.
    public static func usesMoreBits(layer: Int, of count: Int) -> Bool {
        layer < count / 8 || layer >= 7 * count / 8 || (layer - count / 8) % 3 == 2
    }

    /// Whether llama-quantize converts this tensor at all.
    public static func allowsConversion(name: String, shape: [Int]) -> Bool {
        shape.count >= 2 && name.hasSuffix("weight") && !name.contains("_norm.weight")
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

    /// Types for `tensors`, which must be in `loaderOrder`.
    public func choose(_ tensors: [Tensor]) throws -> [Choice] {
        let tied = !tensors.contains { $0.name == "output.weight" }
        let valueTensorCount = tensors.filter { $0.name.contains("attn_v.weight") || $0.name.contains("attn_qkv.weight") }.count
        var valueIndex = 0
        var downIndex = 0
        var choices: [Choice] = []
        for tensor in tensors {
            guard QuantizationPlanner.allowsConversion(name: tensor.name, shape: tensor.shape) else {
                choices.append(Choice(type: tensor.type, fellBack: false))
                continue
            }
            var type = scheme.baseType
            guard type.isQuantized else {
                choices.append(Choice(type: type, fellBack: false))
                continue
            }
            let rowLength = tensor.shape.last!
            if pure {
                // No mixture; only the shape fallbacks below.
            } else if tensor.name == "output.weight" || (tied && tensor.name == "token_embd.weight") {
                if rowLength % type.blockSize != 0 {
                    type = .q8_0
                } else if type != .q8_0 {
                    type = .q6_K
                }
            } else if tensor.name == "token_embd.weight" {
                // Untied embeddings keep the base type for these schemes.
            } else if tensor.name.contains("attn_v.weight") || tensor.name.contains("attn_qkv.weight") {
                if scheme == .q4_K_M, QuantizationPlanner.usesMoreBits(layer: valueIndex, of: valueTensorCount) { type = .q6_K }
                if scheme == .iq4_NL, headsPerKeyValueHead >= 4 { type = try q5K(for: tensor) }
                valueIndex += 1
            } else if tensor.name.contains("ffn_down") {
                if scheme == .q4_K_M, QuantizationPlanner.usesMoreBits(layer: downIndex, of: layerCount) { type = .q6_K }
                if scheme == .iq4_NL, downIndex < layerCount / 8 { type = try q5K(for: tensor) }
                downIndex += 1
            }
            choices.append(try fallback(type, tensor: tensor))
        }
        return choices
    }

    private func fallback(_ type: DType, tensor: Tensor) throws -> Choice {
        let rowLength = tensor.shape.last!
        guard rowLength % type.blockSize != 0 else { return Choice(type: type, fellBack: false) }
        var replacement: DType
        switch type {
        case .q4_K: replacement = .q5_0
        case .q6_K: replacement = .q8_0
        case .q4_1, .q5_0, .q5_1, .iq4_NL: replacement = .f16
        case _ where type.ggmlType == 13: replacement = .q5_1 // Q5_K, where this build has it
        default:
            throw HoneError.invalidArgument(
                "tensor '\(tensor.name)' has rows of \(rowLength) values, not a multiple of \(type.blockSize) as \(type.rawValue) needs (llama.cpp has no fallback for it either)")
        }
        if rowLength % replacement.blockSize != 0 { replacement = .f16 }
        return Choice(type: replacement, fellBack: true)
    }
}
