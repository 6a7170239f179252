import Foundation

/// SentencePiece BPE as Llama 1/2, TinyLlama and Mistral use it: spaces become "▁", a dummy "▁" prefix,
/// BPE merges by piece score (tokenizer.model) or merge rank (tokenizer.json), and byte fallback to
/// `<0xNN>` pieces for characters outside the vocabulary.
public final class SentencePieceTokenizer: Tokenizer, @unchecked Sendable {
    public enum PieceType: Int, Sendable {
        case normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6
    }

    /// Where the dummy "▁" goes when text is split around special tokens: sentencepiece and GGUF prefix the
    /// text once; HF's legacy `Prepend` normalizer prefixes every plain segment; `Metaspace` says which.
    public enum PrefixPolicy: Sendable { case firstSegment, everySegment, never }

    public let pieces: [String]
    public let types: [PieceType]
    /// Keyed by UTF-8 bytes, not String: String keys compare by canonical equivalence, which would merge
    /// "Å" (U+00C5) with "A" + U+030A, two different texts for a tokenizer.
    let pieceIDs: [[UInt8]: Int32]
    /// Ids of single-scalar pieces, the starting symbols of BPE.
    let scalarIDs: [UInt32: Int32]
    let byteIDs: [Int32]
    let merges: BPEMergeRules
    let byteFallback: Bool
    let prefixPolicy: PrefixPolicy
    let removeExtraWhitespaces: Bool
    /// Pieces matched whole in text before BPE (user-defined symbols in sentencepiece; non-special added
    /// tokens in HF, which split them out before normalisation).
    let atomicPieces: AddedTokenMatcher
    /// Whether atomic pieces are split out before the dummy prefix is added (HF) or inside the text (sentencepiece).
    let atomicPiecesSplitSegments: Bool
    /// What an unknown id decodes to: sentencepiece writes " ⁇ ", HF the unknown piece's text.
    let unknownSurface: String
    let splitter: AddedTokenMatcher

    public let vocabularySize: Int
    public let bosTokenID: Int32?
    public let eosTokenID: Int32?
    public let unknownTokenID: Int32?
    public let padTokenID: Int32?
    public let addsBOS: Bool
    public let addsEOS: Bool
    public let specialTokens: [String: Int32]
    public var addedTokenStrips: AddedTokenStrips { splitter.strips }
    let special: Set<Int32>
    private let cache = WordCache()

    /// - Parameters:
    ///   - merges: (left piece, right piece) in priority order for tokenizer.json; nil to derive merges from
    ///     piece scores as sentencepiece does (a pair merges when its concatenation is a normal or
    ///     user-defined piece; higher score first).
    init(pieces: [String], scores: [Float], types: [PieceType], merges: [(String, String)]?, byteFallback: Bool,
         prefixPolicy: PrefixPolicy, removeExtraWhitespaces: Bool, atomicPieces: [String: Int32],
         atomicPiecesSplitSegments: Bool, specialTokens: [String: Int32], unknownSurface: String,
         bos: Int32?, eos: Int32?, unknown: Int32?, pad: Int32?, addsBOS: Bool, addsEOS: Bool,
         strips: AddedTokenStrips = AddedTokenStrips()) {
        self.pieces = pieces
        self.types = types
        var ids: [[UInt8]: Int32] = [:]
        ids.reserveCapacity(pieces.count)
        var scalars: [UInt32: Int32] = [:]
        for (index, piece) in pieces.enumerated() where ids[Array(piece.utf8)] == nil {
            ids[Array(piece.utf8)] = Int32(index)
            let pieceScalars = piece.unicodeScalars
            if pieceScalars.count == 1, types[index] == .normal || types[index] == .userDefined {
                scalars[pieceScalars.first!.value] = Int32(index)
            }
        }
        pieceIDs = ids
        scalarIDs = scalars
        var bytes = [Int32](repeating: -1, count: 256)
        for (index, piece) in pieces.enumerated() where types[index] == .byte {
            if let value = SentencePieceTokenizer.byteValue(piece) { bytes[Int(value)] = Int32(index) }
        }
        byteIDs = bytes

        var table = MergeTable(capacity: merges?.count ?? pieces.count * 4)
        if let merges {
            // tokenizer.json: the rank is the position in the list; a repeated pair keeps its last rank (HF's map).
            for (rank, pair) in merges.enumerated() {
                guard let left = ids[Array(pair.0.utf8)], let right = ids[Array(pair.1.utf8)],
                      let merged = ids[Array(pair.0.utf8) + Array(pair.1.utf8)] else { continue }
                table.insert(left: left, right: right, rank: UInt32(rank), merged: merged)
            }
        } else {
            // tokenizer.model / GGUF: a pair merges when its concatenation is a normal or user-defined piece, the
            // higher score first. Scores become dense ranks, so equal scores stay equal (leftmost pair first).
            var candidates: [(score: Float, left: Int32, right: Int32, merged: Int32)] = []
            for (index, piece) in pieces.enumerated() where types[index] == .normal || types[index] == .userDefined {
                let bytes = Array(piece.utf8)
                guard piece.unicodeScalars.count > 1 else { continue }
                for split in 1..<bytes.count where !UTF8.isContinuation(bytes[split]) {
                    guard let leftID = ids[Array(bytes[..<split])], let rightID = ids[Array(bytes[split...])] else { continue }
                    candidates.append((scores[index], leftID, rightID, Int32(index)))
                }
            }
            let ranks = Dictionary(Set(candidates.map(\.score)).sorted(by: >).enumerated().map { ($1, UInt32($0)) },
                                   uniquingKeysWith: { first, _ in first })
            for candidate in candidates {
                table.insert(left: candidate.left, right: candidate.right, rank: ranks[candidate.score]!, merged: candidate.merged)
            }
        }
        self.merges = BPEMergeRules(table: table)
        self.byteFallback = byteFallback
        self.prefixPolicy = prefixPolicy
        self.removeExtraWhitespaces = removeExtraWhitespaces
        self.atomicPieces = AddedTokenMatcher(atomicPieces, strips: strips)
        self.atomicPiecesSplitSegments = atomicPiecesSplitSegments
        self.unknownSurface = unknownSurface
        self.specialTokens = specialTokens
        splitter = AddedTokenMatcher(specialTokens, strips: strips)
        special = Set(specialTokens.values).union(types.indices.filter { types[$0] == .control }.map { Int32($0) })
        vocabularySize = pieces.count
        bosTokenID = bos
        eosTokenID = eos
        unknownTokenID = unknown
        padTokenID = pad
        self.addsBOS = addsBOS
        self.addsEOS = addsEOS
    }

