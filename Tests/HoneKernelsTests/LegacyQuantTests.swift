import Foundation
import Testing
import HoneKernels

/// The 32-value "legacy" types Q4_1, Q5_0, Q5_1 and IQ4_NL, and the Q8_1 activation format. The shared tests in
/// QuantFormatTests and QuantMatmulTests run on them too (QuantType lists them); this file holds what is theirs
/// alone, and the per-type pieces those tests call.
extension KernelTests {
    @Test func legacyBlockLayouts() {
        #expect(MemoryLayout<hk_block_q4_1>.size == 20)
        #expect(MemoryLayout<hk_block_q5_0>.size == 22)
        #expect(MemoryLayout<hk_block_q5_1>.size == 24)
        #expect(MemoryLayout<hk_block_iq4_nl>.size == 18)
        #expect(MemoryLayout<hk_block_q8_1>.size == 36)
        let expected: [(hk_type, UInt32, Int)] = [
            (HK_TYPE_Q4_1, 3, 20), (HK_TYPE_Q5_0, 6, 22), (HK_TYPE_Q5_1, 7, 24), (HK_TYPE_Q8_1, 9, 36),
            (HK_TYPE_IQ4_NL, 20, 18),
        ]
        for (type, ggmlID, bytes) in expected {
            let id = Int32(type.rawValue)
            #expect(type.rawValue == ggmlID, "ggml id of type \(id)")
            #expect(hk_quant_block_size(id) == 32, "type \(id)")
            #expect(hk_quant_block_bytes(id) == bytes, "type \(id)")
            #expect(hk_quant_row_bytes(id, 96) == 3 * bytes, "type \(id)")
        }
        // ggml's kvalues_iq4nl.
        let codebook = withUnsafeBytes(of: hk_iq4nl_values) { Array($0.bindMemory(to: Int8.self)) }
        #expect(codebook == [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113])
    }

    /// gguf-py's dequantizers (numpy, written from ggml's formulas) decode llama-quantize's bytes to the same bits.
    @Test(arguments: [QuantType.q4_1, .q5_0, .q5_1, .iq4_nl])
    func legacyDequantizeMatchesGgufPy(type: QuantType) throws {
        for tensor in try QuantFixtures.load(for: type) {
            let bytes = try #require(tensor.llama[type.rawValue])
            let expected = try #require(tensor.dequantized[type.rawValue], "\(tensor.name) has no gguf-py values")
            let matrix = QuantizedMatrix(type, rows: tensor.rows, columns: tensor.columns, bytes: bytes)
            expectBitwiseEqual(matrix.values, expected, "\(type) \(tensor.name) vs gguf-py")
        }
    }

    /// Q8_1 (ggml's quantize_row_q8_1_ref): d = amax / 127 in f16, qs = round-half-away(x * 127 / amax) with the
    /// f32 inverse, s = f16(d * sum qs); dequantization d * qs.
    @Test func q8_1MatchesFormula() {
        var generator = SeededGenerator(seed: 330)
        var x = generator.floats(32 * 4, in: -3...3)
        for i in 32..<64 { x[i] = 0 }
        for i in 64..<96 { x[i] = Float((i % 9) - 4) * 0.5 }
        x[64] = 127 // d = 1: halves in the block are exact ties
        var expected = [UInt8]()
        for b in 0..<4 {
            let block = Array(x[(32 * b)..<(32 * b + 32)])
            let amax = block.map(abs).max()!
            let d = amax / 127
            let inverse: Float = d != 0 ? 1 / d : 0
            let qs = block.map { Int8(($0 * inverse).rounded(.toNearestOrAwayFromZero)) }
            let sum = qs.reduce(0) { $0 + Int($1) }
            var halves = [UInt16](repeating: 0, count: 2)
            hk_convert_f32_to_f16([d, Float(sum) * d], &halves, 2)
            for half in halves { expected += [UInt8(half & 0xFF), UInt8(half >> 8)] }
            expected += qs.map { UInt8(bitPattern: $0) }
        }
        var actual = [UInt8](repeating: 0xAA, count: 4 * 36)
        hk_quantize_row_q8_1(x, &actual, 128)
        expectSameBytes(actual, expected, blockBytes: 36, "Q8_1")
        var back = [Float](repeating: .nan, count: 128)
        #expect(hk_dequantize_row(Int32(HK_TYPE_Q8_1.rawValue), actual, &back, 128) == 0)
        for i in 0..<128 {
            let d = halfToFloat(UInt16(actual[36 * (i / 32)]) | UInt16(actual[36 * (i / 32) + 1]) << 8)
            #expect(back[i] == d * Float(Int8(bitPattern: actual[36 * (i / 32) + 4 + i % 32])), "Q8_1 value \(i)")
        }
    }

