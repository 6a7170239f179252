/// Turns ids into text as they are generated, for chat. It never prints half a UTF-8 character (it waits
/// while the text ends in U+FFFD) and keeps SentencePiece's spaces right by decoding a small window of recent
/// ids and printing only what the newest id added to it.
public final class StreamingDetokenizer {
    public let tokenizer: Tokenizer
    public let skipSpecialTokens: Bool
    private var ids: [Int32] = []
    /// ids[prefixOffset..<readOffset] is the window already printed; the newest ids follow it.
    private var prefixOffset = 0
    private var readOffset = 0

    /// - Parameter context: ids the new text follows (a prompt's last ones). The first new id is then decoded after
    ///   them, so a SentencePiece word keeps the space its "▁" stands for, as llama-server and vLLM return it (and
    ///   prompt + text is the whole decoded sequence); without context a decoder that strips the text's first
    ///   space (Llama's) drops it, as transformers' `decode` of the new ids alone does.
    public init(tokenizer: Tokenizer, skipSpecialTokens: Bool = true, context: [Int32] = []) {
        self.tokenizer = tokenizer
        self.skipSpecialTokens = skipSpecialTokens
        // A few ids are enough to carry the space, but a window that starts inside a character can decode to
        // U+FFFD up to its end (a byte-fallback run that is not whole UTF-8 becomes one U+FFFD per byte), which would
        // hold the new text back: the window grows until it decodes to a whole last character. A context that
        // ends inside a character is not used.
        for size in stride(from: min(4, context.count), through: min(16, context.count), by: 1) where size > 0 {
            let window = Array(context.suffix(size))
            if !tokenizer.decode(window, skipSpecialTokens: skipSpecialTokens).hasSuffix("\u{FFFD}") {
                ids = window
                readOffset = window.count
                break
            }
        }
    }

    /// The text `id` completes, possibly empty while a character is still incomplete.
    public func push(_ id: Int32) -> String {
        ids.append(id)
        let printed = tokenizer.decode(Array(ids[prefixOffset..<readOffset]), skipSpecialTokens: skipSpecialTokens)
        let extended = tokenizer.decode(Array(ids[prefixOffset...]), skipSpecialTokens: skipSpecialTokens)
        guard extended.utf8.count > printed.utf8.count, !extended.hasSuffix("\u{FFFD}"),
              extended.utf8.starts(with: printed.utf8)
        else { return "" }
        let added = String(decoding: extended.utf8.dropFirst(printed.utf8.count), as: UTF8.self)
        prefixOffset = readOffset
        readOffset = ids.count
        return added
    }

    /// Whatever is still held back (an incomplete character becomes U+FFFD, as a full decode would give).
    public func finish() -> String {
        let printed = tokenizer.decode(Array(ids[prefixOffset..<readOffset]), skipSpecialTokens: skipSpecialTokens)
        let extended = tokenizer.decode(Array(ids[prefixOffset...]), skipSpecialTokens: skipSpecialTokens)
        prefixOffset = ids.count
        readOffset = ids.count
        guard extended.utf8.count > printed.utf8.count, extended.utf8.starts(with: printed.utf8) else { return "" }
        return String(decoding: extended.utf8.dropFirst(printed.utf8.count), as: UTF8.self)
    }

    /// Starts over (a new answer).
    public func reset() {
        ids.removeAll()
        prefixOffset = 0
        readOffset = 0
    }
}