    static func byteValue(_ piece: String) -> UInt8? {
        let utf8 = Array(piece.utf8)
        guard utf8.count == 6, piece.hasPrefix("<0x"), piece.hasSuffix(">") else { return nil }
        return UInt8(String(decoding: utf8[3..<5], as: UTF8.self), radix: 16)
    }

    // MARK: - Encoding

    public func encode(_ text: String, addSpecialTokens: Bool, parseSpecial: Bool) -> [Int32] {
        var output: [Int32] = []
        if addSpecialTokens, addsBOS, let bosTokenID { output.append(bosTokenID) }
        let segments: [AddedTokenMatcher.Piece] = parseSpecial ? splitter.split(text) : [.text(text[...])]
        var first = true
        for segment in segments {
            switch segment {
            case .special(let id):
                output.append(id)
            case .text(let plain):
                let prefix: Bool
                switch prefixPolicy {
                case .firstSegment: prefix = first
                case .everySegment: prefix = true
                case .never: prefix = false
                }
                encodeSegment(plain, prefix: prefix, into: &output)
            }
            first = false
        }
        if addSpecialTokens, addsEOS, let eosTokenID { output.append(eosTokenID) }
        return output
    }

    /// Encodes plain text (no special tokens in it).
    func encodeSegment(_ text: Substring, prefix: Bool, into output: inout [Int32]) {
        if atomicPiecesSplitSegments {
            // HF: added tokens split the text first; each piece of plain text is normalised on its own.
            var firstPiece = true
            for piece in atomicPieces.split(String(text)) {
                switch piece {
                case .special(let id): output.append(id)
                case .text(let plain): encodeNormalized(normalize(plain, prefix: prefix && (firstPiece || prefixPolicy == .everySegment)), into: &output)
                }
                firstPiece = false
            }
        } else {
            encodeNormalized(normalize(text, prefix: prefix), into: &output)
        }
    }

    /// Spaces → "▁" and the dummy prefix (the identity normaliser of Llama's tokenizer).
    func normalize(_ text: Substring, prefix: Bool) -> [Unicode.Scalar] {
        var scalars: [Unicode.Scalar] = []
        scalars.reserveCapacity(text.unicodeScalars.count + 1)
        var source = Array(text.unicodeScalars)
        if removeExtraWhitespaces {
            var collapsed: [Unicode.Scalar] = []
            for scalar in source where !(scalar == " " && (collapsed.isEmpty || collapsed.last == " ")) {
                collapsed.append(scalar)
            }
            while collapsed.last == " " { collapsed.removeLast() }
            source = collapsed
        }
        if source.isEmpty { return [] }
        if prefix { scalars.append("\u{2581}") }
        for scalar in source { scalars.append(scalar == " " ? "\u{2581}" : scalar) }
        return scalars
    }

    /// BPE over normalised text, word by word. A piece never holds "▁" after another character, so text can be
    /// cut before every "▁" that follows a non-"▁" without changing the result; the words are then cached.
    func encodeNormalized(_ scalars: [Unicode.Scalar], into output: inout [Int32]) {
        guard !scalars.isEmpty else { return }
        // Atomic pieces inside the text (sentencepiece's user-defined symbols) are cut out first.
        if !atomicPiecesSplitSegments, !atomicPieces.isEmpty {
            let text = String(String.UnicodeScalarView(scalars))
            for piece in atomicPieces.split(text) {
                switch piece {
                case .special(let id): output.append(id)
                case .text(let plain): encodeWords(Array(plain.unicodeScalars), into: &output)
                }
            }
            return
        }
        encodeWords(scalars, into: &output)
    }

