import Foundation
import Testing
@testable import HoneKit

/// tools/oracle/make_generation_fixtures.py's sampler.json: transformers' logits processors applied to
/// fixed logits.
struct SamplerFixture {
    struct Case {
        let logits: String
        let history: [Int32]
        let parameters: SamplingParameters
        let probabilities: [Float]
        let kept: Int
        let greedyToken: Int32?
        let tieAtTopPBoundary: Bool
        let label: String
    }

    let vocabularySize: Int
    let logits: [String: [Float]]
    let cases: [Case]

    static let shared: SamplerFixture = try! SamplerFixture()

    init() throws {
        let path = Repository.fixture("generation/sampler.json")
        let json = try parseJSON(Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
        vocabularySize = jsonInteger(json["vocabulary_size"]!)!
        func float(_ value: Any) -> Float {
            if let text = value as? String { return text == "-inf" ? -.infinity : .infinity }
            return Float(jsonDouble(value)!)
        }
        var logits: [String: [Float]] = [:]
        for (name, values) in json["logits"] as! [String: [Any]] { logits[name] = values.map(float) }
        self.logits = logits
        let histories = (json["histories"] as! [String: [Any]]).mapValues { $0.map { Int32(jsonInteger($0)!) } }
        let size = vocabularySize
        cases = (json["cases"] as! [[String: Any]]).map { entry in
            let p = entry["parameters"] as! [String: Any]
            let parameters = SamplingParameters(
                temperature: Float(jsonDouble(p["temperature"]!)!), topK: jsonInteger(p["top_k"]!)!,
                topP: Float(jsonDouble(p["top_p"]!)!), minP: Float(jsonDouble(p["min_p"]!)!),
                repetitionPenalty: Float(jsonDouble(p["repetition_penalty"]!)!), seed: 1)
            var probabilities = [Float](repeating: 0, count: size)
            let listed = entry["probabilities"] as! [Any]
            if listed.count == size, !(listed.first is [Any]) {
                probabilities = listed.map { Float(jsonDouble($0)!) }
            } else {
                for pair in listed as! [[Any]] { probabilities[jsonInteger(pair[0])!] = Float(jsonDouble(pair[1])!) }
            }
            let historyName = entry["history"] as! String
            return Case(logits: entry["logits"] as! String, history: histories[historyName]!, parameters: parameters,
                        probabilities: probabilities, kept: jsonInteger(entry["kept"]!)!,
                        greedyToken: entry["greedy_token"].map { Int32(jsonInteger($0)!) },
                        tieAtTopPBoundary: (entry["tie_at_top_p_boundary"] as? Bool) ?? false,
                        label: "\(entry["logits"]!)/\(historyName) \(p)")
        }
    }
}

@Suite struct SamplerTests {
    static let fixture = SamplerFixture.shared

    // MARK: - Against transformers

    /// Every processed distribution equals transformers' to 1e-6, with exactly the same tokens removed.
    @Test func probabilitiesMatchTransformers() {
        let fixture = Self.fixture
        #expect(fixture.cases.count >= 60)
        var worst: Float = 0
        for testCase in fixture.cases {
            let sampler = Sampler(parameters: testCase.parameters)
            let got = sampler.probabilities(logits: fixture.logits[testCase.logits]!, history: testCase.history)
            #expect(got.count == fixture.vocabularySize)
            let kept = got.filter { $0 > 0 }.count
            #expect(kept == testCase.kept, "\(testCase.label): kept \(kept), transformers \(testCase.kept)")
            for index in 0..<fixture.vocabularySize {
                let expected = testCase.probabilities[index]
                #expect((got[index] > 0) == (expected > 0), "\(testCase.label): token \(index) kept/removed differs")
                worst = max(worst, abs(got[index] - expected))
            }
            let difference = zip(got, testCase.probabilities).map { abs($0 - $1) }.max()!
            #expect(difference <= 1e-6, "\(testCase.label): max |p - p_hf| = \(difference)")
        }
        #expect(worst <= 1e-6)
        // The grid covers what it claims to.
        #expect(fixture.cases.contains { $0.tieAtTopPBoundary })
        #expect(fixture.cases.contains { $0.history.contains { Int($0) >= fixture.vocabularySize } })
    }

