import Testing
import HoneKernels

enum MatmulWeightType: CaseIterable, Sendable { case f32, f16, bf16 }

/// A random [out, in] weight in the given storage, and the f32 values it stands for.
struct Weights {
    var f32: [Float] = []
    var halves: [UInt16] = [] // f16 or bf16 bits
    var values: [Float] = []  // what the kernel multiplies by

    init(_ type: MatmulWeightType, count: Int, generator: inout SeededGenerator) {
        let random = generator.floats(count)
        switch type {
        case .f32:
            f32 = random
            values = random
        case .f16:
            halves = [UInt16](repeating: 0, count: count)
            hk_convert_f32_to_f16_ref(random, &halves, count)
            values = [Float](repeating: 0, count: count)
            hk_convert_f16_to_f32_ref(halves, &values, count)
        case .bf16:
            halves = [UInt16](repeating: 0, count: count)
            hk_convert_f32_to_bf16_ref(random, &halves, count)
            values = [Float](repeating: 0, count: count)
            hk_convert_bf16_to_f32_ref(halves, &values, count)
        }
    }
}

private func multiply(_ type: MatmulWeightType, _ weights: Weights, _ x: [Float], rows: Int, in inputs: Int, out outputs: Int,
                      reference: Bool) -> [Float] {
    var y = [Float](repeating: .nan, count: rows * outputs)
    let (r, i, o) = (Int32(rows), Int32(inputs), Int32(outputs))
    switch (type, reference) {
    case (.f32, false): hk_matmul_rows_f32(weights.f32, x, &y, r, i, o)
    case (.f32, true): hk_matmul_rows_f32_ref(weights.f32, x, &y, r, i, o)
    case (.f16, false): hk_matmul_rows_f16(weights.halves, x, &y, r, i, o)
    case (.f16, true): hk_matmul_rows_f16_ref(weights.halves, x, &y, r, i, o)
    case (.bf16, false): hk_matmul_rows_bf16(weights.halves, x, &y, r, i, o)
    case (.bf16, true): hk_matmul_rows_bf16_ref(weights.halves, x, &y, r, i, o)
    }
    return y
}

/// Error bound for an f32 dot product: relative 1e-5 of sum |w_i x_i|. The kernels sum in 16 (or 8)
/// lanes and then reduce, so each result carries about (in / 16 + 4) roundings of at most 2^-24 of that
/// sum in the worst case (2e-5 at in = 5632), and far fewer in practice since random-sign errors cancel;
/// the reference sums in double. The small absolute floor covers sums that are exactly zero.
func dotProductBounds(_ weights: [Float], _ x: [Float], rows: Int, in inputs: Int, out outputs: Int) -> [Float] {
    var bounds = [Float](repeating: 0, count: rows * outputs)
    for r in 0..<rows {
        for o in 0..<outputs {
            var magnitude: Float = 0
            for i in 0..<inputs { magnitude += abs(weights[o * inputs + i] * x[r * inputs + i]) }
            bounds[r * outputs + o] = 1e-5 * magnitude + 1e-30
        }
    }
    return bounds
}

extension KernelTests {
    @Test(arguments: MatmulWeightType.allCases)
    func matmulRowsMatchesReferenceOnOddShapes(type: MatmulWeightType) {
        var generator = SeededGenerator(seed: 10)
        for inputs in [1, 15, 16, 17, 64, 65, 100] {
            for outputs in [1, 3, 4, 5, 9] {
                let weights = Weights(type, count: outputs * inputs, generator: &generator)
                let x = generator.floats(16 * inputs)
                for rows in 1...16 {
                    let xRows = Array(x.prefix(rows * inputs))
                    let expected = multiply(type, weights, xRows, rows: rows, in: inputs, out: outputs, reference: true)
                    let bounds = dotProductBounds(weights.values, xRows, rows: rows, in: inputs, out: outputs)
                    forEachISA { isa in
                        let actual = multiply(type, weights, xRows, rows: rows, in: inputs, out: outputs, reference: false)
                        expectWithin(actual, expected, bounds: bounds,
                                     "\(type) \(isaNames[Int(isa)]) rows \(rows) in \(inputs) out \(outputs)")
                    }
                }
            }
        }
    }

