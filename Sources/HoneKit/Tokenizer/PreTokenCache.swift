import Foundation

// MARK: - Pre-token cache

/// The shared pre-token cache of one tokenizer. An encode call takes the table out under the lock and puts it
/// back when done, so the hot loop works on a local value (no exclusivity checks, no copy-on-write).
final class PreTokenCache: @unchecked Sendable {
    let lock = NSLock()
    private var table = PreTokenTable()

    /// Call with `lock` held.
    func take() -> PreTokenTable {
        var taken = PreTokenTable.placeholder
        swap(&taken, &table)
        return taken
    }

    /// Call with `lock` held.
    func putBack(_ table: PreTokenTable) { self.table = table }
}

/// Raw pre-token bytes → the token ids BPE made of them: an open-addressing hash table over a byte arena and an
/// id arena, so that a lookup neither creates a `String` nor hashes with SipHash.
struct PreTokenTable {
    private struct Entry {
        var hash: UInt64
        var keyOffset: Int32
        var keyLength: Int32
        var valueOffset: Int32
        var valueCount: Int32
    }

    /// Past these sizes the table starts afresh, bounding memory on endless streams of new words.
    static let maximumEntries = 1 << 20
    static let maximumKeyBytes = 64 << 20

    private var slots: [Int32]
    private var mask: Int
    private var entries: [Entry] = []
    private var keyBytes: [UInt8] = []
    private var values: [Int32] = []

    /// What the shared cache holds while an encode call has the table out (never searched).
    static let placeholder = PreTokenTable(capacity: 0)

    init(capacity: Int = 4096) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        slots = [Int32](repeating: -1, count: size)
        mask = size - 1
    }

    /// A fast 64-bit hash of a short byte string (8 bytes per multiply, then a final avalanche).
    @inline(__always)
    static func hash(_ bytes: UnsafePointer<UInt8>, _ count: Int) -> UInt64 {
        let raw = UnsafeRawPointer(bytes)
        var hash: UInt64 = 0x243F_6A88_85A3_08D3 ^ UInt64(count)
        var index = 0
        while index + 8 <= count {
            let word = raw.loadUnaligned(fromByteOffset: index, as: UInt64.self)
            hash = (hash ^ word) &* 0x9E37_79B9_7F4A_7C15
            hash ^= hash >> 32
            index += 8
        }
        if index < count {
            var word: UInt64 = 0
            var shift: UInt64 = 0
            while index < count {
                word |= UInt64(bytes[index]) << shift
                shift += 8
                index += 1
            }
            hash = (hash ^ word) &* 0x9E37_79B9_7F4A_7C15
        }
        hash ^= hash >> 29
        hash = hash &* 0xBF58_476D_1CE4_E5B9
        hash ^= hash >> 32
        return hash
    }

    /// Appends the cached tokens of the key and returns true, or returns false when it is not cached.
    @inline(__always)
    func appendCached(key: UnsafePointer<UInt8>, count: Int, hash: UInt64, into output: inout [Int32]) -> Bool {
        var slot = Int(truncatingIfNeeded: hash) & mask
        while true {
            let index = slots[slot]
            if index < 0 { return false }
            let entry = entries[Int(index)]
            if entry.hash == hash, Int(entry.keyLength) == count,
               keyBytes.withUnsafeBufferPointer({ memcmp($0.baseAddress! + Int(entry.keyOffset), key, count) == 0 }) {
                if entry.valueCount == 1 {
                    output.append(values[Int(entry.valueOffset)])
                } else {
                    values.withUnsafeBufferPointer { buffer in
                        output.append(contentsOf: UnsafeBufferPointer(rebasing:
                            buffer[Int(entry.valueOffset)..<Int(entry.valueOffset + entry.valueCount)]))
                    }
                }
                return true
            }
            slot = (slot + 1) & mask
        }
    }

    /// Caches the tokens of a key that `appendCached` did not find.
    mutating func insert(key: UnsafePointer<UInt8>, count: Int, hash: UInt64, values newValues: ArraySlice<Int32>) {
        if entries.count >= PreTokenTable.maximumEntries || keyBytes.count + count > PreTokenTable.maximumKeyBytes {
            self = PreTokenTable(capacity: 4096)
        }
        if (entries.count + 1) * 2 > slots.count { grow() }
        let entry = Entry(hash: hash, keyOffset: Int32(keyBytes.count), keyLength: Int32(count),
                          valueOffset: Int32(values.count), valueCount: Int32(newValues.count))
        keyBytes.append(contentsOf: UnsafeBufferPointer(start: key, count: count))
        values.append(contentsOf: newValues)
        var slot = Int(truncatingIfNeeded: hash) & mask
        while slots[slot] >= 0 { slot = (slot + 1) & mask }
        slots[slot] = Int32(entries.count)
        entries.append(entry)
    }

    private mutating func grow() {
        let size = max(16, slots.count * 2)
        slots = [Int32](repeating: -1, count: size)
        mask = size - 1
        for (index, entry) in entries.enumerated() {
            var slot = Int(truncatingIfNeeded: entry.hash) & mask
            while slots[slot] >= 0 { slot = (slot + 1) & mask }
            slots[slot] = Int32(index)
        }
    }
}
