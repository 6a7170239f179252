import Foundation
import Testing
import HoneKernels

/// hk_matmul_many (from 16 rows, packed panels: AVX-512 32 outputs times 14-row blocks, AVX2 16 outputs times 6-row
/// blocks; scalar or under 16 rows: tiles converted to f32, sgemm per tile inside one OpenMP region) against its
/// naive reference.
extension KernelTests {
    private static func weightType(_ type: MatmulWeightType) -> Int32 {
        switch type {
        case .f32: return Int32(HK_TYPE_F32.rawValue)
        case .f16: return Int32(HK_TYPE_F16.rawValue)
        case .bf16: return Int32(HK_TYPE_BF16.rawValue)
        }
    }

    @Test(arguments: MatmulWeightType.allCases)
    func matmulManyMatchesReference(type: MatmulWeightType) throws {
        var generator = SeededGenerator(seed: 71)
        // Shapes cover one tile, several tiles with a ragged last one, and an `in` that is no multiple of 16; for the
        // panels: row counts below 16 (sgemm), exactly one 14-row block plus 1–13 left over (AVX2: 6-row blocks and
        // 1–5 left over), panels that end after 16 outputs (48) or inside either half (531 = 16 × 32 + 19, 1030,
        // 700 = 21 × 32 + 28; AVX2: 45 = 2 × 16 + 13, 20 = 16 + 4), SmolLM2's down projection (1536 → 576) and an `in`
        // under 16 or 8 (no square block to transpose).
        for (rows, inputs, outputs) in [(9, 64, 48), (33, 100, 531), (64, 2048, 700), (17, 5632, 64), (300, 96, 1030),
                                        (40, 576, 192), (16, 7, 45), (14 * 3 + 13, 1536, 576), (28, 33, 20)] {
            let weights = Weights(type, count: outputs * inputs, generator: &generator)
            let x = generator.floats(rows * inputs)
            var expected = [Float](repeating: .nan, count: rows * outputs)
            let stored: [UInt8] = type == .f32
                ? weights.f32.withUnsafeBytes { Array($0) } : weights.halves.withUnsafeBytes { Array($0) }
            stored.withUnsafeBytes { w in
                hk_matmul_many_ref(w.baseAddress, Self.weightType(type), x, &expected, Int32(rows), Int32(inputs), Int32(outputs))
            }
            let bounds = dotProductBounds(weights.values, x, rows: rows, in: inputs, out: outputs)
            forEachISA { isa in
                for threads: Int32 in [1, 2] {
                    var actual = [Float](repeating: .nan, count: rows * outputs)
                    withThreads(threads) {
                        stored.withUnsafeBytes { w in
                            hk_matmul_many(w.baseAddress, Self.weightType(type), x, &actual, Int32(rows), Int32(inputs), Int32(outputs))
                        }
                    }
                    expectWithin(actual, expected, bounds: bounds,
                                 "\(type) \(rows)×\(inputs)→\(outputs), \(isaNames[Int(isa)]), \(threads) threads")
                }
            }
        }
    }

    /// From 16 rows up (the packed panels), a row's outputs are bit-identical whatever rows surround it, where it
    /// falls in a row block or the rest, and how many threads share the panels: a batch of scored documents
    /// then gives each document the numbers it gets alone (once it has 16 rows). AVX2 and AVX-512 (the scalar level
    /// takes sgemm, which makes no such promise).
    @Test(arguments: MatmulWeightType.allCases)
    func matmulManyRowIsIndependentOfItsBatch(type: MatmulWeightType) throws {
        try forEachISA { isa in
            guard isa >= Int32(HK_ISA_AVX2.rawValue) else { return }
            try matmulManyRowIsIndependentOfItsBatch(type: type, isa: isa)
        }
    }

