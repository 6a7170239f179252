import Foundation
import Testing
import HoneKernels

/// GGUF block formats: sizes, quantizers byte-exact against llama.cpp and the gguf Python package,
/// dequantization against an independent decoder, and round-trip error invariants.
@Suite struct QuantFormatTests {
    @Test func blockLayouts() {
        #expect(MemoryLayout<hk_block_q8_0>.size == 34)
        #expect(MemoryLayout<hk_block_q4_0>.size == 18)
        #expect(MemoryLayout<hk_block_q4_k>.size == 144)
        #expect(MemoryLayout<hk_block_q6_k>.size == 210)
        #expect(MemoryLayout<hk_block_q8_k>.size == 292)
        #expect(MemoryLayout<hk_block_q2_k>.size == 84)
        #expect(MemoryLayout<hk_block_q3_k>.size == 110)
        #expect(MemoryLayout<hk_block_q5_k>.size == 176)
        #expect(MemoryLayout<hk_block_iq4_xs>.size == 136)
        let expected: [(hk_type, Int64, Int)] = [
            (HK_TYPE_Q4_0, 32, 18), (HK_TYPE_Q8_0, 32, 34), (HK_TYPE_Q4_K, 256, 144), (HK_TYPE_Q6_K, 256, 210),
            (HK_TYPE_Q8_K, 256, 292), (HK_TYPE_Q2_K, 256, 84), (HK_TYPE_Q3_K, 256, 110), (HK_TYPE_Q5_K, 256, 176),
            (HK_TYPE_IQ4_XS, 256, 136), (HK_TYPE_IQ2_XXS, 256, 66), (HK_TYPE_IQ2_XS, 256, 74), (HK_TYPE_IQ2_S, 256, 82),
            (HK_TYPE_IQ3_XXS, 256, 98), (HK_TYPE_IQ3_S, 256, 110), (HK_TYPE_IQ1_S, 256, 50), (HK_TYPE_IQ1_M, 256, 56),
            (HK_TYPE_TQ1_0, 256, 54), (HK_TYPE_TQ2_0, 256, 66),
        ]
        for (type, size, bytes) in expected {
            let id = Int32(type.rawValue)
            #expect(hk_quant_block_size(id) == size, "type \(id)")
            #expect(hk_quant_block_bytes(id) == bytes, "type \(id)")
            #expect(hk_quant_row_bytes(id, 4 * size) == 4 * bytes, "type \(id)")
        }
        // ggml's type ids, as stored in GGUF files.
        let ids = [HK_TYPE_Q4_0, HK_TYPE_Q8_0, HK_TYPE_Q4_K, HK_TYPE_Q6_K, HK_TYPE_Q8_K].map(\.rawValue)
        #expect(ids == [2, 8, 12, 14, 15])
        #expect(hk_quant_block_size(28) == 0 && hk_quant_block_bytes(28) == 0) // F64: no kernels
        var y = [UInt8](repeating: 0, count: 64)
        #expect(hk_quantize(Int32(HK_TYPE_Q8_0.rawValue), [Float](repeating: 0, count: 33), &y, 1, 33) == -1)
        #expect(hk_quantize(28, [Float](repeating: 0, count: 32), &y, 1, 32) == -1)
    }

    /// hk_dequantize_row against a decoder written here from the block layouts, bit for bit (both multiply in
    /// f32 in ggml's order), on llama.cpp's bytes.
    @Test(arguments: QuantType.allCases)
    func dequantizeMatchesIndependentDecoder(type: QuantType) throws {
        for tensor in try QuantFixtures.load(for: type) {
            let bytes = try #require(tensor.llama[type.rawValue])
            var actual = [Float](repeating: .nan, count: tensor.rows * tensor.columns)
            let rowBytes = type.rowBytes(tensor.columns)
            bytes.withUnsafeBytes { raw in
                actual.withUnsafeMutableBufferPointer { out in
                    for r in 0..<tensor.rows {
                        let status = hk_dequantize_row(type.id, raw.baseAddress! + r * rowBytes,
                                                       out.baseAddress! + r * tensor.columns, Int64(tensor.columns))
                        #expect(status == 0)
                    }
                }
            }
            let expected = decode(type, bytes, count: tensor.rows * tensor.columns)
            expectBitwiseEqual(actual, expected, "\(type) \(tensor.name)")
        }
    }

