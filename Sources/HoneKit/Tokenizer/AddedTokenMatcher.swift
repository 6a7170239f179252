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

    // MARK: Splitting text

    /// A piece of text after splitting around tokens: plain text (to be tokenized normally) or a token's id.
    public enum Piece: Equatable, Sendable {
        case text(Substring)
        case special(Int32)
    }

    /// A matcher over tokens given as text → id (special tokens, SentencePiece's user-defined pieces).
    public init(_ tokens: [String: Int32]) {
        self.init(tokens.sorted { $0.key < $1.key }.map { (bytes: Array($0.key.utf8), id: $0.value, special: true) })
    }

    /// `text` split around every token in it, byte-exact (no canonical equivalence).
    public func split(_ text: String) -> [Piece] {
        guard !isEmpty else { return text.isEmpty ? [] : [.text(text[...])] }
        var pieces: [Piece] = []
        let utf8 = Array(text.utf8)
        var plainStart = 0
        utf8.withUnsafeBufferPointer { bytes in
            while let match = firstMatch(in: bytes, from: plainStart) {
                if plainStart < match.range.lowerBound { pieces.append(.text(Self.substring(text, plainStart..<match.range.lowerBound))) }
                pieces.append(.special(match.id))
                plainStart = match.range.upperBound
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