    private func matmulManyRowIsIndependentOfItsBatch(type: MatmulWeightType, isa: Int32) throws {
        var generator = SeededGenerator(seed: 74)
        let (inputs, outputs, total) = (200, 70, 47)
        let weights = Weights(type, count: outputs * inputs, generator: &generator)
        let stored: [UInt8] = type == .f32
            ? weights.f32.withUnsafeBytes { Array($0) } : weights.halves.withUnsafeBytes { Array($0) }
        let x = generator.floats(total * inputs)
        func multiply(rows: Int, from start: Int, threads: Int32) -> [Float] {
            var y = [Float](repeating: .nan, count: rows * outputs)
            let slice = Array(x[(start * inputs)..<((start + rows) * inputs)])
            withThreads(threads) {
                stored.withUnsafeBytes { w in
                    hk_matmul_many(w.baseAddress, Self.weightType(type), slice, &y, Int32(rows), Int32(inputs), Int32(outputs))
                }
            }
            return y
        }
        let all = multiply(rows: total, from: 0, threads: 2)
        for (rows, start) in [(16, 0), (16, 31), (29, 5), (30, 17), (47, 0)] {
            let part = multiply(rows: rows, from: start, threads: rows % 2 == 0 ? 1 : 2)
            expectBitwiseEqual(part, Array(all[(start * outputs)..<((start + rows) * outputs)]),
                               "\(type) \(isaNames[Int(isa)]): rows \(start)..<\(start + rows) alone")
        }
    }

    /// However the threads share the panel groups (each its own part only, then helping the others, or the others'
    /// parts first so that groups are packed and run by threads that do not own them), the product is the one
    /// thread's bit for bit, with several groups per thread and several row blocks per group (2,048 inputs: 1 MB
    /// groups of 8 AVX2 or 4 AVX-512 panels, blocks of 30 or 28 rows), f32 and f16 (packed from converted rows).
    @Test func matmulManyIsTheSameHoweverThreadsShare() {
        var generator = SeededGenerator(seed: 75)
        let (rows, inputs, outputs) = (100, 2048, 700)
        let x = generator.floats(rows * inputs)
        defer { hk_set_gemm_sharing(Int32(HK_GEMM_SHARING_FINISH_OTHERS)) }
        for type in [MatmulWeightType.f32, .f16] {
            let weights = Weights(type, count: outputs * inputs, generator: &generator)
            let stored: [UInt8] = type == .f32
                ? weights.f32.withUnsafeBytes { Array($0) } : weights.halves.withUnsafeBytes { Array($0) }
            func multiply(threads: Int32, sharing: Int32) -> [Float] {
                hk_set_gemm_sharing(sharing)
                var y = [Float](repeating: .nan, count: rows * outputs)
                withThreads(threads) {
                    stored.withUnsafeBytes { w in
                        hk_matmul_many(w.baseAddress, Self.weightType(type), x, &y, Int32(rows), Int32(inputs), Int32(outputs))
                    }
                }
                return y
            }
            forEachISA { isa in
                guard isa >= Int32(HK_ISA_AVX2.rawValue) else { return }
                let alone = multiply(threads: 1, sharing: Int32(HK_GEMM_SHARING_STATIC))
                for sharing in [HK_GEMM_SHARING_STATIC, HK_GEMM_SHARING_FINISH_OTHERS, HK_GEMM_SHARING_OTHERS_FIRST] {
                    for threads: Int32 in [2, 3] {
                        expectBitwiseEqual(multiply(threads: threads, sharing: Int32(sharing)), alone,
                                           "\(type) \(isaNames[Int(isa)]), \(threads) threads, sharing \(sharing)")
                    }
                }
            }
        }
    }

    /// Tiles are balanced across threads: equal heights (multiples of 16, at most the ~2 MB limit), a tile count
    /// that is a multiple of the thread count, covering every output row. SmolLM2's projections at 2 threads
    /// (q/o 576, k/v 192, gate/up 1536, down 1536→576) split in halves or quarters.
    @Test func gemmTilesAreBalanced() {
        #expect(hk_gemm_tile_height(576, 576, 2) == 288)
        #expect(hk_gemm_tile_height(576, 192, 2) == 96)
        #expect(hk_gemm_tile_height(576, 1536, 2) == 384)
        #expect(hk_gemm_tile_height(1536, 576, 2) == 288)
        #expect(hk_gemm_tile_height(576, 49152, 2) == 512)
        #expect(hk_gemm_tile_height(576, 0, 2) == 16)
        #expect(hk_gemm_tile_height(576, 576, 1) == 288)  // two even tiles under the 512-row limit
        for inputs in [1, 16, 100, 576, 1536, 5632, 40_000] {
            let limit = max(16, min(512, (1 << 19) / inputs) + 15) / 16 * 16
            for outputs in [1, 15, 16, 48, 192, 531, 576, 1030, 1536, 49_152] {
                for threads: Int32 in [1, 2, 3, 4] {
                    let tile = Int(hk_gemm_tile_height(Int32(inputs), Int32(outputs), threads))
                    let tiles = (outputs + tile - 1) / tile
                    #expect(tile % 16 == 0 && tile <= max(limit, 16), "\(inputs)→\(outputs) \(threads)")
                    // Never more tiles than the limit needs, rounded up to the thread count (plus rounding to 16).
                    let needed = ((outputs + limit - 1) / limit + Int(threads) - 1) / Int(threads) * Int(threads)
                    #expect(tiles <= needed, "\(inputs)→\(outputs) \(threads): \(tiles) tiles of \(tile)")
                    // Balanced: the last tile is the only short one and loses less than 16 rows per tile.
                    #expect(tiles * tile - outputs < 16 * tiles, "\(inputs)→\(outputs) \(threads)")
                }
            }
        }
    }

