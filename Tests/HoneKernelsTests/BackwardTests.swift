import Foundation
import Testing
import HoneKernels

// Tests of the training kernels (hone_train.h): every fast kernel against its naive reference at each ISA level,
// the references and the fast kernels against central finite differences of independent f64 forwards written
// here, thread-count independence where promised, and AdamW against torch (Fixtures/adamw, made by
// tools/oracle/make_adamw_fixture.py).

// MARK: - Helpers

/// Root mean square of the values (the natural scale for absolute tolerances).
private func rms(_ values: [Float]) -> Float {
    guard !values.isEmpty else { return 0 }
    return Float((values.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(values.count)).squareRoot())
}

/// Expects agreement to `tolerance` relative to each element, with a floor of `tolerance` times the RMS of the
/// expected values, so elements near zero are held to the accuracy of the whole tensor.
/// `scale` replaces that RMS where the gradient is small next to the terms it is computed from (a norm over
/// one or two features, where it is proportional to eps): f32 can only be accurate relative to those terms.
private func expectNear(_ actual: [Float], _ expected: [Float], tolerance: Float, scale: Float? = nil,
                        _ context: @autoclosure () -> String, sourceLocation: SourceLocation = #_sourceLocation) {
    let floor = max(scale ?? rms(expected), 1e-30) * tolerance
    expectClose(actual, expected, relative: tolerance, absolute: floor, context(), sourceLocation: sourceLocation)
}

/// Central differences of f at x in f64, one coordinate at a time.
private func centralDifferences(_ x: [Float], step: Double = 1e-4, _ f: ([Double]) -> Double) -> [Float] {
    var point = x.map(Double.init)
    return (0..<x.count).map { index in
        let original = point[index]
        point[index] = original + step
        let plus = f(point)
        point[index] = original - step
        let minus = f(point)
        point[index] = original
        return Float((plus - minus) / (2 * step))
    }
}

private func dot(_ a: [Double], _ b: [Float]) -> Double {
    zip(a, b).reduce(0) { $0 + $1.0 * Double($1.1) }
}

/// Llama-style inverse frequencies base^(-2j / rot_dim), in f32 as HF stores them.
private func ropeFrequencies(rotDim: Int, base: Double = 10000) -> [Float] {
    (0..<(rotDim / 2)).map { Float(1 / pow(base, Double(2 * $0) / Double(rotDim))) }
}

// MARK: - f64 forwards (independent of the kernels)

private func rmsnormForward(_ x: [Double], weight: [Float], rows: Int, dim: Int, eps: Float) -> [Double] {
    var y = x
    for r in 0..<rows {
        let row = x[(r * dim)..<((r + 1) * dim)]
        let inverse = 1 / (row.reduce(0) { $0 + $1 * $1 } / Double(dim) + Double(eps)).squareRoot()
        for i in 0..<dim { y[r * dim + i] = Double(weight[i]) * x[r * dim + i] * inverse }
    }
    return y
}

private func layernormForward(_ x: [Double], weight: [Float]?, rows: Int, dim: Int, eps: Float) -> [Double] {
    var y = x
    for r in 0..<rows {
        let row = x[(r * dim)..<((r + 1) * dim)]
        let mean = row.reduce(0, +) / Double(dim)
        let variance = row.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(dim)
        let inverse = 1 / (variance + Double(eps)).squareRoot()
        for i in 0..<dim { y[r * dim + i] = (x[r * dim + i] - mean) * inverse * Double(weight?[i] ?? 1) }
    }
    return y
}

/// Causal GQA attention of one sequence from position 0, all in f64.
private func attentionForward(q: [Double], k: [Double], v: [Double], n: Int, heads: Int, kvHeads: Int, headDim: Int,
                              scale: Double, window: Int = 0, softcap: Double = 0) -> [Double] {
    var out = [Double](repeating: 0, count: n * heads * headDim)
    let group = heads / kvHeads
    for t in 0..<n {
        let first = window > 0 ? max(0, t - window + 1) : 0  // a sliding window: the last `window` keys
        for h in 0..<heads {
            let qBase = (t * heads + h) * headDim
            var scores = (first...t).map { j -> Double in
                let kBase = (j * kvHeads + h / group) * headDim
                let score = (0..<headDim).reduce(0) { $0 + q[qBase + $1] * k[kBase + $1] } * scale
                return softcap > 0 ? softcap * tanh(score / softcap) : score
            }
            let maximum = scores.max()!
            scores = scores.map { exp($0 - maximum) }
            let total = scores.reduce(0, +)
            for j in first...t {
                let vBase = (j * kvHeads + h / group) * headDim
                for d in 0..<headDim { out[qBase + d] += scores[j - first] / total * v[vBase + d] }
            }
        }
    }
    return out
}

private func targetLogProbabilities(_ logits: [Double], targets: [Int32], vocab: Int) -> [Double] {
    targets.enumerated().map { r, target in
        guard target >= 0 else { return 0 }
        let row = logits[(r * vocab)..<((r + 1) * vocab)]
        let maximum = row.max()!
        return logits[r * vocab + Int(target)] - maximum - log(row.reduce(0) { $0 + exp($1 - maximum) })
    }
}

// MARK: - Linear weights in every type

/// A random [out, in] weight in one of hk_linear_backward_input's types, with its exact f32 values.
private struct LinearWeight {
    let name: String
    let type: Int32
    let bytes: [UInt8]
    let values: [Float]

    static let floatTypes: [(String, hk_type)] = [("f32", HK_TYPE_F32), ("f16", HK_TYPE_F16), ("bf16", HK_TYPE_BF16)]

    init(_ name: String, out: Int, in inputs: Int, generator: inout SeededGenerator) {
        let floats = generator.floats(out * inputs)
        self.name = name
        switch name {
        case "f32":
            type = Int32(HK_TYPE_F32.rawValue)
            values = floats
            bytes = floats.withUnsafeBytes { Array($0) }
        case "f16", "bf16":
            var half = [UInt16](repeating: 0, count: floats.count)
            var widened = [Float](repeating: 0, count: floats.count)
            if name == "f16" {
                type = Int32(HK_TYPE_F16.rawValue)
                hk_convert_f32_to_f16(floats, &half, floats.count)
                hk_convert_f16_to_f32_ref(half, &widened, half.count)
            } else {
                type = Int32(HK_TYPE_BF16.rawValue)
                hk_convert_f32_to_bf16(floats, &half, floats.count)
                hk_convert_bf16_to_f32_ref(half, &widened, half.count)
            }
            values = widened
            bytes = half.withUnsafeBytes { Array($0) }
        default:
            if let quantType = QuantType(rawValue: name) {
                let matrix = QuantizedMatrix(quantType, rows: out, columns: inputs, floats: floats)
                type = quantType.id
                values = matrix.values
                bytes = matrix.bytes
            } else {
                // The codebook and ternary formats: real blocks from the fixtures (Hone does not quantize to them).
                let (id, blocks) = try! fixtureBlockMatrix(name, rows: out, columns: inputs)
                var widened = [Float](repeating: 0, count: out * inputs)
                let rowBytes = Int(hk_quant_row_bytes(id, Int64(inputs)))
                blocks.withUnsafeBytes { raw in
                    widened.withUnsafeMutableBufferPointer { y in
                        for o in 0..<out {
                            _ = hk_dequantize_row(id, raw.baseAddress! + o * rowBytes, y.baseAddress! + o * inputs, Int64(inputs))
                        }
                    }
                }
                (type, bytes, values) = (id, blocks, widened)
            }
        }
    }

