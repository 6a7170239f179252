import Foundation

/// A `tokenizer.json` whose two large values, `model.vocab` (an object of integer ids) and `model.merges`, are read
/// straight from the bytes; everything else goes through `parseJSON` with those two values emptied.
///
/// Why: they are ~98 % of the file (SmolLM2's 3.5 MB: 49,152 pieces and 48,900 merges), and Foundation's parser
/// boxes every entry as objects that the loaders then unbox again: 0.14 s of the 0.31 s between starting `hone eval`
/// and its first forward pass. Anything this reader does not expect (another layout, an id that is not a plain
/// non-negative integer, a key met twice, an escape that is not JSON's, a lone surrogate, bytes that are not UTF-8,
/// nesting deeper than `JSONByteReader.maximumDepth`) makes it give up, and the whole file goes through `parseJSON` as before, whose loaders report what is wrong.
struct TokenizerJSONFile {
    /// The document; when `vocabulary` and `merges` are set, its model.vocab is `{}` and its model.merges `[]`.
    let values: [String: Any]
    /// model.vocab, piece → id; nil when read by `parseJSON` (then `values` holds it).
    let vocabulary: [String: Int32]?
    /// model.merges as pairs ("a b" strings or ["a", "b"] arrays); nil when `vocabulary` is.
    let merges: [(String, String)]?

    init(path: String) throws {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            // JSONConfig names a missing, unreadable or directory path as it does for every JSON file.
            self.init(values: try JSONConfig(path: path).values, vocabulary: nil, merges: nil)
            return
        }
        if let read = data.withUnsafeBytes({ TokenizerJSONFile.readLargeValues($0.bindMemory(to: UInt8.self)) }) {
            var remainder = Data()
            remainder.reserveCapacity(data.count - (read.vocabularySpan.count + read.mergesSpan.count) + 4)
            var cursor = 0
            for (span, empty) in [(read.vocabularySpan, "{}"), (read.mergesSpan, "[]")].sorted(by: { $0.0.lowerBound < $1.0.lowerBound }) {
                remainder.append(data[cursor..<span.lowerBound])
                remainder.append(contentsOf: Array(empty.utf8))
                cursor = span.upperBound
            }
            remainder.append(data[cursor...])
            if let values = (try? parseJSON(remainder)) as? [String: Any] {
                self.init(values: values, vocabulary: read.vocabulary, merges: read.merges)
                return
            }
        }
        self.init(values: try JSONConfig(path: path).values, vocabulary: nil, merges: nil)
    }

    init(values: [String: Any], vocabulary: [String: Int32]?, merges: [(String, String)]?) {
        self.values = values
        self.vocabulary = vocabulary
        self.merges = merges
    }

    /// model.vocab as piece → id: the one read from the bytes, or the parsed object's (ids must be non-negative
    /// integers; one beyond 32 bits is refused as `TokenizerJSON.idTableSize` refuses ids far beyond the others).
    func vocabulary(path: String) throws -> [String: Int32] {
        if let vocabulary { return vocabulary }
        guard let model = values["model"] as? [String: Any], let object = model["vocab"] as? [String: Any] else {
            throw HoneError.malformedFile(path: path, message: "missing key 'model.vocab'")
        }
        var vocabulary: [String: Int32] = [:]
        vocabulary.reserveCapacity(object.count)
        for (piece, value) in object {
            guard let id = jsonInteger(value), id >= 0 else {
                throw HoneError.malformedFile(path: path, message: "model.vocab entry '\(piece)' has no valid id")
            }
            guard let id32 = Int32(exactly: id) else {
                // Named as every id that leaves a vast range unused is named (the tables are sized by the largest).
                _ = try TokenizerJSON.idTableSize(object.values.compactMap(jsonInteger), path: path)
                throw HoneError.malformedFile(path: path, message: "model.vocab entry '\(piece)' has no valid id")
            }
            vocabulary[piece] = id32
        }
        return vocabulary
    }

    /// model.merges as pairs: the ones read from the bytes, or the parsed array's.
    func merges(path: String) throws -> [(String, String)] {
        if let merges { return merges }
        guard let model = values["model"] as? [String: Any] else {
            throw HoneError.malformedFile(path: path, message: "missing key 'model'")
        }
        return try TokenizerJSON.merges(model, path: path)
    }

    // MARK: - Reading the two values

    private struct LargeValues {
        var vocabulary: [String: Int32]
        var merges: [(String, String)]
        var vocabularySpan: Range<Int>
        var mergesSpan: Range<Int>
    }

    /// Walks the top-level object to "model", and in it reads "vocab" and "merges" (skipping every other value);
    /// nil unless both are found once each, in the shapes above.
    private static func readLargeValues(_ bytes: UnsafeBufferPointer<UInt8>) -> LargeValues? {
        var reader = JSONByteReader(bytes: bytes)
        var found: LargeValues?
        var sawModel = false
        let complete = reader.readObject { reader, key in
            guard key == "model" else { return reader.skipValue() }
            guard !sawModel, reader.peek == UInt8(ascii: "{") else { return false }
            sawModel = true
            var vocabulary: (values: [String: Int32], span: Range<Int>)?
            var merges: (values: [(String, String)], span: Range<Int>)?
            let modelComplete = reader.readObject { reader, key in
                let start = reader.position
                switch key {
                case "vocab":
                    guard vocabulary == nil, let values = reader.readVocabulary() else { return false }
                    vocabulary = (values, start..<reader.position)
                    return true
                case "merges":
                    guard merges == nil, let values = reader.readMerges() else { return false }
                    merges = (values, start..<reader.position)
                    return true
                default:
                    return reader.skipValue()
                }
            }
            guard modelComplete, let vocabulary, let merges else { return false }
            found = LargeValues(vocabulary: vocabulary.values, merges: merges.values, vocabularySpan: vocabulary.span,
                                mergesSpan: merges.span)
            return true
        }
        reader.skipWhitespace()
        guard complete, reader.position == bytes.count else { return nil }
        return found
    }
}