    private func encodeWords(_ scalars: [Unicode.Scalar], into output: inout [Int32]) {
        var start = 0
        for index in 1...scalars.count {
            if index == scalars.count || (scalars[index] == "\u{2581}" && scalars[index - 1] != "\u{2581}") {
                encodeWord(scalars[start..<index], into: &output)
                start = index
            }
        }
    }

    private func encodeWord(_ word: ArraySlice<Unicode.Scalar>, into output: inout [Int32]) {
        var key: [UInt8] = []
        key.reserveCapacity(word.count * 2)
        for scalar in word { key.append(contentsOf: UTF8.encode(scalar)!) }
        if let cached = cache.get(key) {
            output.append(contentsOf: cached)
            return
        }
        // Characters outside the vocabulary never merge: the word is merged run by run between them, and each
        // becomes its UTF-8 bytes as <0xNN> pieces, or the unknown id (consecutive ones fused, as sentencepiece).
        var tokens: [Int32] = []
        var run: [Int32] = []
        var previousUnknown = false
        func flushRun() {
            merges.merge(&run)
            tokens.append(contentsOf: run)
            run.removeAll(keepingCapacity: true)
        }
        for scalar in word {
            if let id = scalarIDs[scalar.value] {
                run.append(id)
                previousUnknown = false
                continue
            }
            flushRun()
            if byteFallback {
                for byte in UTF8.encode(scalar)! {
                    let id = byteIDs[Int(byte)]
                    tokens.append(id >= 0 ? id : (unknownTokenID ?? 0))
                }
            } else if !previousUnknown {
                tokens.append(unknownTokenID ?? 0)
            }
            previousUnknown = true
        }
        flushRun()
        cache.set(key, tokens)
        output.append(contentsOf: tokens)
    }

    // MARK: - Decoding

    public func tokenBytes(_ id: Int32, includeSpecial: Bool) -> [UInt8] {
        guard id >= 0, Int(id) < pieces.count else { return [] }
        let type = types[Int(id)]
        if let value = type == .byte ? SentencePieceTokenizer.byteValue(pieces[Int(id)]) : nil { return [value] }
        if special.contains(id) { return includeSpecial ? Array(pieces[Int(id)].utf8) : [] }
        if type == .unknown { return Array(unknownSurface.utf8) }
        return Array(pieces[Int(id)].replacingOccurrences(of: "\u{2581}", with: " ").utf8)
    }

    public func decode(_ ids: [Int32], skipSpecialTokens: Bool) -> String {
        var text = ""
        var pendingBytes: [UInt8] = []
        // Byte pieces are gathered into runs; a run that is not valid UTF-8 becomes one U+FFFD per byte (HF's
        // ByteFallback decoder), so a half character never turns into a different character.
        func flush() {
            guard !pendingBytes.isEmpty else { return }
            if let valid = String(validating: pendingBytes, as: UTF8.self) {
                text += valid
            } else {
                text += String(repeating: "\u{FFFD}", count: pendingBytes.count)
            }
            pendingBytes.removeAll()
        }
        for id in ids {
            guard id >= 0, Int(id) < pieces.count else { continue }
            if skipSpecialTokens, special.contains(id) { continue }
            if types[Int(id)] == .byte, let value = SentencePieceTokenizer.byteValue(pieces[Int(id)]) {
                pendingBytes.append(value)
                continue
            }
            flush()
            text += String(decoding: tokenBytes(id, includeSpecial: true), as: UTF8.self)
        }
        flush()
        if prefixPolicy != .never, text.hasPrefix(" ") { text.removeFirst() }
        return text
    }

    public func piece(for id: Int32) -> String? { id >= 0 && Int(id) < pieces.count ? pieces[Int(id)] : nil }
    public func id(forPiece piece: String) -> Int32? { pieceIDs[Array(piece.utf8)] }
    public func isSpecial(_ id: Int32) -> Bool { special.contains(id) }
}

/// A bounded cache of encoded words, safe to share between threads.
final class WordCache: @unchecked Sendable {
    private var entries: [[UInt8]: [Int32]] = [:]
    private let lock = NSLock()
    private let limit: Int

    init(limit: Int = 100_000) { self.limit = limit }

    func get(_ key: [UInt8]) -> [Int32]? {
        lock.lock()
        defer { lock.unlock() }
        return entries[key]
    }

    func set(_ key: [UInt8], _ value: [Int32]) {
        lock.lock()
        defer { lock.unlock() }
        if entries.count >= limit { entries.removeAll(keepingCapacity: true) }
        entries[key] = value
    }
}