    func backward(_ dy: [Float], into dx: inout [Float], rows: Int, in inputs: Int, out: Int, accumulate: Bool,
                  reference: Bool = false) {
        bytes.withUnsafeBytes { raw in
            if reference {
                hk_linear_backward_input_ref(raw.baseAddress, type, dy, &dx, Int32(rows), Int32(inputs), Int32(out), accumulate ? 1 : 0)
            } else {
                hk_linear_backward_input(raw.baseAddress, type, dy, &dx, Int32(rows), Int32(inputs), Int32(out), accumulate ? 1 : 0)
            }
        }
    }
}

// MARK: - AdamW fixture

private struct AdamWCase {
    let name: String
    let lr, beta1, beta2, eps, weightDecay: Double
    let param: [Float]
    let grads: [[Float]]
    let steps: [(param: [Float], m: [Float], v: [Float])]

    static func load() throws -> [AdamWCase] {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Fixtures/adamw/adamw.json")
        let root = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any]
        guard let cases = root?["cases"] as? [[String: Any]] else { throw FixtureError.malformed }
        func floats(_ value: Any?) throws -> [Float] {
            guard let numbers = value as? [NSNumber] else { throw FixtureError.malformed }
            return numbers.map { Float($0.doubleValue) }
        }
        return try cases.map { entry in
            guard let name = entry["name"] as? String, let lr = entry["lr"] as? Double, let beta1 = entry["beta1"] as? Double,
                  let beta2 = entry["beta2"] as? Double, let eps = entry["eps"] as? Double,
                  let weightDecay = entry["weight_decay"] as? Double, let grads = entry["grads"] as? [Any],
                  let steps = entry["steps"] as? [[String: Any]] else { throw FixtureError.malformed }
            return AdamWCase(name: name, lr: lr, beta1: beta1, beta2: beta2, eps: eps, weightDecay: weightDecay,
                             param: try floats(entry["param"]), grads: try grads.map(floats),
                             steps: try steps.map { (try floats($0["param"]), try floats($0["exp_avg"]), try floats($0["exp_avg_sq"])) })
        }
    }

    enum FixtureError: Error { case malformed }
}

/// Distance in units in the last place between two finite floats of the same sign (0 when equal).
private func ulpDistance(_ a: Float, _ b: Float) -> Int {
    if a == b { return 0 }
    guard a.sign == b.sign else { return Int.max }
    return abs(Int(a.bitPattern) - Int(b.bitPattern))
}

extension KernelTests {
    // MARK: - RMSNorm and LayerNorm

    private static let normShapes = [(1, 1), (3, 7), (2, 16), (5, 64), (4, 100), (2, 131), (3, 2048)]

    @Test func rmsnormBackwardMatchesReference() {
        var generator = SeededGenerator(seed: 300)
        for (rows, dim) in Self.normShapes {
            let x = generator.floats(rows * dim, in: -3...3), weight = generator.floats(dim, in: 0.5...1.5)
            let dy = generator.floats(rows * dim), start = generator.floats(rows * dim)
            var expected = start
            hk_rmsnorm_backward_ref(x, weight, dy, &expected, Int32(rows), Int32(dim), 1e-5)
            forEachISA { isa in
                for threads: Int32 in [1, 2] {
                    var actual = start
                    withThreads(threads) { hk_rmsnorm_backward(x, weight, dy, &actual, Int32(rows), Int32(dim), 1e-5) }
                    expectNear(actual, expected, tolerance: 2e-6, "rmsnorm backward \(isaNames[Int(isa)]) \(rows)x\(dim) threads \(threads)")
                }
            }
        }
    }

    /// L = sum(c * rmsnorm(x)); dL/dx by central differences of the f64 forward above, against both kernels
    /// (which ADD into dx: started from zero here).
    @Test func rmsnormBackwardMatchesFiniteDifferences() {
        var generator = SeededGenerator(seed: 301)
        for (rows, dim, eps) in [(1, 1, Float(1e-5)), (2, 5, 1e-6), (3, 17, 1e-5), (2, 64, 0.1)] {
            let x = generator.floats(rows * dim, in: -2...2), weight = generator.floats(dim, in: 0.5...1.5)
            let c = generator.floats(rows * dim)
            let numeric = centralDifferences(x) { dot(rmsnormForward($0, weight: weight, rows: rows, dim: dim, eps: eps), c) }
            // The size of the two terms of the gradient, r * w * dy (the result can be much smaller at dim 1).
            let terms = rms(c) / rms(x)
            var reference = [Float](repeating: 0, count: x.count)
            hk_rmsnorm_backward_ref(x, weight, c, &reference, Int32(rows), Int32(dim), eps)
            expectNear(reference, numeric, tolerance: 1e-5, scale: terms, "rmsnorm FD reference \(rows)x\(dim)")
            forEachISA { isa in
                var fast = [Float](repeating: 0, count: x.count)
                hk_rmsnorm_backward(x, weight, c, &fast, Int32(rows), Int32(dim), eps)
                expectNear(fast, numeric, tolerance: 1e-5, scale: terms, "rmsnorm FD \(isaNames[Int(isa)]) \(rows)x\(dim)")
            }
        }
    }

    @Test func layernormBackwardMatchesReference() {
        var generator = SeededGenerator(seed: 302)
        for (rows, dim) in Self.normShapes where dim > 1 {
            // An offset mean exercises the corrected two-pass statistics.
            let x = generator.floats(rows * dim, in: 2...6), weight = generator.floats(dim, in: 0.5...1.5)
            let dy = generator.floats(rows * dim), start = generator.floats(rows * dim)
            for useWeight in [true, false] {
                var expected = start
                hk_layernorm_backward_ref(x, useWeight ? weight : nil, dy, &expected, Int32(rows), Int32(dim), 1e-5)
                forEachISA { isa in
                    for threads: Int32 in [1, 2] {
                        var actual = start
                        withThreads(threads) {
                            hk_layernorm_backward(x, useWeight ? weight : nil, dy, &actual, Int32(rows), Int32(dim), 1e-5)
                        }
                        expectNear(actual, expected, tolerance: 1e-5,
                                   "layernorm backward \(isaNames[Int(isa)]) \(rows)x\(dim) weight \(useWeight) threads \(threads)")
                    }
                }
            }
        }
    }

