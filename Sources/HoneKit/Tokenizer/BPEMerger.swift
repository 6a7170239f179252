/// The merge loop shared by SentencePiece-style and byte-level BPE: symbols (token ids) of one word are merged
/// pairwise, best priority first and leftmost on ties, until no adjacent pair has a merge. A binary heap with
/// lazy invalidation keeps long words (runs of CJK, long numbers) at O(n log n).
struct BPEMerger {
    /// (left id, right id) packed into 64 bits → (priority, merged id). Higher priority merges first.
    var merges: [UInt64: (priority: Float, merged: Int32)] = [:]

    static func key(_ left: Int32, _ right: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
    }

    func merge(_ left: Int32, _ right: Int32) -> (priority: Float, merged: Int32)? {
        guard left >= 0, right >= 0 else { return nil }
        return merges[BPEMerger.key(left, right)]
    }

    private struct Candidate {
        var priority: Float
        var left: Int32
        var right: Int32
        var merged: Int32
        /// The ids the pair had when queued; a stale candidate no longer matches its symbols.
        var leftID: Int32
        var rightID: Int32

        /// Heap order: higher priority first, then the leftmost position.
        func precedes(_ other: Candidate) -> Bool {
            priority != other.priority ? priority > other.priority : left < other.left
        }
    }

    /// Merges a word's symbols (ids, -1 for symbols outside the vocabulary, which never merge) and returns the
    /// surviving tokens with the index of the first initial symbol each covers (for byte fallback of unknowns).
    func apply(_ initial: [Int32]) -> [(id: Int32, start: Int)] {
        var symbols = initial
        let count = symbols.count
        if count <= 1 { return symbols.map { (id: $0, start: 0) } }
        if count <= 8 { return applyByScanning(symbols) }
        var previous = [Int32](unsafeUninitializedCapacity: count) { buffer, initialized in
            for index in 0..<count { buffer[index] = Int32(index) - 1 }
            initialized = count
        }
        var next = [Int32](unsafeUninitializedCapacity: count) { buffer, initialized in
            for index in 0..<count { buffer[index] = index + 1 < count ? Int32(index + 1) : -1 }
            initialized = count
        }
        var heap: [Candidate] = []
        heap.reserveCapacity(count)

        func push(_ candidate: Candidate) {
            heap.append(candidate)
            var child = heap.count - 1
            while child > 0 {
                let parent = (child - 1) / 2
                guard heap[child].precedes(heap[parent]) else { break }
                heap.swapAt(child, parent)
                child = parent
            }
        }
        func pop() -> Candidate {
            let top = heap[0]
            let last = heap.removeLast()
            if !heap.isEmpty {
                heap[0] = last
                var parent = 0
                while true {
                    let left = 2 * parent + 1
                    let right = left + 1
                    var best = parent
                    if left < heap.count, heap[left].precedes(heap[best]) { best = left }
                    if right < heap.count, heap[right].precedes(heap[best]) { best = right }
                    if best == parent { break }
                    heap.swapAt(parent, best)
                    parent = best
                }
            }
            return top
        }
        func consider(_ left: Int32, _ right: Int32) {
            guard left >= 0, right >= 0, let found = merge(symbols[Int(left)], symbols[Int(right)]) else { return }
            push(Candidate(priority: found.priority, left: left, right: right, merged: found.merged,
                           leftID: symbols[Int(left)], rightID: symbols[Int(right)]))
        }

        for index in 0..<(count - 1) { consider(Int32(index), Int32(index + 1)) }
        while !heap.isEmpty {
            let candidate = pop()
            let left = Int(candidate.left)
            let right = Int(candidate.right)
            // Skip candidates whose symbols changed or were merged away since they were queued.
            guard symbols[left] == candidate.leftID, symbols[right] == candidate.rightID, next[left] == candidate.right
            else { continue }
            symbols[left] = candidate.merged
            symbols[right] = -2  // removed
            let after = next[right]
            next[left] = after
            if after >= 0 { previous[Int(after)] = Int32(left) }
            consider(previous[left], Int32(left))
            consider(Int32(left), after)
        }
        var result: [(id: Int32, start: Int)] = []
        for index in 0..<count where symbols[index] != -2 { result.append((id: symbols[index], start: index)) }
        return result
    }

    /// Quadratic but allocation-free merging for short words, the common case.
    private func applyByScanning(_ initial: [Int32]) -> [(id: Int32, start: Int)] {
        var symbols = initial
        var starts = Array(0..<initial.count)
        while symbols.count > 1 {
            var best: (priority: Float, index: Int, merged: Int32)? = nil
            for index in 0..<(symbols.count - 1) {
                if let found = merge(symbols[index], symbols[index + 1]), best == nil || found.priority > best!.priority {
                    best = (found.priority, index, found.merged)
                }
            }
            guard let best else { break }
            symbols[best.index] = best.merged
            symbols.remove(at: best.index + 1)
            starts.remove(at: best.index + 1)
        }
        return zip(symbols, starts).map { (id: $0, start: $1) }
    }
}
