import Foundation

/// Byte-level BPE as GPT-2, OPT, Llama 3 and Qwen2 use it, matching Hugging Face `tokenizers` token for token:
/// added tokens are split out first, the rest is (optionally NFC-normalised and) cut into pre-tokens by the
/// model's pattern, each pre-token's UTF-8 bytes are spelled with GPT-2's byte alphabet, and merges are applied
/// by rank. Results are cached per pre-token, which is what makes it fast on real text.
public final class ByteLevelBPETokenizer: Tokenizer {
    // MARK: - Public properties

    public let vocabularySize: Int
    public let bosTokenID: Int32?
    public let eosTokenID: Int32?
    public let unknownTokenID: Int32?
    public let padTokenID: Int32?
    public let addsBOS: Bool
    public let addsEOS: Bool
    /// Added tokens marked special (e.g. `<|endoftext|>`, `<|begin_of_text|>`), content → id.
    public let specialTokens: [String: Int32]
    public let preTokenizer: PreTokenizerKind
    /// Llama 3: a pre-token that is itself in the vocabulary is emitted whole, without merging.
    public let ignoresMerges: Bool
    /// Qwen2: text (outside added tokens) is put in Unicode normalisation form C before pre-tokenization.
    public let normalizesNFC: Bool
    /// A space is put before every piece of text that does not start with one (ByteLevel `add_prefix_space`).
    public let addsPrefixSpace: Bool

    // MARK: - Stored tables

    /// id → vocabulary entry (byte-level spelling) or added token content; nil for ids nobody uses.
    let pieces: [String?]
    /// The model vocabulary (byte-level spelling → id), without added tokens that are not in it.
    let modelVocabulary: [String: Int32]
    /// Added tokens' contents → id (they take precedence over the model vocabulary, as in HF).
    let addedTokenIDs: [String: Int32]
    /// The id of the one-byte token for each byte value, -1 where the vocabulary lacks it.
    let byteTokenIDs: [Int32]
    let merges: BPEMergeRules
    let addedTokens: AddedTokenMatcher
    /// Whether each id is a special added token (skipped by `decode(skipSpecialTokens: true)`).
    let specialFlags: [Bool]
    /// The bytes each id decodes to, concatenated; `decodedByteOffsets[id]..<decodedByteOffsets[id + 1]`.
    let decodedBytes: [UInt8]
    let decodedByteOffsets: [Int32]
    private let cache = PreTokenCache()

    /// Pre-tokens longer than this (in bytes) are merged every time rather than cached, as in HF: long runs are
    /// rare and would fill the cache with one-off keys.
    static let maximumCachedLength = 256

    // MARK: - Construction

