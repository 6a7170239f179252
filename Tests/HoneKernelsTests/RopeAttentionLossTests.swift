import Foundation
import Testing
import HoneKernels

/// Llama-style inverse frequencies base^(-2j / rot_dim), in f32 as HF stores them.
private func inverseFrequencies(rotDim: Int, base: Double = 10000) -> [Float] {
    (0..<(rotDim / 2)).map { Float(1 / pow(base, Double(2 * $0) / Double(rotDim))) }
}

extension KernelTests {
    // MARK: - RoPE

    /// Both versions compute the same f32 angle, the same double cos/sin and the same unfused f32
    /// products, so they must agree bit for bit.
    @Test func ropeMatchesReference() {
        var generator = SeededGenerator(seed: 40)
        for (tokens, heads, headDim, rotDim) in [(1, 1, 8, 8), (3, 4, 64, 64), (7, 2, 64, 32), (9, 3, 40, 40), (5, 2, 128, 64)] {
            let x = generator.floats(tokens * heads * headDim, in: -2...2)
            let positions = (0..<tokens).map { _ in Int32(generator.int(in: 0...100_000)) }
            let frequencies = inverseFrequencies(rotDim: rotDim)
            for interleaved: Int32 in [0, 1] {
                var expected = x
                hk_rope_ref(&expected, positions, frequencies, Int32(tokens), Int32(heads), Int32(headDim), Int32(rotDim), interleaved)
                for threads: Int32 in [1, 2] {
                    var actual = x
                    withThreads(threads) {
                        hk_rope(&actual, positions, frequencies, Int32(tokens), Int32(heads), Int32(headDim), Int32(rotDim), interleaved)
                    }
                    expectBitwiseEqual(actual, expected, "rope tokens \(tokens) heads \(heads) dim \(headDim)/\(rotDim) mode \(interleaved) threads \(threads)")
                }
                // Features past rot_dim are left alone.
                for t in 0..<tokens {
                    for h in 0..<heads {
                        let start = (t * heads + h) * headDim
                        #expect(expected[(start + rotDim)..<(start + headDim)] == x[(start + rotDim)..<(start + headDim)])
                    }
                }
            }
        }
    }

    /// A pass makes the angle table once and every layer rotates with it: the table route must equal the
    /// reference bit for bit, forward and backward, at every thread count, whether the table covers the rows
    /// alone or was made for a longer pass and is read from an offset.
    @Test func ropeFromAngleTableMatchesReference() {
        var generator = SeededGenerator(seed: 41)
        for (tokens, heads, headDim, rotDim) in [(1, 1, 8, 8), (3, 4, 64, 64), (7, 2, 64, 32), (40, 3, 64, 64), (9, 3, 40, 40)] {
            let x = generator.floats(tokens * heads * headDim, in: -2...2)
            let positions = (0..<tokens).map { _ in Int32(generator.int(in: 0...100_000)) }
            let frequencies = inverseFrequencies(rotDim: rotDim)
            for interleaved: Int32 in [0, 1] {
                var forward = x, backward = x
                hk_rope_ref(&forward, positions, frequencies, Int32(tokens), Int32(heads), Int32(headDim), Int32(rotDim), interleaved)
                hk_rope_backward_ref(&backward, positions, frequencies, Int32(tokens), Int32(heads), Int32(headDim), Int32(rotDim), interleaved)
                for threads: Int32 in [1, 2] {
                    withThreads(threads) {
                        // Two unrelated rows first, as a pass whose earlier sequence is another document.
                        let padded = [Int32(7), 123] + positions
                        var table = [Float](repeating: .nan, count: padded.count * rotDim)
                        hk_rope_table(padded, frequencies, Int32(padded.count), Int32(rotDim), &table)
                        var rotated = x, unrotated = x
                        table.withUnsafeBufferPointer { angles in
                            let rows = angles.baseAddress! + 2 * rotDim
                            hk_rope_apply(&rotated, rows, Int32(tokens), Int32(heads), Int32(headDim), Int32(rotDim), interleaved, 0)
                            hk_rope_apply(&unrotated, rows, Int32(tokens), Int32(heads), Int32(headDim), Int32(rotDim), interleaved, 1)
                        }
                        let shape = "\(tokens)x\(heads)x\(headDim)/\(rotDim) mode \(interleaved) threads \(threads)"
                        expectBitwiseEqual(rotated, forward, "rope from table \(shape)")
                        expectBitwiseEqual(unrotated, backward, "rope backward from table \(shape)")
                    }
                }
            }
        }
    }

