import Testing
import HoneKernels

// MARK: - The serialized suite

/// Every test that forces an instruction set or a thread count lives in this suite (extended in the other
/// files): hk_isa_force and hk_set_threads are process-wide, and Swift Testing runs suites in parallel.
@Suite(.serialized) struct KernelTests {}

/// Runs `body` once for each instruction set this CPU has, forced, then restores the detected one.
func forEachISA(_ body: (_ isa: Int32) throws -> Void) rethrows {
    let best = hk_isa_detect()
    defer { hk_isa_force(best) }
    for isa in Int32(HK_ISA_SCALAR.rawValue)...best {
        hk_isa_force(isa)
        #expect(hk_isa_current() == isa)
        try body(isa)
    }
}

/// forEachISA for the quantized kernels, named by route: at AVX-512 on a CPU with VBMI, `body` runs
/// with the byte-permute kernels and again without them (the kernels Cascade Lake takes).
func forEachQuantRoute(_ body: (_ route: String) throws -> Void) rethrows {
    try forEachISA { isa in
        try body(isaNames[Int(isa)])
        if isa == Int32(HK_ISA_AVX512.rawValue) && hk_cpu_has_byte_permutes() != 0 {
            hk_byte_permutes_disable(1)
            defer { hk_byte_permutes_disable(0) }
            #expect(hk_cpu_has_byte_permutes() == 0)
            try body("avx512 without byte permutes")
        }
    }
}

/// Runs `body` with the kernels' thread count set to `threads`, restoring the previous count.
func withThreads<Result>(_ threads: Int32, _ body: () throws -> Result) rethrows -> Result {
    let previous = hk_get_threads()
    hk_set_threads(threads)
    defer { hk_set_threads(previous) }
    return try body()
}

let isaNames = ["scalar", "avx2", "avx512"]

// MARK: - Deterministic random numbers

/// SplitMix64: tiny, fast, and the same sequence on every platform and run.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var mixed = state
        mixed = (mixed ^ (mixed >> 30)) &* 0xBF58_476D_1CE4_E5B9
        mixed = (mixed ^ (mixed >> 27)) &* 0x94D0_49BB_1331_11EB
        return mixed ^ (mixed >> 31)
    }

    mutating func floats(_ count: Int, in range: ClosedRange<Float> = -1...1) -> [Float] {
        (0..<count).map { _ in Float.random(in: range, using: &self) }
    }

    mutating func int(in range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &self) }
}

// MARK: - Comparisons

/// Expects |actual[i] - expected[i]| <= bounds[i] for every i (NaN only matching NaN), reporting the count
/// and the worst element in one issue rather than one per element.
func expectWithin(_ actual: [Float], _ expected: [Float], bounds: [Float], _ context: @autoclosure () -> String,
                  sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(actual.count == expected.count, "\(context()): length", sourceLocation: sourceLocation)
    var failures = 0
    var worst: (index: Int, excess: Float)? = nil
    for index in 0..<min(actual.count, expected.count) {
        let a = actual[index], e = expected[index]
        if a.isNaN || e.isNaN {
            if a.isNaN != e.isNaN { failures += 1; worst = worst ?? (index, .infinity) }
            continue
        }
        if a == e { continue } // also equal infinities
        let excess = abs(a - e) / bounds[index]
        if !(excess <= 1) {
            failures += 1
            if worst == nil || excess > worst!.excess { worst = (index, excess) }
        }
    }
    if let worst {
        let message = "\(context()): \(failures) of \(actual.count) outside bounds; worst at \(worst.index): "
            + "actual \(actual[worst.index]) expected \(expected[worst.index]) bound \(bounds[worst.index])"
        Issue.record(Comment(rawValue: message), sourceLocation: sourceLocation)
    }
}

/// Expects |actual - expected| <= absolute + relative * |expected| elementwise.
func expectClose(_ actual: [Float], _ expected: [Float], relative: Float, absolute: Float = 0,
                 _ context: @autoclosure () -> String, sourceLocation: SourceLocation = #_sourceLocation) {
    let bounds = expected.map { absolute + relative * abs($0) }
    expectWithin(actual, expected, bounds: bounds, context(), sourceLocation: sourceLocation)
}

/// Expects the same bit patterns (so NaN payloads and signed zeros count).
func expectBitwiseEqual(_ actual: [Float], _ expected: [Float], _ context: @autoclosure () -> String,
                        sourceLocation: SourceLocation = #_sourceLocation) {
    expectBitwiseEqual(actual.map(\.bitPattern), expected.map(\.bitPattern), context(), sourceLocation: sourceLocation)
}

func expectBitwiseEqual<Bits: FixedWidthInteger>(_ actual: [Bits], _ expected: [Bits],
                                                  _ context: @autoclosure () -> String,
                                                  sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(actual.count == expected.count, "\(context()): length", sourceLocation: sourceLocation)
    let mismatches = zip(actual, expected).enumerated().filter { $0.element.0 != $0.element.1 }
    if let first = mismatches.first {
        let hex = { (value: Bits) in "0x" + String(value, radix: 16) }
        let message = "\(context()): \(mismatches.count) of \(actual.count) differ; first at \(first.offset): "
            + "actual \(hex(first.element.0)) expected \(hex(first.element.1))"
        Issue.record(Comment(rawValue: message), sourceLocation: sourceLocation)
    }
}
