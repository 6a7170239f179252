import Foundation

// MARK: - Parameters

/// How the next token is chosen from the logits, with Hugging Face `generate` semantics.
///
/// Defaults switch every option off: `temperature` 0 means greedy decoding. Note that transformers'
/// `generate(do_sample=True)` uses `top_k = 50` when nothing sets it; Hone's default is off (0), so pass
/// `topK: 50` to reproduce a plain transformers sampling call.
public struct SamplingParameters: Sendable, Equatable, Codable {
    /// 0 = greedy (transformers' `do_sample=False`); otherwise the logits are divided by it and sampled.
    public var temperature: Float = 0
    /// Keep only the `topK` highest scores (plus any tied with the k-th). 0 = off.
    public var topK: Int = 0
    /// Nucleus sampling: keep the smallest set of top tokens whose mass exceeds `topP`. 1 = off.
    public var topP: Float = 1
    /// Keep tokens whose probability is at least `minP` × the top probability. 0 = off.
    public var minP: Float = 0
    /// CTRL's repetition penalty on every token already in the history (prompt included). 1 = off.
    /// Applied in greedy mode too, as transformers does.
    public var repetitionPenalty: Float = 1
    /// Seeds the generator: the same seed and inputs give the same tokens.
    public var seed: UInt64 = 0

    public init(temperature: Float = 0, topK: Int = 0, topP: Float = 1, minP: Float = 0,
                repetitionPenalty: Float = 1, seed: UInt64 = 0) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.minP = minP
        self.repetitionPenalty = repetitionPenalty
        self.seed = seed
    }

    /// Greedy decoding with no penalty.
    public static let greedy = SamplingParameters()

    /// Whether tokens are picked by argmax (temperature 0) rather than drawn.
    public var isGreedy: Bool { !(temperature > 0) }

    /// Rejects values transformers rejects too (its warpers raise on them), naming the option.
    public func validate() throws {
        guard temperature.isFinite, temperature >= 0 else {
            throw HoneError.invalidArgument("temperature must be a finite number >= 0 (0 = greedy), got \(temperature)")
        }
        guard topK >= 0 else { throw HoneError.invalidArgument("top-k must be >= 0 (0 = off), got \(topK)") }
        guard topP >= 0, topP <= 1 else { throw HoneError.invalidArgument("top-p must be in [0, 1] (1 = off), got \(topP)") }
        guard minP >= 0, minP <= 1 else { throw HoneError.invalidArgument("min-p must be in [0, 1] (0 = off), got \(minP)") }
        guard repetitionPenalty.isFinite, repetitionPenalty > 0 else {
            throw HoneError.invalidArgument("repetition penalty must be a finite number > 0 (1 = off), got \(repetitionPenalty)")
        }
    }
}

// MARK: - Sampler

/// Picks the next token from a row of logits: transformers' logits processors in `generate`'s order
/// (RepetitionPenalty → Temperature → TopK → TopP → MinP), then softmax and a draw from a seeded
/// generator, or argmax when greedy.
///
/// Keep one sampler per generated sequence (row of a batch): it owns the random state, so each row's
/// draws do not depend on what the other rows do. Scratch buffers are kept between calls, so a decode
/// step allocates nothing once the first step has sized them.
///
/// Ties: greedy takes the first index of the maximum (torch.argmax); top-k keeps every token tied with
/// the k-th score (transformers removes only `score < kth`); at the top-p cut, among equal scores the
/// lower id is kept. torch's own sort is unstable there, so transformers' choice among exactly tied
/// tokens at the cut is arbitrary (see tools/oracle/make_generation_fixtures.py).
public struct Sampler: Sendable {
    public let parameters: SamplingParameters
    private var generator: SplitMix64
    private var scratch = Scratch()

    public init(parameters: SamplingParameters) {
        self.parameters = parameters
        generator = SplitMix64(seed: parameters.seed)
    }

    /// Returns the next token. `logits` ([vocabularySize]) are modified in place (penalised and
    /// divided by the temperature). `history` is the prompt plus the tokens generated so far; ids outside
    /// the vocabulary are ignored (transformers clamps them into a dropped column).
    public mutating func sample(logits: UnsafeMutablePointer<Float>, vocabularySize: Int, history: [Int32]) -> Int32 {
        precondition(vocabularySize > 0, "empty vocabulary")
        let count = Sampler.process(logits: logits, vocabularySize: vocabularySize, history: history,
                                    parameters: parameters, scratch: &scratch)
        if count == 1 { return scratch.ids[0] }
        // Inverse CDF over the survivors; 53 random bits give a uniform double in [0, 1).
        var total = 0.0
        for index in 0..<count { total += Double(scratch.probabilities[index]) }
        let target = Double(generator.next() >> 11) * 0x1p-53 * total
        var cumulative = 0.0
        var last = 0
        for index in 0..<count where scratch.probabilities[index] > 0 {
            cumulative += Double(scratch.probabilities[index])
            last = index
            if cumulative > target { return scratch.ids[index] }
        }
        return scratch.ids[last]  // rounding left the target just past the end
    }