    /// Every value comes back within half a quantization step of the stored scales unless it was clamped at
    /// the end of the level range (then it is exactly the end level):
    /// - Q8_0: |x - x'| <= d/2 + 127 |d - f16(d)| (d = amax / 127 in f32, stored as f16);
    /// - Q4_0: the same with 8 levels, one full step for values clamped from level 16 to 15;
    /// - Q4_K: step = d * scale, offset = dmin * min per sub-block of 32 (a sub-block whose scale rounds to
    ///   zero keeps its fitted levels and is skipped);
    /// - Q6_K: step = d * scale per sub-block of 16, levels -32 ... 31.
    /// Also, on normal random data the relative RMS error stays below 0.6 % (Q8_0), 9.5 % (Q4_0), 8 % (Q4_K)
    /// and 2 % (Q6_K) (measured: 0.54 %, 8.6 %, 7.1 %, 1.8 %); Q4_1, Q5_0, Q5_1, IQ4_NL below 8.5, 4.7, 4.2, 8.2 %
    /// (measured 7.8, 4.3, 3.8, 7.6 %; bounds per block in legacyRoundTripCheck).
    @Test(arguments: QuantType.allCases)
    func roundTripStaysWithinHalfAStep(type: QuantType) throws {
        var inputs = try QuantFixtures.load(for: type).map { ($0.input, $0.rows, $0.columns) }
        var generator = SeededGenerator(seed: 301)
        let normal = (0..<(64 * 512)).map { _ in
            // Box-Muller: N(0, 1).
            let u = Float.random(in: Float.ulpOfOne...1, using: &generator)
            let v = Float.random(in: 0...1, using: &generator)
            return (-2 * log(u)).squareRoot() * cos(2 * Float.pi * v)
        }
        inputs.append((normal, 64, 512))
        for (index, (x, rows, columns)) in inputs.enumerated() {
            let matrix = QuantizedMatrix(type, rows: rows, columns: columns, floats: x)
            var failures = 0
            var first = ""
            func check(_ ok: Bool, _ i: Int, _ detail: @autoclosure () -> String) {
                if !ok {
                    failures += 1
                    if first.isEmpty { first = "value \(i): x \(x[i]) back \(matrix.values[i]) \(detail())" }
                }
            }
            let blocks = rows * columns / type.blockSize
            for b in 0..<blocks {
                let block = Array(matrix.bytes[(b * type.blockBytes)..<((b + 1) * type.blockBytes)])
                let base = b * type.blockSize
                switch type {
                case .q4_1, .q5_0, .q5_1, .iq4_nl:
                    legacyRoundTripCheck(type, block: block, x: x[base..<(base + 32)], values: matrix.values[base..<(base + 32)]) { check($0, $1, $2) }
                case .q8_0:
                    let d16 = halfToFloat(UInt16(block[0]) | UInt16(block[1]) << 8)
                    let amax = x[base..<(base + 32)].map(abs).max()!
                    let d32 = amax / 127
                    for i in base..<(base + 32) {
                        let bound = d32 / 2 * 1.000001 + 127 * abs(d32 - d16) + 1e-30
                        check(abs(x[i] - matrix.values[i]) <= bound, i, "d \(d16)")
                    }
                case .q4_0:
                    let d16 = halfToFloat(UInt16(block[0]) | UInt16(block[1]) << 8)
                    var extreme: Float = 0
                    for i in base..<(base + 32) where abs(x[i]) > abs(extreme) { extreme = x[i] }
                    let d32 = extreme / -8
                    for i in base..<(base + 32) {
                        let level = (i - base) < 16 ? block[2 + i - base] & 0x0F : block[2 + i - base - 16] >> 4
                        let steps: Float = level == 15 ? 1 : 0.5
                        let bound = abs(d32) * steps * 1.000001 + 8 * abs(d32 - d16) + 1e-30
                        check(abs(x[i] - matrix.values[i]) <= bound, i, "d \(d16) level \(level)")
                    }
                case .q4_k:
                    let d = halfToFloat(UInt16(block[0]) | UInt16(block[1]) << 8)
                    let dmin = halfToFloat(UInt16(block[2]) | UInt16(block[3]) << 8)
                    for s in 0..<8 {
                        let (scale, min) = q4kScaleMin(Array(block[4..<16]), s)
                        let step = d * Float(scale), offset = dmin * Float(min)
                        if step == 0 { continue }
                        for l in 0..<32 {
                            let i = base + 32 * s + l
                            let t = (x[i] + offset) / step
                            if t >= -0.5 && t <= 15.5 {
                                let bound = step / 2 * 1.0001 + 1e-6 * (abs(x[i]) + offset)
                                check(abs(x[i] - matrix.values[i]) <= bound, i, "step \(step)")
                            } else {
                                check(matrix.values[i] == step * (t < 0 ? 0 : 15) - offset, i, "clamped, step \(step)")
                            }
                        }
                    }
                case .q2_k, .q5_k:
                    // Like Q4_K: Q2_K over 16 sub-blocks of 16 with levels 0...3, Q5_K over 8 of 32 with 0...31.
                    let (count, size, top) = type == .q2_k ? (16, 16, 3) : (8, 32, 31)
                    let (dOffset, minOffset) = type == .q2_k ? (80, 82) : (0, 2)
                    let d = halfToFloat(UInt16(block[dOffset]) | UInt16(block[dOffset + 1]) << 8)
                    let dmin = halfToFloat(UInt16(block[minOffset]) | UInt16(block[minOffset + 1]) << 8)
                    for s in 0..<count {
                        let (scale, min) = type == .q2_k ? (block[s] & 0x0F, block[s] >> 4) : q4kScaleMin(Array(block[4..<16]), s)
                        let step = d * Float(scale), offset = dmin * Float(min)
                        if step == 0 { continue }
                        for l in 0..<size {
                            let i = base + size * s + l
                            let t = (x[i] + offset) / step
                            if t >= -0.5 && t <= Float(top) + 0.5 {
                                let bound = step / 2 * 1.0001 + 1e-6 * (abs(x[i]) + offset)
                                check(abs(x[i] - matrix.values[i]) <= bound, i, "step \(step)")
                            } else {
                                check(matrix.values[i] == step * Float(t < 0 ? 0 : top) - offset, i, "clamped, step \(step)")
                            }
                        }
                    }
                case .q3_k:
                    let d = halfToFloat(UInt16(block[108]) | UInt16(block[109]) << 8)
                    for s in 0..<16 {
                        let low = s < 8 ? block[96 + s] & 0x0F : block[96 + s - 8] >> 4
                        let high = (block[104 + s % 4] >> (2 * (s / 4))) & 3
                        let step = d * Float(Int(low | high << 4) - 32)
                        if step == 0 { continue }
                        for l in 0..<16 {
                            let i = base + 16 * s + l
                            let t = x[i] / step
                            if t >= -4.5 && t <= 3.5 {
                                check(abs(x[i] - matrix.values[i]) <= abs(step) / 2 * 1.0001 + 1e-6 * abs(x[i]), i, "step \(step)")
                            } else {
                                check(matrix.values[i] == step * (t < 0 ? -4 : 3), i, "clamped, step \(step)")
                            }
                        }
                    }
                case .iq4_xs:
                    // The nearest of the 16 non-linear levels times the sub-block's step, as the quantizer saw it: it
                    // chose with d in f32, stored in f16 (relative change <= 2^-11, so a level L moves by at most
                    // |step| * 127 / 2048 and the choice can differ from the stored grid's nearest by twice that).
                    let d = halfToFloat(UInt16(block[0]) | UInt16(block[1]) << 8)
                    let scalesHigh = Int(block[2]) | Int(block[3]) << 8
                    for s in 0..<8 {
                        let scale = Int((block[4 + s / 2] >> (4 * (s % 2))) & 0x0F) | ((scalesHigh >> (2 * s)) & 3) << 4
                        let step = d * Float(scale - 32)
                        if step == 0 { continue }
                        for l in 0..<32 {
                            let i = base + 32 * s + l
                            let nearest = iq4Levels.map { abs(x[i] - step * Float($0)) }.min()!
                            let bound = nearest * 1.0001 + abs(step) * 127 / 1024 + 1e-6 * abs(x[i])
                            check(abs(x[i] - matrix.values[i]) <= bound, i, "step \(step)")
                        }
                    }
                case .q6_k:
                    let d = halfToFloat(UInt16(block[208]) | UInt16(block[209]) << 8)
                    for s in 0..<16 {
                        let step = d * Float(Int8(bitPattern: block[192 + s]))
                        if step == 0 { continue }
                        for l in 0..<16 {
                            let i = base + 16 * s + l
                            let t = x[i] / step
                            if t >= -32.5 && t <= 31.5 {
                                let bound = abs(step) / 2 * 1.0001 + 1e-6 * abs(x[i])
                                check(abs(x[i] - matrix.values[i]) <= bound, i, "step \(step)")
                            } else {
                                check(matrix.values[i] == step * (t < 0 ? -32 : 31), i, "clamped, step \(step)")
                            }
                        }
                    }
                }
            }
            #expect(failures == 0, "\(type) input \(index): \(failures) values off; first \(first)")
            if index == inputs.count - 1 {
                let error = zip(x, matrix.values).reduce(Float(0)) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
                let energy = x.reduce(Float(0)) { $0 + $1 * $1 }
                // Q2_K, Q3_K, Q5_K, IQ4_XS measured 0.299, 0.151, 0.036, 0.077 (a C harness, other normal draws).
                let limit: Float = [.q8_0: 0.006, .q4_0: 0.095, .q4_k: 0.08, .q6_k: 0.02,
                                    .q4_1: 0.085, .q5_0: 0.047, .q5_1: 0.042, .iq4_nl: 0.082,
                                    .q2_k: 0.32, .q3_k: 0.17, .q5_k: 0.04, .iq4_xs: 0.085][type]!
                #expect((error / energy).squareRoot() < limit, "\(type) relative RMS error")
            }
        }
    }

