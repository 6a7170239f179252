import Foundation

// MARK: - Python str() and repr()

/// Chat templates print values with Python's `str()`: `{{ [1, 'a'] }}` is `[1, 'a']`, `{{ none }}` is `None`,
/// `{{ 1.0 }}` is `1.0`. These functions reproduce CPython's output for the JSON-like values templates see.
extension JinjaValue {
    /// Python `str(value)`; jinja2 prints `Undefined` as nothing.
    public var pythonString: String {
        switch self {
        case .undefined: return ""
        case .string(let s), .markup(let s): return s
        default: return pythonRepresentation
        }
    }

    /// Python `repr(value)`, used for the items of printed lists and dicts.
    var pythonRepresentation: String {
        switch self {
        case .undefined: return "Undefined"
        case .none: return "None"
        case .bool(let b): return b ? "True" : "False"
        case .int(let i): return String(i)
        case .double(let d): return pythonFloatRepr(d)
        case .string(let s): return pythonStringLiteral(s)
        case .markup(let s): return "Markup(\(pythonStringLiteral(s)))"
        case .array(let items): return "[" + items.map(\.pythonRepresentation).joined(separator: ", ") + "]"
        case .tuple(let items):
            if items.count == 1 { return "(" + items[0].pythonRepresentation + ",)" }
            return "(" + items.map(\.pythonRepresentation).joined(separator: ", ") + ")"
        case .dictionary(let d):
            return "{" + d.pairs.map { "\($0.key.pythonRepresentation): \($0.value.pythonRepresentation)" }
                .joined(separator: ", ") + "}"
        case .iterator(let i): return "<\(i.typeName) object>"
        case .object(let o): return o.pythonRepr
        case .function(let f): return f.isMacro ? "<Macro '\(f.name)'>" : "<function \(f.name)>"
        }
    }
}

/// CPython's `repr(str)`: single quotes unless the text has a single quote and no double quote; backslash
/// escapes for the quote, backslash, \t \n \r, and \x/\u/\U for characters that are not printable.
func pythonStringLiteral(_ s: String) -> String {
    let useDouble = s.unicodeScalars.contains("'") && !s.unicodeScalars.contains("\"")
    let quote: Unicode.Scalar = useDouble ? "\"" : "'"
    var out = String.UnicodeScalarView()
    out.append(quote)
    for c in s.unicodeScalars {
        switch c {
        case quote, "\\":
            out.append("\\")
            out.append(c)
        case "\t": out.append(contentsOf: "\\t".unicodeScalars)
        case "\n": out.append(contentsOf: "\\n".unicodeScalars)
        case "\r": out.append(contentsOf: "\\r".unicodeScalars)
        default:
            if c.isPythonPrintable {
                out.append(c)
            } else if c.value < 0x100 {
                out.append(contentsOf: String(format: "\\x%02x", c.value).unicodeScalars)
            } else if c.value < 0x10000 {
                out.append(contentsOf: String(format: "\\u%04x", c.value).unicodeScalars)
            } else {
                out.append(contentsOf: String(format: "\\U%08x", c.value).unicodeScalars)
            }
        }
    }
    out.append(quote)
    return String(out)
}

extension Unicode.Scalar {
    /// Python's `str.isprintable()` for one character: everything except the categories Cc, Cf, Cs, Co, Cn,
    /// Zl, Zp and Zs, but with the ASCII space printable.
    var isPythonPrintable: Bool {
        if value == 0x20 { return true }
        if value < 0x20 || value == 0x7F { return false }
        if value < 0x7F { return true }
        switch properties.generalCategory {
        case .control, .format, .surrogate, .privateUse, .unassigned, .lineSeparator, .paragraphSeparator,
            .spaceSeparator:
            return false
        default:
            return true
        }
    }
}