    /// The kernels never see a type they do not know, and reject a width that is not whole blocks.
    @Test func legacyKernelsRejectBadArguments() {
        var y = [Float](repeating: 0, count: 4)
        let w = [UInt8](repeating: 0, count: 256)
        let x = [Float](repeating: 0, count: 64)
        for type in [QuantType.q4_1, .q5_0, .q5_1, .iq4_nl] {
            #expect(hk_matmul_rows_quant(type.id, w, x, &y, 1, 33, 1) == -1)
            #expect(hk_matmul_many_quant(type.id, w, x, &y, 20, 33, 1) == -1)
        }
        // Q8_1 is an activation format, not a weight type.
        #expect(hk_matmul_rows_quant(Int32(HK_TYPE_Q8_1.rawValue), w, x, &y, 1, 32, 1) == -1)
    }
}

// MARK: - Per-type pieces of the shared tests

/// Round-trip bounds for one block (QuantFormatTests.roundTripStaysWithinHalfAStep): calls `check` per value.
/// - Q4_1/Q5_1: |x - x'| <= d/2 + L |d - f16(d)| + |min - f16(min)| (d = (max - min) / L in f32, L = 15 or 31);
/// - Q5_0: as Q4_0 with 16 levels a side (one full step for values clamped from level 32 to 31);
/// - IQ4_NL: within half the codebook gap around x / d (at most 12 d, plus f16 slack) inside the codebook's range,
///   the end value outside it.
func legacyRoundTripCheck(_ type: QuantType, block: [UInt8], x: ArraySlice<Float>, values: ArraySlice<Float>,
                          check: (Bool, Int, String) -> Void) {
    let base = x.startIndex
    func half(_ offset: Int) -> Float { halfToFloat(UInt16(block[offset]) | UInt16(block[offset + 1]) << 8) }
    switch type {
    case .q4_1, .q5_1:
        let levels: Float = type == .q4_1 ? 15 : 31
        let low = x.min()!, high = x.max()!
        let d32 = (high - low) / levels
        let (d16, m16) = (half(0), half(2))
        for i in base..<(base + 32) {
            let bound = d32 / 2 * 1.00001 + levels * abs(d32 - d16) + abs(low - m16) + 1e-6 * abs(x[i]) + 1e-30
            check(abs(x[i] - values[i]) <= bound, i, "d \(d16) m \(m16)")
        }
    case .q5_0:
        var extreme: Float = 0
        for v in x where abs(v) > abs(extreme) { extreme = v }
        let d32 = extreme / -16, d16 = half(0)
        let high = UInt32(block[2]) | UInt32(block[3]) << 8 | UInt32(block[4]) << 16 | UInt32(block[5]) << 24
        for i in base..<(base + 32) {
            let j = i - base
            let nibble = j < 16 ? block[6 + j] & 0x0F : block[6 + j - 16] >> 4
            let level = Int(nibble) | Int((high >> UInt32(j)) & 1) << 4
            let steps: Float = level == 31 ? 1 : 0.5
            let bound = abs(d32) * steps * 1.000001 + 16 * abs(d32 - d16) + 1e-30
            check(abs(x[i] - values[i]) <= bound, i, "d \(d16) level \(level)")
        }
    case .iq4_nl:
        let d = half(0)
        let codebook: [Float] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113]
        for i in base..<(base + 32) {
            if d == 0 {
                // A scale below half f16's smallest subnormal (2^-25) rounds to zero: |x| <= ~127 of those.
                check(values[i] == 0 && abs(x[i]) <= 140 * 0x1p-25, i, "zero block")
                continue
            }
            let t = x[i] / d
            if t >= -127 && t <= 113 {
                let upper = codebook.firstIndex { $0 >= t }!
                let gap = upper == 0 ? 0 : codebook[upper] - codebook[upper - 1]
                let bound = abs(d) * (gap / 2 + 0.1) * 1.0001 + 1e-30
                check(abs(x[i] - values[i]) <= bound, i, "d \(d) t \(t)")
            } else {
                let end = t < 0 ? Float(-127) : 113
                check(abs(values[i] - d * end) <= abs(d) * 12.1, i, "clamped, d \(d) t \(t)")
            }
        }
    default:
        Issue.record("not a legacy type: \(type)")
    }
}

