import Foundation

// MARK: - Seeded permutations

/// Orders of training data. Everything random here is drawn from `SplitMix64` with an explicit seed through
/// Hone's own Fisher–Yates shuffle (not the standard library's `shuffle`, whose algorithm may change between
/// Swift releases), so an order depends only on the seed: a resumed run sees the same order.
///
/// The Python references draw their orders from numpy (`datasets`' `train_test_split`) and torch
/// (`torch.randperm` in transformers' samplers); those generators are not reproduced, so Hone's orders are
/// different permutations with the same structure. Where the structure matters (length grouping) the
/// functions take the permutation as an argument and are tested against transformers' own code with its
/// permutation.
public enum DataOrder {
    /// A uniformly random permutation of 0..<count determined by `seed`.
    public static func permutation(count: Int, seed: UInt64) -> [Int] {
        var generator = SplitMix64(seed: seed)
        var order = Array(0..<count)
        guard count > 1 else { return order }
        for i in stride(from: count - 1, to: 0, by: -1) {
            let j = Int(uniform(below: UInt64(i + 1), using: &generator))
            order.swapAt(i, j)
        }
        return order
    }

    /// A uniform integer in 0..<bound (bound > 0): Lemire's multiply-and-reject, unbiased and spelt out
    /// here so the result never depends on the standard library's implementation.
    static func uniform(below bound: UInt64, using generator: inout SplitMix64) -> UInt64 {
        precondition(bound > 0)
        var product = generator.next().multipliedFullWidth(by: bound)
        if product.low < bound {
            let threshold = (0 &- bound) % bound
            while product.low < threshold { product = generator.next().multipliedFullWidth(by: bound) }
        }
        return product.high
    }

    // MARK: Validation split

    /// `--val-set-size` below 0 is refused by name (it was reported as leaving no training data).
    public static func requireValidationSizeNotNegative(_ validationSize: Int) throws {
        guard validationSize >= 0 else {
            throw HoneError.invalidArgument("\(OptionName("val_set_size")) must be at least 0, not \(validationSize)")
        }
    }

    /// Alpaca-LoRA's `--val_set_size N`: `train_test_split(test_size=N, shuffle=True, seed=42)` takes a
    /// random permutation of the records, the first N as the validation set and the rest for training.
    /// Same structure here with Hone's generator (see the type's note): indices into the records, the
    /// validation ones first in permutation order, then the training ones. Throws when the validation set
    /// would leave no training record.
    public static func validationSplit(count: Int, validationSize: Int, seed: UInt64) throws
        -> (train: [Int], validation: [Int]) {
        try requireValidationSizeNotNegative(validationSize)
        guard validationSize < count else {
            throw HoneError.invalidArgument(
                "a validation set of \(validationSize) leaves no training record (the data has \(count))")
        }
        let order = permutation(count: count, seed: seed)
        return (Array(order[validationSize...]), Array(order[..<validationSize]))
    }

    // MARK: Group by length

    /// transformers' `get_length_grouped_indices` (trainer_pt_utils.py, used by `group_by_length=True`)
    /// applied to a given permutation: cut the permutation into mega-batches of `megaBatchMultiplier ×
    /// batchSize` indices, sort each by length, longest first (ties keep their order in the permutation,
    /// as Python's stable `sorted(..., reverse=True)` does), then swap the first element of the mega-batch
    /// holding the longest row (the first such mega-batch on ties, like `torch.argmax`) with the very first
    /// element, so that the first batch is the most expensive one.
    ///
    /// `batchSize` is what the Trainer passes: the per-device batch times the gradient accumulation steps.
    /// `megaBatchMultiplier` nil uses transformers' default: `min(count / (4 × batchSize), 50)`, at least 1.
    public static func groupedByLength(lengths: [Int], batchSize: Int, permutation: [Int],
                                       megaBatchMultiplier: Int? = nil) -> [Int] {
        precondition(batchSize >= 1, "batchSize must be at least 1")
        precondition(permutation.count == lengths.count, "the permutation must cover every row")
        guard !lengths.isEmpty else { return [] }
        let multiplier = megaBatchMultiplier ?? max(min(lengths.count / (batchSize * 4), 50), 1)
        let megaBatchSize = multiplier * batchSize
        var megaBatches: [[Int]] = stride(from: 0, to: permutation.count, by: megaBatchSize).map { start in
            let slice = permutation[start..<min(start + megaBatchSize, permutation.count)]
            // Stable descending sort by length: ties ordered by their position in the permutation.
            return slice.enumerated().sorted { a, b in
                lengths[a.element] != lengths[b.element] ? lengths[a.element] > lengths[b.element] : a.offset < b.offset
            }.map(\.element)
        }
        var longest = 0
        for index in megaBatches.indices where lengths[megaBatches[index][0]] > lengths[megaBatches[longest][0]] {
            longest = index
        }
        let first = megaBatches[0][0]
        megaBatches[0][0] = megaBatches[longest][0]
        megaBatches[longest][0] = first
        return megaBatches.flatMap { $0 }
    }

    /// `groupedByLength` on Hone's seeded permutation (a new seed per epoch gives a new order).
    public static func groupedByLength(lengths: [Int], batchSize: Int, seed: UInt64,
                                       megaBatchMultiplier: Int? = nil) -> [Int] {
        groupedByLength(lengths: lengths, batchSize: batchSize, permutation: permutation(count: lengths.count, seed: seed),
                        megaBatchMultiplier: megaBatchMultiplier)
    }
}