/// CPython's `repr(float)`: the shortest digits that round-trip, in positional notation when the decimal
/// exponent is in [-4, 16), otherwise as `d.ddde+XX`; integral values keep a trailing `.0`.
func pythonFloatRepr(_ d: Double) -> String {
    if d.isNaN { return "nan" }
    if d.isInfinite { return d < 0 ? "-inf" : "inf" }
    if d == 0 { return d.sign == .minus ? "-0.0" : "0.0" }
    // Swift's description also prints the shortest round-trip digits; take them apart and re-lay them out.
    let (negative, digits, exponent) = shortestDigits(d)
    // The value is 0.d1d2d3... * 10^decpt.
    let decpt = exponent + 1
    var body: String
    if decpt > -4 && decpt <= 16 {
        if decpt <= 0 {
            body = "0." + String(repeating: "0", count: -decpt) + digits
        } else if decpt >= digits.count {
            body = digits + String(repeating: "0", count: decpt - digits.count) + ".0"
        } else {
            let split = digits.index(digits.startIndex, offsetBy: decpt)
            body = String(digits[..<split]) + "." + String(digits[split...])
        }
    } else {
        let mantissa = digits.count == 1 ? digits : String(digits.prefix(1)) + "." + String(digits.dropFirst())
        let exp = decpt - 1
        body = mantissa + "e" + (exp < 0 ? "-" : "+") + (abs(exp) < 10 ? "0" : "") + String(abs(exp))
    }
    return negative ? "-" + body : body
}

/// (sign, significant digits without leading/trailing zeros, decimal exponent of the first digit).
private func shortestDigits(_ d: Double) -> (Bool, String, Int) {
    var text = "\(abs(d))"  // e.g. "1234.5", "1e-05", "1.2345e+16"
    var exponent = 0
    if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }) {
        exponent = Int(text[text.index(after: e)...]) ?? 0
        text = String(text[..<e])
    }
    var intPart = text
    var fracPart = ""
    if let dot = text.firstIndex(of: ".") {
        intPart = String(text[..<dot])
        fracPart = String(text[text.index(after: dot)...])
    }
    var digits = intPart + fracPart
    var firstExponent = exponent + intPart.count - 1
    while digits.hasPrefix("0") && digits.count > 1 {
        digits.removeFirst()
        firstExponent -= 1
    }
    while digits.hasSuffix("0") && digits.count > 1 { digits.removeLast() }
    return (d < 0, digits, firstExponent)
}

// MARK: - HTML escaping (markupsafe)

/// markupsafe's `escape`: & < > " ' become entities.
func htmlEscape(_ s: String) -> String {
    var out = ""
    out.reserveCapacity(s.utf8.count)
    for c in s.unicodeScalars {
        switch c {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&#34;"
        case "'": out += "&#39;"
        default: out.unicodeScalars.append(c)
        }
    }
    return out
}

/// The `Markup` text of a value: Markup stays as is, anything else is escaped after `str()`.
func markupText(_ value: JinjaValue) -> String {
    if case .markup(let s) = value { return s }
    return htmlEscape(value.pythonString)
}

// MARK: - Python string operations

/// Python string methods work on code points; these helpers do the same on Unicode scalars.
extension String {
    var codePoints: [Unicode.Scalar] { Array(unicodeScalars) }
    var codePointCount: Int { unicodeScalars.count }

    /// `str.strip(chars)`; nil strips Python whitespace.
    func pythonStrip(_ chars: String?, leading: Bool = true, trailing: Bool = true) -> String {
        let set = chars.map { Set($0.unicodeScalars) }
        func strip(_ c: Unicode.Scalar) -> Bool { set.map { $0.contains(c) } ?? c.isPythonWhitespace }
        let s = codePoints
        var start = 0
        var end = s.count
        if leading { while start < end, strip(s[start]) { start += 1 } }
        if trailing { while end > start, strip(s[end - 1]) { end -= 1 } }
        return String(codePoints: s[start..<end])
    }

