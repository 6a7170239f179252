/// BPE merge rules shared by the SentencePiece-style and byte-level tokenizers: the adjacent pair with the best
/// (lowest) rank merges first, the leftmost one on equal ranks, until no pair has a merge — HF's `Word::merge_all`
/// and sentencepiece's loop alike. Short words are merged by rescanning (no allocation); longer ones with a heap
/// so that pathological runs stay O(n log n).
struct BPEMergeRules: Sendable {
    let table: MergeTable

    /// Words of up to this many symbols are merged by rescanning the pairs.
    static let scanLimit = 48

    /// Merges a word's symbols in place. Symbols below zero never merge (and must not appear: callers split
    /// words at symbols outside the vocabulary). Tests pass 0 or `Int.max` to check that both ways agree.
    func merge(_ symbols: inout [Int32], heapFrom limit: Int = BPEMergeRules.scanLimit) {
        guard symbols.count >= 2 else { return }
        if symbols.count <= limit {
            mergeByScanning(&symbols)
        } else {
            mergeWithHeap(&symbols)
        }
    }

    /// Repeatedly merges the adjacent pair with the lowest rank (the leftmost one on ties), as HF's heap does.
    private func mergeByScanning(_ symbols: inout [Int32]) {
        var ranks = [UInt64](repeating: MergeTable.absent, count: symbols.count)
        for index in 0..<(symbols.count - 1) { ranks[index] = table.lookup(symbols[index], symbols[index + 1]) }
        while symbols.count > 1 {
            var best = 0
            var bestValue = ranks[0]
            for index in 1..<(symbols.count - 1) where ranks[index] >> 32 < bestValue >> 32 {
                best = index
                bestValue = ranks[index]
            }
            guard bestValue != MergeTable.absent else { break }
            symbols[best] = MergeTable.mergedID(bestValue)
            symbols.remove(at: best + 1)
            ranks.remove(at: best + 1)
            ranks[best] = best + 1 < symbols.count ? table.lookup(symbols[best], symbols[best + 1]) : MergeTable.absent
            if best > 0 { ranks[best - 1] = table.lookup(symbols[best - 1], symbols[best]) }
        }
    }

    /// HF's `Word::merge_all`: a min-heap of (rank, position) over a linked list of symbols; an entry whose pair
    /// has changed since it was queued is skipped.
    private func mergeWithHeap(_ symbols: inout [Int32]) {
        let count = symbols.count
        var previous = (0..<count).map { Int32($0) - 1 }
        var next = (0..<count).map { $0 + 1 < count ? Int32($0 + 1) : -1 }
        var heap = MergeHeap()
        for index in 0..<(count - 1) {
            let value = table.lookup(symbols[index], symbols[index + 1])
            if value != MergeTable.absent { heap.push(value: value, position: Int32(index)) }
        }
        while let (value, position32) = heap.pop() {
            let position = Int(position32)
            let right = next[position]
            // Skip entries for symbols merged away (-1) or whose right neighbour has changed.
            guard symbols[position] >= 0, right >= 0,
                  table.lookup(symbols[position], symbols[Int(right)]) == value else { continue }
            symbols[position] = MergeTable.mergedID(value)
            symbols[Int(right)] = -1
            let after = next[Int(right)]
            next[position] = after
            if after >= 0 { previous[Int(after)] = position32 }
            let before = previous[position]
            if before >= 0 {
                let pair = table.lookup(symbols[Int(before)], symbols[position])
                if pair != MergeTable.absent { heap.push(value: pair, position: before) }
            }
            if after >= 0 {
                let pair = table.lookup(symbols[position], symbols[Int(after)])
                if pair != MergeTable.absent { heap.push(value: pair, position: position32) }
            }
        }
        symbols.removeAll { $0 < 0 }
    }
}

// MARK: - Merge table

/// Merges keyed by the pair of symbol ids packed in 64 bits, in an open-addressing table: a lookup is a
/// multiply, a shift and (usually) one probe, several times cheaper than a `Dictionary` with SipHash.
struct MergeTable: Sendable {
    /// What `lookup` returns for a pair without a merge; compares greater than every real entry.
    static let absent = UInt64.max
    private static let emptyKey = UInt64.max

    private var keys: [UInt64]
    /// rank << 32 | merged id, so that comparing values compares ranks.
    private var values: [UInt64]
    private let shift: UInt64
    private let mask: Int

    init(capacity: Int) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        keys = [UInt64](repeating: MergeTable.emptyKey, count: size)
        values = [UInt64](repeating: MergeTable.absent, count: size)
        shift = UInt64(64 - size.trailingZeroBitCount)
        mask = size - 1
    }

    @inline(__always)
    private static func key(_ left: Int32, _ right: Int32) -> UInt64 {
        UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
    }

    @inline(__always)
    private func slot(for key: UInt64) -> Int { Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> shift) }

    /// Adds or replaces (a repeated pair keeps its last rank, as HF's map does).
    mutating func insert(left: Int32, right: Int32, rank: UInt32, merged: Int32) {
        let key = MergeTable.key(left, right)
        var slot = slot(for: key)
        while keys[slot] != MergeTable.emptyKey && keys[slot] != key { slot = (slot + 1) & mask }
        keys[slot] = key
        values[slot] = UInt64(rank) << 32 | UInt64(UInt32(bitPattern: merged))
    }

    /// rank << 32 | merged id for the pair, or `absent`.
    @inline(__always)
    func lookup(_ left: Int32, _ right: Int32) -> UInt64 {
        let key = MergeTable.key(left, right)
        var slot = slot(for: key)
        while true {
            let found = keys[slot]
            if found == key { return values[slot] }
            if found == MergeTable.emptyKey { return MergeTable.absent }
            slot = (slot + 1) & mask
        }
    }

    @inline(__always)
    static func mergedID(_ value: UInt64) -> Int32 { Int32(bitPattern: UInt32(truncatingIfNeeded: value)) }
}

/// A binary min-heap of (rank << 32 | merged id, position), ordered by rank then position like HF's `Merge`.
struct MergeHeap {
    private var entries: [(value: UInt64, position: Int32)] = []

    @inline(__always)
    private func precedes(_ a: (value: UInt64, position: Int32), _ b: (value: UInt64, position: Int32)) -> Bool {
        let rankA = a.value >> 32
        let rankB = b.value >> 32
        return rankA != rankB ? rankA < rankB : a.position < b.position
    }

    mutating func push(value: UInt64, position: Int32) {
        entries.append((value, position))
        var child = entries.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard precedes(entries[child], entries[parent]) else { break }
            entries.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> (UInt64, Int32)? {
        guard let top = entries.first else { return nil }
        let last = entries.removeLast()
        if !entries.isEmpty {
            entries[0] = last
            var parent = 0
            while true {
                let left = 2 * parent + 1
                let right = left + 1
                var best = parent
                if left < entries.count, precedes(entries[left], entries[best]) { best = left }
                if right < entries.count, precedes(entries[right], entries[best]) { best = right }
                if best == parent { break }
                entries.swapAt(parent, best)
                parent = best
            }
        }
        return (top.value, top.position)
    }
}