    @Test func layernormBackwardMatchesFiniteDifferences() {
        var generator = SeededGenerator(seed: 303)
        for (rows, dim) in [(1, 2), (2, 5), (3, 17), (2, 64)] {
            let x = generator.floats(rows * dim, in: -2...3), weight = generator.floats(dim, in: 0.5...1.5)
            let c = generator.floats(rows * dim)
            for useWeight in [true, false] {
                let w: [Float]? = useWeight ? weight : nil
                let numeric = centralDifferences(x) { dot(layernormForward($0, weight: w, rows: rows, dim: dim, eps: 1e-5), c) }
                // rstd * w * dy, the size of the terms (at dim 2 the output is +-1 and the gradient ~ eps).
                let terms = rms(c) / rms(x)
                var reference = [Float](repeating: 0, count: x.count)
                hk_layernorm_backward_ref(x, w, c, &reference, Int32(rows), Int32(dim), 1e-5)
                expectNear(reference, numeric, tolerance: 1e-5, scale: terms, "layernorm FD reference \(rows)x\(dim) weight \(useWeight)")
                forEachISA { isa in
                    var fast = [Float](repeating: 0, count: x.count)
                    hk_layernorm_backward(x, w, c, &fast, Int32(rows), Int32(dim), 1e-5)
                    expectNear(fast, numeric, tolerance: 1e-5, scale: terms,
                               "layernorm FD \(isaNames[Int(isa)]) \(rows)x\(dim) weight \(useWeight)")
                }
            }
        }
    }

    // MARK: - SiLU-gated product and ReLU

    @Test func siluMulBackwardMatchesReference() {
        var generator = SeededGenerator(seed: 310)
        for length in [0, 1, 7, 8, 17, 100, 1023, 100_003] {
            var gate = generator.floats(length, in: -20...20)
            if length >= 8 { gate.replaceSubrange(0..<8, with: [0, -0.0, 100, -100, 88.5, -88.5, 30, -1e-30]) }
            let up = generator.floats(length, in: -3...3), dh = generator.floats(length)
            var expectedGate = [Float](repeating: 0, count: length), expectedUp = expectedGate
            hk_silu_mul_backward_ref(gate, up, dh, &expectedGate, &expectedUp, length)
            forEachISA { isa in
                for threads: Int32 in [1, 2] {
                    var dgate = [Float](repeating: .nan, count: length), dup = dgate
                    withThreads(threads) { hk_silu_mul_backward(gate, up, dh, &dgate, &dup, length) }
                    // A few ulp of exp and the sigmoid; the floor covers elements where the gradient cancels.
                    expectClose(dgate, expectedGate, relative: 4e-6, absolute: 1e-7, "silu backward dgate \(isaNames[Int(isa)]) n \(length)")
                    expectClose(dup, expectedUp, relative: 4e-6, absolute: 1e-7, "silu backward dup \(isaNames[Int(isa)]) n \(length)")
                }
            }
        }
    }

    /// dgate written over gate and dup over up (the trainer's in-place use), and over dh, give the same bits.
    @Test func siluMulBackwardInPlace() {
        var generator = SeededGenerator(seed: 311)
        let length = 1001
        let gate = generator.floats(length, in: -8...8), up = generator.floats(length), dh = generator.floats(length)
        forEachISA { isa in
            var dgate = [Float](repeating: 0, count: length), dup = dgate
            hk_silu_mul_backward(gate, up, dh, &dgate, &dup, length)
            var gateInPlace = gate, upInPlace = up
            gateInPlace.withUnsafeMutableBufferPointer { g in
                upInPlace.withUnsafeMutableBufferPointer { u in
                    hk_silu_mul_backward(g.baseAddress, u.baseAddress, dh, g.baseAddress, u.baseAddress, length)
                }
            }
            expectBitwiseEqual(gateInPlace, dgate, "silu backward dgate over gate \(isaNames[Int(isa)])")
            expectBitwiseEqual(upInPlace, dup, "silu backward dup over up \(isaNames[Int(isa)])")
            var dhInPlace = dh, upOut = [Float](repeating: 0, count: length)
            dhInPlace.withUnsafeMutableBufferPointer { d in
                hk_silu_mul_backward(gate, up, d.baseAddress, d.baseAddress, &upOut, length)
            }
            expectBitwiseEqual(dhInPlace, dgate, "silu backward dgate over dh \(isaNames[Int(isa)])")
        }
    }

    @Test func siluMulBackwardMatchesFiniteDifferences() {
        var generator = SeededGenerator(seed: 312)
        let length = 41
        let gate = generator.floats(length, in: -6...6), up = generator.floats(length, in: -2...2), c = generator.floats(length)
        func loss(_ g: [Double], _ u: [Double]) -> Double {
            (0..<length).reduce(0) { $0 + Double(c[$1]) * g[$1] / (1 + exp(-g[$1])) * u[$1] }
        }
        let upDoubles = up.map(Double.init), gateDoubles = gate.map(Double.init)
        let numericGate = centralDifferences(gate) { loss($0, upDoubles) }
        let numericUp = centralDifferences(up) { loss(gateDoubles, $0) }
        var referenceGate = [Float](repeating: 0, count: length), referenceUp = referenceGate
        hk_silu_mul_backward_ref(gate, up, c, &referenceGate, &referenceUp, length)
        expectNear(referenceGate, numericGate, tolerance: 1e-6, "silu FD dgate reference")
        expectNear(referenceUp, numericUp, tolerance: 1e-6, "silu FD dup reference")
        forEachISA { isa in
            var dgate = [Float](repeating: 0, count: length), dup = dgate
            hk_silu_mul_backward(gate, up, c, &dgate, &dup, length)
            expectNear(dgate, numericGate, tolerance: 1e-5, "silu FD dgate \(isaNames[Int(isa)])")
            expectNear(dup, numericUp, tolerance: 1e-5, "silu FD dup \(isaNames[Int(isa)])")
        }
    }

    @Test func reluBackward() {
        var generator = SeededGenerator(seed: 313)
        for length in [0, 1, 17, 100_003] {
            var x = generator.floats(length)
            if length >= 1 { x[0] = 0 } // relu'(0) is taken as 0, as torch does
            let dy = generator.floats(length)
            let expected = zip(x, dy).map { $0 > 0 ? $1 : 0 }
            var dx = [Float](repeating: .nan, count: length)
            withThreads(2) { hk_relu_backward(x, dy, &dx, length) }
            #expect(dx == expected, "relu backward n \(length)")
            var inPlace = dy
            inPlace.withUnsafeMutableBufferPointer { d in withThreads(2) { hk_relu_backward(x, d.baseAddress, d.baseAddress, length) } }
            #expect(inPlace == expected, "relu backward in place n \(length)")
            // Finite differences away from the kink: relu is linear on each side.
            if length > 0 && length < 100 {
                let numeric = centralDifferences(x, step: 1e-6) { z in zip(z, dy).reduce(0) { $0 + max($1.0, 0) * Double($1.1) } }
                let away = x.indices.filter { abs(x[$0]) > 1e-3 }
                #expect(away.allSatisfy { abs(numeric[$0] - expected[$0]) <= 1e-6 }, "relu FD n \(length)")
            }
        }
    }