    /// Greedy picks transformers' argmax of the penalised scores (first index on ties).
    @Test func greedyMatchesTransformers() {
        let fixture = Self.fixture
        let greedyCases = fixture.cases.filter { $0.greedyToken != nil }
        #expect(greedyCases.count >= 9)
        for testCase in greedyCases {
            var sampler = Sampler(parameters: testCase.parameters)
            var logits = fixture.logits[testCase.logits]!
            let token = sampler.sample(logits: &logits, history: testCase.history)
            #expect(token == testCase.greedyToken, "\(testCase.label)")
        }
        // The "ties" vector has its maximum at ids 7, 8 and 250: torch.argmax and Hone take 7.
        var sampler = Sampler(parameters: .greedy)
        var ties = fixture.logits["ties"]!
        #expect(sampler.sample(logits: &ties, history: []) == 7)
    }

    // MARK: - Statistics

    /// 20,000 seeded draws follow the processed distribution and never hit a removed token.
    ///
    /// Bound: per token, |frequency − p| ≤ 5·sqrt(p(1−p)/N) + 1/N (five standard deviations; with ≤ 300
    /// tokens per case the chance of a false failure is below 1e-4), and a chi-square over tokens with
    /// expected count ≥ 5 (the rest pooled) below df + 6·sqrt(2·df) (≈ 6 standard deviations of χ²).
    @Test(arguments: [
        SamplingParameters(temperature: 0.7, seed: 11),
        SamplingParameters(temperature: 1, topK: 40, seed: 12),
        SamplingParameters(temperature: 1, topP: 0.9, seed: 13),
        SamplingParameters(temperature: 1.3, minP: 0.05, seed: 14),
        SamplingParameters(temperature: 0.8, topK: 50, topP: 0.95, minP: 0.02, repetitionPenalty: 1.1, seed: 15),
    ])
    func drawsFollowTheDistribution(parameters: SamplingParameters) {
        let base = Self.fixture.logits["normal"]!
        let history: [Int32] = [5, 5, 9, 124, 40]
        var sampler = Sampler(parameters: parameters)
        let probabilities = sampler.probabilities(logits: base, history: history)
        let draws = 20_000
        var counts = [Int](repeating: 0, count: base.count)
        var logits = base
        for _ in 0..<draws {
            logits = base
            counts[Int(sampler.sample(logits: &logits, history: history))] += 1
        }
        let n = Double(draws)
        var chiSquare = 0.0
        var bins = 0
        var pooledExpected = 0.0
        var pooledObserved = 0.0
        for (token, p32) in probabilities.enumerated() {
            let p = Double(p32)
            let frequency = Double(counts[token]) / n
            if p == 0 {
                #expect(counts[token] == 0, "drew removed token \(token)")
                continue
            }
            let bound = 5 * (p * (1 - p) / n).squareRoot() + 1 / n
            #expect(abs(frequency - p) <= bound, "token \(token): frequency \(frequency), p \(p)")
            let expected = p * n
            if expected >= 5 {
                chiSquare += (Double(counts[token]) - expected) * (Double(counts[token]) - expected) / expected
                bins += 1
            } else {
                pooledExpected += expected
                pooledObserved += Double(counts[token])
            }
        }
        if pooledExpected > 0 {
            chiSquare += (pooledObserved - pooledExpected) * (pooledObserved - pooledExpected) / pooledExpected
            bins += 1
        }
        let degrees = Double(max(bins - 1, 1))
        #expect(chiSquare < degrees + 6 * (2 * degrees).squareRoot(), "chi-square \(chiSquare) with \(degrees) df")
    }

