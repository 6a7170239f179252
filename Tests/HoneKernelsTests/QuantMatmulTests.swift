import Testing
import HoneKernels

/// Matrix products over quantized weights (hk_matmul_rows_quant, hk_matmul_many_quant, ..._sgemm) against
/// the integer reference (same activation quantization, exact integer block sums, double accumulation) and
/// the f32 reference (dequantized weights times unquantized activations).
///
/// Bounds:
/// - vs the integer reference only f32 rounding differs: each block's integer sum is scaled and accumulated in
///   f32 lanes, i.e. about in / 32 + 16 roundings of 2^-24 relative to sum |w x| in the worst case and far
///   fewer with random signs; the bound is 1e-6 * sum |w x| (measured at most 1.1e-7).
/// - vs the f32 reference, the activation rounding (activationQuantizationBounds: half a step per value) plus
///   2e-6 * sum |w x| of f32 rounding.
extension KernelTests {
    private static func shapes(_ type: QuantType) -> [(inputs: Int, outputs: Int)] {
        let block = type.blockSize
        // One block, an odd number of blocks (the kernels' pair and group-of-four tails), and a real width.
        return [(block, 5), (3 * block, 17), (7 * block, 3), (2048, 37)]
    }

    /// The two references and their bounds for one product, computed once for every ISA level.
    private struct Expected {
        let integer: [Float], float: [Float], integerBounds: [Float], floatBounds: [Float]

        init(_ w: QuantizedMatrix, _ x: [Float], rows: Int) {
            integer = quantMultiply(.integerReference, w, x, rows: rows)
            float = quantMultiply(.rowsReference, w, x, rows: rows)
            let magnitudes = quantMagnitudes(w, x, rows: rows)
            integerBounds = magnitudes.map { 1e-6 * $0 + 1e-30 }
            floatBounds = zip(activationQuantizationBounds(w, x, rows: rows), magnitudes).map { $0 + 2e-6 * $1 + 1e-30 }
        }

        func check(_ actual: [Float], _ context: String) {
            expectWithin(actual, integer, bounds: integerBounds, "\(context) vs integer reference")
            expectWithin(actual, float, bounds: floatBounds, "\(context) vs f32 reference")
        }
    }

    @Test(arguments: QuantType.allCases)
    func quantMatmulRowsMatchesReferences(type: QuantType) {
        var generator = SeededGenerator(seed: 310)
        for (inputs, outputs) in Self.shapes(type) {
            let w = QuantizedMatrix(type, rows: outputs, columns: inputs, generator: &generator)
            // Activations with outliers, as real hidden states have.
            var x = generator.floats(16 * inputs)
            for i in stride(from: 0, to: x.count, by: 37) { x[i] *= 8 }
            for rows in 1...16 {
                let slice = Array(x.prefix(rows * inputs))
                let expected = Expected(w, slice, rows: rows)
                forEachQuantRoute { route in
                    expected.check(quantMultiply(.rows, w, slice, rows: rows),
                                   "\(type) rows \(route) \(rows)×\(inputs)→\(outputs)")
                }
            }
        }
    }

    /// Bigger shapes through the parallel path: long rows, many outputs, ragged splits.
    @Test(arguments: QuantType.allCases)
    func quantMatmulRowsMatchesReferencesOnLargeShapes(type: QuantType) {
        var generator = SeededGenerator(seed: 311)
        for (inputs, outputs) in [(5632, 13), (2048, 301)] {
            let w = QuantizedMatrix(type, rows: outputs, columns: inputs, generator: &generator)
            let x = generator.floats(16 * inputs)
            for rows in [1, 4, 16] {
                let slice = Array(x.prefix(rows * inputs))
                let expected = Expected(w, slice, rows: rows)
                forEachQuantRoute { route in
                    let actual = withThreads(2) { quantMultiply(.rows, w, slice, rows: rows) }
                    expected.check(actual, "\(type) rows \(route) \(rows)×\(inputs)→\(outputs)")
                }
            }
        }
    }