    // MARK: - RoPE

    @Test func ropeBackwardMatchesReferenceAndInvertsForward() {
        var generator = SeededGenerator(seed: 320)
        for (tokens, heads, headDim, rotDim) in [(1, 1, 8, 8), (7, 4, 64, 64), (5, 2, 64, 32), (9, 3, 40, 40)] {
            let x = generator.floats(tokens * heads * headDim, in: -2...2)
            let positions = (0..<tokens).map { _ in Int32(generator.int(in: 0...4096)) }
            let frequencies = ropeFrequencies(rotDim: rotDim)
            let shape = (Int32(tokens), Int32(heads), Int32(headDim), Int32(rotDim))
            for interleaved: Int32 in [0, 1] {
                var expected = x
                hk_rope_backward_ref(&expected, positions, frequencies, shape.0, shape.1, shape.2, shape.3, interleaved)
                for threads: Int32 in [1, 2] {
                    var actual = x
                    withThreads(threads) {
                        hk_rope_backward(&actual, positions, frequencies, shape.0, shape.1, shape.2, shape.3, interleaved)
                    }
                    expectBitwiseEqual(actual, expected, "rope backward \(tokens)x\(heads)x\(headDim)/\(rotDim) mode \(interleaved) threads \(threads)")
                }
                // Backward undoes forward (rotations are orthogonal) up to f32 rounding.
                var roundTrip = x
                hk_rope(&roundTrip, positions, frequencies, shape.0, shape.1, shape.2, shape.3, interleaved)
                hk_rope_backward(&roundTrip, positions, frequencies, shape.0, shape.1, shape.2, shape.3, interleaved)
                expectClose(roundTrip, x, relative: 0, absolute: 1e-6, "rope backward(forward) \(tokens)x\(heads) mode \(interleaved)")
            }
        }
    }

    /// L(x) = sum(c * rope(x)) is linear in x, so central differences of the f32 forward (summed in f64) with a
    /// unit step recover dL/dx up to the forward's rounding; the backward applied to c must match.
    @Test func ropeBackwardMatchesFiniteDifferences() {
        var generator = SeededGenerator(seed: 321)
        let (tokens, heads, headDim, rotDim) = (3, 2, 16, 12)
        let x = generator.floats(tokens * heads * headDim), c = generator.floats(tokens * heads * headDim)
        let positions: [Int32] = [0, 17, 3000]
        let frequencies = ropeFrequencies(rotDim: rotDim)
        for interleaved: Int32 in [0, 1] {
            let numeric = centralDifferences(x, step: 1) { point in
                var rotated = point.map(Float.init)
                hk_rope_ref(&rotated, positions, frequencies, Int32(tokens), Int32(heads), Int32(headDim), Int32(rotDim), interleaved)
                return zip(rotated, c).reduce(0) { $0 + Double($1.0) * Double($1.1) }
            }
            var gradient = c
            hk_rope_backward(&gradient, positions, frequencies, Int32(tokens), Int32(heads), Int32(headDim), Int32(rotDim), interleaved)
            expectClose(gradient, numeric, relative: 0, absolute: 1e-5, "rope FD mode \(interleaved)")
        }
    }

    // MARK: - Attention

    private func attentionBackward(_ q: [Float], _ k: [Float], _ v: [Float], _ dOut: [Float], n: Int, heads: Int,
                                   kvHeads: Int, headDim: Int, scale: Float, reference: Bool, window: Int = 0,
                                   softcap: Float = 0) -> (dq: [Float], dk: [Float], dv: [Float]) {
        var dq = [Float](repeating: .nan, count: n * heads * headDim)
        var dk = [Float](repeating: .nan, count: n * kvHeads * headDim), dv = dk
        let arguments = (Int32(n), Int32(heads), Int32(kvHeads), Int32(headDim))
        if reference {
            hk_attention_backward_ref(q, k, v, dOut, &dq, &dk, &dv, arguments.0, arguments.1, arguments.2, arguments.3, scale, Int32(window), softcap)
        } else {
            hk_attention_backward(q, k, v, dOut, &dq, &dk, &dv, arguments.0, arguments.1, arguments.2, arguments.3, scale, Int32(window),
                                  softcap)
        }
        return (dq, dk, dv)
    }

    private static let attentionShapes = [(2, 1, 8), (4, 2, 8), (8, 2, 64), (4, 1, 64), (3, 3, 17), (4, 2, 40)]

    @Test func attentionBackwardMatchesReference() {
        var generator = SeededGenerator(seed: 330)
        for (heads, kvHeads, headDim) in Self.attentionShapes {
            for n in [1, 7, 33] {
                let scale = 1 / Float(headDim).squareRoot()
                // Larger queries give peaked softmaxes, which exercises the max shift.
                let q = generator.floats(n * heads * headDim, in: -3...3)
                let k = generator.floats(n * kvHeads * headDim), v = generator.floats(n * kvHeads * headDim)
                let dOut = generator.floats(n * heads * headDim)
                let expected = attentionBackward(q, k, v, dOut, n: n, heads: heads, kvHeads: kvHeads, headDim: headDim, scale: scale, reference: true)
                forEachISA { isa in
                    let actual = attentionBackward(q, k, v, dOut, n: n, heads: heads, kvHeads: kvHeads, headDim: headDim, scale: scale, reference: false)
                    let context = "attention backward \(isaNames[Int(isa)]) heads \(heads)/\(kvHeads) dim \(headDim) n \(n)"
                    expectNear(actual.dq, expected.dq, tolerance: 2e-5, context + " dq")
                    expectNear(actual.dk, expected.dk, tolerance: 2e-5, context + " dk")
                    expectNear(actual.dv, expected.dv, tolerance: 2e-5, context + " dv")
                }
            }
        }
    }

