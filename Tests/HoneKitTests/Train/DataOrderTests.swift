import Foundation
import Testing
@testable import HoneKit

@Suite struct DataOrderTests {
    /// Fixtures/sft/group-by-length.json: transformers' get_length_grouped_indices run with a seeded torch
    /// generator, and the permutation that generator draws (tools/oracle/make_sft_data_fixtures.py).
    @Test func groupByLengthMatchesTransformers() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: Repository.fixture("sft/group-by-length.json")))
        let json = try #require(try parseJSON(data) as? [String: Any])
        let cases = try #require(json["cases"] as? [[String: Any]])
        #expect(cases.count >= 6)
        func ints(_ value: Any?) -> [Int] { ((value as? [Any]) ?? []).map { jsonInteger($0)! } }
        for (index, item) in cases.enumerated() {
            let lengths = ints(item["lengths"])
            let grouped = DataOrder.groupedByLength(
                lengths: lengths, batchSize: jsonInteger(item["batch_size"]!)!, permutation: ints(item["permutation"]),
                megaBatchMultiplier: item["mega_batch_mult"].flatMap(jsonInteger))
            #expect(grouped == ints(item["grouped"]), "case \(index)")
        }
    }

    @Test func permutationsAreValidDeterministicAndUniform() {
        for count in [0, 1, 2, 17, 1000] {
            let order = DataOrder.permutation(count: count, seed: 42)
            #expect(order.sorted() == Array(0..<count))
            #expect(order == DataOrder.permutation(count: count, seed: 42))
        }
        #expect(DataOrder.permutation(count: 100, seed: 1) != DataOrder.permutation(count: 100, seed: 2))
        // All 6 orders of 3 items, 6,000 seeds: each expected 1,000 times (sd ≈ 29); a biased shuffle (e.g.
        // swapping with any index instead of 0...i) is off by ~150 on some orders.
        var counts: [[Int]: Int] = [:]
        for seed in 0..<6000 { counts[DataOrder.permutation(count: 3, seed: UInt64(seed)), default: 0] += 1 }
        #expect(counts.count == 6)
        for (order, n) in counts { #expect(abs(n - 1000) < 150, "\(order) drawn \(n) times") }
        // Every position equally likely for an element of a longer list.
        var firstPositions = [Int](repeating: 0, count: 10)
        for seed in 0..<5000 { firstPositions[DataOrder.permutation(count: 10, seed: UInt64(seed) &* 7919).firstIndex(of: 0)!] += 1 }
        for n in firstPositions { #expect(abs(n - 500) < 100) }
    }

    @Test func uniformBoundedDrawsStayInRangeAndCoverIt() {
        var generator = SplitMix64(seed: 7)
        for bound: UInt64 in [1, 2, 3, 10, 1 << 40, UInt64.max] {
            for _ in 0..<200 { #expect(DataOrder.uniform(below: bound, using: &generator) < bound) }
        }
        var seen = Set<UInt64>()
        for _ in 0..<500 { seen.insert(DataOrder.uniform(below: 7, using: &generator)) }
        #expect(seen == Set(0..<7))
    }

    @Test func validationSplitPartitionsTheRecords() throws {
        let split = try DataOrder.validationSplit(count: 50, validationSize: 8, seed: 42)
        #expect(split.validation.count == 8)
        #expect(split.train.count == 42)
        #expect((split.train + split.validation).sorted() == Array(0..<50))
        let again = try DataOrder.validationSplit(count: 50, validationSize: 8, seed: 42)
        #expect(again.train == split.train && again.validation == split.validation)
        #expect(try DataOrder.validationSplit(count: 50, validationSize: 0, seed: 1).train.count == 50)
        #expect(throws: HoneError.self) { try DataOrder.validationSplit(count: 50, validationSize: 50, seed: 1) }
        #expect(throws: HoneError.self) { try DataOrder.validationSplit(count: 50, validationSize: -1, seed: 1) }
    }

    @Test func groupByLengthKeepsEveryRowAndPutsTheLongestFirst() {
        var generator = SplitMix64(seed: 3)
        let lengths = (0..<333).map { _ in Int(DataOrder.uniform(below: 500, using: &generator)) + 1 }
        let grouped = DataOrder.groupedByLength(lengths: lengths, batchSize: 4, seed: 11)
        #expect(grouped.sorted() == Array(0..<333))
        #expect(lengths[grouped[0]] == lengths.max())
        #expect(grouped == DataOrder.groupedByLength(lengths: lengths, batchSize: 4, seed: 11))
        #expect(DataOrder.groupedByLength(lengths: [], batchSize: 4, seed: 1) == [])
    }
}
