import Foundation

/// Finds added and special tokens in UTF-8 text the way HF's AddedVocabulary does (Aho-Corasick, leftmost-longest):
/// at the first position where any token matches, the longest one there, so "<|end|>" never hides
/// "<|endoftext|>". The one matcher for every tokenizer and for templates that parse special tokens. A byte trie makes each attempt cost the length
/// of the longest common prefix, not one comparison per token (Llama 3 has 256 tokens that all start with "<|"),
/// and a first-byte table passes over text that cannot start a token with one lookup per byte.
public struct AddedTokenMatcher: Sendable {
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
    /// Tokens that take the whitespace beside them along when they match (HF's `lstrip` / `rstrip`).
    let strips: AddedTokenStrips

    init(_ tokens: [(bytes: [UInt8], id: Int32, special: Bool)], strips: AddedTokenStrips = AddedTokenStrips()) {
        self.strips = strips
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

    // MARK: Splitting text

    /// A piece of text after splitting around tokens: plain text (to be tokenized normally) or a token's id.
    public enum Piece: Equatable, Sendable {
        case text(Substring)
        case special(Int32)
    }

    /// A matcher over tokens given as text → id (special tokens, SentencePiece's user-defined pieces).
    public init(_ tokens: [String: Int32], strips: AddedTokenStrips = AddedTokenStrips()) {
        self.init(tokens.sorted { $0.key < $1.key }.map { (bytes: Array($0.key.utf8), id: $0.value, special: true) },
                  strips: strips)
    }

    /// A match widened over the whitespace its token strips: to the left no further than `floor` (the end of the
    /// previous match), to the right as far as the whitespace goes.
    func widened(_ range: Range<Int>, id: Int32, in text: UnsafeBufferPointer<UInt8>, floor: Int) -> Range<Int> {
        guard let strip = strips.byID[id] else { return range }
        var (lower, upper) = (range.lowerBound, range.upperBound)
        if strip.contains(.left) {
            while lower > floor, let length = strips.whitespaceLength(endingAt: lower, in: text), lower - length >= floor {
                lower -= length
            }
        }
        if strip.contains(.right) {
            while let length = strips.whitespaceLength(startingAt: upper, in: text) { upper += length }
        }
        return lower..<upper
    }

    /// `text` split around every token in it, byte-exact (no canonical equivalence); a token that strips takes
    /// the whitespace beside it out of the text.
    public func split(_ text: String) -> [Piece] {
        guard !isEmpty else { return text.isEmpty ? [] : [.text(text[...])] }
        var pieces: [Piece] = []
        let utf8 = Array(text.utf8)
        var plainStart = 0
        utf8.withUnsafeBufferPointer { bytes in
            while let match = firstMatch(in: bytes, from: plainStart) {
                let range = widened(match.range, id: match.id, in: bytes, floor: plainStart)
                if plainStart < range.lowerBound { pieces.append(.text(Self.substring(text, plainStart..<range.lowerBound))) }
                pieces.append(.special(match.id))
                plainStart = range.upperBound
            }
        }
        if plainStart < utf8.count { pieces.append(.text(Self.substring(text, plainStart..<utf8.count))) }
        return pieces
    }

    /// The substring of `text` at UTF-8 offsets `range` (token boundaries are character boundaries: tokens are
    /// whole UTF-8 sequences).
    private static func substring(_ text: String, _ range: Range<Int>) -> Substring {
        let start = text.utf8.index(text.utf8.startIndex, offsetBy: range.lowerBound)
        let end = text.utf8.index(start, offsetBy: range.count)
        return text[start..<end]
    }
}

// MARK: - Whitespace that added tokens strip

/// Which side's whitespace a token removes from the text when it matches.
public struct AddedTokenStrip: OptionSet, Sendable, Hashable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let left = AddedTokenStrip(rawValue: 1)
    public static let right = AddedTokenStrip(rawValue: 2)
}

/// The tokens of a vocabulary that strip whitespace, and what counts as whitespace: HF's added tokens (`lstrip`,
/// `rstrip` in tokenizer.json) strip Unicode White_Space; llama.cpp's token attributes (`LSTRIP`, `RSTRIP`) strip
/// the six ASCII spaces of C's isspace.
public struct AddedTokenStrips: Sendable {
    public var byID: [Int32: AddedTokenStrip]
    public var asciiOnly: Bool

    public init(_ byID: [Int32: AddedTokenStrip] = [:], asciiOnly: Bool = false) {
        self.byID = byID.filter { !$0.value.isEmpty }
        self.asciiOnly = asciiOnly
    }

    public var isEmpty: Bool { byID.isEmpty }

    /// The strips llama.cpp gives a GGUF vocabulary (GGUF files carry no token attributes; llama.cpp sets them by
    /// the model's name): a model whose `general.name` says Phi-3 has every control, user-defined and unknown token
    /// strip the whitespace after it, and `</s>` too, but not `<unk>`, `<s>` or `<|endoftext|>`; Phi-3's
    /// tokenizer.json has the same `rstrip` on its chat tokens.
    static func llamaCpp(_ gguf: GGUFFile, tokens: [String], types: [Int]) -> AddedTokenStrips {
        let name = (gguf.string("general.name") ?? "").lowercased()
        guard name.contains("phi-3") || name.contains("phi3") else { return AddedTokenStrips() }
        var byID: [Int32: AddedTokenStrip] = [:]
        for (index, type) in types.enumerated() where [2, 3, 4].contains(type) { byID[Int32(index)] = .right }  // unknown, control, user defined
        for (index, token) in tokens.enumerated() {
            if token == "</s>" { byID[Int32(index)] = .right }
            if ["<unk>", "<s>", "<|endoftext|>"].contains(token) { byID[Int32(index)] = nil }
        }
        return AddedTokenStrips(byID, asciiOnly: true)
    }

    func isWhitespace(_ scalar: Unicode.Scalar) -> Bool {
        asciiOnly ? [" ", "\t", "\n", "\u{0B}", "\u{0C}", "\r"].contains(scalar) : scalar.properties.isWhitespace
    }

    /// The UTF-8 length of the whitespace character at `offset`, nil when there is none.
    func whitespaceLength(startingAt offset: Int, in text: UnsafeBufferPointer<UInt8>) -> Int? {
        guard offset < text.count else { return nil }
        let lead = text[offset]
        let length = lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2
        guard offset + length <= text.count else { return nil }
        var decoder = UTF8()
        var iterator = UnsafeBufferPointer(rebasing: text[offset..<(offset + length)]).makeIterator()
        guard case .scalarValue(let scalar) = decoder.decode(&iterator), isWhitespace(scalar) else { return nil }
        return length
    }

    /// The UTF-8 length of the whitespace character that ends just before `offset`, nil when there is none.
    func whitespaceLength(endingAt offset: Int, in text: UnsafeBufferPointer<UInt8>) -> Int? {
        var start = offset - 1
        while start > 0, text[start] & 0xC0 == 0x80 { start -= 1 }
        guard start >= 0, let length = whitespaceLength(startingAt: start, in: text), start + length == offset else { return nil }
        return length
    }
}
