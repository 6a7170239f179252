import Foundation

// MARK: - Ordered JSON parsing

/// JSONSerialization forgets the order of object keys, but a chat template prints tool schemas and message
/// fields in the order the caller wrote them (Python dicts keep insertion order), so Hone parses JSON itself.
extension JinjaValue {
    /// Parses JSON text, keeping object keys in document order. Integers stay `.int` (unless they overflow),
    /// numbers with a fraction or exponent become `.double`, as Python's `json.loads` does.
    public init(json text: String) throws {
        var parser = OrderedJSONParser(Array(text.utf8))
        parser.skipWhitespace()
        let value = try parser.parseValue(depth: 0)
        parser.skipWhitespace()
        guard parser.atEnd else { throw parser.error("extra data after the JSON value") }
        self = value
    }

    public init(jsonData data: Data) throws {
        guard let text = String(data: data, encoding: .utf8) else {
            throw JinjaError.type("JSON data is not UTF-8")
        }
        try self.init(json: text)
    }
}

private struct OrderedJSONParser {
    let bytes: [UInt8]
    var pos = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var atEnd: Bool { pos >= bytes.count }

    func error(_ message: String) -> JinjaError {
        .type("invalid JSON at byte \(pos): \(message)")
    }

    mutating func skipWhitespace() {
        while pos < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[pos]) { pos += 1 }
    }

    mutating func parseValue(depth: Int) throws -> JinjaValue {
        guard depth < 512 else { throw error("nesting too deep") }
        guard pos < bytes.count else { throw error("unexpected end") }
        switch bytes[pos] {
        case UInt8(ascii: "{"):
            pos += 1
            var dict = JinjaDictionary()
            skipWhitespace()
            if pos < bytes.count, bytes[pos] == UInt8(ascii: "}") {
                pos += 1
                return .dictionary(dict)
            }
            while true {
                skipWhitespace()
                guard pos < bytes.count, bytes[pos] == UInt8(ascii: "\"") else { throw error("expected a key") }
                let key = try parseString()
                skipWhitespace()
                guard pos < bytes.count, bytes[pos] == UInt8(ascii: ":") else { throw error("expected ':'") }
                pos += 1
                skipWhitespace()
                dict[key] = try parseValue(depth: depth + 1)
                skipWhitespace()
                guard pos < bytes.count else { throw error("unexpected end") }
                if bytes[pos] == UInt8(ascii: ",") { pos += 1; continue }
                if bytes[pos] == UInt8(ascii: "}") { pos += 1; return .dictionary(dict) }
                throw error("expected ',' or '}'")
            }
        case UInt8(ascii: "["):
            pos += 1
            var items: [JinjaValue] = []
            skipWhitespace()
            if pos < bytes.count, bytes[pos] == UInt8(ascii: "]") {
                pos += 1
                return .array(items)
            }
            while true {
                skipWhitespace()
                items.append(try parseValue(depth: depth + 1))
                skipWhitespace()
                guard pos < bytes.count else { throw error("unexpected end") }
                if bytes[pos] == UInt8(ascii: ",") { pos += 1; continue }
                if bytes[pos] == UInt8(ascii: "]") { pos += 1; return .array(items) }
                throw error("expected ',' or ']'")
            }
        case UInt8(ascii: "\""):
            return .string(try parseString())
        case UInt8(ascii: "t"):
            try expectLiteral("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try expectLiteral("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try expectLiteral("null")
            return .none
        case UInt8(ascii: "N"):
            try expectLiteral("NaN")
            return .double(.nan)
        case UInt8(ascii: "I"):
            try expectLiteral("Infinity")
            return .double(.infinity)
        default:
            return try parseNumber()
        }
    }

    mutating func expectLiteral(_ literal: String) throws {
        let l = Array(literal.utf8)
        guard pos + l.count <= bytes.count, Array(bytes[pos..<(pos + l.count)]) == l else {
            throw error("unexpected character")
        }
        pos += l.count
    }

    mutating func parseNumber() throws -> JinjaValue {
        let start = pos
        if pos < bytes.count, bytes[pos] == UInt8(ascii: "-") {
            pos += 1
            if pos < bytes.count, bytes[pos] == UInt8(ascii: "I") {
                try expectLiteral("Infinity")
                return .double(-.infinity)
            }
        }
        var isFloat = false
        while pos < bytes.count {
            let b = bytes[pos]
            if b >= 0x30 && b <= 0x39 {
                pos += 1
            } else if b == UInt8(ascii: ".") || b == UInt8(ascii: "e") || b == UInt8(ascii: "E")
                || ((b == UInt8(ascii: "+") || b == UInt8(ascii: "-")) && isFloat)
            {
                isFloat = true
                pos += 1
            } else {
                break
            }
        }
        let text = String(decoding: bytes[start..<pos], as: UTF8.self)
        guard !text.isEmpty, text != "-" else { throw error("unexpected character") }
        if !isFloat, let i = Int(text) { return .int(i) }
        guard let d = Double(text) else { throw error("bad number \(text)") }
        return .double(d)
    }

    mutating func parseString() throws -> String {
        pos += 1  // opening quote
        var out = String.UnicodeScalarView()
        var runStart = pos
        func flush(_ parser: OrderedJSONParser, upTo end: Int) {
            if end > runStart {
                out.append(contentsOf: String(decoding: parser.bytes[runStart..<end], as: UTF8.self).unicodeScalars)
            }
        }
        while pos < bytes.count {
            let b = bytes[pos]
            if b == UInt8(ascii: "\"") {
                flush(self, upTo: pos)
                pos += 1
                return String(out)
            }
            if b == UInt8(ascii: "\\") {
                flush(self, upTo: pos)
                pos += 1
                guard pos < bytes.count else { break }
                let e = bytes[pos]
                pos += 1
                switch e {
                case UInt8(ascii: "\""): out.append("\"")
                case UInt8(ascii: "\\"): out.append("\\")
                case UInt8(ascii: "/"): out.append("/")
                case UInt8(ascii: "b"): out.append("\u{08}")
                case UInt8(ascii: "f"): out.append("\u{0C}")
                case UInt8(ascii: "n"): out.append("\n")
                case UInt8(ascii: "r"): out.append("\r")
                case UInt8(ascii: "t"): out.append("\t")
                case UInt8(ascii: "u"):
                    var code = try parseHex4()
                    if (0xD800..<0xDC00).contains(code), pos + 1 < bytes.count, bytes[pos] == UInt8(ascii: "\\"),
                        bytes[pos + 1] == UInt8(ascii: "u")
                    {
                        let save = pos
                        pos += 2
                        let low = try parseHex4()
                        if (0xDC00..<0xE000).contains(low) {
                            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                        } else {
                            pos = save
                        }
                    }
                    // A lone surrogate cannot live in a Swift string; U+FFFD stands in for it.
                    out.append(Unicode.Scalar(code) ?? "\u{FFFD}")
                default: throw error("bad escape")
                }
                runStart = pos
                continue
            }
            pos += 1
        }
        throw error("unterminated string")
    }

    mutating func parseHex4() throws -> UInt32 {
        guard pos + 4 <= bytes.count, let v = UInt32(String(decoding: bytes[pos..<(pos + 4)], as: UTF8.self), radix: 16)
        else { throw error("bad \\u escape") }
        pos += 4
        return v
    }
}