    /// Builds a tokenizer from parsed data (what the tokenizer.json, vocab.json + merges.txt and GGUF loaders read).
    ///
    /// - Parameters:
    ///   - vocabulary: byte-level spellings (GPT-2's `bytes_to_unicode` alphabet, e.g. "Ġworld") → id.
    ///   - merges: pairs of vocabulary entries in rank order (first merges first). Pairs whose parts or
    ///     concatenation are not in the vocabulary are ignored; loaders reject them first with
    ///     `validateMerges(_:vocabulary:path:lines:)`. A repeated pair keeps its last rank, as in HF.
    ///   - preTokenizer: the pattern that cuts text into pre-tokens.
    ///   - addedTokens: tokens matched whole in the text before pre-tokenization. Special ones are matched only
    ///     with `parseSpecial` and are dropped by `decode(skipSpecialTokens: true)`; the others always match.
    ///   - bos, eos, unk, pad: ids of those roles, if the tokenizer has them.
    ///   - addsBOS, addsEOS: whether `encode(addSpecialTokens: true)` adds BOS first / EOS last.
    ///   - ignoreMerges: Llama 3: a pre-token that is itself in the vocabulary is emitted whole.
    ///   - normalizeNFC: Qwen2: text is put in NFC before pre-tokenization.
    ///   - addPrefixSpace: a space is put before each piece of text that does not start with one.
    public init(vocabulary: [String: Int32], merges: [(String, String)], preTokenizer: PreTokenizerKind,
                addedTokens: [(content: String, id: Int32, special: Bool)], bos: Int32?, eos: Int32?, unk: Int32?,
                pad: Int32?, addsBOS: Bool, addsEOS: Bool, ignoreMerges: Bool, normalizeNFC: Bool,
                addPrefixSpace: Bool = false) {
        modelVocabulary = vocabulary
        var largestID: Int32 = -1
        for id in vocabulary.values { largestID = max(largestID, id) }
        for token in addedTokens { largestID = max(largestID, token.id) }
        for id in [bos, eos, unk, pad] { if let id { largestID = max(largestID, id) } }
        vocabularySize = Int(largestID) + 1

        var pieces = [String?](repeating: nil, count: vocabularySize)
        for (piece, id) in vocabulary where id >= 0 { pieces[Int(id)] = piece }
        var addedIDs: [String: Int32] = [:]
        var special: [String: Int32] = [:]
        var specialFlags = [Bool](repeating: false, count: vocabularySize)
        for token in addedTokens where token.id >= 0 && !token.content.isEmpty {
            pieces[Int(token.id)] = token.content
            addedIDs[token.content] = token.id
            if token.special {
                special[token.content] = token.id
                specialFlags[Int(token.id)] = true
            }
        }
        self.pieces = pieces
        addedTokenIDs = addedIDs
        specialTokens = special
        self.specialFlags = specialFlags

        var byteTokenIDs = [Int32](repeating: -1, count: 256)
        for byte in 0..<256 {
            byteTokenIDs[byte] = vocabulary[String(ByteLevelAlphabet.character(for: UInt8(byte)))] ?? -1
        }
        self.byteTokenIDs = byteTokenIDs

        var table = MergeTable(capacity: merges.count)
        for (rank, pair) in merges.enumerated() {
            guard let left = vocabulary[pair.0], let right = vocabulary[pair.1],
                  let merged = vocabulary[pair.0 + pair.1] else { continue }
            table.insert(left: left, right: right, rank: UInt32(rank), merged: merged)
        }
        self.merges = BPEMergeRules(table: table)
        self.addedTokens = AddedTokenMatcher(addedTokens.filter { !$0.content.isEmpty }
            .map { (Array($0.content.utf8), $0.id, $0.special) })

        // What each id decodes to, by HF's ByteLevel decoder rule: a piece spelled entirely in the byte alphabet
        // stands for those bytes; any other piece (an added token such as "<|im_start|>" is spelled in it too,
        // but one with other characters is not) stands for its own UTF-8.
        var decodedBytes: [UInt8] = []
        var decodedByteOffsets: [Int32] = [0]
        decodedByteOffsets.reserveCapacity(vocabularySize + 1)
        for piece in pieces {
            if let piece { decodedBytes.append(contentsOf: ByteLevelAlphabet.bytes(ofPiece: piece)) }
            decodedByteOffsets.append(Int32(decodedBytes.count))
        }
        self.decodedBytes = decodedBytes
        self.decodedByteOffsets = decodedByteOffsets

        self.preTokenizer = preTokenizer
        ignoresMerges = ignoreMerges
        normalizesNFC = normalizeNFC
        addsPrefixSpace = addPrefixSpace
        bosTokenID = bos
        eosTokenID = eos
        unknownTokenID = unk
        padTokenID = pad
        self.addsBOS = addsBOS
        self.addsEOS = addsEOS
    }

    /// The pre-tokenizer that a GGUF file's `tokenizer.ggml.pre` names (llama.cpp's names for the same patterns),
    /// nil for one this tokenizer does not implement. Llama 3's family also needs `ignoreMerges: true`.
    public static func preTokenizerKind(ggufPre: String) -> PreTokenizerKind? {
        switch ggufPre {
        case "gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de", "a.x-4.0", "mellum":
            return .gpt2
        case "llama-bpe", "llama3", "llama-v3", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2":
            return .llama3
        case "qwen2", "deepseek-r1-qwen", "kormo", "megrez":
            return .qwen2
        case "smollm":
            return .smollm
        default:
            return nil
        }
    }