    // MARK: - Independent decoder

    /// IQ4_NL/IQ4_XS's levels, as the format defines them.
    private let iq4Levels: [Int] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113]

    private func q4kScaleMin(_ packed: [UInt8], _ s: Int) -> (UInt8, UInt8) {
        if s < 4 { return (packed[s] & 63, packed[s + 4] & 63) }
        return ((packed[s + 4] & 0x0F) | ((packed[s - 4] >> 6) << 4), (packed[s + 4] >> 4) | ((packed[s] >> 6) << 4))
    }

    private func decode(_ type: QuantType, _ bytes: [UInt8], count: Int) -> [Float] {
        var out = [Float](repeating: 0, count: count)
        for b in 0..<(count / type.blockSize) {
            let block = Array(bytes[(b * type.blockBytes)..<((b + 1) * type.blockBytes)])
            let base = b * type.blockSize
            func half(_ offset: Int) -> Float { halfToFloat(UInt16(block[offset]) | UInt16(block[offset + 1]) << 8) }
            switch type {
            case .q4_1, .q5_0, .q5_1, .iq4_nl: legacyDecode(type, block: block, into: &out, at: base)
            case .q8_0:
                for i in 0..<32 { out[base + i] = Float(Int8(bitPattern: block[2 + i])) * half(0) }
            case .q4_0:
                for j in 0..<16 {
                    out[base + j] = Float(Int(block[2 + j] & 0x0F) - 8) * half(0)
                    out[base + 16 + j] = Float(Int(block[2 + j] >> 4) - 8) * half(0)
                }
            case .q4_k:
                for s in 0..<8 {
                    let (scale, min) = q4kScaleMin(Array(block[4..<16]), s)
                    for l in 0..<32 {
                        let level = (block[16 + 32 * (s / 2) + l] >> (4 * (s % 2))) & 0x0F
                        out[base + 32 * s + l] = (half(0) * Float(scale)) * Float(level) - half(2) * Float(min)
                    }
                }
            case .q2_k:
                for v in 0..<256 {
                    let scale = block[v / 16], level = (block[16 + 32 * (v / 128) + v % 32] >> (2 * ((v % 128) / 32))) & 3
                    out[base + v] = (half(80) * Float(scale & 0x0F)) * Float(level) - half(82) * Float(scale >> 4)
                }
            case .q3_k:
                for v in 0..<256 {
                    let s = v / 16
                    let low = s < 8 ? block[96 + s] & 0x0F : block[96 + s - 8] >> 4
                    let scale = Int(low | ((block[104 + s % 4] >> (2 * (s / 4))) & 3) << 4) - 32
                    let bits = Int((block[32 + 32 * (v / 128) + v % 32] >> (2 * ((v % 128) / 32))) & 3)
                    let level = bits - ((block[v % 32] >> (v / 32)) & 1 == 1 ? 0 : 4)
                    out[base + v] = (half(108) * Float(scale)) * Float(level)
                }
            case .q5_k:
                for s in 0..<8 {
                    let (scale, min) = q4kScaleMin(Array(block[4..<16]), s)
                    for l in 0..<32 {
                        let low = (block[48 + 32 * (s / 2) + l] >> (4 * (s % 2))) & 0x0F
                        let level = low | ((block[16 + l] >> s) & 1) << 4
                        out[base + 32 * s + l] = (half(0) * Float(scale)) * Float(level) - half(2) * Float(min)
                    }
                }
            case .iq4_xs:
                let scalesHigh = Int(block[2]) | Int(block[3]) << 8
                for s in 0..<8 {
                    let scale = Int((block[4 + s / 2] >> (4 * (s % 2))) & 0x0F) | ((scalesHigh >> (2 * s)) & 3) << 4
                    for j in 0..<16 {
                        let packed = block[8 + 16 * s + j]
                        out[base + 32 * s + j] = (half(0) * Float(scale - 32)) * Float(iq4Levels[Int(packed & 0x0F)])
                        out[base + 32 * s + 16 + j] = (half(0) * Float(scale - 32)) * Float(iq4Levels[Int(packed >> 4)])
                    }
                }
            case .q6_k:
                for v in 0..<256 {
                    let halfIndex = v / 128, within = v % 128, quarter = within / 32, l = within % 32
                    let low = block[64 * halfIndex + 32 * (quarter & 1) + l]
                    let nibble = quarter < 2 ? low & 0x0F : low >> 4
                    let top = (block[128 + 32 * halfIndex + l] >> (2 * quarter)) & 3
                    let level = Int(nibble | top << 4) - 32
                    out[base + v] = half(208) * Float(Int8(bitPattern: block[192 + v / 16])) * Float(level)
                }
            }
        }
        return out
    }
}