    @Test func ropeKnownValues() {
        let headDim = 8, frequencies = inverseFrequencies(rotDim: headDim)
        let x = (0..<(2 * headDim)).map { Float($0 + 1) }
        // Position 0 is the identity.
        var rotated = x
        hk_rope(&rotated, [0, 0], frequencies, 2, 1, Int32(headDim), Int32(headDim), 0)
        #expect(rotated == x)
        // Interleaved mode on a row whose pairs were interleaved equals rotate_half mode on the original.
        let position: Int32 = 1234
        var halfMode = Array(x.prefix(headDim))
        hk_rope(&halfMode, [position], frequencies, 1, 1, Int32(headDim), Int32(headDim), 0)
        let half = headDim / 2
        var interleavedRow = [Float](repeating: 0, count: headDim)
        for j in 0..<half {
            interleavedRow[2 * j] = x[j]
            interleavedRow[2 * j + 1] = x[j + half]
        }
        hk_rope(&interleavedRow, [position], frequencies, 1, 1, Int32(headDim), Int32(headDim), 1)
        for j in 0..<half {
            #expect(interleavedRow[2 * j] == halfMode[j])
            #expect(interleavedRow[2 * j + 1] == halfMode[j + half])
        }
        // Pair j = 0 turns by exactly `position` radians (inv_freq[0] = 1).
        let angle = Double(position)
        #expect(abs(Double(halfMode[0]) - (1 * cos(angle) - 5 * sin(angle))) < 1e-5)
        #expect(abs(Double(halfMode[half]) - (5 * cos(angle) + 1 * sin(angle))) < 1e-5)
    }

    // MARK: - Attention

    private func attention(_ q: [Float], _ k: [Float], _ v: [Float], nQ: Int, qStart: Int, heads: Int, kvHeads: Int,
                           headDim: Int, reference: Bool) -> [Float] {
        var out = [Float](repeating: .nan, count: nQ * heads * headDim)
        let scale = 1 / Float(headDim).squareRoot()
        let arguments = (Int32(nQ), Int32(qStart), Int32(heads), Int32(kvHeads), Int32(headDim))
        if reference {
            hk_attention_ref(q, k, v, &out, arguments.0, arguments.1, arguments.2, arguments.3, arguments.4, scale, 0, 0)
        } else {
            hk_attention(q, k, v, &out, arguments.0, arguments.1, arguments.2, arguments.3, arguments.4, scale)
        }
        return out
    }

    /// Outputs are convex combinations of values in [-1, 1]; f32 scores, a ~2 ulp exp and an f32 sum
    /// against the all-double reference leave errors around 1e-7, so 1e-5 absolute is generous.
    @Test func attentionMatchesReference() {
        var generator = SeededGenerator(seed: 50)
        // (16, 1, 32): more heads per KV head than one block of queries holds; (40, 3): many blocks of queries.
        let shapes = [(8, 2, 64), (8, 2, 40), (4, 4, 17), (2, 1, 131), (6, 3, 8), (16, 1, 32)]
        for (heads, kvHeads, headDim) in shapes {
            for (nQ, qStart) in [(1, 0), (5, 0), (1, 37), (6, 7), (3, 200), (40, 3)] {
                let keys = qStart + nQ
                // Larger queries give peaked softmaxes, which exercises the max shift.
                let q = generator.floats(nQ * heads * headDim, in: -4...4)
                let k = generator.floats(keys * kvHeads * headDim), v = generator.floats(keys * kvHeads * headDim)
                let expected = attention(q, k, v, nQ: nQ, qStart: qStart, heads: heads, kvHeads: kvHeads, headDim: headDim, reference: true)
                forEachISA { isa in
                    let actual = attention(q, k, v, nQ: nQ, qStart: qStart, heads: heads, kvHeads: kvHeads, headDim: headDim, reference: false)
                    expectClose(actual, expected, relative: 0, absolute: 1e-5,
                                "attention \(isaNames[Int(isa)]) heads \(heads)/\(kvHeads) dim \(headDim) n_q \(nQ) q_start \(qStart)")
                }
            }
        }
    }