    /// Gemma 3's local layers: each query sees its last `window` keys. The fast backward (the pair kernels on the
    /// window's rows) against the windowed reference, at each ISA; a window as long as the sequence changes nothing.
    @Test func slidingWindowAttentionBackwardMatchesReference() {
        var generator = SeededGenerator(seed: 331)
        for (heads, kvHeads, headDim) in [(4, 2, 8), (3, 3, 17), (8, 2, 64)] {
            let n = 21
            let scale = 1 / Float(headDim).squareRoot()
            let q = generator.floats(n * heads * headDim, in: -3...3)
            let k = generator.floats(n * kvHeads * headDim), v = generator.floats(n * kvHeads * headDim)
            let dOut = generator.floats(n * heads * headDim)
            let full = attentionBackward(q, k, v, dOut, n: n, heads: heads, kvHeads: kvHeads, headDim: headDim, scale: scale, reference: true)
            for window in [1, 4, 20, 21] {
                let expected = attentionBackward(q, k, v, dOut, n: n, heads: heads, kvHeads: kvHeads, headDim: headDim,
                                                 scale: scale, reference: true, window: window)
                // Only the window as long as the sequence leaves every key visible.
                #expect((expected.dq == full.dq) == (window >= n), "window \(window) of \(n) against full attention")
                forEachISA { isa in
                    let actual = attentionBackward(q, k, v, dOut, n: n, heads: heads, kvHeads: kvHeads, headDim: headDim,
                                                   scale: scale, reference: false, window: window)
                    let context = "windowed attention backward \(isaNames[Int(isa)]) heads \(heads)/\(kvHeads) dim \(headDim) window \(window)"
                    expectNear(actual.dq, expected.dq, tolerance: 2e-5, context + " dq")
                    expectNear(actual.dk, expected.dk, tolerance: 2e-5, context + " dk")
                    expectNear(actual.dv, expected.dv, tolerance: 2e-5, context + " dv")
                }
            }
        }
    }

    @Test func attentionBackwardIsIndependentOfThreadCount() {
        var generator = SeededGenerator(seed: 331)
        let (heads, kvHeads, headDim, n) = (8, 2, 64, 40)
        let q = generator.floats(n * heads * headDim), k = generator.floats(n * kvHeads * headDim)
        let v = generator.floats(n * kvHeads * headDim), dOut = generator.floats(n * heads * headDim)
        forEachISA { isa in
            let single = withThreads(1) { attentionBackward(q, k, v, dOut, n: n, heads: heads, kvHeads: kvHeads, headDim: headDim, scale: 0.125, reference: false) }
            for threads: Int32 in [2, 3] {
                let many = withThreads(threads) { attentionBackward(q, k, v, dOut, n: n, heads: heads, kvHeads: kvHeads, headDim: headDim, scale: 0.125, reference: false) }
                expectBitwiseEqual(many.dq, single.dq, "attention backward dq threads \(threads) \(isaNames[Int(isa)])")
                expectBitwiseEqual(many.dk, single.dk, "attention backward dk threads \(threads) \(isaNames[Int(isa)])")
                expectBitwiseEqual(many.dv, single.dv, "attention backward dv threads \(threads) \(isaNames[Int(isa)])")
            }
        }
    }

    /// L = sum(d_out * attention(q, k, v)) with the f64 forward above; central differences in q, k and v.
    @Test func attentionBackwardMatchesFiniteDifferences() {
        var generator = SeededGenerator(seed: 332)
        // The fourth case slides a window of 3 keys over 7 tokens (Gemma 3's local layers); the last two soft-cap the
        // scores at 1.5 (Gemma 2's cap, made small enough to bite), the last with a window too.
        for (heads, kvHeads, headDim, n, window, softcap) in [(2, 1, 8, 5, 0, 0.0), (4, 1, 4, 4, 0, 0), (4, 2, 6, 6, 0, 0),
                                                              (4, 2, 6, 7, 3, 0), (2, 1, 8, 6, 0, 1.5), (4, 2, 6, 7, 3, 1.5)] {
            let scale = 1 / Double(headDim).squareRoot()
            let q = generator.floats(n * heads * headDim, in: -2...2), k = generator.floats(n * kvHeads * headDim, in: -2...2)
            let v = generator.floats(n * kvHeads * headDim), dOut = generator.floats(n * heads * headDim)
            let (qd, kd, vd) = (q.map(Double.init), k.map(Double.init), v.map(Double.init))
            func loss(_ q: [Double], _ k: [Double], _ v: [Double]) -> Double {
                dot(attentionForward(q: q, k: k, v: v, n: n, heads: heads, kvHeads: kvHeads, headDim: headDim, scale: scale,
                                     window: window, softcap: softcap), dOut)
            }
            let numericQ = centralDifferences(q) { loss($0, kd, vd) }
            let numericK = centralDifferences(k) { loss(qd, $0, vd) }
            let numericV = centralDifferences(v) { loss(qd, kd, $0) }
            let context = "attention FD heads \(heads)/\(kvHeads) dim \(headDim) n \(n) window \(window) softcap \(softcap)"
            let reference = attentionBackward(q, k, v, dOut, n: n, heads: heads, kvHeads: kvHeads, headDim: headDim, scale: Float(scale),
                                              reference: true, window: window, softcap: Float(softcap))
            expectNear(reference.dq, numericQ, tolerance: 1e-5, context + " reference dq")
            expectNear(reference.dk, numericK, tolerance: 1e-5, context + " reference dk")
            expectNear(reference.dv, numericV, tolerance: 1e-5, context + " reference dv")
            forEachISA { isa in
                let fast = attentionBackward(q, k, v, dOut, n: n, heads: heads, kvHeads: kvHeads, headDim: headDim, scale: Float(scale),
                                             reference: false, window: window, softcap: Float(softcap))
                expectNear(fast.dq, numericQ, tolerance: 2e-5, context + " \(isaNames[Int(isa)]) dq")
                expectNear(fast.dk, numericK, tolerance: 2e-5, context + " \(isaNames[Int(isa)]) dk")
                expectNear(fast.dv, numericV, tolerance: 2e-5, context + " \(isaNames[Int(isa)]) dv")
            }
        }
    }

    // MARK: - Log-softmax gather