extension KernelTests {
    // In the serialized suite because it sets the thread count (process-wide).
    /// llama-quantize --pure (ggml's reference quantizers) and gguf-py's numpy quantizer wrote these bytes from
    /// the same f32 inputs, which include all-zero rows, one huge value per block, negative maxima, ties at .5,
    /// tiny values and zero sub-blocks (see tools/oracle/make_quant_fixtures.py).
    @Test(arguments: QuantType.allCases)
    func quantizersMatchLlamaCppAndGgufPy(type: QuantType) throws {
        for tensor in try QuantFixtures.load(for: type) {
            let expected = try #require(tensor.llama[type.rawValue], "\(tensor.name) has no \(type) fixture")
            let rowBytes = type.rowBytes(tensor.columns)
            var rowByRow = [UInt8](repeating: 0, count: tensor.rows * rowBytes)
            tensor.input.withUnsafeBufferPointer { x in
                rowByRow.withUnsafeMutableBytes { y in
                    for r in 0..<tensor.rows {
                        let source = x.baseAddress! + r * tensor.columns
                        type.quantizeRow(source, y.baseAddress! + r * rowBytes, tensor.columns)
                    }
                }
            }
            expectSameBytes(rowByRow, expected, blockBytes: type.blockBytes, "\(type) \(tensor.name) vs llama.cpp")
            var whole = [UInt8](repeating: 0, count: tensor.rows * rowBytes)
            for threads: Int32 in [1, 2] {
                let status = withThreads(threads) {
                    hk_quantize(type.id, tensor.input, &whole, Int64(tensor.rows), Int64(tensor.columns))
                }
                #expect(status == 0)
                expectSameBytes(whole, expected, blockBytes: type.blockBytes,
                                "\(type) \(tensor.name) hk_quantize \(threads) threads")
            }
            if let python = tensor.ggufPy[type.rawValue] {
                expectSameBytes(rowByRow, python, blockBytes: type.blockBytes, "\(type) \(tensor.name) vs gguf-py")
            }
        }
    }

