import HoneKernels

/// Element types of stored tensors. Compute is always f32; f16 and bf16 stay as stored in the mapping, and the
/// GGUF block-quantized types (ggml's exact layouts) are used in place by the quantized kernels.
public enum DType: String, Sendable, CaseIterable {
    case f32 = "F32"
    case f16 = "F16"
    case bf16 = "BF16"
    case q8_0 = "Q8_0"
    case q4_0 = "Q4_0"
    /// Also llama.cpp's fallback for Q4_K rows that are not a multiple of 256 values.
    case q5_0 = "Q5_0"
    case q4_1 = "Q4_1"
    case q5_1 = "Q5_1"
    case iq4_NL = "IQ4_NL"
    case q4_K = "Q4_K"
    case q6_K = "Q6_K"
    case q2_K = "Q2_K"
    case q3_K = "Q3_K"
    case q5_K = "Q5_K"
    case iq4_xs = "IQ4_XS"
    /// Codebook and ternary formats: loaded and computed through dequantization (no integer kernels).
    case iq2_xxs = "IQ2_XXS"
    case iq2_xs = "IQ2_XS"
    case iq2_s = "IQ2_S"
    case iq3_xxs = "IQ3_XXS"
    case iq3_s = "IQ3_S"
    case iq1_s = "IQ1_S"
    case iq1_m = "IQ1_M"
    case tq1_0 = "TQ1_0"
    case tq2_0 = "TQ2_0"

    public var isQuantized: Bool { blockSize > 1 }

    /// Values per block (1 for plain types).
    public var blockSize: Int {
        switch self {
        case .f32, .f16, .bf16: return 1
        case .q8_0, .q4_0, .q5_0, .q4_1, .q5_1, .iq4_NL: return 32
        case .q4_K, .q6_K: return 256
        case .q2_K, .q3_K, .q5_K, .iq4_xs: return 256
        case .iq2_xxs, .iq2_xs, .iq2_s, .iq3_xxs, .iq3_s, .iq1_s, .iq1_m, .tq1_0, .tq2_0: return 256
        }
    }

    /// Bytes per block (per element for plain types).
    public var blockBytes: Int {
        switch self {
        case .f32: return 4
        case .f16, .bf16: return 2
        case .q8_0: return 34
        case .q4_0: return 18
        case .q5_0: return 22
        case .q4_1: return 20
        case .q5_1: return 24
        case .iq4_NL: return 18
        case .q4_K: return 144
        case .q6_K: return 210
        case .q2_K: return 84
        case .q3_K: return 110
        case .q5_K: return 176
        case .iq4_xs: return 136
        case .iq2_xxs: return 66
        case .iq2_xs: return 74
        case .iq2_s: return 82
        case .iq3_xxs: return 98
        case .iq3_s: return 110
        case .iq1_s: return 50
        case .iq1_m: return 56
        case .tq1_0: return 54
        case .tq2_0: return 66
        }
    }

    /// Bytes of `elements` values; for block types `elements` must be a multiple of the block size.
    public func byteCount(elements: Int) -> Int { elements / blockSize * blockBytes }

    /// The safetensors spelling ("F32", "F16", "BF16"); block types do not exist in safetensors.
    public init?(safetensorsName: String) {
        guard let dtype = DType(rawValue: safetensorsName), !dtype.isQuantized else { return nil }
        self = dtype
    }

    /// Types whose products dequantize weight tiles (no integer kernel): the IQ/TQ codebook and ternary formats.
    /// (Q5_0 has integer kernels, as the other 32-value types.)
    public var dequantizesForProducts: Bool {
        switch self {
        case .iq2_xxs, .iq2_xs, .iq2_s, .iq3_xxs, .iq3_s, .iq1_s, .iq1_m, .tq1_0, .tq2_0: return true
        default: return false
        }
    }

    /// GGML type ids (ggml.h `enum ggml_type`).
    public init?(ggmlType: UInt32) {
        switch ggmlType {
        case 0: self = .f32
        case 1: self = .f16
        case 30: self = .bf16
        case 8: self = .q8_0
        case 2: self = .q4_0
        case 6: self = .q5_0
        case 3: self = .q4_1
        case 7: self = .q5_1
        case 20: self = .iq4_NL
        case 12: self = .q4_K
        case 14: self = .q6_K
        case 10: self = .q2_K
        case 11: self = .q3_K
        case 13: self = .q5_K
        case 23: self = .iq4_xs
        case 16: self = .iq2_xxs
        case 17: self = .iq2_xs
        case 18: self = .iq3_xxs
        case 19: self = .iq1_s
        case 21: self = .iq3_s
        case 22: self = .iq2_s
        case 29: self = .iq1_m
        case 34: self = .tq1_0
        case 35: self = .tq2_0
        default: return nil
        }
    }

    public var ggmlType: UInt32 {
        switch self {
        case .f32: return 0
        case .f16: return 1
        case .bf16: return 30
        case .q8_0: return 8
        case .q4_0: return 2
        case .q5_0: return 6
        case .q4_1: return 3
        case .q5_1: return 7
        case .iq4_NL: return 20
        case .q4_K: return 12
        case .q6_K: return 14
        case .q2_K: return 10
        case .q3_K: return 11
        case .q5_K: return 13
        case .iq4_xs: return 23
        case .iq2_xxs: return 16
        case .iq2_xs: return 17
        case .iq3_xxs: return 18
        case .iq1_s: return 19
        case .iq3_s: return 21
        case .iq2_s: return 22
        case .iq1_m: return 29
        case .tq1_0: return 34
        case .tq2_0: return 35
        }
    }
}

/// GGML type names for `hone info` and error messages, including the types Hone cannot compute with yet.
public func ggmlTypeName(_ type: UInt32) -> String {
    let names: [UInt32: String] = [
        0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 6: "Q5_0", 7: "Q5_1", 8: "Q8_0", 9: "Q8_1", 10: "Q2_K",
        11: "Q3_K", 12: "Q4_K", 13: "Q5_K", 14: "Q6_K", 15: "Q8_K", 16: "IQ2_XXS", 17: "IQ2_XS", 18: "IQ3_XXS",
        19: "IQ1_S", 20: "IQ4_NL", 21: "IQ3_S", 22: "IQ2_S", 23: "IQ4_XS", 24: "I8", 25: "I16", 26: "I32",
        27: "I64", 28: "F64", 29: "IQ1_M", 30: "BF16", 34: "TQ1_0", 35: "TQ2_0",
    ]
    return names[type] ?? "type \(type)"
}
