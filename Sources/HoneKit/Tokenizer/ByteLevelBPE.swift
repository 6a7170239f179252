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
    public var addedTokenStrips: AddedTokenStrips { addedTokens.strips }
    /// The hand-written scanner that pre-tokenizes on its own (GPT-2, Llama 3, Qwen2), nil when `pipeline` needs the
    /// generic path.
    public let preTokenizer: PreTokenizerKind?
    /// The pre-tokenizer's steps (for a scanner kind, the steps it stands for).
    public let pipeline: PreTokenizerPipeline
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
    public convenience init(vocabulary: [String: Int32], merges: [(String, String)], preTokenizer: PreTokenizerKind,
                            addedTokens: [(content: String, id: Int32, special: Bool)], bos: Int32?, eos: Int32?,
                            unk: Int32?, pad: Int32?, addsBOS: Bool, addsEOS: Bool, ignoreMerges: Bool,
                            normalizeNFC: Bool, addPrefixSpace: Bool = false) {
        let steps: [PreTokenizerStep] = preTokenizer == .gpt2
            ? [.byteLevel(addPrefixSpace: addPrefixSpace, useRegex: true)]
            : [.scanner(preTokenizer), .byteLevel(addPrefixSpace: false, useRegex: false)]
        self.init(vocabulary: vocabulary, merges: merges, pipeline: PreTokenizerPipeline(steps), addedTokens: addedTokens,
                  bos: bos, eos: eos, unk: unk, pad: pad, addsBOS: addsBOS, addsEOS: addsEOS,
                  ignoreMerges: ignoreMerges, normalizeNFC: normalizeNFC,
                  fastPath: (preTokenizer, addPrefixSpace), strips: AddedTokenStrips())
    }

    /// The same with any pre-tokenizer pipeline (tokenizer.json `Sequence`s, GGUF pre-tokenizer types); pipelines
    /// that one scanner implements take the scanner's fast path.
    public convenience init(vocabulary: [String: Int32], merges: [(String, String)], pipeline: PreTokenizerPipeline,
                            addedTokens: [(content: String, id: Int32, special: Bool)], bos: Int32?, eos: Int32?,
                            unk: Int32?, pad: Int32?, addsBOS: Bool, addsEOS: Bool, ignoreMerges: Bool,
                            normalizeNFC: Bool, strips: AddedTokenStrips = AddedTokenStrips()) {
        self.init(vocabulary: vocabulary, merges: merges, pipeline: pipeline, addedTokens: addedTokens, bos: bos,
                  eos: eos, unk: unk, pad: pad, addsBOS: addsBOS, addsEOS: addsEOS, ignoreMerges: ignoreMerges,
                  normalizeNFC: normalizeNFC, fastPath: pipeline.fastPath, strips: strips)
    }

    private init(vocabulary: [String: Int32], merges: [(String, String)], pipeline: PreTokenizerPipeline,
                 addedTokens: [(content: String, id: Int32, special: Bool)], bos: Int32?, eos: Int32?, unk: Int32?,
                 pad: Int32?, addsBOS: Bool, addsEOS: Bool, ignoreMerges: Bool, normalizeNFC: Bool,
                 fastPath: (kind: PreTokenizerKind, addPrefixSpace: Bool)?, strips: AddedTokenStrips) {
        let preTokenizer = fastPath?.kind
        let addPrefixSpace = fastPath?.addPrefixSpace ?? false
        self.pipeline = pipeline
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
            .map { (Array($0.content.utf8), $0.id, $0.special) }, strips: strips)

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

    /// The scanner that a GGUF file's `tokenizer.ggml.pre` comes down to, nil when it needs more than one scanner
    /// (or is unknown: `GGUFPreTokenizer.named(_:)` has them all). Llama 3's family also needs `ignoreMerges: true`.
    public static func preTokenizerKind(ggufPre: String) -> PreTokenizerKind? {
        GGUFPreTokenizer.named(ggufPre).flatMap { PreTokenizerPipeline($0.steps).fastPath?.kind }
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
                let range = addedTokens.widened(match.range, id: match.id, in: bytes, floor: plainStart)
                encodePlain(UnsafeBufferPointer(rebasing: bytes[plainStart..<range.lowerBound]),
                            atTextStart: plainStart == 0, table: &table, into: &output)
                output.append(match.id)
                plainStart = range.upperBound
                searchStart = range.upperBound
            }
        }
        encodePlain(UnsafeBufferPointer(rebasing: bytes[plainStart...]), atTextStart: plainStart == 0, table: &table,
                    into: &output)
    }

    /// Normalises (NFC, prefix space) one piece of text between added tokens, then pre-tokenizes and encodes it.
    /// `atTextStart`: the piece begins the text (Metaspace's `first` scheme prepends only there).
    private func encodePlain(_ bytes: UnsafeBufferPointer<UInt8>, atTextStart: Bool, table: inout PreTokenTable,
                             into output: inout [Int32]) {
        guard !bytes.isEmpty else { return }
        if normalizesNFC, ByteLevelAlphabet.mayChangeUnderNFC(bytes) {
            // The standard library's NFC (the normaliser behind String comparison) is about ten times faster than
            // Foundation's precomposedStringWithCanonicalMapping, and uses the same Unicode data as the scanner.
            var normalized = String(decoding: String(decoding: bytes, as: UTF8.self)._nfcCodeUnits, as: UTF8.self)
            if addsPrefixSpace, normalized.utf8.first != UInt8(ascii: " ") { normalized = " " + normalized }
            normalized.withUTF8 { encodePreTokens($0, atTextStart: atTextStart, table: &table, into: &output) }
        } else if addsPrefixSpace, bytes[0] != UInt8(ascii: " ") {
            let prefixed = [UInt8(ascii: " ")] + Array(bytes)
            prefixed.withUnsafeBufferPointer { encodePreTokens($0, atTextStart: atTextStart, table: &table, into: &output) }
        } else {
            encodePreTokens(bytes, atTextStart: atTextStart, table: &table, into: &output)
        }
    }

    /// Cuts normalised text into pre-tokens (with the scanner when one does the whole job, else with the pipeline)
    /// and appends each one's tokens.
    private func encodePreTokens(_ bytes: UnsafeBufferPointer<UInt8>, atTextStart: Bool, table: inout PreTokenTable,
                                 into output: inout [Int32]) {
        guard let base = bytes.baseAddress else { return }
        if let preTokenizer {
            var scanner = PreTokenScanner(bytes: bytes, kind: preTokenizer)
            while let range = scanner.next() {
                encodePreToken(base + range.lowerBound, count: range.count, table: &table, into: &output)
            }
            return
        }
        let pieces = pipeline.split(bytes, atTextStart: atTextStart)
        pieces.storage.withUnsafeBufferPointer { storage in
            guard let base = storage.baseAddress else { return }
            for range in pieces.ranges {
                encodePreToken(base + range.lowerBound, count: range.count, table: &table, into: &output)
            }
        }
    }

    /// Appends the tokens of one pre-token (raw bytes), from the cache when it has them.
    @inline(__always)
    private func encodePreToken(_ start: UnsafePointer<UInt8>, count: Int, table: inout PreTokenTable,
                                into output: inout [Int32]) {
        // A single byte is always its byte token: no merge can apply and ignore_merges gives the same.
        if count == 1 {
            appendByteToken(start[0], into: &output)
            return
        }
        guard count <= ByteLevelBPETokenizer.maximumCachedLength else {
            mergeWord(UnsafeBufferPointer(start: start, count: count), into: &output)
            return
        }
        let hash = PreTokenTable.hash(start, count)
        if table.appendCached(key: start, count: count, hash: hash, into: &output) { return }
        let firstNew = output.count
        mergeWord(UnsafeBufferPointer(start: start, count: count), into: &output)
        table.insert(key: start, count: count, hash: hash, values: output[firstNew...])
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