    /// `str.split(sep, maxsplit)`; without a separator, runs of whitespace split and ends are ignored.
    func pythonSplit(_ separator: String?, maxSplit: Int = -1) -> [String] {
        let s = codePoints
        if let separator {
            let sep = separator.codePoints
            var parts: [String] = []
            var start = 0
            var i = 0
            while i + sep.count <= s.count, maxSplit < 0 || parts.count < maxSplit {
                if Array(s[i..<(i + sep.count)]) == sep {
                    parts.append(String(codePoints: s[start..<i]))
                    i += sep.count
                    start = i
                } else {
                    i += 1
                }
            }
            parts.append(String(codePoints: s[start...]))
            return parts
        }
        var parts: [String] = []
        var i = 0
        while i < s.count {
            while i < s.count, s[i].isPythonWhitespace { i += 1 }
            if i >= s.count { break }
            if maxSplit >= 0, parts.count >= maxSplit {
                // The remainder keeps its trailing whitespace, as in Python.
                parts.append(String(codePoints: s[i...]))
                return parts
            }
            let start = i
            while i < s.count, !s[i].isPythonWhitespace { i += 1 }
            parts.append(String(codePoints: s[start..<i]))
        }
        return parts
    }

    /// `str.rsplit(sep, maxsplit)`.
    func pythonRSplit(_ separator: String?, maxSplit: Int = -1) -> [String] {
        if maxSplit < 0 { return pythonSplit(separator) }
        let reversedSelf = String(codePoints: codePoints.reversed())
        let reversedSep = separator.map { String(codePoints: $0.codePoints.reversed()) }
        return reversedSelf.pythonSplit(reversedSep, maxSplit: maxSplit).map { String(codePoints: $0.codePoints.reversed()) }.reversed()
    }

    /// `str.splitlines(keepends)`: Python's line boundaries, not only \n.
    func pythonSplitLines(keepEnds: Bool = false) -> [String] {
        let s = codePoints
        var lines: [String] = []
        var start = 0
        var i = 0
        while i < s.count {
            let c = s[i]
            var breakLength = 0
            switch c.value {
            case 0x0D: breakLength = (i + 1 < s.count && s[i + 1] == "\n") ? 2 : 1
            case 0x0A, 0x0B, 0x0C, 0x1C, 0x1D, 0x1E, 0x85, 0x2028, 0x2029: breakLength = 1
            default: break
            }
            if breakLength > 0 {
                lines.append(String(codePoints: s[start..<(keepEnds ? i + breakLength : i)]))
                i += breakLength
                start = i
            } else {
                i += 1
            }
        }
        if start < s.count { lines.append(String(codePoints: s[start...])) }
        return lines
    }

    /// `pythonReplace`, refused when the result would pass the template string limit (replacing '' puts `new`
    /// between every two characters: a long `new` in a long string is quadratic).
    func checkedPythonReplace(_ old: String, _ new: String, count: Int) throws -> String {
        var replacements = old.isEmpty ? codePointCount + 1 : pythonCount(old)
        if count >= 0 { replacements = Swift.min(replacements, count) }
        let (added, overflow) = replacements.multipliedReportingOverflow(by: new.utf8.count)
        _ = try checkedWidth(overflow ? .max : added, "replaced text")
        _ = try checkedWidth(added + utf8.count, "replaced text")
        return pythonReplace(old, new, count: count)
    }

    /// `str.replace(old, new, count)`; an empty `old` inserts between every character, as in Python.
    func pythonReplace(_ old: String, _ new: String, count: Int = -1) -> String {
        if old.isEmpty {
            var out = String.UnicodeScalarView()
            var done = 0
            for c in unicodeScalars {
                if count < 0 || done < count {
                    out.append(contentsOf: new.unicodeScalars)
                    done += 1
                }
                out.append(c)
            }
            if count < 0 || done < count { out.append(contentsOf: new.unicodeScalars) }
            return String(out)
        }
        if count < 0 { return replacingOccurrences(of: old, with: new, options: .literal) }
        let s = codePoints
        let o = old.codePoints
        var out = String.UnicodeScalarView()
        var i = 0
        var done = 0
        while i < s.count {
            if done < count, i + o.count <= s.count, Array(s[i..<(i + o.count)]) == o {
                out.append(contentsOf: new.unicodeScalars)
                i += o.count
                done += 1
            } else {
                out.append(s[i])
                i += 1
            }
        }
        return String(out)
    }