    /// The many-row and few-row kernels agree (a model switches between them by row count).
    @Test func matmulManyAgreesWithRowsKernel() throws {
        var generator = SeededGenerator(seed: 72)
        let (rows, inputs, outputs) = (8, 2048, 256)
        let weights = Weights(.f16, count: outputs * inputs, generator: &generator)
        let x = generator.floats(rows * inputs)
        var many = [Float](repeating: .nan, count: rows * outputs)
        var few = [Float](repeating: .nan, count: rows * outputs)
        weights.halves.withUnsafeBytes { w in
            hk_matmul_many(w.baseAddress, Self.weightType(.f16), x, &many, Int32(rows), Int32(inputs), Int32(outputs))
        }
        hk_matmul_rows_f16(weights.halves, x, &few, Int32(rows), Int32(inputs), Int32(outputs))
        let bounds = dotProductBounds(weights.values, x, rows: rows, in: inputs, out: outputs).map { $0 * 2 }
        expectWithin(many, few, bounds: bounds, "many vs rows")
    }
}

extension KernelTests {
    /// Batched decoding relies on this: each activation row gets bit-identical results whether it is multiplied
    /// alone or together with up to 15 others (greedy output of a batch then equals single-sequence output).
    @Test(arguments: MatmulWeightType.allCases)
    func matmulRowsIsIndependentOfRowCount(type: MatmulWeightType) throws {
        var generator = SeededGenerator(seed: 73)
        let (inputs, outputs) = (2048, 200)
        let weights = Weights(type, count: outputs * inputs, generator: &generator)
        let x = generator.floats(16 * inputs)
        func multiply(_ rows: Int, from start: Int) -> [Float] {
            var y = [Float](repeating: .nan, count: rows * outputs)
            let slice = Array(x[(start * inputs)..<((start + rows) * inputs)])
            switch type {
            case .f32: hk_matmul_rows_f32(weights.f32, slice, &y, Int32(rows), Int32(inputs), Int32(outputs))
            case .f16: hk_matmul_rows_f16(weights.halves, slice, &y, Int32(rows), Int32(inputs), Int32(outputs))
            case .bf16: hk_matmul_rows_bf16(weights.halves, slice, &y, Int32(rows), Int32(inputs), Int32(outputs))
            }
            return y
        }
        for rows in 2...16 {
            let together = multiply(rows, from: 0)
            for row in 0..<rows {
                let alone = multiply(1, from: row)
                expectBitwiseEqual(Array(together[(row * outputs)..<((row + 1) * outputs)]), alone, "\(type) row \(row) of \(rows)")
            }
        }
    }
}

extension KernelTests {
    /// hk_vocab_scores against the plain computation: every logit by hk_vocab_logit (the same arithmetic as the
    /// kernel's lanes), the first maximum, and log Σ exp in double. Vocabularies end inside a panel and inside a
    /// 512-output block; equal top logits in one block and across blocks must give the first index; thread counts
    /// give bit-identical results. At every ISA level from AVX2 (the scalar level declines).
    @Test(arguments: MatmulWeightType.allCases)
    func vocabScoresMatchLogits(type: MatmulWeightType) throws {
        try forEachISA { isa in
            guard isa >= Int32(HK_ISA_AVX2.rawValue) else {
                #expect(hk_vocab_scores(nil, Int32(HK_TYPE_F32.rawValue), nil, 1, 1, 1, nil, nil, nil) == -1)
                return
            }
            try vocabScoresMatchLogits(type: type, isa: isa)
        }
    }