    @Test(arguments: QuantType.allCases)
    func quantMatmulManyMatchesReferences(type: QuantType) {
        var generator = SeededGenerator(seed: 312)
        // Tiles of 16 outputs with ragged ends, chunks of four tiles, row tiles of 8 with ragged ends; 1 and 9
        // rows go through the row kernel.
        let block = type.blockSize
        let shapes = [(1, block, 1), (9, 256, 20), (17, 3 * block, 70), (33, 2048, 17), (20, 512, 130)]
        for (rows, inputs, outputs) in shapes {
            let w = QuantizedMatrix(type, rows: outputs, columns: inputs, generator: &generator)
            let x = generator.floats(rows * inputs)
            let expectedInteger = Expected(w, x, rows: rows)
            forEachQuantRoute { route in
                for threads: Int32 in [1, 2] {
                    let actual = withThreads(threads) { quantMultiply(.many, w, x, rows: rows) }
                    expectedInteger.check(actual,
                                          "\(type) many \(route) \(threads)T \(rows)×\(inputs)→\(outputs)")
                }
            }
            // The sgemm strategy does not quantize the activations: f32 rounding only.
            let expected = quantMultiply(.manyReference, w, x, rows: rows)
            let bounds = quantMagnitudes(w, x, rows: rows).map { 1e-5 * $0 + 1e-30 }
            for threads: Int32 in [1, 2] {
                let actual = withThreads(threads) { quantMultiply(.manySgemm, w, x, rows: rows) }
                expectWithin(actual, expected, bounds: bounds,
                             "\(type) sgemm \(threads)T \(rows)×\(inputs)→\(outputs)")
            }
        }
    }

    /// The int8 GEMM's chunks, however the threads share them (each its own chunks only, then helping finish the
    /// others' row blocks, or the others' first so that chunks are repacked and run by threads that do not own
    /// them), give one thread's bits: 19 tiles in 5 chunks, 150 rows in blocks of 64.
    @Test(arguments: QuantType.allCases)
    func quantMatmulManyIsTheSameHoweverThreadsShare(type: QuantType) {
        var generator = SeededGenerator(seed: 314)
        let (rows, inputs, outputs) = (150, 1024, 301)
        let w = QuantizedMatrix(type, rows: outputs, columns: inputs, generator: &generator)
        let x = generator.floats(rows * inputs)
        defer { hk_set_gemm_sharing(Int32(HK_GEMM_SHARING_FINISH_OTHERS)) }
        forEachQuantRoute { route in
            hk_set_gemm_sharing(Int32(HK_GEMM_SHARING_STATIC))
            let alone = withThreads(1) { quantMultiply(.many, w, x, rows: rows) }
            for sharing in [HK_GEMM_SHARING_STATIC, HK_GEMM_SHARING_FINISH_OTHERS, HK_GEMM_SHARING_OTHERS_FIRST] {
                hk_set_gemm_sharing(Int32(sharing))
                for threads: Int32 in [2, 3] {
                    expectBitwiseEqual(withThreads(threads) { quantMultiply(.many, w, x, rows: rows) }, alone,
                                       "\(type) many \(route), \(threads) threads, sharing \(sharing)")
                }
            }
        }
    }

    /// Same code for every output: 1 and 2 threads give the same bits, for both kernels.
    @Test(arguments: QuantType.allCases)
    func quantMatmulIsIndependentOfThreadCount(type: QuantType) {
        var generator = SeededGenerator(seed: 313)
        let w = QuantizedMatrix(type, rows: 301, columns: 1024, generator: &generator)
        for (product, rows) in [(QuantProduct.rows, 5), (.many, 40)] {
            let x = generator.floats(rows * 1024)
            forEachQuantRoute { route in
                let single = withThreads(1) { quantMultiply(product, w, x, rows: rows) }
                let double = withThreads(2) { quantMultiply(product, w, x, rows: rows) }
                let again = withThreads(2) { quantMultiply(product, w, x, rows: rows) }
                expectBitwiseEqual(double, single, "\(type) \(product) 2 vs 1 threads \(route)")
                expectBitwiseEqual(again, double, "\(type) \(product) repeat \(route)")
            }
        }
    }

    /// Batched greedy decoding relies on this (as for the f16 kernel): a row's result has the same bits
    /// whether it is multiplied alone or with up to 15 others.
    @Test(arguments: QuantType.allCases)
    func quantMatmulRowsIsIndependentOfRowCount(type: QuantType) {
        var generator = SeededGenerator(seed: 314)
        let (inputs, outputs) = (2048, 200)
        let w = QuantizedMatrix(type, rows: outputs, columns: inputs, generator: &generator)
        let x = generator.floats(16 * inputs)
        forEachQuantRoute { route in
            let alone = (0..<16).map { quantMultiply(.rows, w, Array(x[($0 * inputs)..<(($0 + 1) * inputs)]), rows: 1) }
            for rows in [2, 3, 5, 8, 9, 16] {
                let together = quantMultiply(.rows, w, Array(x.prefix(rows * inputs)), rows: rows)
                for row in 0..<rows {
                    expectBitwiseEqual(Array(together[(row * outputs)..<((row + 1) * outputs)]), alone[row],
                                       "\(type) \(route) row \(row) of \(rows)")
                }
            }
        }
    }