/// Decodes one block from the layout (QuantFormatTests' independent decoder): value = level * d + m (Q4_1/Q5_1),
/// (level - 16) * d (Q5_0), d * codebook[level] (IQ4_NL), in ggml's operation order.
func legacyDecode(_ type: QuantType, block: [UInt8], into out: inout [Float], at base: Int) {
    func half(_ offset: Int) -> Float { halfToFloat(UInt16(block[offset]) | UInt16(block[offset + 1]) << 8) }
    let codebook: [Float] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113]
    let qsOffset = type.blockBytes - 16
    let fifthBits: UInt32
    switch type {
    case .q5_0: fifthBits = UInt32(block[2]) | UInt32(block[3]) << 8 | UInt32(block[4]) << 16 | UInt32(block[5]) << 24
    case .q5_1: fifthBits = UInt32(block[4]) | UInt32(block[5]) << 8 | UInt32(block[6]) << 16 | UInt32(block[7]) << 24
    default: fifthBits = 0
    }
    for j in 0..<32 {
        let nibble = j < 16 ? block[qsOffset + j] & 0x0F : block[qsOffset + j - 16] >> 4
        let level = Int(nibble) | Int((fifthBits >> UInt32(j)) & 1) << 4
        switch type {
        case .q4_1, .q5_1: out[base + j] = Float(level) * half(0) + half(2)
        case .q5_0: out[base + j] = Float(level - 16) * half(0)
        default: out[base + j] = half(0) * codebook[level]
        }
    }
}

/// A [outputs, inputs] matrix the type represents exactly with every scale 1 (QuantMatmulTests'
/// quantMatmulExactIntegers): Q4_1 levels - 8 (m = -8), Q5_0 levels - 16, Q5_1 levels - 16 (m = -16), IQ4_NL
/// codebook values. Returns the blocks and the values.
func legacyExactMatrix(_ type: QuantType, outputs: Int, inputs: Int) -> (bytes: [UInt8], values: [Float]) {
    let codebook: [Float] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113]
    let maxLevel = type == .q4_1 || type == .iq4_nl ? 15 : 31
    var bytes = [UInt8](), values = [Float]()
    for o in 0..<outputs {
        for b in 0..<(inputs / 32) {
            let levels = (0..<32).map { (o * 7 + (32 * b + $0) * 5) % (maxLevel + 1) }
            for level in levels {
                switch type {
                case .q4_1: values.append(Float(level - 8))
                case .q5_0, .q5_1: values.append(Float(level - 16))
                default: values.append(codebook[level])
                }
            }
            bytes += [0x00, 0x3C] // d = 1
            if type == .q4_1 { bytes += [0x00, 0xC8] } // m = -8
            if type == .q5_1 { bytes += [0x00, 0xCC] } // m = -16
            if type == .q5_0 || type == .q5_1 {
                var high: UInt32 = 0
                for j in 0..<32 { high |= UInt32(levels[j] >> 4) << UInt32(j) }
                bytes += [UInt8(high & 0xFF), UInt8((high >> 8) & 0xFF), UInt8((high >> 16) & 0xFF), UInt8(high >> 24)]
            }
            for j in 0..<16 { bytes.append(UInt8(levels[j] & 0x0F) | UInt8(levels[j + 16] & 0x0F) << 4) }
        }
    }
    return (bytes, values)
}
