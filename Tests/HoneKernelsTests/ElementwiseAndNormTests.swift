import Testing
import HoneKernels

private let elementwiseLengths = [0, 1, 7, 8, 15, 16, 17, 100, 1023, 100_003]

extension KernelTests {
    // MARK: - Elementwise

    /// silu(g) * u = g / (1 + exp(-g)) * u. The fast paths use a polynomial exp (about 2 ulp) and a true
    /// division, so results agree to 1e-6 relative; the absolute floor covers g just past exp's overflow
    /// threshold, where one side may give -0 and the other -1e-37.
    @Test func siluMulMatchesReference() {
        var generator = SeededGenerator(seed: 20)
        for length in elementwiseLengths {
            var gate = generator.floats(length, in: -20...20)
            if length >= 8 { gate.replaceSubrange(0..<8, with: [0, -0.0, 100, -100, 88.5, -88.5, 90, -1e-30]) }
            let up = generator.floats(length, in: -3...3)
            var expected = [Float](repeating: 0, count: length)
            hk_silu_mul_ref(gate, up, &expected, length)
            forEachISA { isa in
                var actual = [Float](repeating: .nan, count: length)
                hk_silu_mul(gate, up, &actual, length)
                expectClose(actual, expected, relative: 1e-6, absolute: 1e-30, "silu_mul \(isaNames[Int(isa)]) n \(length)")
            }
        }
    }

    @Test func siluMulKnownValues() {
        // silu(0) = 0, silu(large) = large, silu(-large) = -0; times up.
        let gate: [Float] = [0, 50, -200, 1, 0, 50, -200, 1, 0, 50, -200, 1, 0, 50, -200, 1, 0, 50, -200]
        let up = [Float](repeating: 2, count: gate.count)
        forEachISA { isa in
            var out = [Float](repeating: .nan, count: gate.count)
            hk_silu_mul(gate, up, &out, gate.count)
            for (index, g) in gate.enumerated() {
                switch g {
                case 0: #expect(out[index] == 0, "\(isaNames[Int(isa)])")
                case 50: #expect(out[index] == 100, "\(isaNames[Int(isa)])")
                case -200: #expect(out[index] == 0 && out[index].sign == .minus, "\(isaNames[Int(isa)])")
                default: #expect(abs(out[index] - 2 * 0.7310585786) < 1e-6, "\(isaNames[Int(isa)])")
                }
            }
        }
    }

    @Test func addBiasAddRelu() {
        var generator = SeededGenerator(seed: 21)
        for (rows, width) in [(1, 1), (3, 17), (7, 1000), (100, 1001)] {
            let y = generator.floats(rows * width), bias = generator.floats(width)
            var actual = y
            withThreads(2) { hk_add_bias(&actual, bias, Int32(rows), Int32(width)) }
            let expected = y.enumerated().map { $0.element + bias[$0.offset % width] }
            #expect(actual == expected, "add_bias \(rows)x\(width)")
        }
        for length in elementwiseLengths {
            let y = generator.floats(length), x = generator.floats(length)
            var sum = y
            withThreads(2) { hk_add(&sum, x, length) }
            #expect(sum == zip(y, x).map { $0 + $1 }, "add \(length)")
            var rectified = y
            withThreads(2) { hk_relu(&rectified, length) }
            #expect(rectified == y.map { max($0, 0) }, "relu \(length)")
        }
    }

    // MARK: - Norms