    private func vocabScoresMatchLogits(type: MatmulWeightType, isa: Int32) throws {
        var generator = SeededGenerator(seed: 75)
        for (rows, inputs, vocabulary) in [(1, 64, 512), (15, 100, 1537), (30, 576, 1100)] {
            var raw = generator.floats(vocabulary * inputs)
            // Two pairs of equal rows with large weights: a tie inside block 0 (10, 20) for the first rows of x,
            // and across blocks (700, 1050) for the others (x's sign picks which pair wins).
            for k in 0..<inputs {
                raw[10 * inputs + k] = 4
                raw[20 * inputs + k] = 4
                if vocabulary > 1050 {
                    raw[700 * inputs + k] = -4
                    raw[1050 * inputs + k] = -4
                }
            }
            let stored: [UInt8]
            switch type {
            case .f32: stored = raw.withUnsafeBytes { Array($0) }
            case .f16: var halves = [UInt16](repeating: 0, count: raw.count); hk_convert_f32_to_f16_ref(raw, &halves, raw.count)
                stored = halves.withUnsafeBytes { Array($0) }
            case .bf16: var halves = [UInt16](repeating: 0, count: raw.count); hk_convert_f32_to_bf16_ref(raw, &halves, raw.count)
                stored = halves.withUnsafeBytes { Array($0) }
            }
            var x = generator.floats(rows * inputs).map { abs($0) + 0.01 }
            for row in 0..<rows where row % 2 == 1 { for k in 0..<inputs { x[row * inputs + k] = -x[row * inputs + k] } }
            func run(threads: Int32) -> ([Int32], [Float], [Double]) {
                var best = [Int32](repeating: -1, count: rows)
                var top = [Float](repeating: .nan, count: rows)
                var normalizer = [Double](repeating: .nan, count: rows)
                withThreads(threads) {
                    stored.withUnsafeBytes { w in
                        #expect(hk_vocab_scores(w.baseAddress, Self.weightType(type), x, Int32(rows), Int32(inputs),
                                                Int32(vocabulary), &best, &top, &normalizer) == 0)
                    }
                }
                return (best, top, normalizer)
            }
            let (best, top, normalizer) = run(threads: 2)
            let single = run(threads: 1)
            #expect(single.0 == best && single.1 == top && single.2 == normalizer, "\(type) \(isaNames[Int(isa)]) thread counts differ")
            for row in 0..<rows {
                let logits: [Float] = stored.withUnsafeBytes { w in
                    x.withUnsafeBufferPointer { xs in
                        (0..<vocabulary).map { hk_vocab_logit(w.baseAddress, Self.weightType(type), xs.baseAddress! + row * inputs, Int32(inputs), Int32($0)) }
                    }
                }
                let maximum = logits.max()!
                let first = logits.firstIndex(of: maximum)!
                #expect(Int(best[row]) == first && top[row] == maximum, "\(type) \(isaNames[Int(isa)]) \(vocabulary) row \(row): best \(best[row]) vs \(first)")
                #expect(first == (row % 2 == 0 ? 10 : 700), "\(type) \(isaNames[Int(isa)]) row \(row): the planted tie")
                let expected = Double(maximum) + log(logits.reduce(0.0) { $0 + exp(Double($1) - Double(maximum)) })
                #expect(abs(normalizer[row] - expected) <= 1e-5, "\(type) \(isaNames[Int(isa)]) row \(row): \(normalizer[row]) vs \(expected)")
            }
        }
    }

    /// hk_vocab_logit is the panel kernel's value: equal bit for bit to hk_matmul_many's output from 16 rows, on AVX2
    /// and AVX-512.
    @Test func vocabLogitIsThePanelKernelsValue() throws {
        forEachISA { isa in
            guard isa >= Int32(HK_ISA_AVX2.rawValue) else { return }
            vocabLogitIsThePanelKernelsValue(isa: isa)
        }
    }

    private func vocabLogitIsThePanelKernelsValue(isa: Int32) {
        var generator = SeededGenerator(seed: 76)
        let (rows, inputs, outputs) = (20, 300, 90)
        let w = generator.floats(outputs * inputs), x = generator.floats(rows * inputs)
        var y = [Float](repeating: .nan, count: rows * outputs)
        hk_matmul_many(w, Int32(HK_TYPE_F32.rawValue), x, &y, Int32(rows), Int32(inputs), Int32(outputs))
        for row in 0..<rows {
            for output in 0..<outputs {
                let single = x.withUnsafeBufferPointer { hk_vocab_logit(w, Int32(HK_TYPE_F32.rawValue), $0.baseAddress! + row * inputs, Int32(inputs), Int32(output)) }
                #expect(single.bitPattern == y[row * outputs + output].bitPattern, "\(isaNames[Int(isa)]) row \(row) output \(output)")
            }
        }
    }
}