    /// Exact small case independent of both references: weights and activations that the formats and the
    /// activation quantizers represent exactly (all scales 1), so every path must give the exact integer
    /// products (all partial sums stay below 2^24).
    @Test(arguments: QuantType.allCases)
    func quantMatmulExactIntegers(type: QuantType) {
        let inputs = type.blockSize * 2, outputs = 19, rows = 20 // the int8 GEMM from 17 rows
        var w = [Float](repeating: 0, count: outputs * inputs)
        let matrix: QuantizedMatrix
        switch type {
        case .q4_1, .q5_0, .q5_1, .iq4_nl:
            let exact = legacyExactMatrix(type, outputs: outputs, inputs: inputs)
            w = exact.values
            matrix = QuantizedMatrix(type, rows: outputs, columns: inputs, bytes: exact.bytes)
        case .q8_0, .q4_0:
            // Q8_0: -127 ... 127 with -127 in every block (d = 1); Q4_0: -8 ... 7 with -8 in every block (d = 1).
            for o in 0..<outputs {
                for i in 0..<inputs {
                    w[o * inputs + i] = type == .q8_0 ? Float((o * 31 + i * 7) % 255 - 127)
                                                      : Float((o * 5 + i * 3) % 16 - 8)
                }
                for b in stride(from: 0, to: inputs, by: 32) { w[o * inputs + b] = type == .q8_0 ? -127 : -8 }
            }
            matrix = QuantizedMatrix(type, rows: outputs, columns: inputs, floats: w)
        case .q4_k:
            // d = dmin = 1, every scale 1 and min 8: value = level - 8.
            var bytes = [UInt8]()
            for o in 0..<outputs {
                for b in 0..<(inputs / 256) {
                    bytes += [0x00, 0x3C, 0x00, 0x3C]                        // d, dmin
                    bytes += [UInt8](repeating: 1, count: 4) + [UInt8](repeating: 8, count: 4) // scales, mins 0..3
                    bytes += [UInt8](repeating: 0x01 | 0x08 << 4, count: 4)  // scales, mins 4..7 (low bits)
                    var levels = [UInt8](repeating: 0, count: 256)
                    for v in 0..<256 {
                        levels[v] = UInt8((o * 5 + (256 * b + v) * 3) % 16)
                        w[o * inputs + 256 * b + v] = Float(Int(levels[v]) - 8)
                    }
                    for c in 0..<4 {
                        for l in 0..<32 { bytes.append(levels[64 * c + l] | levels[64 * c + 32 + l] << 4) }
                    }
                }
            }
            matrix = QuantizedMatrix(type, rows: outputs, columns: inputs, bytes: bytes)
        case .q2_k, .q3_k, .q5_k, .iq4_xs:
            (matrix, w) = exactKMoreMatrix(type, outputs: outputs, inputs: inputs)
        case .q6_k:
            // d = 1, every scale 1: value = level - 32.
            var bytes = [UInt8]()
            for o in 0..<outputs {
                for b in 0..<(inputs / 256) {
                    var levels = [UInt8](repeating: 0, count: 256)
                    for v in 0..<256 {
                        levels[v] = UInt8((o * 11 + (256 * b + v) * 7) % 64)
                        w[o * inputs + 256 * b + v] = Float(Int(levels[v]) - 32)
                    }
                    var low = [UInt8](repeating: 0, count: 128), high = [UInt8](repeating: 0, count: 64)
                    for half in 0..<2 {
                        for l in 0..<32 {
                            let q = (0..<4).map { levels[128 * half + 32 * $0 + l] }
                            low[64 * half + l] = (q[0] & 0x0F) | (q[2] & 0x0F) << 4
                            low[64 * half + 32 + l] = (q[1] & 0x0F) | (q[3] & 0x0F) << 4
                            high[32 * half + l] = q[0] >> 4 | (q[1] >> 4) << 2 | (q[2] >> 4) << 4 | (q[3] >> 4) << 6
                        }
                    }
                    bytes += low + high + [UInt8](repeating: 1, count: 16) + [0x00, 0x3C]
                }
            }
            matrix = QuantizedMatrix(type, rows: outputs, columns: inputs, bytes: bytes)
        }
        #expect(matrix.values == w, "\(type) represents the weights exactly")
        // Activations -127 ... 127 with 127 in every block of 32: activation scales are exactly +-1.
        var x = (0..<(rows * inputs)).map { Float(($0 * 13) % 255 - 127) }
        for b in stride(from: 0, to: x.count, by: 32) { x[b] = 127 }
        var expected = [Float](repeating: 0, count: rows * outputs)
        for r in 0..<rows {
            for o in 0..<outputs {
                expected[r * outputs + o] = (0..<inputs).reduce(Float(0)) {
                    $0 + w[o * inputs + $1] * x[r * inputs + $1]
                }
            }
        }
        #expect(quantMultiply(.integerReference, matrix, x, rows: rows) == expected, "\(type) integer reference")
        #expect(quantMultiply(.rowsReference, matrix, x, rows: rows) == expected, "\(type) f32 reference")
        forEachQuantRoute { route in
            let few = Array(x.prefix(3 * inputs))
            #expect(quantMultiply(.rows, matrix, few, rows: 3) == Array(expected.prefix(3 * outputs)),
                    "\(type) rows \(route)")
            #expect(quantMultiply(.many, matrix, x, rows: rows) == expected, "\(type) many \(route)")
        }
    }

    /// The largest levels every format stores against the largest activations: the AVX2 kernels add 8-bit
    /// products in 16-bit lanes (vpmaddubsw, then partial sums before widening), which must not saturate.
    /// Every byte but the f16 scales is set to the level field's extreme: 0xFF (Q4 nibbles 15, Q5 31, Q6_K 63,
    /// Q3_K 7, Q2_K 3, K scales at their top), Q8_0's -128, and the IQ4 codebook's index 0 (-127).
    @Test(arguments: QuantType.allCases)
    func quantMatmulLargestLevelsDoNotSaturate(type: QuantType) {
        let (inputs, outputs, rows) = (512, 19, 20) // the int8 GEMM from 17 rows
        let fill: UInt8 = type == .q8_0 ? 0x80 : [.iq4_nl, .iq4_xs].contains(type) ? 0x00 : 0xFF
        let halfFloats: [Int] // byte offsets of the block's f16 scale and min, set to 1.0
        switch type {
        case .q8_0, .q4_0, .q5_0, .iq4_nl, .iq4_xs: halfFloats = [0]
        case .q4_1, .q5_1, .q4_k, .q5_k: halfFloats = [0, 2]
        case .q2_k: halfFloats = [type.blockBytes - 4, type.blockBytes - 2]
        case .q3_k, .q6_k: halfFloats = [type.blockBytes - 2]
        }
        var bytes = [UInt8](repeating: fill, count: outputs * type.rowBytes(inputs))
        for block in stride(from: 0, to: bytes.count, by: type.blockBytes) {
            for offset in halfFloats { bytes[block + offset] = 0x00; bytes[block + offset + 1] = 0x3C }
        }
        let matrix = QuantizedMatrix(type, rows: outputs, columns: inputs, bytes: bytes)
        for sign: Float in [1, -1] {
            // Every activation block's values all equal: each quantizes to +-127.
            let x = [Float](repeating: sign, count: rows * inputs)
            let expected = Expected(matrix, x, rows: rows)
            forEachQuantRoute { route in
                expected.check(quantMultiply(.many, matrix, x, rows: rows), "\(type) many \(route) x = \(sign)")
                expected.check(quantMultiply(.rows, matrix, x, rows: rows), "\(type) rows \(route) x = \(sign)")
            }
        }
    }

    @Test func quantMatmulRejectsBadArguments() {
        var y = [Float](repeating: 0, count: 4)
        let w = [UInt8](repeating: 0, count: 256)
        let x = [Float](repeating: 0, count: 64)
        #expect(hk_matmul_rows_quant(Int32(HK_TYPE_Q8_K.rawValue), w, x, &y, 1, 32, 1) == -1)
        #expect(hk_matmul_rows_quant(Int32(HK_TYPE_Q8_0.rawValue), w, x, &y, 1, 33, 1) == -1)
        #expect(hk_matmul_many_quant(Int32(HK_TYPE_Q4_K.rawValue), w, x, &y, 1, 32, 1) == -1)
        #expect(hk_matmul_rows_quant(Int32(HK_TYPE_Q8_0.rawValue), w, x, &y, 0, 32, 1) == 0)
    }
}