    /// Gemma 2's soft-capped scores: the plain-C batch kernel against the reference, with caps that bite (5) and
    /// that do not (1e4, where the result must equal uncapped attention to rounding).
    @Test func softcappedAttentionMatchesReference() {
        var generator = SeededGenerator(seed: 56)
        for (heads, kvHeads, headDim) in [(8, 2, 64), (4, 4, 17), (2, 1, 131)] {
            for (nQ, qStart) in [(1, 0), (5, 0), (1, 37), (6, 7)] {
                let keys = qStart + nQ
                let q = generator.floats(nQ * heads * headDim, in: -4...4)
                let k = generator.floats(keys * kvHeads * headDim), v = generator.floats(keys * kvHeads * headDim)
                let scale = 1 / Float(headDim).squareRoot()
                for cap: Float in [5, 1e4] {
                    var expected = [Float](repeating: .nan, count: nQ * heads * headDim)
                    hk_attention_ref(q, k, v, &expected, Int32(nQ), Int32(qStart), Int32(heads), Int32(kvHeads),
                                     Int32(headDim), scale, 0, cap)
                    var actual = [Float](repeating: .nan, count: nQ * heads * headDim)
                    q.withUnsafeBufferPointer { qp in
                        k.withUnsafeBufferPointer { kp in
                            v.withUnsafeBufferPointer { vp in
                                actual.withUnsafeMutableBufferPointer { out in
                                    var sequence = hk_attention_sequence(q: qp.baseAddress, k: kp.baseAddress, v: vp.baseAddress,
                                                                         out: out.baseAddress, n_q: Int32(nQ), q_start: Int32(qStart))
                                    hk_attention_batch_softcap(&sequence, 1, Int32(heads), Int32(kvHeads), Int32(headDim), scale, cap)
                                }
                            }
                        }
                    }
                    let context = "softcap \(cap) heads \(heads)/\(kvHeads) dim \(headDim) n_q \(nQ) q_start \(qStart)"
                    expectClose(actual, expected, relative: 0, absolute: 1e-5, context)
                    if cap > 100 {
                        let plain = attention(q, k, v, nQ: nQ, qStart: qStart, heads: heads, kvHeads: kvHeads, headDim: headDim, reference: true)
                        expectClose(actual, plain, relative: 0, absolute: 1e-4, context + " against no cap")
                    }
                }
            }
        }
    }

    @Test func attentionIsIndependentOfThreadCount() {
        var generator = SeededGenerator(seed: 51)
        let (heads, kvHeads, headDim, nQ, qStart) = (8, 2, 64, 9, 100)
        let q = generator.floats(nQ * heads * headDim)
        let k = generator.floats((qStart + nQ) * kvHeads * headDim), v = generator.floats((qStart + nQ) * kvHeads * headDim)
        forEachISA { isa in
            let single = withThreads(1) { attention(q, k, v, nQ: nQ, qStart: qStart, heads: heads, kvHeads: kvHeads, headDim: headDim, reference: false) }
            let double = withThreads(2) { attention(q, k, v, nQ: nQ, qStart: qStart, heads: heads, kvHeads: kvHeads, headDim: headDim, reference: false) }
            expectBitwiseEqual(double, single, "attention threads \(isaNames[Int(isa)])")
        }
    }