    // MARK: - Encoding

    public func encode(_ text: String, addSpecialTokens: Bool, parseSpecial: Bool) -> [Int32] {
        var output: [Int32] = []
        output.reserveCapacity(text.utf8.count / 3 + 2)
        if addSpecialTokens, addsBOS, let bos = bosTokenID { output.append(bos) }
        var text = text
        text.withUTF8 { bytes in
            // One lock per call, not per pre-token; a caller that finds the shared cache busy uses a cache of its
            // own for this call rather than wait.
            if cache.lock.try() {
                defer { cache.lock.unlock() }
                var table = cache.take()
                encode(bytes, parseSpecial: parseSpecial, table: &table, into: &output)
                cache.putBack(table)
            } else {
                var table = PreTokenTable()
                encode(bytes, parseSpecial: parseSpecial, table: &table, into: &output)
            }
        }
        if addSpecialTokens, addsEOS, let eos = eosTokenID { output.append(eos) }
        return output
    }

    /// Splits out added tokens (HF's AddedVocabulary: leftmost-longest; special tokens are skipped over, not split,
    /// unless `parseSpecial`) and encodes the text between them.
    private func encode(_ bytes: UnsafeBufferPointer<UInt8>, parseSpecial: Bool, table: inout PreTokenTable,
                        into output: inout [Int32]) {
        var plainStart = 0
        var searchStart = 0
        if !addedTokens.isEmpty {
            while let match = addedTokens.firstMatch(in: bytes, from: searchStart) {
                searchStart = match.range.upperBound
                if match.special && !parseSpecial { continue }
                encodePlain(UnsafeBufferPointer(rebasing: bytes[plainStart..<match.range.lowerBound]), table: &table,
                            into: &output)
                output.append(match.id)
                plainStart = match.range.upperBound
            }
        }
        encodePlain(UnsafeBufferPointer(rebasing: bytes[plainStart...]), table: &table, into: &output)
    }

    /// Normalises (NFC, prefix space) one piece of text between added tokens, then pre-tokenizes and encodes it.
    private func encodePlain(_ bytes: UnsafeBufferPointer<UInt8>, table: inout PreTokenTable,
                             into output: inout [Int32]) {
        guard !bytes.isEmpty else { return }
        if normalizesNFC, ByteLevelAlphabet.mayChangeUnderNFC(bytes) {
            // The standard library's NFC (the normaliser behind String comparison) is about ten times faster than
            // Foundation's precomposedStringWithCanonicalMapping, and uses the same Unicode data as the scanner.
            var normalized = String(decoding: String(decoding: bytes, as: UTF8.self)._nfcCodeUnits, as: UTF8.self)
            if addsPrefixSpace, normalized.utf8.first != UInt8(ascii: " ") { normalized = " " + normalized }
            normalized.withUTF8 { encodePreTokens($0, table: &table, into: &output) }
        } else if addsPrefixSpace, bytes[0] != UInt8(ascii: " ") {
            let prefixed = [UInt8(ascii: " ")] + Array(bytes)
            prefixed.withUnsafeBufferPointer { encodePreTokens($0, table: &table, into: &output) }
        } else {
            encodePreTokens(bytes, table: &table, into: &output)
        }
    }

    /// Cuts normalised text into pre-tokens and appends each one's tokens, from the cache when it has them.
    private func encodePreTokens(_ bytes: UnsafeBufferPointer<UInt8>, table: inout PreTokenTable,
                                 into output: inout [Int32]) {
        guard let base = bytes.baseAddress else { return }
        var scanner = PreTokenScanner(bytes: bytes, kind: preTokenizer)
        while let range = scanner.next() {
            let start = base + range.lowerBound
            let count = range.count
            // A single byte is always its byte token: no merge can apply and ignore_merges gives the same.
            if count == 1 {
                appendByteToken(start[0], into: &output)
                continue
            }
            guard count <= ByteLevelBPETokenizer.maximumCachedLength else {
                mergeWord(UnsafeBufferPointer(start: start, count: count), into: &output)
                continue
            }
            let hash = PreTokenTable.hash(start, count)
            if table.appendCached(key: start, count: count, hash: hash, into: &output) { continue }
            let firstNew = output.count
            mergeWord(UnsafeBufferPointer(start: start, count: count), into: &output)
            table.insert(key: start, count: count, hash: hash, values: output[firstNew...])
        }
    }

