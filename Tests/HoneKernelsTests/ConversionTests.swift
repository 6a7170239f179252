import Testing
import HoneKernels

// Conversions are exact operations: the fast paths must match the reference bit for bit.

private let lengths = [0, 1, 7, 8, 15, 16, 17, 31, 33, 100, 1001]

/// Runs a conversion on every length in `lengths`, starting at odd offsets so vector loads are unaligned.
private func convertSlices<Source, Destination: FixedWidthInteger>(
    _ source: [Source], _ destinationType: Destination.Type,
    _ convert: (UnsafePointer<Source>, UnsafeMutablePointer<Destination>, Int) -> Void
) -> [[Destination]] {
    lengths.map { length in
        let offset = min(3, source.count - length)
        var destination = [Destination](repeating: 0, count: length + 1)
        source.withUnsafeBufferPointer { sourceBuffer in
            destination.withUnsafeMutableBufferPointer { destinationBuffer in
                convert(sourceBuffer.baseAddress! + offset, destinationBuffer.baseAddress!, length)
            }
        }
        #expect(destination[length] == 0, "wrote past the end at length \(length)")
        return Array(destination.prefix(length))
    }
}

private func convertSlicesToFloat(_ source: [UInt16],
                                  _ convert: (UnsafePointer<UInt16>, UnsafeMutablePointer<Float>, Int) -> Void)
    -> [[UInt32]] {
    convertSlices(source, UInt32.self) { source, destination, count in
        destination.withMemoryRebound(to: Float.self, capacity: count + 1) { convert(source, $0, count) }
    }
}

/// Random f32 bit patterns: every class (NaNs with payloads, infinities, subnormals, ties) turns up.
private func randomFloatBits(_ count: Int, seed: UInt64) -> [Float] {
    var generator = SeededGenerator(seed: seed)
    var values = (0..<count).map { _ in Float(bitPattern: UInt32.random(in: 0...UInt32.max, using: &generator)) }
    // Add values near the f16 range and its rounding boundaries, which random bits rarely hit.
    values += (0..<count).map { _ in Float.random(in: -70000...70000, using: &generator) }
    values += (0..<count).map { _ in Float.random(in: -1e-4...1e-4, using: &generator) }
    values += (0..<count).map { index in Float(bitPattern: UInt32(truncatingIfNeeded: index * 0x1000) | 0x3F80_0000) }
    return values
}

extension KernelTests {
    @Test func f16ToF32MatchesReferenceOnAllPatterns() {
        let all = (0...UInt16.max).map { $0 }
        var expected = [Float](repeating: 0, count: all.count)
        hk_convert_f16_to_f32_ref(all, &expected, all.count)
        forEachISA { isa in
            var actual = [Float](repeating: 0, count: all.count)
            hk_convert_f16_to_f32(all, &actual, all.count) // 65536 elements: the parallel path
            expectBitwiseEqual(actual, expected, "f16->f32 \(isaNames[Int(isa)])")
            let slices = convertSlicesToFloat(all.reversed(), hk_convert_f16_to_f32)
            let referenceSlices = convertSlicesToFloat(all.reversed(), hk_convert_f16_to_f32_ref)
            for (slice, reference) in zip(slices, referenceSlices) {
                expectBitwiseEqual(slice, reference, "f16->f32 \(isaNames[Int(isa)]) length \(slice.count)")
            }
        }
    }

    @Test func bf16ToF32MatchesReferenceOnAllPatterns() {
        let all = (0...UInt16.max).map { $0 }
        var expected = [Float](repeating: 0, count: all.count)
        hk_convert_bf16_to_f32_ref(all, &expected, all.count)
        // bf16 is the top half of an f32: exact by definition.
        #expect(expected.map(\.bitPattern) == all.map { UInt32($0) << 16 })
        forEachISA { isa in
            var actual = [Float](repeating: 0, count: all.count)
            hk_convert_bf16_to_f32(all, &actual, all.count)
            expectBitwiseEqual(actual, expected, "bf16->f32 \(isaNames[Int(isa)])")
            let slices = convertSlicesToFloat(all.reversed(), hk_convert_bf16_to_f32)
            let referenceSlices = convertSlicesToFloat(all.reversed(), hk_convert_bf16_to_f32_ref)
            for (slice, reference) in zip(slices, referenceSlices) {
                expectBitwiseEqual(slice, reference, "bf16->f32 \(isaNames[Int(isa)]) length \(slice.count)")
            }
        }
    }