    /// Real layer widths, big enough for the parallel path and for long tails of in % 16.
    @Test(arguments: MatmulWeightType.allCases)
    func matmulRowsMatchesReferenceOnLargeShapes(type: MatmulWeightType) {
        var generator = SeededGenerator(seed: 11)
        for (inputs, outputs) in [(2048, 37), (5632, 13), (2051, 64), (100, 1025)] {
            let weights = Weights(type, count: outputs * inputs, generator: &generator)
            let x = generator.floats(16 * inputs)
            for rows in [1, 3, 8, 16] {
                let xRows = Array(x.prefix(rows * inputs))
                let expected = multiply(type, weights, xRows, rows: rows, in: inputs, out: outputs, reference: true)
                let bounds = dotProductBounds(weights.values, xRows, rows: rows, in: inputs, out: outputs)
                forEachISA { isa in
                    let actual = multiply(type, weights, xRows, rows: rows, in: inputs, out: outputs, reference: false)
                    expectWithin(actual, expected, bounds: bounds,
                                 "\(type) \(isaNames[Int(isa)]) rows \(rows) in \(inputs) out \(outputs)")
                }
            }
        }
    }

    /// Each output is computed by one thread with the same code whatever the split, so the result is the
    /// same bits for any thread count (and across repeated calls).
    @Test func matmulRowsIsIndependentOfThreadCount() {
        var generator = SeededGenerator(seed: 12)
        let (inputs, outputs, rows) = (1000, 301, 5)
        let weights = Weights(.f16, count: outputs * inputs, generator: &generator)
        let x = generator.floats(rows * inputs)
        forEachISA { isa in
            let single = withThreads(1) { multiply(.f16, weights, x, rows: rows, in: inputs, out: outputs, reference: false) }
            let double = withThreads(2) { multiply(.f16, weights, x, rows: rows, in: inputs, out: outputs, reference: false) }
            let again = withThreads(2) { multiply(.f16, weights, x, rows: rows, in: inputs, out: outputs, reference: false) }
            expectBitwiseEqual(double, single, "threads 2 vs 1 \(isaNames[Int(isa)])")
            expectBitwiseEqual(again, double, "repeat \(isaNames[Int(isa)])")
        }
    }

    /// Exact small case, independent of the reference: integers multiply and add exactly in f32.
    @Test func matmulRowsExactIntegers() {
        let (inputs, outputs, rows) = (19, 6, 3)
        let w = (0..<(outputs * inputs)).map { Float(($0 % 7) - 3) }
        let x = (0..<(rows * inputs)).map { Float(($0 % 5) - 2) }
        var expected = [Float](repeating: 0, count: rows * outputs)
        for r in 0..<rows {
            for o in 0..<outputs {
                expected[r * outputs + o] = (0..<inputs).reduce(0) { $0 + w[o * inputs + $1] * x[r * inputs + $1] }
            }
        }
        var halves = [UInt16](repeating: 0, count: w.count), brains = [UInt16](repeating: 0, count: w.count)
        hk_convert_f32_to_f16(w, &halves, w.count)
        hk_convert_f32_to_bf16(w, &brains, w.count)
        forEachISA { isa in
            var y = [Float](repeating: 0, count: rows * outputs)
            hk_matmul_rows_f32(w, x, &y, Int32(rows), Int32(inputs), Int32(outputs))
            #expect(y == expected, "f32 \(isaNames[Int(isa)])")
            hk_matmul_rows_f16(halves, x, &y, Int32(rows), Int32(inputs), Int32(outputs))
            #expect(y == expected, "f16 \(isaNames[Int(isa)])")
            hk_matmul_rows_bf16(brains, x, &y, Int32(rows), Int32(inputs), Int32(outputs))
            #expect(y == expected, "bf16 \(isaNames[Int(isa)])")
        }
    }
}