    @inline(__always)
    private func appendByteToken(_ byte: UInt8, into output: inout [Int32]) {
        let id = byteTokenIDs[Int(byte)]
        if id >= 0 {
            output.append(id)
        } else if let unknown = unknownTokenID {
            output.append(unknown)
        }
    }

    // MARK: - BPE

    /// Appends the tokens of one pre-token (raw UTF-8 bytes). Words longer than `limit` symbols are merged with
    /// the heap; tests pass 0 or `Int.max` to check that both ways agree.
    func mergeWord(_ bytes: UnsafeBufferPointer<UInt8>, into output: inout [Int32],
                   heapFrom limit: Int = BPEMergeRules.scanLimit) {
        if ignoresMerges, let id = modelVocabulary[ByteLevelAlphabet.spelling(of: bytes)] {
            output.append(id)
            return
        }
        // HF spells the pre-token in the byte alphabet and starts from one symbol per character, i.e. per byte.
        // A byte without a vocabulary entry becomes the unknown token, or is dropped when there is none (HF
        // silently drops it too); neither happens with a real byte-level vocabulary.
        var symbols: [Int32] = []
        symbols.reserveCapacity(bytes.count)
        for byte in bytes {
            let id = byteTokenIDs[Int(byte)]
            if id >= 0 {
                symbols.append(id)
            } else if let unknown = unknownTokenID {
                symbols.append(unknown)
            }
        }
        merges.merge(&symbols, heapFrom: limit)
        output.append(contentsOf: symbols)
    }

    // MARK: - Decoding

    public func tokenBytes(_ id: Int32, includeSpecial: Bool) -> [UInt8] {
        guard id >= 0, Int(id) < vocabularySize else { return [] }
        if specialFlags[Int(id)] && !includeSpecial { return [] }
        return Array(decodedBytes[Int(decodedByteOffsets[Int(id)])..<Int(decodedByteOffsets[Int(id) + 1])])
    }