    /// A temperature so small that the scores divided by it overflow is its limit, all mass on the top token
    /// (it gave NaN probabilities: an empty answer). A small one that does not overflow still samples.
    @Test func vanishingTemperatureIsTheLimit() {
        for (logits, top) in [([1, 3, 2, -4] as [Float], 1), ([-5, -2, -3, -9], 1), ([0, -1e-3, -2, -3], 0)] {
            let limit = Sampler(parameters: SamplingParameters(temperature: .leastNonzeroMagnitude)).probabilities(logits: logits, history: [])
            #expect(limit == logits.indices.map { $0 == top ? 1 : 0 }, "\(logits): \(limit)")
        }
        let sharp = Sampler(parameters: SamplingParameters(temperature: 0.5)).probabilities(logits: [1, 3, 2, -4], history: [])
        #expect(sharp.allSatisfy(\.isFinite) && sharp[1] > 0.8 && sharp[2] > 0.1)
    }

    /// Top-k keeps exactly the k best (plus ties with the k-th), top-p the smallest head holding more than
    /// top_p, min-p the tokens with at least min_p × the top probability.
    @Test func filtersKeepTheRightTokensAndMass() {
        let logits = Self.fixture.logits["normal"]!
        let plain = Sampler(parameters: SamplingParameters(temperature: 1)).probabilities(logits: logits, history: [])

        // top-k: the 40 largest logits, nothing else.
        let topK = Sampler(parameters: SamplingParameters(temperature: 1, topK: 40)).probabilities(logits: logits, history: [])
        let best40 = Set(logits.indices.sorted { logits[$0] > logits[$1] }.prefix(40))
        #expect(Set(topK.indices.filter { topK[$0] > 0 }) == best40)

        // top-p: the kept head holds more than top_p of the mass; without its smallest member it would not.
        for topP: Float in [0.3, 0.5, 0.9, 0.99] {
            let nucleus = Sampler(parameters: SamplingParameters(temperature: 1, topP: topP)).probabilities(logits: logits, history: [])
            let kept = nucleus.indices.filter { nucleus[$0] > 0 }
            let mass = kept.reduce(0.0) { $0 + Double(plain[$1]) }
            let smallest = kept.map { Double(plain[$0]) }.min()!
            #expect(mass > Double(topP) - 1e-6, "top-p \(topP): kept mass \(mass)")
            #expect(mass - smallest <= Double(topP) + 1e-6, "top-p \(topP): the head is not minimal")
            // Every removed token is less likely than every kept one.
            let removedMax = nucleus.indices.filter { nucleus[$0] == 0 }.map { plain[$0] }.max() ?? 0
            #expect(removedMax <= Float(smallest))
        }

        // min-p: kept iff p >= min_p * max p.
        for minP: Float in [0.01, 0.1, 0.5] {
            let filtered = Sampler(parameters: SamplingParameters(temperature: 1, minP: minP)).probabilities(logits: logits, history: [])
            let top = plain.max()!
            for token in plain.indices {
                #expect((filtered[token] > 0) == (plain[token] >= minP * top), "min-p \(minP) token \(token)")
            }
        }
    }

    // MARK: - Determinism

    @Test func temperatureZeroIsGreedy() {
        let logits = Self.fixture.logits["normal"]!
        let argmax = logits.indices.max { logits[$0] < logits[$1] }!
        for seed: UInt64 in [0, 1, 99] {
            var sampler = Sampler(parameters: SamplingParameters(temperature: 0, topK: 5, topP: 0.5, seed: seed))
            for _ in 0..<20 {
                var copy = logits
                #expect(sampler.sample(logits: &copy, history: []) == Int32(argmax))
            }
        }
        #expect(SamplingParameters().isGreedy)
        #expect(!SamplingParameters(temperature: 0.5).isGreedy)
    }

    func drawSequence(seed: UInt64, count: Int = 200) -> [Int32] {
        let logits = Self.fixture.logits["normal"]!
        var sampler = Sampler(parameters: SamplingParameters(temperature: 1, topP: 0.95, seed: seed))
        var history: [Int32] = []
        for _ in 0..<count {
            var copy = logits
            history.append(sampler.sample(logits: &copy, history: history))
        }
        return history
    }