// MARK: - json.dumps

/// Python's `json.dumps` options as transformers' `tojson` filter passes them.
struct JinjaJSONOptions {
    var ensureASCII = false
    /// nil: one line; otherwise the string each nesting level is indented by.
    var indent: String? = nil
    var itemSeparator = ", "
    var keySeparator = ": "
    var sortKeys = false
}

/// `json.dumps(value, ...)` byte for byte: Python's float repr, `NaN`/`Infinity`, `\uXXXX` escapes in lower
/// case, and a TypeError for anything that is not JSON data (Undefined, generators, namespaces, ...).
func pythonJSONDumps(_ value: JinjaValue, _ options: JinjaJSONOptions) throws -> String {
    var out = ""
    try writeJSON(value, options, level: 0, into: &out)
    return out
}

private func writeJSON(_ value: JinjaValue, _ options: JinjaJSONOptions, level: Int, into out: inout String) throws {
    switch value {
    case .none: out += "null"
    case .bool(let b): out += b ? "true" : "false"
    case .int(let i): out += String(i)
    case .double(let d): out += jsonFloat(d)
    case .string(let s), .markup(let s): writeJSONString(s, ensureASCII: options.ensureASCII, into: &out)
    case .array(let items), .tuple(let items):
        try writeJSONContainer(items.count, open: "[", close: "]", options, level: level, into: &out) { i, out in
            try writeJSON(items[i], options, level: level + 1, into: &out)
        }
    case .dictionary(let dict):
        var pairs = dict.pairs
        if options.sortKeys {
            var failure: Error? = nil
            pairs.sort { a, b in
                do { return try pythonLessThan(a.key, b.key) } catch { failure = error; return false }
            }
            if let failure { throw failure }
        }
        try writeJSONContainer(pairs.count, open: "{", close: "}", options, level: level, into: &out) { i, out in
            let key: String
            switch pairs[i].key {
            case .string(let s), .markup(let s): key = s
            case .int(let n): key = String(n)
            case .double(let d): key = jsonFloat(d)
            case .bool(let b): key = b ? "true" : "false"
            case .none: key = "null"
            default:
                throw JinjaError.type("keys must be str, int, float, bool or None, not \(pairs[i].key.pythonTypeName)")
            }
            writeJSONString(key, ensureASCII: options.ensureASCII, into: &out)
            out += options.keySeparator
            try writeJSON(pairs[i].value, options, level: level + 1, into: &out)
        }
    default:
        throw JinjaError.type("Object of type \(value.pythonTypeName) is not JSON serializable")
    }
}