    @Test func f32ToF16MatchesReference() {
        let values = randomFloatBits(50_000, seed: 1)
        var expected = [UInt16](repeating: 0, count: values.count)
        hk_convert_f32_to_f16_ref(values, &expected, values.count)
        forEachISA { isa in
            var actual = [UInt16](repeating: 0, count: values.count)
            hk_convert_f32_to_f16(values, &actual, values.count)
            expectBitwiseEqual(actual, expected, "f32->f16 \(isaNames[Int(isa)])")
            let slices = convertSlices(values, UInt16.self, hk_convert_f32_to_f16)
            let referenceSlices = convertSlices(values, UInt16.self, hk_convert_f32_to_f16_ref)
            for (slice, reference) in zip(slices, referenceSlices) {
                expectBitwiseEqual(slice, reference, "f32->f16 \(isaNames[Int(isa)]) length \(slice.count)")
            }
        }
    }

    @Test func f32ToBF16MatchesReference() {
        let values = randomFloatBits(50_000, seed: 2)
        var expected = [UInt16](repeating: 0, count: values.count)
        hk_convert_f32_to_bf16_ref(values, &expected, values.count)
        forEachISA { isa in
            var actual = [UInt16](repeating: 0, count: values.count)
            hk_convert_f32_to_bf16(values, &actual, values.count)
            expectBitwiseEqual(actual, expected, "f32->bf16 \(isaNames[Int(isa)])")
            let slices = convertSlices(values, UInt16.self, hk_convert_f32_to_bf16)
            let referenceSlices = convertSlices(values, UInt16.self, hk_convert_f32_to_bf16_ref)
            for (slice, reference) in zip(slices, referenceSlices) {
                expectBitwiseEqual(slice, reference, "f32->bf16 \(isaNames[Int(isa)]) length \(slice.count)")
            }
        }
    }

    // MARK: - Known bit patterns, independent of the reference

    /// Each case is repeated so it lands both in full vectors and in the tail.
    private func repeated<Element>(_ cases: [Element]) -> [Element] { Array(repeating: cases, count: 5).flatMap { $0 } }

    @Test func f32ToF16KnownValues() {
        let cases: [(Float, UInt16)] = [
            (1.0, 0x3C00), (-2.5, 0xC100), (65504, 0x7BFF),
            (65519.996, 0x7BFF),                   // just below the halfway point to 65536
            (65520, 0x7C00),                       // halfway to 2^16: ties to even, which is infinity
            (1e-8, 0x0000),                        // under half the smallest subnormal (2^-24 ~ 5.96e-8)
            (1e-7, 0x0002),                        // 1.68 units of 2^-24: subnormal 2
            (Float(bitPattern: 0x3380_0000), 0x0001), // 2^-24, the smallest subnormal
            (Float(bitPattern: 0x3300_0000), 0x0000), // 2^-25: exactly half, ties to even 0
            (Float(bitPattern: 0x33C0_0000), 0x0002), // 1.5 * 2^-24: ties to even 2
            (Float(bitPattern: 0x387F_C000), 0x03FF), // largest subnormal, 1023 * 2^-24
            (6.103515625e-05, 0x0400),             // 2^-14, the smallest normal
            (1.0009765625, 0x3C01), (1.00048828125, 0x3C00), (1.00146484375, 0x3C02), // ties to even around 1
            (.infinity, 0x7C00), (-.infinity, 0xFC00), (-0.0, 0x8000), (1e10, 0x7C00),
            (.nan, 0x7E00), (Float(bitPattern: 0xFFC0_0000), 0xFE00),
        ]
        let values = repeated(cases.map(\.0)), expected = repeated(cases.map(\.1))
        forEachISA { isa in
            var actual = [UInt16](repeating: 0, count: values.count)
            hk_convert_f32_to_f16(values, &actual, values.count)
            expectBitwiseEqual(actual, expected, "f32->f16 known \(isaNames[Int(isa)])")
        }
        var reference = [UInt16](repeating: 0, count: values.count)
        hk_convert_f32_to_f16_ref(values, &reference, values.count)
        expectBitwiseEqual(reference, expected, "f32->f16 known ref")
    }

