import Foundation

/// Turns text into token ids and back, exactly as the model's reference tokenizer does
/// (Hugging Face `tokenizers` / `sentencepiece`, which llama.cpp also matches).
public protocol Tokenizer: AnyObject, Sendable {
    /// Number of ids (the largest id + 1), added tokens included.
    var vocabularySize: Int { get }
    var bosTokenID: Int32? { get }
    var eosTokenID: Int32? { get }
    var unknownTokenID: Int32? { get }
    var padTokenID: Int32? { get }
    /// Whether `encode(..., addSpecialTokens: true)` puts BOS first / EOS last (tokenizer_config.json or GGUF).
    var addsBOS: Bool { get }
    var addsEOS: Bool { get }
    /// Control and added special tokens (e.g. `<s>`, `<|endoftext|>`), which `parseSpecial` recognises in text.
    var specialTokens: [String: Int32] { get }

    /// Encodes `text`. With `addSpecialTokens`, BOS/EOS are added as `addsBOS`/`addsEOS` say. With
    /// `parseSpecial`, special tokens written in the text become their ids; otherwise they are plain text.
    func encode(_ text: String, addSpecialTokens: Bool, parseSpecial: Bool) -> [Int32]

    /// The UTF-8 bytes a token stands for in decoded text, before any whole-text clean-up (SentencePiece's
    /// leading-space removal). Control tokens give their text only when `includeSpecial`.
    func tokenBytes(_ id: Int32, includeSpecial: Bool) -> [UInt8]

    /// Decodes ids to text. `skipSpecialTokens` drops BOS/EOS/control/added special tokens as HF does.
    func decode(_ ids: [Int32], skipSpecialTokens: Bool) -> String

    /// The vocabulary entry of an id (e.g. "▁Hello", "Ġworld", "<0x0A>"), nil when out of range.
    func piece(for id: Int32) -> String?
    /// The id of a vocabulary entry, nil when absent.
    func id(forPiece piece: String) -> Int32?
    func isSpecial(_ id: Int32) -> Bool
}

extension Tokenizer {
    public func encode(_ text: String) -> [Int32] { encode(text, addSpecialTokens: true, parseSpecial: false) }
    public func decode(_ ids: [Int32]) -> String { decode(ids, skipSpecialTokens: true) }

    /// Every id in the list that is the EOS id or another special end marker.
    public func isEndOfSequence(_ id: Int32) -> Bool { id == eosTokenID }
}

/// Splits text around special tokens written in it, longest match first, for `parseSpecial` encoding.
/// Each piece is either plain text (to be tokenized normally) or the id of a special token.
public struct SpecialTokenSplitter: Sendable {
    public enum Piece: Equatable, Sendable {
        case text(Substring)
        case special(Int32)
    }

    /// Tokens sorted longest first so that "<|end|>" never hides "<|endoftext|>".
    let tokens: [(text: String, id: Int32)]

    public init(_ tokens: [String: Int32]) {
        self.tokens = tokens.filter { !$0.key.isEmpty }.map { (text: $0.key, id: $0.value) }
            .sorted { $0.text.utf8.count != $1.text.utf8.count ? $0.text.utf8.count > $1.text.utf8.count : $0.text < $1.text }
    }

    /// Byte-exact matching (no canonical equivalence), stepping over UTF-8 positions so that a token after a
    /// combining mark is still found.
    public func split(_ text: String) -> [Piece] {
        guard !tokens.isEmpty else { return text.isEmpty ? [] : [.text(text[...])] }
        var pieces: [Piece] = []
        let utf8 = text.utf8
        var plainStart = utf8.startIndex
        var index = utf8.startIndex
        while index < utf8.endIndex {
            // A token starts with a lead byte, so continuation bytes can be skipped.
            if UTF8.isContinuation(utf8[index]) {
                index = utf8.index(after: index)
                continue
            }
            var matched: (length: Int, id: Int32)? = nil
            for token in tokens where utf8[index...].starts(with: token.text.utf8) {
                matched = (token.text.utf8.count, token.id)
                break
            }
            if let matched {
                if plainStart < index { pieces.append(.text(text[plainStart..<index])) }
                pieces.append(.special(matched.id))
                index = utf8.index(index, offsetBy: matched.length)
                plainStart = index
            } else {
                index = utf8.index(after: index)
            }
        }
        if plainStart < utf8.endIndex { pieces.append(.text(text[plainStart...])) }
        return pieces
    }
}
