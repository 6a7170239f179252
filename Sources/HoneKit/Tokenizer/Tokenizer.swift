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
    /// Added tokens that take the whitespace beside them along when they match (Phi-3's `rstrip` chat tokens).
    var addedTokenStrips: AddedTokenStrips { get }

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
    public var addedTokenStrips: AddedTokenStrips { AddedTokenStrips() }

    public func encode(_ text: String) -> [Int32] { encode(text, addSpecialTokens: true, parseSpecial: false) }
    public func decode(_ ids: [Int32]) -> String { decode(ids, skipSpecialTokens: true) }

    /// Every id in the list that is the EOS id or another special end marker.
    public func isEndOfSequence(_ id: Int32) -> Bool { id == eosTokenID }
}