    @Test func f16ToF32KnownValues() {
        let cases: [(UInt16, Float)] = [
            (0x3C00, 1.0), (0xC100, -2.5), (0x7BFF, 65504), (0x0001, 5.9604645e-08), (0x03FF, 6.0975552e-05),
            (0x0400, 6.1035156e-05), (0x8000, -0.0), (0x7C00, .infinity), (0xFC00, -.infinity),
            (0x7E00, Float(bitPattern: 0x7FC0_0000)), (0x7C01, Float(bitPattern: 0x7FC0_2000)), // signalling NaN comes back quiet
        ]
        let values = repeated(cases.map(\.0)), expected = repeated(cases.map(\.1))
        forEachISA { isa in
            var actual = [Float](repeating: 0, count: values.count)
            hk_convert_f16_to_f32(values, &actual, values.count)
            expectBitwiseEqual(actual, expected, "f16->f32 known \(isaNames[Int(isa)])")
        }
    }

    @Test func f32ToBF16KnownValues() {
        let cases: [(UInt32, UInt16)] = [
            (0x3F80_0000, 0x3F80), (0xC020_0000, 0xC020), // 1.0, -2.5
            (0x3F80_8000, 0x3F80), // tie, kept bit even: stays
            (0x3F81_8000, 0x3F82), // tie, kept bit odd: rounds up to even
            (0x3F80_8001, 0x3F81), (0x3F80_7FFF, 0x3F80),
            (0x7F7F_FFFF, 0x7F80), // FLT_MAX rounds up to infinity, as torch does
            (0x7F80_0000, 0x7F80), (0xFF80_0000, 0xFF80), (0x8000_0000, 0x8000),
            (0x0000_8001, 0x0001), // subnormals are rounded, not flushed
            (0x7FC0_0000, 0x7FC0), (0x7F80_0001, 0x7FC0), (0xFFA0_0000, 0xFFE0), // NaNs stay NaN, made quiet
        ]
        let values = repeated(cases.map { Float(bitPattern: $0.0) }), expected = repeated(cases.map(\.1))
        forEachISA { isa in
            var actual = [UInt16](repeating: 0, count: values.count)
            hk_convert_f32_to_bf16(values, &actual, values.count)
            expectBitwiseEqual(actual, expected, "f32->bf16 known \(isaNames[Int(isa)])")
        }
        var reference = [UInt16](repeating: 0, count: values.count)
        hk_convert_f32_to_bf16_ref(values, &reference, values.count)
        expectBitwiseEqual(reference, expected, "f32->bf16 known ref")
    }

    @Test func f16RoundTripIsIdentityOnFiniteHalves() {
        let finite = (0...UInt16.max).filter { ($0 & 0x7C00) != 0x7C00 }
        forEachISA { isa in
            var floats = [Float](repeating: 0, count: finite.count)
            hk_convert_f16_to_f32(finite, &floats, finite.count)
            var back = [UInt16](repeating: 0, count: finite.count)
            hk_convert_f32_to_f16(floats, &back, finite.count)
            expectBitwiseEqual(back, finite, "f16 round trip \(isaNames[Int(isa)])")
        }
    }
}
