import Foundation

/// Parses JSON into Foundation values ([String: Any], [Any], String, numbers, NSNull); read numbers with
/// `jsonInteger` / `jsonDouble`, which tell booleans apart.
///
/// On Linux JSONSerialization silently drops a U+FEFF at the start of a string, which would change user text
/// and tokenizer vocabularies; JSONDecoder keeps every scalar but is about 5× slower. So JSONSerialization
/// parses unless the bytes hold a U+FEFF (EF BB BF) anywhere.
public func parseJSON(_ data: Data) throws -> Any {
    if !containsByteOrderMark(data) {
        return try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
    }
    return try JSONDecoder().decode(JSONTree.self, from: data).value
}

/// Whether the bytes hold EF BB BF (U+FEFF in UTF-8) anywhere. memchr finds the candidate lead bytes: Data's
/// generic `firstRange(of:)` took longer than parsing a tokenizer.json (3.5 MB) itself.
func containsByteOrderMark(_ data: Data) -> Bool {
    data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> Bool in
        guard let base = raw.baseAddress, raw.count >= 3 else { return false }
        let bytes = base.assumingMemoryBound(to: UInt8.self)
        var offset = 0
        while offset <= raw.count - 3 {
            guard let found = memchr(bytes + offset, 0xEF, raw.count - 2 - offset) else { return false }
            let index = bytes.distance(to: found.assumingMemoryBound(to: UInt8.self))
            if bytes[index + 1] == 0xBB, bytes[index + 2] == 0xBF { return true }
            offset = index + 1
        }
        return false
    }
}

private struct JSONTree: Decodable {
    let value: Any

    private struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    init(from decoder: Decoder) throws {
        if var array = try? decoder.unkeyedContainer() {
            var items: [Any] = []
            if let count = array.count { items.reserveCapacity(count) }
            while !array.isAtEnd { items.append(try array.decode(JSONTree.self).value) }
            value = items
            return
        }
        if let object = try? decoder.container(keyedBy: Key.self) {
            var items: [String: Any] = [:]
            items.reserveCapacity(object.allKeys.count)
            for key in object.allKeys { items[key.stringValue] = try object.decode(JSONTree.self, forKey: key).value }
            value = items
            return
        }
        let single = try decoder.singleValueContainer()
        if single.decodeNil() {
            value = NSNull()
        } else if let flag = try? single.decode(Bool.self) {
            value = flag
        } else if let integer = try? single.decode(Int.self) {
            value = integer
        } else if let number = try? single.decode(Double.self) {
            value = number
        } else {
            value = try single.decode(String.self)
        }
    }
}

/// JSON's name for the type of a value from `parseJSON` (for error messages).
func jsonTypeName(_ value: Any) -> String {
    if value is NSNull { return "null" }
    if value is [Any] { return "an array" }
    if value is [String: Any] { return "an object" }
    if jsonDouble(value) != nil { return "a number" }
    if type(of: value) == Bool.self || (value as? NSNumber) != nil { return "a boolean" }
    if value is String { return "a string" }
    return "\(type(of: value))"
}