    /// Array convenience for `sample(logits:vocabularySize:history:)`.
    public mutating func sample(logits: inout [Float], history: [Int32]) -> Int32 {
        let vocabularySize = logits.count
        return logits.withUnsafeMutableBufferPointer { buffer in
            sample(logits: buffer.baseAddress!, vocabularySize: vocabularySize, history: history)
        }
    }

    /// The distribution a draw is taken from ([vocabulary], zeros for removed tokens): softmax of the scores
    /// after every processor. Greedy parameters give a one-hot vector at the argmax. Does not touch the
    /// random state or `logits`.
    public func probabilities(logits: [Float], history: [Int32]) -> [Float] {
        logits.withUnsafeBufferPointer { buffer in
            probabilities(logits: buffer.baseAddress!, vocabularySize: buffer.count, history: history)
        }
    }

    /// Pointer form of `probabilities(logits:history:)`; `logits` are only read.
    public func probabilities(logits: UnsafePointer<Float>, vocabularySize: Int, history: [Int32]) -> [Float] {
        var copy = Array(UnsafeBufferPointer(start: logits, count: vocabularySize))
        var scratch = Scratch()
        let count = copy.withUnsafeMutableBufferPointer { buffer in
            Sampler.process(logits: buffer.baseAddress!, vocabularySize: vocabularySize, history: history,
                            parameters: parameters, scratch: &scratch)
        }
        var result = [Float](repeating: 0, count: vocabularySize)
        for index in 0..<count { result[Int(scratch.ids[index])] = scratch.probabilities[index] }
        return result
    }
}

// MARK: - Processing

extension Sampler {
    /// Reusable buffers. `ids[0..<n]` / `values[0..<n]` / `probabilities[0..<n]` describe the surviving
    /// tokens after `process`.
    struct Scratch: Sendable {
        var ids: [Int32] = []
        var values: [Float] = []
        var probabilities: [Float] = []
        var order: [Int32] = []
        var heap: [Float] = []
        /// `seen[id] == seenMark` marks ids already penalised in this step (no clearing between steps).
        var seen: [UInt32] = []
        var seenMark: UInt32 = 0

        mutating func reserve(_ vocabularySize: Int) {
            guard ids.count < vocabularySize else { return }
            ids = [Int32](repeating: 0, count: vocabularySize)
            values = [Float](repeating: 0, count: vocabularySize)
            probabilities = [Float](repeating: 0, count: vocabularySize)
            order = [Int32](repeating: 0, count: vocabularySize)
        }
    }

    /// Runs the processors over `logits` and returns how many tokens survive; their ids and final
    /// probabilities are in `scratch.ids` / `scratch.probabilities`.
    static func process(logits: UnsafeMutablePointer<Float>, vocabularySize: Int, history: [Int32],
                        parameters: SamplingParameters, scratch: inout Scratch) -> Int {
        scratch.reserve(vocabularySize)
        if parameters.repetitionPenalty != 1 {
            applyRepetitionPenalty(logits: logits, vocabularySize: vocabularySize, history: history,
                                   penalty: parameters.repetitionPenalty, scratch: &scratch)
        }
        if parameters.isGreedy {
            scratch.ids[0] = Int32(argmax(logits, count: vocabularySize))
            scratch.probabilities[0] = 1
            return 1
        }
        if parameters.temperature != 1 {
            // A division, as TemperatureLogitsWarper does (multiplying by 1/t differs in the last bit).
            let temperature = parameters.temperature
            // A temperature so small that the top score divided by it overflows (1e-45): the distribution is its
            // limit, all mass on the top token. transformers fails to sample on the infinities; Hone answered
            // with nothing.
            let top = argmax(logits, count: vocabularySize)
            if logits[top].isFinite, !(logits[top] / temperature).isFinite {
                scratch.ids[0] = Int32(top)
                scratch.probabilities[0] = 1
                return 1
            }
            for index in 0..<vocabularySize { logits[index] = logits[index] / temperature }
        }

        // Candidates: every token with a finite score, or those at least the k-th largest.
        // -inf scores have probability 0 in every later step, so they are dropped here.
        var count = 0
        let k = max(parameters.topK, 1)  // min_tokens_to_keep = 1
        let threshold: Float = (parameters.topK > 0 && k < vocabularySize)
            ? kthLargest(logits, count: vocabularySize, k: k, heap: &scratch.heap) : -.infinity
        scratch.ids.withUnsafeMutableBufferPointer { ids in
            scratch.values.withUnsafeMutableBufferPointer { values in
                for index in 0..<vocabularySize {
                    let value = logits[index]
                    if value >= threshold, value > -.infinity {
                        ids[count] = Int32(index)
                        values[count] = value
                        count += 1
                    }
                }
            }
        }
        if count == 0 {
            // Every score is -inf (or NaN): transformers would fail to sample; take the first index.
            scratch.ids[0] = Int32(argmax(logits, count: vocabularySize))
            scratch.probabilities[0] = 1
            return 1
        }

        if parameters.topP < 1 { count = applyTopP(parameters.topP, count: count, scratch: &scratch) }
        if parameters.minP > 0 { count = applyMinP(parameters.minP, count: count, scratch: &scratch) }
        softmax(scratch.values, into: &scratch.probabilities, count: count)
        return count
    }

