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

    public init(tokenizer: Tokenizer, skipSpecialTokens: Bool = true) {
        self.tokenizer = tokenizer
        self.skipSpecialTokens = skipSpecialTokens
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