    @Test func sameSeedSameSequenceDifferentSeedsDiffer() {
        #expect(drawSequence(seed: 42) == drawSequence(seed: 42))
        #expect(drawSequence(seed: 42) != drawSequence(seed: 43))
        #expect(drawSequence(seed: 0) != drawSequence(seed: 1))
    }

    // MARK: - Large vocabularies

    /// Top-p by quickselect on mass keeps exactly what a full sort keeps, on a 128K vocabulary with a heavy
    /// head and a long tail, including cuts that keep one token and cuts that keep most of the vocabulary.
    @Test func topPQuickselectEqualsFullSort() {
        var generator = SplitMix64(seed: 5)
        let size = 128_256
        var logits = [Float](repeating: 0, count: size)
        for index in 0..<size {
            let u = Double(generator.next() >> 11) * 0x1p-53
            logits[index] = Float(-log(-log(max(u, 1e-300)))) * 1.5  // Gumbel-ish spread
        }
        for _ in 0..<50 { logits[Int(generator.next() % UInt64(size))] += 9 }
        // Runs of equal scores, so that some cuts fall inside a tie group.
        for index in stride(from: 0, to: size, by: 97) { logits[index] = 4.5 }
        let grid: [(Float, Float)] = [(0.1, 1), (0.3, 1), (0.5, 1), (0.7, 1), (0.8, 1), (0.9, 1), (0.95, 1), (0.999, 1),
                                      (0.5, 0.7), (0.999, 1.2), (0.95, 2)]
        var keptCounts: Set<Int> = []
        for (topP, temperature) in grid {
            let parameters = SamplingParameters(temperature: temperature, topP: topP)
            let got = Sampler(parameters: parameters).probabilities(logits: logits, history: [])
            let expected = Self.referenceTopP(logits.map { $0 / temperature }, topP: topP)
            let keptGot = got.indices.filter { got[$0] > 0 }
            #expect(keptGot == expected, "top-p \(topP) T \(temperature): \(keptGot.count) kept, full sort \(expected.count)")
            #expect(keptGot.count >= 1 && keptGot.count < size)
            keptCounts.insert(keptGot.count)
        }
        #expect(keptCounts.count >= 6, "the grid should cut at many different places: \(keptCounts.sorted())")

        // A cut in the middle of the run of 4.5s: the lower ids of the run stay.
        let plain = Sampler(parameters: SamplingParameters(temperature: 1)).probabilities(logits: logits, history: [])
        var above = 0.0, run = 0.0
        for index in 0..<size where logits[index] >= 4.5 {
            if logits[index] > 4.5 { above += Double(plain[index]) } else { run += Double(plain[index]) }
        }
        let topP = Float(above + run / 2)
        let got = Sampler(parameters: SamplingParameters(temperature: 1, topP: topP)).probabilities(logits: logits, history: [])
        let kept = got.indices.filter { got[$0] > 0 }
        #expect(kept == Self.referenceTopP(logits, topP: topP))
        let keptRun = kept.filter { logits[$0] == 4.5 }
        let wholeRun = logits.indices.filter { logits[$0] == 4.5 }
        #expect(!keptRun.isEmpty && keptRun.count < wholeRun.count)
        #expect(keptRun == Array(wholeRun.prefix(keptRun.count)))
    }

    /// TopPLogitsWarper written out with a full sort: ascending by score (among equal scores the higher id
    /// first), cumulative softmax in double compared in float32 to 1 - top_p, the largest always kept.
    static func referenceTopP(_ scores: [Float], topP: Float) -> [Int] {
        let maximum = scores.max()!
        let exps = scores.map { Double(Foundation.exp($0 - maximum)) }
        let total = exps.reduce(0, +)
        let order = scores.indices.sorted { scores[$0] != scores[$1] ? scores[$0] < scores[$1] : $0 > $1 }
        let threshold = Float(1.0 - Double("\(topP)")!)
        var cumulative = 0.0
        var removed = Set<Int>()
        for (position, index) in order.enumerated() where position < order.count - 1 {
            cumulative += Double(Float(exps[index] / total))
            if Float(cumulative) <= threshold { removed.insert(index) } else { break }
        }
        return scores.indices.filter { !removed.contains($0) }
    }