    /// RepetitionPenaltyLogitsProcessor: each distinct id of the history once; negative scores are
    /// multiplied by the penalty, the others divided (so a penalty > 1 always makes the token less likely).
    static func applyRepetitionPenalty(logits: UnsafeMutablePointer<Float>, vocabularySize: Int, history: [Int32],
                                       penalty: Float, scratch: inout Scratch) {
        guard !history.isEmpty else { return }
        if scratch.seen.count < vocabularySize { scratch.seen = [UInt32](repeating: 0, count: vocabularySize) }
        scratch.seenMark &+= 1
        if scratch.seenMark == 0 {  // wrapped: old marks could collide
            for index in scratch.seen.indices { scratch.seen[index] = 0 }
            scratch.seenMark = 1
        }
        let mark = scratch.seenMark
        scratch.seen.withUnsafeMutableBufferPointer { seen in
            for token in history where token >= 0 && Int(token) < vocabularySize {
                let index = Int(token)
                if seen[index] == mark { continue }
                seen[index] = mark
                let score = logits[index]
                logits[index] = score < 0 ? score * penalty : score / penalty
            }
        }
    }

    /// TopPLogitsWarper. transformers sorts ascending, takes the cumulative softmax (accumulated in double
    /// by torch's CPU cumsum, compared in float32) and removes tokens whose cumulative probability is
    /// `<= 1 - top_p`, always keeping the largest. The removed tokens are therefore a run of the smallest.
    ///
    /// Sorting a 128K vocabulary every step would cost more than the rest of the sampler, so the cut is found
    /// by quickselect on mass instead: three-way partitions around a pivot score decide whether the cut lies
    /// below, among or above the pivot's tokens, keeping the mass of everything already known to be removed;
    /// only the last few dozen tokens around the cut are sorted. Expected O(n). The masses are summed in
    /// double in another order than torch's cumsum, which can only matter within ~1e-16 of the threshold.
    static func applyTopP(_ topP: Float, count: Int, scratch: inout Scratch) -> Int {
        guard count > 1 else { return count }
        // transformers computes `1 - top_p` in double from the Python float the user typed, then compares in
        // float32. Recover that decimal from the Float's shortest representation ("0.9", not 0.899999976).
        let removable = Float(1.0 - (Double("\(topP)") ?? Double(topP)))
        softmax(scratch.values, into: &scratch.probabilities, count: count)

        var removedCount = 0  // order[0..<removedCount] are removed once the search ends
        scratch.values.withUnsafeBufferPointer { values in
            scratch.probabilities.withUnsafeBufferPointer { probabilities in
                scratch.order.withUnsafeMutableBufferPointer { order in
                    for position in 0..<count { order[position] = Int32(position) }
                    // Invariants: order[0..<low] are removed and hold `below` of the mass; order[high..<count]
                    // are kept; every score in [0, low) <= every score in [low, high) <= every score in [high, count).
                    var low = 0, high = count
                    var below = 0.0
                    // Ascending order of the warper: by score, and among equal scores the higher id first.
                    func ascending(_ a: Int32, _ b: Int32) -> Bool {
                        let va = values[Int(a)], vb = values[Int(b)]
                        return va != vb ? va < vb : a > b
                    }
                    /// Removes order[start..<end] (already in ascending order) while the cumulative stays
                    /// within `removable`; returns where it stopped.
                    func walk(_ start: Int, _ end: Int) -> Int {
                        var index = start
                        while index < end {
                            let next = below + Double(probabilities[Int(order[index])])
                            if Float(next) > removable { break }
                            below = next
                            index += 1
                        }
                        return index
                    }
                    while high - low > 48 {
                        let a = values[Int(order[low])], b = values[Int(order[(low + high) / 2])], c = values[Int(order[high - 1])]
                        let pivot = max(min(a, b), min(max(a, b), c))  // median of three
                        var less = low, index = low, greater = high
                        while index < greater {
                            let value = values[Int(order[index])]
                            if value < pivot {
                                order.swapAt(less, index); less += 1; index += 1
                            } else if value > pivot {
                                greater -= 1; order.swapAt(index, greater)
                            } else {
                                index += 1
                            }
                        }
                        var lessMass = 0.0
                        for position in low..<less { lessMass += Double(probabilities[Int(order[position])]) }
                        if Float(below + lessMass) > removable {  // the cut is among the smaller scores
                            high = less
                            continue
                        }
                        below += lessMass
                        low = less
                        var equalMass = 0.0
                        for position in less..<greater { equalMass += Double(probabilities[Int(order[position])]) }
                        if Float(below + equalMass) > removable {  // the cut is inside a run of equal scores
                            order[less..<greater].sort(by: ascending)
                            removedCount = walk(less, greater)
                            return
                        }
                        below += equalMass
                        low = greater
                    }
                    order[low..<high].sort(by: ascending)
                    removedCount = walk(low, high)
                }
            }
        }
        // min_tokens_to_keep = 1: when everything qualifies (top_p = 0), the largest stays. It is then the
        // last of the sorted final stretch.
        removedCount = min(removedCount, count - 1)
        compact(keeping: removedCount..<count, scratch: &scratch)
        return count - removedCount
    }