    /// A decode step over a long cache goes through the keys in blocks, the value sums carried from block to block;
    /// its output is close to the reference and the same bits at one and two threads (heads split across threads).
    @Test func decodeStepOverALongCache() {
        var generator = SeededGenerator(seed: 55)
        for (heads, kvHeads, headDim, qStart) in [(9, 3, 64, 1000), (8, 2, 131, 129), (32, 4, 64, 300), (5, 5, 40, 64)] {
            let q = generator.floats(heads * headDim, in: -4...4)
            let k = generator.floats((qStart + 1) * kvHeads * headDim), v = generator.floats((qStart + 1) * kvHeads * headDim)
            let expected = attention(q, k, v, nQ: 1, qStart: qStart, heads: heads, kvHeads: kvHeads, headDim: headDim, reference: true)
            forEachISA { isa in
                let context = "decode \(isaNames[Int(isa)]) heads \(heads)/\(kvHeads) dim \(headDim) keys \(qStart + 1)"
                let single = withThreads(1) { attention(q, k, v, nQ: 1, qStart: qStart, heads: heads, kvHeads: kvHeads, headDim: headDim, reference: false) }
                let double = withThreads(2) { attention(q, k, v, nQ: 1, qStart: qStart, heads: heads, kvHeads: kvHeads, headDim: headDim, reference: false) }
                expectClose(single, expected, relative: 0, absolute: 1e-5, context)
                expectBitwiseEqual(double, single, context)
            }
        }
    }

    /// Prefill runs queries in blocks of a few tokens; a query's output must not depend on which tokens share its
    /// block (scoring a document's context alone or with a shared prefix cached gives the same numbers).
    @Test func attentionOfAQueryIsIndependentOfTheQueriesBesideIt() {
        var generator = SeededGenerator(seed: 53)
        for (heads, kvHeads, headDim) in [(9, 3, 64), (8, 2, 40), (4, 4, 17)] {
            let (nQ, qStart, tail) = (11, 20, 5)
            let q = generator.floats(nQ * heads * headDim, in: -4...4)
            let k = generator.floats((qStart + nQ) * kvHeads * headDim), v = generator.floats((qStart + nQ) * kvHeads * headDim)
            forEachISA { isa in
                let whole = attention(q, k, v, nQ: nQ, qStart: qStart, heads: heads, kvHeads: kvHeads, headDim: headDim, reference: false)
                let last = attention(Array(q.suffix(tail * heads * headDim)), k, v, nQ: tail, qStart: qStart + nQ - tail,
                                     heads: heads, kvHeads: kvHeads, headDim: headDim, reference: false)
                expectBitwiseEqual(last, Array(whole.suffix(tail * heads * headDim)),
                                   "attention \(isaNames[Int(isa)]) heads \(heads)/\(kvHeads): the last \(tail) queries alone")
            }
        }
    }