private func writeJSONContainer(_ count: Int, open: String, close: String, _ options: JinjaJSONOptions, level: Int,
                                into out: inout String, item: (Int, inout String) throws -> Void) throws {
    guard count > 0 else {
        out += open + close
        return
    }
    out += open
    if let indent = options.indent {
        let inner = "\n" + String(repeating: indent, count: level + 1)
        for i in 0..<count {
            out += i == 0 ? inner : options.itemSeparator + inner
            try item(i, &out)
            // A wide indent repeats on every line and every level: stop at the template string limit.
            _ = try checkedWidth(out.utf8.count, "JSON text")
        }
        out += "\n" + String(repeating: indent, count: level) + close
    } else {
        for i in 0..<count {
            if i > 0 { out += options.itemSeparator }
            try item(i, &out)
        }
        out += close
    }
}

private func jsonFloat(_ d: Double) -> String {
    if d.isNaN { return "NaN" }
    if d.isInfinite { return d < 0 ? "-Infinity" : "Infinity" }
    return pythonFloatRepr(d)
}

private func writeJSONString(_ s: String, ensureASCII: Bool, into out: inout String) {
    out += "\""
    for c in s.unicodeScalars {
        switch c {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case "\u{08}": out += "\\b"
        case "\u{0C}": out += "\\f"
        default:
            if c.value < 0x20 || (ensureASCII && c.value > 0x7E) {
                if c.value > 0xFFFF {
                    let v = c.value - 0x10000
                    out += String(format: "\\u%04x\\u%04x", 0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF))
                } else {
                    out += String(format: "\\u%04x", c.value)
                }
            } else {
                out.unicodeScalars.append(c)
            }
        }
    }
    out += "\""
}