    /// Q8_K (ggml's quantize_row_q8_K_ref): d = 1 / (-127 / max) where max is the first value of largest
    /// magnitude, q = min(127, round-half-even(x * -127 / max)), bsums over 16; the AVX-512 code gives the
    /// same bytes as the scalar one.
    @Test func q8kMatchesFormulaOnEveryISA() {
        var generator = SeededGenerator(seed: 302)
        var x = generator.floats(4 * 256, in: -3...3)
        for i in 256..<512 { x[i] = 0 }                    // an all-zero block
        x[600] = 5; x[700] = -5                            // tie in magnitude: the first one wins
        for i in 768..<1024 { x[i] = Float((i % 9) - 4) * 0.25 } // exact halves after scaling
        var expected = [UInt8]()
        for b in 0..<4 {
            let block = Array(x[(256 * b)..<(256 * (b + 1))])
            var extreme: Float = 0
            for v in block where abs(v) > abs(extreme) { extreme = v }
            var qs = [Int8](repeating: 0, count: 256), d: Float = 0
            if extreme != 0 {
                let multiplier = -127 / extreme
                qs = block.map { Int8(min(127, (multiplier * $0).rounded(.toNearestOrEven))) }
                d = 1 / multiplier
            }
            withUnsafeBytes(of: d.bitPattern.littleEndian) { expected += $0 }
            expected += qs.map { UInt8(bitPattern: $0) }
            for j in 0..<16 {
                let sum = Int16(qs[(16 * j)..<(16 * j + 16)].reduce(0) { $0 + Int($1) })
                withUnsafeBytes(of: sum.littleEndian) { expected += $0 }
            }
        }
        forEachISA { isa in
            var actual = [UInt8](repeating: 0xAA, count: 4 * 292)
            hk_quantize_row_q8_k(x, &actual, 1024)
            expectSameBytes(actual, expected, blockBytes: 292, "Q8_K \(isaNames[Int(isa)])")
            var back = [Float](repeating: .nan, count: 1024)
            hk_dequantize_row_q8_k(actual, &back, 1024)
            for i in 0..<1024 {
                let d = abs(x[(i / 256) * 256..<(i / 256 + 1) * 256].map(abs).max()! / 127)
                #expect(abs(back[i] - x[i]) <= d / 2 * 1.0001 + 1e-30, "Q8_K round trip \(i)")
            }
        }
    }