    /// Concatenates the tokens' bytes and decodes them as UTF-8, replacing each invalid sequence with U+FFFD as
    /// Rust's `String::from_utf8_lossy` does (HF's ByteLevel decoder). Unknown ids are skipped, as in HF.
    public func decode(_ ids: [Int32], skipSpecialTokens: Bool) -> String {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(ids.count * 4)
        for id in ids where id >= 0 && Int(id) < vocabularySize {
            if skipSpecialTokens && specialFlags[Int(id)] { continue }
            bytes.append(contentsOf: decodedBytes[Int(decodedByteOffsets[Int(id)])..<Int(decodedByteOffsets[Int(id) + 1])])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    public func piece(for id: Int32) -> String? {
        id >= 0 && Int(id) < pieces.count ? pieces[Int(id)] : nil
    }

    public func id(forPiece piece: String) -> Int32? { addedTokenIDs[piece] ?? modelVocabulary[piece] }

    public func isSpecial(_ id: Int32) -> Bool { id >= 0 && Int(id) < specialFlags.count && specialFlags[Int(id)] }
}

// MARK: - Byte alphabet

/// GPT-2's `bytes_to_unicode`: printable Latin-1 bytes stand for themselves, the other 68 bytes (controls,
/// space, DEL, NBSP, soft hyphen…) for U+0100 onwards, in byte order, so that every byte is a visible character.
enum ByteLevelAlphabet {
    /// byte → scalar value.
    static let scalars: [UInt32] = {
        var scalars = [UInt32](repeating: 0, count: 256)
        var next: UInt32 = 256
        for byte in 0..<256 {
            let printable = (0x21...0x7E).contains(byte) || (0xA1...0xAC).contains(byte) || (0xAE...0xFF).contains(byte)
            if printable {
                scalars[byte] = UInt32(byte)
            } else {
                scalars[byte] = next
                next += 1
            }
        }
        return scalars
    }()

    /// scalar value (< 0x144) → byte, -1 for characters outside the alphabet.
    static let bytesByScalar: [Int16] = {
        var table = [Int16](repeating: -1, count: 0x144)
        for (byte, scalar) in scalars.enumerated() { table[Int(scalar)] = Int16(byte) }
        return table
    }()

    static func character(for byte: UInt8) -> Character { Character(Unicode.Scalar(scalars[Int(byte)])!) }

    /// The byte-level spelling of raw bytes (e.g. " world" → "Ġworld").
    static func spelling(of bytes: UnsafeBufferPointer<UInt8>) -> String {
        var spelled = String.UnicodeScalarView()
        for byte in bytes { spelled.append(Unicode.Scalar(scalars[Int(byte)])!) }
        return String(spelled)
    }

    /// The bytes a vocabulary entry stands for: its characters mapped back through the alphabet, or, when one of
    /// them is outside it, the entry's own UTF-8 (HF's ByteLevel decoder does the same per token).
    static func bytes(ofPiece piece: String) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(piece.unicodeScalars.count)
        for scalar in piece.unicodeScalars {
            guard scalar.value < bytesByScalar.count, bytesByScalar[Int(scalar.value)] >= 0 else {
                return Array(piece.utf8)
            }
            bytes.append(UInt8(bytesByScalar[Int(scalar.value)]))
        }
        return bytes
    }

    /// False when NFC cannot change the text: every scalar below U+0300 is NFC-stable and composes with nothing
    /// before it, so only text with a scalar from U+0300 up (a lead byte from 0xCC up) needs normalising.
    static func mayChangeUnderNFC(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        bytes.contains { $0 >= 0xCC }
    }
}


// MARK: - Added tokens

/// Finds added tokens in UTF-8 text the way HF's AddedVocabulary does (Aho-Corasick, leftmost-longest): at the
/// first position where any token matches, the longest one there. A byte trie makes each attempt cost the length
/// of the longest common prefix, not one comparison per token (Llama 3 has 256 tokens that all start with "<|"),
/// and a first-byte table passes over text that cannot start a token with one lookup per byte.
struct AddedTokenMatcher: Sendable {
    /// Trie nodes: the children of node n are `childBytes/childNodes[childStart[n]..<childStart[n + 1]]`.
    private let childStart: [Int32]
    private let childBytes: [UInt8]
    private let childNodes: [Int32]
    /// The token that ends at each node: index into `ids`/`specials`, or -1.
    private let terminal: [Int32]
    private let ids: [Int32]
    private let specials: [Bool]
    private let startsToken: [Bool]
    let isEmpty: Bool

    init(_ tokens: [(bytes: [UInt8], id: Int32, special: Bool)]) {
        // Build with per-node dictionaries, then flatten into arrays sorted by byte.
        var children: [[UInt8: Int32]] = [[:]]
        var terminal: [Int32] = [-1]
        var ids: [Int32] = []
        var specials: [Bool] = []
        var startsToken = [Bool](repeating: false, count: 256)
        for token in tokens where !token.bytes.isEmpty {
            var node = 0
            for byte in token.bytes {
                if let child = children[node][byte] {
                    node = Int(child)
                } else {
                    children.append([:])
                    terminal.append(-1)
                    children[node][byte] = Int32(children.count - 1)
                    node = children.count - 1
                }
            }
            // A content listed twice keeps its last id, as HF's map does.
            terminal[node] = Int32(ids.count)
            ids.append(token.id)
            specials.append(token.special)
            startsToken[Int(token.bytes[0])] = true
        }
        var childStart: [Int32] = [0]
        var childBytes: [UInt8] = []
        var childNodes: [Int32] = []
        for node in children {
            for (byte, child) in node.sorted(by: { $0.key < $1.key }) {
                childBytes.append(byte)
                childNodes.append(child)
            }
            childStart.append(Int32(childBytes.count))
        }
        self.childStart = childStart
        self.childBytes = childBytes
        self.childNodes = childNodes
        self.terminal = terminal
        self.ids = ids
        self.specials = specials
        self.startsToken = startsToken
        isEmpty = ids.isEmpty
    }