// MARK: - A forward-only JSON reader over bytes

/// Reads the JSON values `TokenizerJSONFile` needs; every method returns nil or false on anything unexpected.
private struct JSONByteReader {
    let bytes: UnsafeBufferPointer<UInt8>
    var position = 0

    init(bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    var peek: UInt8? {
        mutating get {
            skipWhitespace()
            return position < bytes.count ? bytes[position] : nil
        }
    }

    mutating func skipWhitespace() {
        while position < bytes.count {
            switch bytes[position] {
            case 0x20, 0x0A, 0x0D, 0x09: position += 1
            default: return
            }
        }
    }

    mutating func consume(_ byte: UInt8) -> Bool {
        guard peek == byte else { return false }
        position += 1
        return true
    }

    /// An object, calling `member` with the reader after each key's colon (it must read or skip the value).
    mutating func readObject(_ member: (inout JSONByteReader, String) -> Bool) -> Bool {
        guard consume(UInt8(ascii: "{")) else { return false }
        if consume(UInt8(ascii: "}")) { return true }
        while true {
            guard peek == UInt8(ascii: "\""), let key = readString(), consume(UInt8(ascii: ":")) else { return false }
            skipWhitespace()
            guard member(&self, key) else { return false }
            if consume(UInt8(ascii: ",")) { continue }
            return consume(UInt8(ascii: "}"))
        }
    }

    /// {"piece": id, ...} with ids in 0...Int32.max and no piece twice.
    mutating func readVocabulary() -> [String: Int32]? {
        var vocabulary: [String: Int32] = [:]
        vocabulary.reserveCapacity(bytes.count / 40)
        var duplicate = false
        let complete = readObject { reader, piece in
            guard let id = reader.readNonNegativeInteger(), vocabulary.updateValue(id, forKey: piece) == nil else {
                duplicate = true
                return false
            }
            return true
        }
        return complete && !duplicate ? vocabulary : nil
    }

    /// ["a b", ...] (exactly one space) or [["a", "b"], ...].
    mutating func readMerges() -> [(String, String)]? {
        guard consume(UInt8(ascii: "[")) else { return nil }
        var merges: [(String, String)] = []
        merges.reserveCapacity(bytes.count / 40)
        if consume(UInt8(ascii: "]")) { return merges }
        while true {
            switch peek {
            case UInt8(ascii: "\""):
                guard let text = readString(), let space = text.utf8.firstIndex(of: UInt8(ascii: " ")),
                      text.utf8.lastIndex(of: UInt8(ascii: " ")) == space else { return nil }
                merges.append((String(text[..<space]), String(text[text.utf8.index(after: space)...])))
            case UInt8(ascii: "["):
                position += 1
                guard peek == UInt8(ascii: "\""), let left = readString(), consume(UInt8(ascii: ",")),
                      peek == UInt8(ascii: "\""), let right = readString(), consume(UInt8(ascii: "]")) else { return nil }
                merges.append((left, right))
            default:
                return nil
            }
            if consume(UInt8(ascii: ",")) { continue }
            return consume(UInt8(ascii: "]")) ? merges : nil
        }
    }

    /// Digits only (no sign, fraction or exponent), at most Int32.max.
    mutating func readNonNegativeInteger() -> Int32? {
        skipWhitespace()
        var value: Int64 = 0
        let start = position
        while position < bytes.count, bytes[position] >= 0x30, bytes[position] <= 0x39 {
            value = value * 10 + Int64(bytes[position] - 0x30)
            guard value <= Int64(Int32.max) else { return nil }
            position += 1
        }
        guard position > start, position - start == 1 || bytes[start] != 0x30 else { return nil }
        if position < bytes.count, [UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E")].contains(bytes[position]) {
            return nil
        }
        return Int32(value)
    }

    /// A string at the current position (its opening quote), unescaped.
    mutating func readString() -> String? {
        guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else { return nil }
        position += 1
        let start = position
        while position < bytes.count {
            let byte = bytes[position]
            if byte == UInt8(ascii: "\"") {
                let text = String(validating: UnsafeBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)
                position += 1
                return text
            }
            if byte == UInt8(ascii: "\\") || byte < 0x20 { break }
            position += 1
        }
        // With escapes: the plain bytes so far, then byte by byte.
        var unescaped = Array(bytes[start..<position])
        while position < bytes.count {
            let byte = bytes[position]
            position += 1
            switch byte {
            case UInt8(ascii: "\""):
                return String(validating: unescaped, as: UTF8.self)
            case UInt8(ascii: "\\"):
                guard position < bytes.count else { return nil }
                let escape = bytes[position]
                position += 1
                switch escape {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): unescaped.append(escape)
                case UInt8(ascii: "b"): unescaped.append(0x08)
                case UInt8(ascii: "f"): unescaped.append(0x0C)
                case UInt8(ascii: "n"): unescaped.append(0x0A)
                case UInt8(ascii: "r"): unescaped.append(0x0D)
                case UInt8(ascii: "t"): unescaped.append(0x09)
                case UInt8(ascii: "u"):
                    guard var code = readHexQuad() else { return nil }
                    if (0xD800...0xDBFF).contains(code) {
                        guard position + 1 < bytes.count, bytes[position] == UInt8(ascii: "\\"),
                              bytes[position + 1] == UInt8(ascii: "u") else { return nil }
                        position += 2
                        guard let low = readHexQuad(), (0xDC00...0xDFFF).contains(low) else { return nil }
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    }
                    guard let scalar = Unicode.Scalar(code) else { return nil }  // a lone low surrogate
                    unescaped.append(contentsOf: String(Character(scalar)).utf8)
                default:
                    return nil
                }
            default:
                guard byte >= 0x20 else { return nil }
                unescaped.append(byte)
            }
        }
        return nil
    }