    /// A pass of several sequences (documents scored together, packed training rows, a decode step beside a
    /// prefill) runs them in one call: each sequence's output is bitwise what it gets alone, and close to the
    /// reference, whatever the ISA and the thread count.
    @Test func attentionOfABatchEqualsEachSequenceAlone() {
        var generator = SeededGenerator(seed: 54)
        for (heads, kvHeads, headDim) in [(9, 3, 64), (8, 2, 40), (16, 1, 32)] {
            // (n_q, q_start): one-query decode steps, short and long prefills, a continuation of a cached prefix.
            let shapes = [(7, 0), (1, 20), (40, 3), (2, 0), (1, 0), (13, 33), (0, 5)]
            let q = shapes.map { generator.floats($0.0 * heads * headDim, in: -4...4) }
            let k = shapes.map { generator.floats(($0.0 + $0.1) * kvHeads * headDim) }
            let v = shapes.map { generator.floats(($0.0 + $0.1) * kvHeads * headDim) }
            let scale = 1 / Float(headDim).squareRoot()
            forEachISA { isa in
                for threads: Int32 in [1, 2] {
                    // All sequences in flat buffers (one pointer each for the whole call), at these offsets.
                    let queryOffsets = shapes.indices.map { shapes[..<$0].reduce(0) { $0 + $1.0 } * heads * headDim }
                    let keyOffsets = shapes.indices.map { shapes[..<$0].reduce(0) { $0 + $1.0 + $1.1 } * kvHeads * headDim }
                    let (queries, keys, values) = (Array(q.joined()), Array(k.joined()), Array(v.joined()))
                    var flatOutput = [Float](repeating: .nan, count: queries.count)
                    withThreads(threads) {
                        queries.withUnsafeBufferPointer { query in
                            keys.withUnsafeBufferPointer { key in
                                values.withUnsafeBufferPointer { value in
                                    flatOutput.withUnsafeMutableBufferPointer { out in
                                        let sequences = shapes.indices.map { index in
                                            hk_attention_sequence(q: query.baseAddress! + queryOffsets[index],
                                                                  k: key.baseAddress! + keyOffsets[index],
                                                                  v: value.baseAddress! + keyOffsets[index],
                                                                  out: out.baseAddress! + queryOffsets[index],
                                                                  n_q: Int32(shapes[index].0), q_start: Int32(shapes[index].1))
                                        }
                                        hk_attention_batch(sequences, Int32(sequences.count), Int32(heads), Int32(kvHeads),
                                                           Int32(headDim), scale)
                                    }
                                }
                            }
                        }
                    }
                    let outputs = shapes.indices.map { index in
                        Array(flatOutput[queryOffsets[index]..<(queryOffsets[index] + q[index].count)])
                    }
                    for (index, (nQ, qStart)) in shapes.enumerated() {
                        let alone = withThreads(threads) {
                            attention(q[index], k[index], v[index], nQ: nQ, qStart: qStart, heads: heads,
                                      kvHeads: kvHeads, headDim: headDim, reference: false)
                        }
                        let context = "attention batch \(isaNames[Int(isa)]) \(threads) threads heads \(heads)/\(kvHeads) sequence \(index)"
                        expectBitwiseEqual(outputs[index], alone, context)
                        let expected = attention(q[index], k[index], v[index], nQ: nQ, qStart: qStart, heads: heads,
                                                 kvHeads: kvHeads, headDim: headDim, reference: true)
                        expectClose(outputs[index], expected, relative: 0, absolute: 1e-5, context)
                    }
                }
            }
        }
    }

    /// With a single key the softmax weight is exactly 1, so the output is that key's value row.
    @Test func attentionWithOneKeyReturnsTheValue() {
        var generator = SeededGenerator(seed: 52)
        for (heads, kvHeads, headDim) in [(8, 2, 64), (8, 2, 40), (3, 1, 17)] {
            let q = generator.floats(heads * headDim, in: -10...10)
            let k = generator.floats(kvHeads * headDim), v = generator.floats(kvHeads * headDim)
            let group = heads / kvHeads
            let expected = (0..<heads).flatMap { h in v[(h / group * headDim)..<((h / group + 1) * headDim)] }
            forEachISA { isa in
                let actual = attention(q, k, v, nQ: 1, qStart: 0, heads: heads, kvHeads: kvHeads, headDim: headDim, reference: false)
                #expect(actual == expected, "one key \(isaNames[Int(isa)]) dim \(headDim)")
            }
            #expect(attention(q, k, v, nQ: 1, qStart: 0, heads: heads, kvHeads: kvHeads, headDim: headDim, reference: true) == expected)
        }
    }

    /// A zero query scores every key equally: the output is the mean of the visible values (causal).
    @Test func attentionWithZeroQueryAveragesVisibleValues() {
        var generator = SeededGenerator(seed: 53)
        let (heads, kvHeads, headDim, nQ, qStart) = (4, 2, 24, 3, 5)
        let keys = qStart + nQ
        let q = [Float](repeating: 0, count: nQ * heads * headDim)
        let k = generator.floats(keys * kvHeads * headDim), v = generator.floats(keys * kvHeads * headDim)
        var expected = [Float](repeating: 0, count: nQ * heads * headDim)
        for t in 0..<nQ {
            for h in 0..<heads {
                let visible = qStart + t + 1
                for d in 0..<headDim {
                    var sum: Double = 0
                    for j in 0..<visible { sum += Double(v[(j * kvHeads + h / (heads / kvHeads)) * headDim + d]) }
                    expected[(t * heads + h) * headDim + d] = Float(sum / Double(visible))
                }
            }
        }
        forEachISA { isa in
            let actual = attention(q, k, v, nQ: nQ, qStart: qStart, heads: heads, kvHeads: kvHeads, headDim: headDim, reference: false)
            expectClose(actual, expected, relative: 0, absolute: 1e-6, "zero query \(isaNames[Int(isa)])")
        }
    }