    /// MinPLogitsWarper: keep tokens with probability >= min_p × the top probability (the product in
    /// float32); the most likely token always stays.
    static func applyMinP(_ minP: Float, count: Int, scratch: inout Scratch) -> Int {
        softmax(scratch.values, into: &scratch.probabilities, count: count)
        var top = 0
        for index in 1..<max(count, 1) where scratch.probabilities[index] > scratch.probabilities[top] { top = index }
        let threshold = minP * scratch.probabilities[top]
        var kept = 0
        for index in 0..<count where index == top || !(scratch.probabilities[index] < threshold) {
            scratch.ids[kept] = scratch.ids[index]
            scratch.values[kept] = scratch.values[index]
            kept += 1
        }
        return kept
    }

    /// Moves the candidates at positions `scratch.order[range]` to the front of ids and values, using
    /// `probabilities` as a temporary (it is recomputed afterwards).
    static func compact(keeping range: Range<Int>, scratch: inout Scratch) {
        for (target, slot) in range.enumerated() {
            let source = Int(scratch.order[slot])
            scratch.probabilities[target] = scratch.values[source]
            scratch.order[slot] = scratch.ids[source]
        }
        for (target, slot) in range.enumerated() {
            scratch.ids[target] = scratch.order[slot]
            scratch.values[target] = scratch.probabilities[target]
        }
    }

    /// Softmax of `values[0..<count]` in float32 like torch (max subtracted, float exponentials), with the
    /// normaliser summed in double.
    static func softmax(_ values: [Float], into probabilities: inout [Float], count: Int) {
        guard count > 0 else { return }
        var maximum = -Float.infinity
        for index in 0..<count where values[index] > maximum { maximum = values[index] }
        var sum = 0.0
        for index in 0..<count {
            let e = Foundation.exp(values[index] - maximum)
            probabilities[index] = e
            sum += Double(e)
        }
        let inverse = 1 / sum
        for index in 0..<count { probabilities[index] = Float(Double(probabilities[index]) * inverse) }
    }

    /// The first index of the largest value (torch.argmax's choice on ties).
    static func argmax(_ values: UnsafePointer<Float>, count: Int) -> Int {
        var best = 0
        for index in 1..<max(count, 1) where values[index] > values[best] { best = index }
        return best
    }

    /// The k-th largest value (torch.topk(scores, k).values[-1]) with a min-heap of the k largest seen:
    /// O(n log k) and no full sort. NaN scores are skipped.
    static func kthLargest(_ values: UnsafePointer<Float>, count: Int, k: Int, heap: inout [Float]) -> Float {
        heap.removeAll(keepingCapacity: true)
        heap.reserveCapacity(k)
        func siftDown(_ heap: inout [Float], from start: Int) {
            var parent = start
            let size = heap.count
            while true {
                let left = 2 * parent + 1
                if left >= size { return }
                var smallest = left
                if left + 1 < size, heap[left + 1] < heap[left] { smallest = left + 1 }
                if heap[smallest] < heap[parent] {
                    heap.swapAt(smallest, parent)
                    parent = smallest
                } else {
                    return
                }
            }
        }
        for index in 0..<count {
            let value = values[index]
            if value.isNaN { continue }
            if heap.count < k {
                heap.append(value)
                var child = heap.count - 1
                while child > 0 {
                    let parent = (child - 1) / 2
                    if heap[child] < heap[parent] { heap.swapAt(child, parent); child = parent } else { break }
                }
            } else if value > heap[0] {
                heap[0] = value
                siftDown(&heap, from: 0)
            }
        }
        return heap.first ?? -.infinity
    }
}