    /// The leftmost-longest match at or after `start`.
    func firstMatch(in text: UnsafeBufferPointer<UInt8>, from start: Int)
        -> (range: Range<Int>, id: Int32, special: Bool)? {
        var position = start
        while position < text.count {
            if startsToken[Int(text[position])] {
                var node = 0
                var index = position
                var longest: (end: Int, token: Int32)? = nil
                walk: while index < text.count {
                    let byte = text[index]
                    var child = Int(childStart[node])
                    let end = Int(childStart[node + 1])
                    while child < end && childBytes[child] != byte { child += 1 }
                    guard child < end else { break walk }
                    node = Int(childNodes[child])
                    index += 1
                    if terminal[node] >= 0 { longest = (index, terminal[node]) }
                }
                if let longest {
                    return (position..<longest.end, ids[Int(longest.token)], specials[Int(longest.token)])
                }
            }
            position += 1
        }
        return nil
    }
}

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

// MARK: - Loading

extension ByteLevelBPETokenizer {
    /// Loads a GPT-2 / OPT style `vocab.json` + `merges.txt` pair, with `tokenizer_config.json` (optional) for the
    /// special tokens and BOS/EOS policy. The pre-tokenizer is GPT-2's.
    public static func load(vocabJSON: String, mergesTXT: String, tokenizerConfig: String?) throws
        -> ByteLevelBPETokenizer {
        let vocabularyObject = try readJSONObject(vocabJSON)
        var vocabulary: [String: Int32] = [:]
        vocabulary.reserveCapacity(vocabularyObject.count)
        for (piece, value) in vocabularyObject {
            guard let id = jsonInteger(value), let id32 = Int32(exactly: id), id32 >= 0 else {
                throw HoneError.malformedFile(path: vocabJSON, message: "vocabulary entry '\(piece)' has no valid id")
            }
            vocabulary[piece] = id32
        }
        let merges = try readMergesText(mergesTXT)
        try validateMerges(merges.map(\.pair), vocabulary: vocabulary, path: mergesTXT, lines: merges.map(\.line))
        let config = try tokenizerConfig.map { try TokenizerConfig(path: $0) }

        var addedTokens = config?.addedTokens ?? []
        // The named special tokens are special even when added_tokens_decoder does not list them.
        for name in [config?.bosToken, config?.eosToken, config?.unknownToken, config?.paddingToken].compactMap({ $0 })
        where !addedTokens.contains(where: { $0.content == name }) {
            if let id = vocabulary[name] { addedTokens.append((content: name, id: id, special: true)) }
        }
        func id(_ name: String?) -> Int32? {
            guard let name else { return nil }
            return addedTokens.first(where: { $0.content == name })?.id ?? vocabulary[name]
        }
        let bos = id(config?.bosToken)
        let eos = id(config?.eosToken)
        return ByteLevelBPETokenizer(
            vocabulary: vocabulary, merges: merges.map(\.pair), preTokenizer: .gpt2, addedTokens: addedTokens,
            bos: bos, eos: eos, unk: id(config?.unknownToken), pad: id(config?.paddingToken),
            addsBOS: bos != nil && config?.addBOS == true, addsEOS: eos != nil && config?.addEOS == true,
            ignoreMerges: false, normalizeNFC: false, addPrefixSpace: config?.addPrefixSpace ?? false)
    }

    /// Loads a Hugging Face `tokenizer.json` whose model is BPE with a byte-level pre-tokenizer (GPT-2, Llama 3,
    /// Qwen2), with `tokenizer_config.json` (optional) for the named special tokens and the BOS/EOS policy.
    public static func load(tokenizerJSON path: String, tokenizerConfig: String?) throws -> ByteLevelBPETokenizer {
        try load(tokenizerJSON: readJSONObject(path), path: path, tokenizerConfig: tokenizerConfig)
    }