    // MARK: - Log-softmax gather

    /// The fast paths sum f32 exps (~2 ulp each) in double lanes, so the log-sum-exp agrees with the
    /// all-double reference to ~1e-7 relative; results are O(log vocab), so 1e-6 relative + 1e-6 absolute.
    @Test func logSoftmaxGatherMatchesReference() {
        var generator = SeededGenerator(seed: 60)
        for rows in [1, 3, 9] {
            for vocab in [1, 7, 16, 17, 1000, 32003] {
                let logits = generator.floats(rows * vocab, in: -15...15)
                let targets = (0..<rows).map { _ in Int32(generator.int(in: 0...(vocab - 1))) }
                var expected = [Float](repeating: 0, count: rows)
                hk_log_softmax_gather_ref(logits, targets, &expected, Int32(rows), Int32(vocab))
                forEachISA { isa in
                    var actual = [Float](repeating: .nan, count: rows)
                    hk_log_softmax_gather(logits, targets, &actual, Int32(rows), Int32(vocab))
                    expectClose(actual, expected, relative: 1e-6, absolute: 1e-6,
                                "log_softmax_gather \(isaNames[Int(isa)]) rows \(rows) vocab \(vocab)")
                }
            }
        }
    }

    @Test func logSoftmaxGatherKnownValues() {
        forEachISA { isa in
            for vocab in [1, 17, 32000] {
                // Uniform logits: every token has probability 1 / vocab.
                let logits = [Float](repeating: 3.25, count: 2 * vocab)
                var out = [Float](repeating: .nan, count: 2)
                hk_log_softmax_gather(logits, [0, Int32(vocab - 1)], &out, 2, Int32(vocab))
                let expected = Float(-log(Double(vocab)))
                #expect(abs(out[0] - expected) <= 1e-6 && abs(out[1] - expected) <= 1e-6,
                        "uniform vocab \(vocab) \(isaNames[Int(isa)]): \(out) vs \(expected)")
            }
            // Two tokens a and b: log p(a) = -log(1 + exp(b - a)); extreme gaps must not overflow.
            let logits: [Float] = [0, 1, 1000, -1000]
            var out = [Float](repeating: .nan, count: 2)
            hk_log_softmax_gather(logits, [0, 1], &out, 2, 2)
            #expect(abs(out[0] - Float(-log(1 + M_E))) < 1e-6, "\(isaNames[Int(isa)])")
            #expect(out[1] == -2000, "\(isaNames[Int(isa)])")
            // Out-of-range targets give NaN rather than reading outside the row.
            hk_log_softmax_gather(logits, [2, -1], &out, 2, 2)
            #expect(out[0].isNaN && out[1].isNaN, "\(isaNames[Int(isa)])")
        }
    }

    // MARK: - Runtime

    @Test func isaForcingClampsAndRestores() {
        let best = hk_isa_detect()
        #expect(best >= 0 && best <= 2)
        hk_isa_force(99)
        #expect(hk_isa_current() == best)
        hk_isa_force(-3)
        #expect(hk_isa_current() == 0)
        hk_isa_force(best)
        #expect(hk_isa_current() == best)
        if hk_cpu_has_vnni() != 0 { #expect(best == 2) }
    }

    @Test func threadCountRoundTrips() {
        let previous = hk_get_threads()
        #expect(previous >= 1)
        hk_set_threads(3)
        #expect(hk_get_threads() == 3)
        hk_set_threads(0) // ignored
        #expect(hk_get_threads() == 3)
        hk_set_threads(previous)
        #expect(hk_get_threads() == previous)
    }
}