    /// The activation quantizer for Q8_0/Q4_0 weights: d = amax / 127, q = round-half-even(x * 127 / amax), the
    /// same bytes at every ISA level.
    @Test func activationA32MatchesFormulaOnEveryISA() {
        var generator = SeededGenerator(seed: 303)
        var x = generator.floats(32 * 9, in: -2...2)
        for i in 32..<64 { x[i] = 0 }
        for i in 64..<96 { x[i] = Float((i % 7) - 3) + 0.5 } // with amax 127 the multiplier is 1: exact ties
        x[64] = 127
        x[96] = 1e-31                                      // tiny block: counts as zero
        for i in 97..<128 { x[i] = 0 }
        var expectedQ = [Int8](), expectedD = [Float]()
        for b in 0..<9 {
            let block = Array(x[(32 * b)..<(32 * b + 32)])
            var amax = block.map(abs).max()!
            if amax < 1e-30 { amax = 0 }
            let multiplier: Float = amax != 0 ? 127 / amax : 0
            expectedD.append(amax / 127)
            expectedQ += block.map { Int8(($0 * multiplier).rounded(.toNearestOrEven)) }
        }
        forEachISA { isa in
            var q = [Int8](repeating: 0x55, count: x.count), d = [Float](repeating: .nan, count: 9)
            hk_quantize_activations_a32(x, &q, &d, Int64(x.count))
            #expect(q == expectedQ, "values \(isaNames[Int(isa)])")
            expectBitwiseEqual(d, expectedD, "scales \(isaNames[Int(isa)])")
        }
    }
}