    private mutating func readHexQuad() -> UInt32? {
        guard position + 4 <= bytes.count else { return nil }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[position]
            let digit: UInt32
            switch byte {
            case 0x30...0x39: digit = UInt32(byte - 0x30)
            case 0x41...0x46: digit = UInt32(byte - 0x41 + 10)
            case 0x61...0x66: digit = UInt32(byte - 0x61 + 10)
            default: return nil
            }
            value = value << 4 | digit
            position += 1
        }
        return value
    }

    /// Containers nested deeper than this make the reader give up (the full parse refuses them in one line) rather
    /// than recurse without bound.
    static let maximumDepth = 256
    private var depth = 0

    /// Any value, without building it: strings are read (so that their escapes and UTF-8 are checked), containers
    /// walked, and literals and numbers must be made of the characters JSON allows in them.
    mutating func skipValue() -> Bool {
        switch peek {
        case UInt8(ascii: "\""):
            return readString() != nil
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            guard depth < JSONByteReader.maximumDepth else { return false }
            depth += 1
            defer { depth -= 1 }
            if bytes[position] == UInt8(ascii: "{") { return readObject { reader, _ in reader.skipValue() } }
            position += 1
            if consume(UInt8(ascii: "]")) { return true }
            while true {
                guard skipValue() else { return false }
                if consume(UInt8(ascii: ",")) { continue }
                return consume(UInt8(ascii: "]"))
            }
        case nil:
            return false
        default:
            let start = position
            while position < bytes.count, "+-.0123456789eEtruefalsn".utf8.contains(bytes[position]) { position += 1 }
            return position > start
        }
    }
}