    /// The fast norms sum squares in f32 lanes (the reference in double): relative error a few 1e-7 on
    /// the scale factor for dim <= 4099, so 1e-5 relative plus 1e-6 absolute (values are O(1)) is generous.
    @Test func rmsnormMatchesReference() {
        var generator = SeededGenerator(seed: 30)
        for rows in [1, 3, 20] {
            for dim in [1, 7, 16, 17, 100, 4099] {
                let x = generator.floats(rows * dim, in: -3...3), weight = generator.floats(dim, in: 0.5...1.5)
                var expected = [Float](repeating: 0, count: rows * dim)
                hk_rmsnorm_ref(x, weight, &expected, Int32(rows), Int32(dim), 1e-6)
                forEachISA { isa in
                    var actual = [Float](repeating: .nan, count: rows * dim)
                    hk_rmsnorm(x, weight, &actual, Int32(rows), Int32(dim), 1e-6)
                    expectClose(actual, expected, relative: 1e-5, absolute: 1e-6,
                                "rmsnorm \(isaNames[Int(isa)]) rows \(rows) dim \(dim)")
                }
            }
        }
    }

    /// A constant row c with eps = 0 has rms |c|: the output is exactly the weight times sign(c).
    @Test func rmsnormOfConstantRowIsTheWeight() {
        let dim = 37
        let weight = (0..<dim).map { Float($0) * 0.25 - 3 }
        let x = [Float](repeating: 2, count: dim) + [Float](repeating: -0.5, count: dim)
        forEachISA { isa in
            var y = [Float](repeating: .nan, count: 2 * dim)
            hk_rmsnorm(x, weight, &y, 2, Int32(dim), 0)
            #expect(Array(y.prefix(dim)) == weight, "\(isaNames[Int(isa)])")
            #expect(Array(y.suffix(dim)) == weight.map { -$0 }, "\(isaNames[Int(isa)])")
        }
    }

    @Test func layernormMatchesReference() {
        var generator = SeededGenerator(seed: 31)
        for rows in [1, 3, 20] {
            for dim in [1, 7, 16, 17, 100, 4099] {
                // An offset mean checks the two-pass variance.
                let x = generator.floats(rows * dim, in: 2...6)
                let weight = generator.floats(dim, in: 0.5...1.5), bias = generator.floats(dim)
                for affine in [true, false] {
                    var expected = [Float](repeating: 0, count: rows * dim)
                    hk_layernorm_ref(x, affine ? weight : nil, affine ? bias : nil, &expected, Int32(rows), Int32(dim), 1e-5)
                    forEachISA { isa in
                        var actual = [Float](repeating: .nan, count: rows * dim)
                        hk_layernorm(x, affine ? weight : nil, affine ? bias : nil, &actual, Int32(rows), Int32(dim), 1e-5)
                        // Normalised values are O(1); f32 mean and variance are good to ~1e-6 here.
                        expectClose(actual, expected, relative: 1e-5, absolute: 1e-5,
                                    "layernorm \(isaNames[Int(isa)]) rows \(rows) dim \(dim) affine \(affine)")
                    }
                }
            }
        }
    }

    @Test func layernormKnownValues() {
        // Row [1, 2, 3, 4]: mean 2.5, biased variance 1.25.
        let x: [Float] = [1, 2, 3, 4]
        let scale = 1 / Float(1.25).squareRoot()
        let expected = x.map { ($0 - 2.5) * scale }
        forEachISA { isa in
            var y = [Float](repeating: .nan, count: 4)
            hk_layernorm(x, nil, nil, &y, 1, 4, 0)
            expectClose(y, expected, relative: 1e-6, absolute: 1e-7, "layernorm known \(isaNames[Int(isa)])")
        }
    }
}

// In the serialized suite: it forces instruction sets and thread counts, which are process-wide (as a suite of its
// own it once ran beside attentionBackwardIsIndependentOfThreadCount and switched that test's kernel mid-way).
extension KernelTests {
    @Test func readSumAddsEveryElementOnce() {
        forEachISA { isa in
            for count in [0, 1, 127, 128, 1_000_003] {
                let values = (0..<count).map { Float($0 % 7) }
                let expected = values.reduce(0.0) { $0 + Double($1) }
                for threads: Int32 in [1, 2] {
                    let total = withThreads(threads) { hk_read_sum(values, count) }
                    #expect(total == expected, "ISA \(isa), \(count) values, \(threads) threads")
                }
            }
        }
    }
}