    /// The same from an already parsed tokenizer.json (`path` names it in errors), for loaders that parse the
    /// file once to find out which tokenizer it describes.
    static func load(tokenizerJSON json: [String: Any], path: String, tokenizerConfig: String?) throws
        -> ByteLevelBPETokenizer {
        guard let model = json["model"] as? [String: Any] else {
            throw HoneError.malformedFile(path: path, message: "missing key 'model'")
        }
        if let type = model["type"] as? String, type != "BPE" {
            throw HoneError.invalidConfig(path: path, message: "model type '\(type)' is not BPE")
        }
        for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
            if let affix = model[key] as? String, !affix.isEmpty {
                throw HoneError.invalidConfig(path: path, message: "BPE '\(key)' (\"\(affix)\") is not supported")
            }
        }
        guard let vocabularyObject = model["vocab"] as? [String: Any] else {
            throw HoneError.malformedFile(path: path, message: "missing key 'model.vocab'")
        }
        var vocabulary: [String: Int32] = [:]
        vocabulary.reserveCapacity(vocabularyObject.count)
        for (piece, value) in vocabularyObject {
            guard let id = jsonInteger(value), let id32 = Int32(exactly: id), id32 >= 0 else {
                throw HoneError.malformedFile(path: path, message: "model.vocab entry '\(piece)' has no valid id")
            }
            vocabulary[piece] = id32
        }
        let merges = try TokenizerJSON.merges(model, path: path)
        try validateMerges(merges, vocabulary: vocabulary, path: path, lines: nil)
        let ignoreMerges = model["ignore_merges"] as? Bool ?? false

        let normalizeNFC = try parseNormalizer(json["normalizer"], path: path)
        let (kind, addPrefixSpace) = try parsePreTokenizer(json["pre_tokenizer"], path: path)

        let addedTokens = try TokenizerJSON.addedTokens(json, path: path)
        let config = try tokenizerConfig.map { try TokenizerConfig(path: $0) }
        func id(_ name: String?) -> Int32? {
            guard let name else { return nil }
            return addedTokens.last(where: { $0.content == name })?.id ?? vocabulary[name]
        }
        let unknown = id(config?.unknownToken) ?? id(model["unk_token"] as? String)
        let (bos, eos, addsBOS, addsEOS) = TokenizerJSON.specialRoles(
            config: config, template: TemplateSpecialTokens(json["post_processor"]), id: id)
        return ByteLevelBPETokenizer(
            vocabulary: vocabulary, merges: merges, preTokenizer: kind, addedTokens: addedTokens, bos: bos, eos: eos,
            unk: unknown, pad: id(config?.paddingToken), addsBOS: addsBOS, addsEOS: addsEOS, ignoreMerges: ignoreMerges,
            normalizeNFC: normalizeNFC, addPrefixSpace: addPrefixSpace)
    }

    /// Throws, naming `path` (and the line, when `lines` gives them), for the first merge whose parts or whose
    /// concatenation are not in the vocabulary: HF refuses such files (MergeTokenOutOfVocabulary).
    public static func validateMerges(_ merges: [(String, String)], vocabulary: [String: Int32], path: String,
                                      lines: [Int]? = nil) throws {
        for (index, pair) in merges.enumerated() {
            for symbol in [pair.0, pair.1, pair.0 + pair.1] where vocabulary[symbol] == nil {
                let place = lines.map { "line \($0[index])" } ?? "merge \(index)"
                throw HoneError.malformedFile(
                    path: path, message: "\(place): merge \"\(pair.0) \(pair.1)\" uses '\(symbol)', which is not in the vocabulary")
            }
        }
    }

    // MARK: Parsing helpers

    static func readJSONObject(_ path: String) throws -> [String: Any] { try JSONConfig(path: path).values }