    @Test func logSoftmaxGatherBackwardMatchesReference() {
        var generator = SeededGenerator(seed: 340)
        for (rows, vocab) in [(1, 1), (3, 7), (4, 16), (5, 100), (3, 1031), (9, 32000)] {
            let logits = generator.floats(rows * vocab, in: -8...8)
            let targets = (0..<rows).map { r -> Int32 in r == 1 ? -1 : Int32(generator.int(in: 0...(vocab - 1))) }
            // Row 2 has coefficient 0: zero gradient, logp still written.
            let coefficients = (0..<rows).map { r -> Float in r == 2 ? 0 : Float.random(in: -2...2, using: &generator) }
            var expected = logits, expectedLogp = [Float](repeating: .nan, count: rows)
            hk_log_softmax_gather_backward_ref(&expected, targets, coefficients, &expectedLogp, Int32(rows), Int32(vocab))
            forEachISA { isa in
                for threads: Int32 in [1, 2] {
                    var actual = logits, logp = [Float](repeating: .nan, count: rows)
                    withThreads(threads) {
                        hk_log_softmax_gather_backward(&actual, targets, coefficients, &logp, Int32(rows), Int32(vocab))
                    }
                    let context = "log-softmax backward \(isaNames[Int(isa)]) \(rows)x\(vocab) threads \(threads)"
                    // Gradients are c * (onehot - p) with p in [0, 1]: absolute error relative to |c|.
                    for r in 0..<rows {
                        let slice = (r * vocab)..<((r + 1) * vocab)
                        expectClose(Array(actual[slice]), Array(expected[slice]), relative: 1e-5,
                                    absolute: 1e-6 * abs(coefficients[r]) + 1e-30, context + " row \(r)")
                    }
                    if rows > 1 { #expect(actual[vocab..<(2 * vocab)].allSatisfy { $0 == 0 }, "\(context): row without target is zero") }
                    if rows > 2 { #expect(actual[(2 * vocab)..<(3 * vocab)].allSatisfy { $0 == 0 }, "\(context): c = 0 row is zero") }
                    if rows > 1 { #expect(logp[1] == 0, "\(context): logp of a row without target") }
                    expectClose(logp, expectedLogp, relative: 1e-6, absolute: 1e-6, context + " logp")
                    // logp has the bits hk_log_softmax_gather gives at this level (rows with a target).
                    var forward = [Float](repeating: .nan, count: rows)
                    withThreads(threads) { hk_log_softmax_gather(logits, targets, &forward, Int32(rows), Int32(vocab)) }
                    for r in 0..<rows where targets[r] >= 0 {
                        #expect(logp[r].bitPattern == forward[r].bitPattern, "\(context): logp row \(r) \(logp[r]) vs forward \(forward[r])")
                    }
                }
            }
        }
    }

    /// L = sum_r c_r logp_r, central differences of the f64 forward above in every logit.
    @Test func logSoftmaxGatherBackwardMatchesFiniteDifferences() {
        var generator = SeededGenerator(seed: 341)
        let (rows, vocab) = (4, 23)
        let logits = generator.floats(rows * vocab, in: -5...5)
        let targets: [Int32] = [3, 0, 22, -1]
        let coefficients: [Float] = [1, -0.5, 2.5, 7]
        let numeric = centralDifferences(logits) { point in
            zip(targetLogProbabilities(point, targets: targets, vocab: vocab), coefficients).reduce(0) { $0 + $1.0 * Double($1.1) }
        }
        var reference = logits, logp = [Float](repeating: 0, count: rows)
        hk_log_softmax_gather_backward_ref(&reference, targets, coefficients, &logp, Int32(rows), Int32(vocab))
        expectNear(reference, numeric, tolerance: 1e-6, "log-softmax FD reference")
        forEachISA { isa in
            var fast = logits
            hk_log_softmax_gather_backward(&fast, targets, coefficients, &logp, Int32(rows), Int32(vocab))
            expectNear(fast, numeric, tolerance: 1e-5, "log-softmax FD \(isaNames[Int(isa)])")
        }
    }

    @Test func logSoftmaxGatherBackwardTargetOutOfRangeIsNaN() {
        var logits: [Float] = [1, 2, 3], logp: [Float] = [0]
        hk_log_softmax_gather_backward(&logits, [3], [1], &logp, 1, 3)
        #expect(logp[0].isNaN && logits.allSatisfy { $0.isNaN })
    }

    // MARK: - Linear input gradient

    private static let linearTypes = ["f32", "f16", "bf16", "q8_0", "q4_0", "q4_k", "q6_k", "q4_1", "q5_0", "q5_1", "iq4_nl",
                                      "q2_k", "q3_k", "q5_k", "iq4_xs",
                                      "iq2_xxs", "iq2_xs", "iq2_s", "iq3_xxs", "iq3_s", "iq1_s", "iq1_m", "tq1_0", "tq2_0"]

    @Test func linearBackwardInputMatchesReference() {
        var generator = SeededGenerator(seed: 350)
        for name in Self.linearTypes {
            let quantized = !["f32", "f16", "bf16"].contains(name)
            let block = quantized ? QuantType(rawValue: name)?.blockSize ?? 256 : 1
            // (rows, in, out): odd float widths; the K formats need in = 256 k. The last shape has a single column
            // unit for the K formats (in = 256) and enough work for two threads: the rows are split too.
            let shapes = quantized ? [(1, 2 * max(block, 128), 37), (7, 512, 33), (33, 256, 19), (64, 256, 256)]
                                   : [(1, 100, 37), (7, 131, 33), (33, 48, 19), (64, 256, 256)]
            for (rows, inputs, out) in shapes {
                let weight = LinearWeight(name, out: out, in: inputs, generator: &generator)
                let dy = generator.floats(rows * out), start = generator.floats(rows * inputs)
                // Per element: sum_o |dy w| (the scale of f32 rounding in a sum of `out` products), from the f32
                // reference applied to absolute values.
                var magnitude = [Float](repeating: 0, count: rows * inputs)
                hk_linear_backward_input_ref(weight.values.map(abs), Int32(HK_TYPE_F32.rawValue), dy.map(abs), &magnitude,
                                             Int32(rows), Int32(inputs), Int32(out), 0)
                for accumulate in [false, true] {
                    var expected = start
                    weight.backward(dy, into: &expected, rows: rows, in: inputs, out: out, accumulate: accumulate, reference: true)
                    // The reference multiplies the exact f32 values of the weight (checked independently here, on
                    // the smaller shapes: Swift loops are slow in debug builds).
                    if rows * inputs * out <= 1 << 20 {
                        var naive = start
                        for r in 0..<rows {
                            for i in 0..<inputs {
                                var sum = 0.0
                                for o in 0..<out { sum += Double(dy[r * out + o]) * Double(weight.values[o * inputs + i]) }
                                naive[r * inputs + i] = Float(accumulate ? Double(start[r * inputs + i]) + sum : sum)
                            }
                        }
                        expectBitwiseEqual(expected, naive, "linear backward reference \(name) \(rows)x\(inputs)x\(out)")
                    }
                    let bounds = zip(magnitude, expected).map { 1e-6 * $0.0 + 1e-6 * abs($0.1) + 1e-30 }
                    for threads: Int32 in [1, 2, 3] {
                        var actual = start
                        withThreads(threads) {
                            weight.backward(dy, into: &actual, rows: rows, in: inputs, out: out, accumulate: accumulate)
                        }
                        expectWithin(actual, expected, bounds: bounds,
                                     "linear backward \(name) \(rows)x\(inputs)x\(out) accumulate \(accumulate) threads \(threads)")
                    }
                }
            }
        }
    }

    /// The backward is the transpose of the forward product the model runs: with L = sum(c * y), y = x W^T from
    /// hk_matmul_many (f32, f16, bf16) or the dequantizing reference product (block types), central differences
    /// in x (L is linear, so a unit step is exact up to the forward's rounding) match dx = c W.
    @Test func linearBackwardInputMatchesFiniteDifferences() {
        var generator = SeededGenerator(seed: 351)
        for name in Self.linearTypes {
            let quantized = !["f32", "f16", "bf16"].contains(name)
            let (rows, inputs, out) = (3, quantized ? 256 : 45, 11)
            let weight = LinearWeight(name, out: out, in: inputs, generator: &generator)
            let x = generator.floats(rows * inputs), c = generator.floats(rows * out)
            func forward(_ point: [Double]) -> Double {
                let input = point.map(Float.init)
                var y = [Float](repeating: 0, count: rows * out)
                weight.bytes.withUnsafeBytes { raw in
                    if quantized {
                        _ = hk_matmul_many_quant_ref(weight.type, raw.baseAddress, input, &y, Int32(rows), Int32(inputs), Int32(out))
                    } else {
                        let type = name == "f32" ? HK_TYPE_F32 : name == "f16" ? HK_TYPE_F16 : HK_TYPE_BF16
                        hk_matmul_many(raw.baseAddress, Int32(type.rawValue), input, &y, Int32(rows), Int32(inputs), Int32(out))
                    }
                }
                return zip(y, c).reduce(0) { $0 + Double($1.0) * Double($1.1) }
            }
            let numeric = centralDifferences(x, step: 1, forward)
            var dx = [Float](repeating: .nan, count: rows * inputs)
            weight.backward(c, into: &dx, rows: rows, in: inputs, out: out, accumulate: false)
            expectNear(dx, numeric, tolerance: 2e-5, "linear FD \(name)")
        }
    }

    @Test func linearBackwardInputRejectsBadTypes() {
        #expect(hk_linear_backward_input_supported(Int32(HK_TYPE_BF16.rawValue), 100) == 1)
        #expect(hk_linear_backward_input_supported(Int32(HK_TYPE_Q4_K.rawValue), 512) == 1)
        #expect(hk_linear_backward_input_supported(Int32(HK_TYPE_Q4_K.rawValue), 100) == 0)
        #expect(hk_linear_backward_input_supported(Int32(HK_TYPE_Q8_K.rawValue), 256) == 0)
        // Q5_0, llama.cpp's fallback for q4_k_m rows of 576 values (SmolLM2), once left QLoRA's input gradient NaN.
        #expect(hk_linear_backward_input_supported(Int32(HK_TYPE_Q5_0.rawValue), 576) == 1)
        #expect(hk_linear_backward_input_supported(28, 256) == 0) // F64: no kernels
        var dx = [Float](repeating: 0, count: 2 * 64)
        let weight = [Float](repeating: 1, count: 3 * 64)
        hk_linear_backward_input(weight, 28, [1, 2, 3, 4, 5, 6], &dx, 2, 64, 3, 0)
        #expect(dx.allSatisfy { $0.isNaN })
        // out = 0: the gradient is zero (written) or unchanged (accumulated).
        dx = [Float](repeating: 5, count: 2 * 64)
        hk_linear_backward_input(weight, Int32(HK_TYPE_F32.rawValue), [], &dx, 2, 64, 0, 1)
        #expect(dx.allSatisfy { $0 == 5 })
        hk_linear_backward_input(weight, Int32(HK_TYPE_F32.rawValue), [], &dx, 2, 64, 0, 0)
        #expect(dx.allSatisfy { $0 == 0 })
    }

    /// Not a test: GFLOP/s of the input gradient against the forward product on model-sized shapes. Run with
    /// HONE_BENCH_TRAIN_KERNELS=1 swift test --filter linearBackwardInputThroughput.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["HONE_BENCH_TRAIN_KERNELS"] != nil))
    func linearBackwardInputThroughput() {
        var generator = SeededGenerator(seed: 359)
        let threads = Int32(ProcessInfo.processInfo.environment["HONE_BENCH_THREADS"].flatMap { Int32($0) } ?? 2)
        for (rows, inputs, out) in [(512, 2048, 2048), (512, 5632, 2048), (512, 2048, 5632)] {
            for name in ["f16", "q4_k"] {
                let weight = LinearWeight(name, out: out, in: inputs, generator: &generator)
                let x = generator.floats(rows * inputs), dy = generator.floats(rows * out)
                var y = [Float](repeating: 0, count: rows * out), dx = [Float](repeating: 0, count: rows * inputs)
                func best(_ body: () -> Void) -> Double {
                    body() // warm up (page faults, buffers)
                    var fastest = Double.infinity
                    for _ in 0..<3 {
                        let start = DispatchTime.now().uptimeNanoseconds
                        body()
                        fastest = min(fastest, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
                    }
                    return fastest
                }
                let forward = withThreads(threads) {
                    best {
                        weight.bytes.withUnsafeBytes { raw in
                            if name == "f16" {
                                hk_matmul_many(raw.baseAddress, Int32(HK_TYPE_F16.rawValue), x, &y, Int32(rows), Int32(inputs), Int32(out))
                            } else {
                                _ = hk_matmul_many_quant(weight.type, raw.baseAddress, x, &y, Int32(rows), Int32(inputs), Int32(out))
                            }
                        }
                    }
                }
                let backward = withThreads(threads) {
                    best { weight.backward(dy, into: &dx, rows: rows, in: inputs, out: out, accumulate: false) }
                }
                let flops = 2.0 * Double(rows) * Double(inputs) * Double(out)
                print(String(format: "linear %@ rows %d in %d out %d threads %d: forward %.1f GFLOP/s (%.1f ms), backward input %.1f GFLOP/s (%.1f ms), ratio %.2f",
                             name, rows, inputs, out, threads, flops / forward / 1e9, forward * 1e3, flops / backward / 1e9,
                             backward * 1e3, forward / backward))
            }
        }
    }

    // MARK: - AdamW

    /// torch.optim.AdamW (torch 2.13 CPU) for five steps on three hyper-parameter sets. exp_avg and exp_avg_sq
    /// must match bit for bit. The parameters may not: torch takes sqrt(exp_avg_sq) from MKL, which is not always
    /// correctly rounded, and a one-ulp change of the denominator moves the update by ~1.2e-7 of itself. So each
    /// parameter may differ from torch's by one ulp of itself plus 2.4e-7 of that step's update; every step
    /// starts from torch's parameters so that differences cannot compound.
    @Test func adamwMatchesTorch() throws {
        let cases = try AdamWCase.load()
        #expect(cases.count == 3)
        for fixture in cases {
            for variant in ["f32 arguments", "f64 arguments"] {
                forEachISA { isa in
                    var param = fixture.param
                    var m = [Float](repeating: 0, count: param.count), v = m
                    var differing = 0, worstUlps = 0
                    for (index, expected) in fixture.steps.enumerated() {
                        let before = param
                        if variant == "f32 arguments" {
                            hk_adamw_step(&param, fixture.grads[index], &m, &v, param.count, Float(fixture.lr), Float(fixture.beta1),
                                          Float(fixture.beta2), Float(fixture.eps), Float(fixture.weightDecay), Int32(index + 1))
                        } else {
                            hk_adamw_step_f64(&param, fixture.grads[index], &m, &v, param.count, fixture.lr, fixture.beta1,
                                              fixture.beta2, fixture.eps, fixture.weightDecay, Int32(index + 1))
                        }
                        let context = "adamw \(fixture.name) \(variant) \(isaNames[Int(isa)]) step \(index + 1)"
                        expectBitwiseEqual(m, expected.m, context + " exp_avg")
                        expectBitwiseEqual(v, expected.v, context + " exp_avg_sq")
                        let bounds = (0..<param.count).map { i in
                            expected.param[i].ulp + 2.4e-7 * abs(expected.param[i] - before[i])
                        }
                        expectWithin(param, expected.param, bounds: bounds, context + " param")
                        for (ours, theirs) in zip(param, expected.param) where ours != theirs {
                            differing += 1
                            worstUlps = max(worstUlps, ulpDistance(ours, theirs))
                        }
                        param = expected.param
                    }
                    if isa == hk_isa_detect() && variant == "f64 arguments" {
                        print("adamw \(fixture.name): \(differing) of \(param.count * fixture.steps.count) parameter values differ from torch (max \(worstUlps) ulp); exp_avg, exp_avg_sq bit-exact")
                    }
                }
            }
        }
    }

    @Test func adamwFastMatchesReference() {
        var generator = SeededGenerator(seed: 360)
        for length in [1, 7, 16, 33, 20_003] {
            for (lr, beta1, beta2, eps, decay) in [(1e-3, 0.9, 0.999, 1e-8, 0.01), (2e-2, 0.3, 0.9, 1e-6, 0.0)] {
                let param = generator.floats(length), grad = generator.floats(length, in: -0.1...0.1)
                let m = generator.floats(length, in: -0.01...0.01), v = generator.floats(length, in: 0...1e-4)
                var expected = (param, m, v)
                hk_adamw_step_f64_ref(&expected.0, grad, &expected.1, &expected.2, length, lr, beta1, beta2, eps, decay, 3)
                forEachISA { isa in
                    for threads: Int32 in [1, 2] {
                        var actual = (param, m, v)
                        withThreads(threads) {
                            hk_adamw_step_f64(&actual.0, grad, &actual.1, &actual.2, length, lr, beta1, beta2, eps, decay, 3)
                        }
                        let context = "adamw fast \(isaNames[Int(isa)]) n \(length) beta1 \(beta1) threads \(threads)"
                        expectBitwiseEqual(actual.0, expected.0, context + " param")
                        expectBitwiseEqual(actual.1, expected.1, context + " m")
                        expectBitwiseEqual(actual.2, expected.2, context + " v")
                    }
                }
            }
        }
    }

    // MARK: - Sum of squares, scale

    @Test func sumSquaresAndScale() {
        var generator = SeededGenerator(seed: 370)
        for length in [0, 1, 17, 65_536, 65_537, 300_001] {
            let x = generator.floats(length, in: -3...3)
            let expected = hk_sum_squares_ref(x, length)
            forEachISA { isa in
                let single = withThreads(1) { hk_sum_squares(x, length) }
                #expect(abs(single - expected) <= 1e-12 * max(expected, 1), "sum squares \(isaNames[Int(isa)]) n \(length)")
                for threads: Int32 in [2, 3] {
                    #expect(withThreads(threads) { hk_sum_squares(x, length) } == single, "sum squares threads \(threads) n \(length)")
                }
            }
            var scaled = x
            withThreads(2) { hk_scale(&scaled, 0.3, length) }
            #expect(scaled == x.map { $0 * 0.3 }, "scale n \(length)")
        }
    }

    // MARK: - Dropout

    @Test func dropoutIsRegenerableAndUnbiased() {
        var generator = SeededGenerator(seed: 380)
        let length = 200_003
        let x = generator.floats(length)
        let p: Float = 0.1, seed: UInt64 = 42, offset: UInt64 = 1_000_000
        var y = [Float](repeating: .nan, count: length)
        withThreads(1) { hk_dropout(x, &y, length, p, seed, offset) }
        // Same bits with more threads, in place, and when cut into two calls at an arbitrary index.
        var threaded = [Float](repeating: .nan, count: length)
        withThreads(2) { hk_dropout(x, &threaded, length, p, seed, offset) }
        #expect(threaded == y)
        var inPlace = x
        inPlace.withUnsafeMutableBufferPointer { buffer in hk_dropout(buffer.baseAddress, buffer.baseAddress, length, p, seed, offset) }
        #expect(inPlace == y)
        var pieces = [Float](repeating: .nan, count: length)
        let cut = 77_777
        x.withUnsafeBufferPointer { source in
            pieces.withUnsafeMutableBufferPointer { target in
                hk_dropout(source.baseAddress, target.baseAddress, cut, p, seed, offset)
                hk_dropout(source.baseAddress! + cut, target.baseAddress! + cut, length - cut, p, seed, offset + UInt64(cut))
            }
        }
        #expect(pieces == y)
        // Kept elements are scaled by 1 / (1 - p), the rest are 0, as hk_dropout_keep says.
        let scale = 1 / (1 - p)
        var kept = 0
        for i in 0..<length {
            if hk_dropout_keep(p, seed, offset + UInt64(i)) != 0 {
                kept += 1
                #expect(y[i] == x[i] * scale)
            } else {
                #expect(y[i] == 0)
            }
        }
        // Every ISA level (the AVX-512 path computes the hash in 64-bit vector lanes) gives the same mask.
        forEachISA { isa in
            var level = [Float](repeating: .nan, count: length)
            hk_dropout(x, &level, length, p, seed, offset)
            #expect(level == y, "ISA \(isa)")
            for tail in [1, 7, 9] {
                var short = [Float](repeating: .nan, count: tail)
                hk_dropout(x, &short, tail, p, seed, offset)
                #expect(short == Array(y.prefix(tail)), "ISA \(isa), \(tail) elements")
            }
        }
        // Binomial(n, 0.9): standard deviation ~134; allow 5 of them.
        #expect(abs(Double(kept) - 0.9 * Double(length)) < 5 * (Double(length) * 0.09).squareRoot(), "kept \(kept)")
        // Another seed gives a different mask; p = 0 copies; p = 1 zeroes.
        var other = [Float](repeating: .nan, count: length)
        hk_dropout(x, &other, length, p, seed + 1, offset)
        #expect(other != y)
        hk_dropout(x, &other, length, 0, seed, offset)
        #expect(other == x)
        hk_dropout(x, &other, length, 1, seed, offset)
        #expect(other.allSatisfy { $0 == 0 })
    }
}