    /// `str.find(sub, start, end)` in code points; -1 when absent.
    func pythonFind(_ sub: String, start: Int = 0, end: Int? = nil, reverse: Bool = false) -> Int {
        let s = codePoints
        let n = sub.codePoints
        let (lo, hi) = pythonSliceBounds(count: s.count, start: start, end: end)
        guard hi - lo >= n.count else { return -1 }
        let positions = Array(lo...(hi - n.count))
        for i in (reverse ? positions.reversed() : positions) where Array(s[i..<(i + n.count)]) == n {
            return i
        }
        return -1
    }

    /// `str.count(sub)`: non-overlapping occurrences.
    func pythonCount(_ sub: String) -> Int {
        if sub.isEmpty { return codePointCount + 1 }
        let s = codePoints
        let n = sub.codePoints
        var i = 0
        var found = 0
        while i + n.count <= s.count {
            if Array(s[i..<(i + n.count)]) == n {
                found += 1
                i += n.count
            } else {
                i += 1
            }
        }
        return found
    }

    /// `str.capitalize()`: first character upper-cased, the rest lower-cased.
    var pythonCapitalized: String {
        guard let first = unicodeScalars.first else { return "" }
        return String(first).uppercased() + String(codePoints: unicodeScalars.dropFirst()).lowercased()
    }

    /// `str.title()`: every run of letters starts upper-case and continues lower-case.
    var pythonTitle: String {
        var out = ""
        var previousCased = false
        for c in unicodeScalars {
            let isCased = c.properties.isCased
            if isCased {
                out += previousCased ? String(c).lowercased() : String(c).uppercased()
            } else {
                out.unicodeScalars.append(c)
            }
            previousCased = isCased
        }
        return out
    }

    /// `str.center(width, fill)` with CPython's placement of the odd extra character.
    func pythonCenter(_ width: Int, fill: String = " ") -> String {
        let n = codePointCount
        guard width > n else { return self }
        let marg = width - n
        let left = marg / 2 + (marg & width & 1)
        return String(repeating: fill, count: left) + self + String(repeating: fill, count: marg - left)
    }
}

/// Python's clamping of `s[start:end]` bounds for `find` and friends (negative counts from the end).
func pythonSliceBounds(count: Int, start: Int, end: Int?) -> (Int, Int) {
    var lo = start < 0 ? max(0, count + start) : min(start, count)
    var hi = end.map { $0 < 0 ? max(0, count + $0) : min($0, count) } ?? count
    if hi < lo { hi = lo }
    lo = min(lo, count)
    return (lo, hi)
}

/// The indices selected by Python slicing `[start:stop:step]` of a sequence of `count` items.
func pythonSliceIndices(count: Int, start: Int?, stop: Int?, step: Int?) throws -> [Int] {
    let step = step ?? 1
    guard step != 0 else { throw JinjaError.runtime("slice step cannot be zero") }
    var indices: [Int] = []
    if step > 0 {
        var lo = start ?? 0
        var hi = stop ?? count
        if lo < 0 { lo = max(0, lo + count) } else { lo = min(lo, count) }
        if hi < 0 { hi = max(0, hi + count) } else { hi = min(hi, count) }
        var i = lo
        while i < hi { indices.append(i); i += step }
    } else {
        var lo = start ?? count - 1
        var hi = stop ?? -count - 1
        if lo < 0 { lo = max(-1, lo + count) } else { lo = min(lo, count - 1) }
        if stop != nil { if hi < 0 { hi = max(-1, hi + count) } else { hi = min(hi, count - 1) } } else { hi = -1 }
        var i = lo
        while i > hi { indices.append(i); i += step }
    }
    return indices
}