    /// merges.txt: one "a b" pair per line; `#version` lines and blank lines are skipped.
    static func readMergesText(_ path: String) throws -> [(pair: (String, String), line: Int)] {
        guard let data = FileManager.default.contents(atPath: path) else { throw HoneError.fileNotFound(path: path) }
        guard let text = String(data: data, encoding: .utf8) else {
            throw HoneError.malformedFile(path: path, message: "not valid UTF-8")
        }
        var merges: [(pair: (String, String), line: Int)] = []
        var lineNumber = 0
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            let line = rawLine.hasSuffix("\r") ? rawLine.dropLast() : rawLine[...]
            if line.isEmpty || line.hasPrefix("#version") { continue }
            let parts = line.split(separator: " ", omittingEmptySubsequences: false)
            guard parts.count == 2 else {
                throw HoneError.malformedFile(path: path, message: "line \(lineNumber): expected two symbols separated by one space")
            }
            merges.append(((String(parts[0]), String(parts[1])), lineNumber))
        }
        return merges
    }

    /// Whether the normalizer is NFC (Qwen2); nil and empty sequences are no normalizer; anything else is refused.
    static func parseNormalizer(_ value: Any?, path: String) throws -> Bool {
        guard let normalizer = value as? [String: Any] else { return false }
        let type = normalizer["type"] as? String ?? "?"
        switch type {
        case "NFC":
            return true
        case "Sequence":
            var nfc = false
            for entry in (normalizer["normalizers"] as? [Any]) ?? [] { nfc = try parseNormalizer(entry, path: path) || nfc }
            return nfc
        default:
            throw HoneError.invalidConfig(path: path, message: "normalizer '\(type)' is not supported by the byte-level BPE tokenizer")
        }
    }

    /// Recognises the pre-tokenizer: ByteLevel with its own (GPT-2) regex, or Split on a known pattern followed by
    /// ByteLevel without regex (Llama 3, Qwen2).
    static func parsePreTokenizer(_ value: Any?, path: String) throws -> (PreTokenizerKind, addPrefixSpace: Bool) {
        guard let preTokenizer = value as? [String: Any] else {
            throw HoneError.invalidConfig(path: path, message: "no pre_tokenizer: a byte-level BPE tokenizer needs ByteLevel")
        }
        let steps: [[String: Any]]
        if preTokenizer["type"] as? String == "Sequence" {
            steps = (preTokenizer["pretokenizers"] as? [Any] ?? []).compactMap { $0 as? [String: Any] }
        } else {
            steps = [preTokenizer]
        }
        let types = steps.map { $0["type"] as? String ?? "?" }
        if types == ["ByteLevel"], steps[0]["use_regex"] as? Bool ?? true {
            return (.gpt2, steps[0]["add_prefix_space"] as? Bool ?? false)
        }
        if types == ["Digits", "ByteLevel"], steps[0]["individual_digits"] as? Bool == true,
           steps[1]["use_regex"] as? Bool ?? true, steps[1]["add_prefix_space"] as? Bool != true {
            return (.smollm, false)
        }
        if types == ["Split", "ByteLevel"], steps[1]["use_regex"] as? Bool == false {
            let split = steps[0]
            guard let pattern = (split["pattern"] as? [String: Any])?["Regex"] as? String else {
                throw HoneError.invalidConfig(path: path, message: "the Split pre-tokenizer has no regex pattern")
            }
            guard let kind = PreTokenizerKind(pattern: pattern) else {
                throw HoneError.invalidConfig(
                    path: path, message: "pre-tokenizer pattern \(pattern) is not supported (supported: the GPT-2, Llama 3 and Qwen2 patterns)")
            }
            let behavior = split["behavior"] as? String ?? "Isolated"
            guard behavior == "Isolated", split["invert"] as? Bool != true else {
                throw HoneError.invalidConfig(path: path, message: "Split pre-tokenizer behavior '\(behavior)' is not supported")
            }
            if steps[1]["add_prefix_space"] as? Bool == true {
                throw HoneError.invalidConfig(path: path, message: "ByteLevel add_prefix_space after a Split is not supported")
            }
            return (kind, false)
        }
        throw HoneError.invalidConfig(
            path: path, message: "pre-tokenizer \(types.joined(separator: " + ")) is not supported by the byte-level BPE tokenizer")
    }
}