    /// One decode step on a 128K vocabulary, for the record (not a pass/fail threshold).
    @Test func stepCostOnALargeVocabulary() {
        let size = 128_256
        var generator = SplitMix64(seed: 9)
        let logits = (0..<size).map { _ in Float(Double(generator.next() >> 11) * 0x1p-53 * 20 - 10) }
        let history = (0..<512).map { _ in Int32(generator.next() % UInt64(size)) }
        for parameters in [SamplingParameters.greedy, SamplingParameters(temperature: 0.8, topK: 40, repetitionPenalty: 1.1),
                           SamplingParameters(temperature: 0.8, topP: 0.95, minP: 0.05),
                           SamplingParameters(temperature: 0.8, topK: 40, topP: 0.95, repetitionPenalty: 1.1)] {
            var sampler = Sampler(parameters: parameters)
            var copy = logits
            _ = sampler.sample(logits: &copy, history: history)  // sizes the scratch buffers
            let steps = 20
            let start = DispatchTime.now()
            for _ in 0..<steps {
                copy = logits
                let token = sampler.sample(logits: &copy, history: history)
                #expect(token >= 0 && Int(token) < size)
            }
            let milliseconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e6 / Double(steps)
            print("sampler step, vocabulary \(size), \(parameters): \(String(format: "%.3f", milliseconds)) ms")
        }
    }

    // MARK: - Edge cases

    @Test func repetitionPenaltyAppliesOncePerDistinctTokenAndIgnoresOutOfRange() {
        let logits: [Float] = [2, -2, 1, 0.5]
        let parameters = SamplingParameters(temperature: 1, repetitionPenalty: 2)
        let got = Sampler(parameters: parameters).probabilities(logits: logits, history: [0, 0, 0, 1, 1, 7, -1])
        let expected = Sampler(parameters: SamplingParameters(temperature: 1)).probabilities(logits: [1, -4, 1, 0.5], history: [])
        for index in 0..<4 { #expect(abs(got[index] - expected[index]) < 1e-7) }
    }

    @Test func allMinusInfinityFallsBackToTheFirstToken() {
        var sampler = Sampler(parameters: SamplingParameters(temperature: 1, seed: 3))
        var logits = [Float](repeating: -.infinity, count: 10)
        #expect(sampler.sample(logits: &logits, history: []) == 0)
        var single: [Float] = [-.infinity, 3, -.infinity]
        #expect(sampler.sample(logits: &single, history: []) == 1)
    }

    @Test func scratchBuffersFollowTheVocabularySize() {
        var sampler = Sampler(parameters: SamplingParameters(temperature: 1, topP: 0.9, seed: 2))
        for size in [300, 10, 1_000, 3] {
            var logits = (0..<size).map { Float($0 % 7) }
            let token = sampler.sample(logits: &logits, history: [1, 2])
            #expect(token >= 0 && Int(token) < size)
        }
    }

    @Test func invalidParametersAreRejected() {
        #expect(throws: HoneError.self) { try SamplingParameters(temperature: -1).validate() }
        #expect(throws: HoneError.self) { try SamplingParameters(topK: -3).validate() }
        #expect(throws: HoneError.self) { try SamplingParameters(topP: 1.5).validate() }
        #expect(throws: HoneError.self) { try SamplingParameters(minP: -0.1).validate() }
        #expect(throws: HoneError.self) { try SamplingParameters(repetitionPenalty: 0).validate() }
        #expect(throws: HoneError.self) { try SamplingParameters(temperature: .nan).validate() }
        #expect(throws: Never.self) { try SamplingParameters(temperature: 0.7, topK: 40, topP: 0.9, minP: 0.05, repetitionPenalty: 1.1).validate() }
    }
}
