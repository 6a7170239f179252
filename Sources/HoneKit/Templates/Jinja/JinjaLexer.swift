import Foundation

// MARK: - Tokens

/// One lexical token. `offset` indexes the newline-normalized source as Unicode scalars (Python indexes
/// strings by code point, and so does jinja2's lexer); line and column are derived from it for errors.
struct JinjaToken: Sendable {
    enum Kind: Sendable, Equatable {
        case data(String)
        case variableBegin, variableEnd, blockBegin, blockEnd
        case name(String)
        case string(String)
        case integer(Int)
        case float(Double)
        /// An operator or punctuation: + - * / // % ** ~ == != < > <= >= = . : | , ; ( ) [ ] { }
        case op(String)
        case eof
    }

    let kind: Kind
    let offset: Int
}

// MARK: - Lexer

/// Splits a template into tokens with jinja2's whitespace rules: `-` strips all whitespace on that side of a
/// tag, `+` disables lstrip/trim for that tag, `lstripBlocks` removes spaces and tabs before a block or
/// comment tag that starts a line, `trimBlocks` removes the first newline after a block or comment tag, and one
/// trailing newline of the template is dropped unless `keepTrailingNewline`.
struct JinjaLexer {
    let source: [Unicode.Scalar]
    let options: JinjaOptions
    private(set) var tokens: [JinjaToken] = []
    private var pos = 0
    /// jinja2's `line_starting`: whether the text matched last ended with a newline. lstrip_blocks strips
    /// indentation before a tag with no newline between them only when this holds.
    private var lineStarting = true

    init(_ text: String, options: JinjaOptions) {
        // jinja2 splits on \r\n, \r and \n, drops one trailing empty line, and joins with \n.
        var scalars: [Unicode.Scalar] = []
        scalars.reserveCapacity(text.unicodeScalars.count)
        var it = text.unicodeScalars.makeIterator()
        var pending = it.next()
        while let c = pending {
            pending = it.next()
            if c == "\r" {
                scalars.append("\n")
                if pending == "\n" { pending = it.next() }
            } else {
                scalars.append(c)
            }
        }
        if !options.keepTrailingNewline, scalars.last == "\n" { scalars.removeLast() }
        self.source = scalars
        self.options = options
    }

    /// 1-based line and column of a scalar offset.
    static func position(of offset: Int, in source: [Unicode.Scalar]) -> (line: Int, column: Int) {
        var line = 1
        var lineStart = 0
        var i = 0
        let end = min(offset, source.count)
        while i < end {
            if source[i] == "\n" {
                line += 1
                lineStart = i + 1
            }
            i += 1
        }
        return (line, offset - lineStart + 1)
    }

    func error(_ message: String, at offset: Int) -> JinjaError {
        let (line, column) = JinjaLexer.position(of: offset, in: source)
        return .syntax(message, line: line, column: column)
    }

    mutating func tokenize() throws -> [JinjaToken] {
        while pos < source.count {
            guard let tag = findTag(from: pos) else {
                emitData(String(codePoints: source[pos...]), at: pos)
                lineStarting = source.last == "\n"
                pos = source.count
                break
            }
            var text = Array(source[pos..<tag.start])
            if tag.sign == "-" {
                while let last = text.last, last.isPythonWhitespace { text.removeLast() }
            } else if tag.sign != "+", options.lstripBlocks, tag.kind != .variable {
                // Strip the indentation between the last newline (or a line start) and the tag.
                let lineStart = (text.lastIndex(of: "\n") ?? -1) + 1
                if lineStart > 0 || lineStarting {
                    let tail = text[lineStart...]
                    if !tail.isEmpty, tail.allSatisfy({ $0.isPythonWhitespace }) {
                        text.removeSubrange(lineStart...)
                    }
                }
            }
            emitData(String(codePoints: text[...]), at: pos)
            lineStarting = false
            pos = tag.bodyStart
            switch tag.kind {
            case .comment: try lexComment(openedAt: tag.start)
            case .raw: try lexRaw(openedAt: tag.start)
            case .variable:
                tokens.append(JinjaToken(kind: .variableBegin, offset: tag.start))
                try lexExpression(block: false, openedAt: tag.start)
            case .block:
                tokens.append(JinjaToken(kind: .blockBegin, offset: tag.start))
                try lexExpression(block: true, openedAt: tag.start)
            }
        }
        tokens.append(JinjaToken(kind: .eof, offset: source.count))
        return tokens
    }

    // MARK: Tags

    private enum TagKind { case variable, block, comment, raw }

    private struct Tag {
        let kind: TagKind
        let start: Int
        let sign: Unicode.Scalar?
        /// Where lexing continues: after the opener and its sign, or after the whole `{% raw %}` tag.
        let bodyStart: Int
    }

    private func findTag(from start: Int) -> Tag? {
        var i = start
        while i + 1 < source.count {
            if source[i] == "{" {
                let next = source[i + 1]
                if next == "{" || next == "%" || next == "#" {
                    var sign: Unicode.Scalar? = nil
                    var body = i + 2
                    if body < source.count, source[body] == "-" || source[body] == "+" {
                        sign = source[body]
                        body += 1
                    }
                    if next == "%", let rawEnd = matchRawBegin(at: body) {
                        return Tag(kind: .raw, start: i, sign: sign, bodyStart: rawEnd)
                    }
                    let kind: TagKind = next == "{" ? .variable : next == "%" ? .block : .comment
                    return Tag(kind: kind, start: i, sign: sign, bodyStart: body)
                }
            }
            i += 1
        }
        return nil
    }

    /// `\s*raw\s*(-%}\s*|%})` after `{%` and its sign; returns the offset after the match.
    private func matchRawBegin(at start: Int) -> Int? {
        var i = skipWhitespace(from: start)
        guard matches("raw", at: i) else { return nil }
        i = skipWhitespace(from: i + 3)
        if matches("-%}", at: i) { return skipWhitespace(from: i + 3) }
        if matches("%}", at: i) { return i + 2 }
        return nil
    }

    private func matches(_ literal: String, at offset: Int) -> Bool {
        var i = offset
        for c in literal.unicodeScalars {
            guard i < source.count, source[i] == c else { return false }
            i += 1
        }
        return true
    }

    private func skipWhitespace(from start: Int) -> Int {
        var i = start
        while i < source.count, source[i].isPythonWhitespace { i += 1 }
        return i
    }

    private mutating func emitData(_ text: String, at offset: Int) {
        if !text.isEmpty { tokens.append(JinjaToken(kind: .data(text), offset: offset)) }
    }

    /// Consumes the end of a block or comment tag whose closing `%}`/`#}` starts at `closer`: `-` eats all
    /// following whitespace, `+` nothing, and a plain closer one newline when trimBlocks is on.
    private mutating func finishTag(closerStart: Int, closerLength: Int, sign: Unicode.Scalar?) {
        var end = closerStart + closerLength
        if sign == "-" {
            end = skipWhitespace(from: end)
        } else if sign == nil, options.trimBlocks, end < source.count, source[end] == "\n" {
            end += 1
        }
        lineStarting = source[end - 1] == "\n"
        pos = end
    }

    private mutating func lexComment(openedAt start: Int) throws {
        var i = pos
        while i + 1 < source.count {
            if (source[i] == "-" || source[i] == "+"), i + 2 < source.count, source[i + 1] == "#", source[i + 2] == "}" {
                finishTag(closerStart: i + 1, closerLength: 2, sign: source[i])
                return
            }
            if source[i] == "#", source[i + 1] == "}" {
                finishTag(closerStart: i, closerLength: 2, sign: nil)
                return
            }
            i += 1
        }
        throw error("Missing end of comment tag", at: start)
    }

    private mutating func lexRaw(openedAt start: Int) throws {
        // The raw body runs to the first `{%[-+]? endraw %}`; that tag's sign and lstrip apply to the body.
        var i = pos
        while i + 1 < source.count {
            if source[i] == "{", source[i + 1] == "%" {
                var j = i + 2
                var sign: Unicode.Scalar? = nil
                if j < source.count, source[j] == "-" || source[j] == "+" {
                    sign = source[j]
                    j += 1
                }
                j = skipWhitespace(from: j)
                if matches("endraw", at: j) {
                    j = skipWhitespace(from: j + 6)
                    var closerSign: Unicode.Scalar? = nil
                    var closer = j
                    if j < source.count, source[j] == "-" || source[j] == "+" {
                        closerSign = source[j]
                        closer = j + 1
                    }
                    if matches("%}", at: closer) {
                        var body = Array(source[pos..<i])
                        if sign == "-" {
                            while let last = body.last, last.isPythonWhitespace { body.removeLast() }
                        } else if sign != "+", options.lstripBlocks {
                            let lineStart = (body.lastIndex(of: "\n") ?? -1) + 1
                            if lineStart > 0 || lineStarting {
                                let tail = body[lineStart...]
                                if !tail.isEmpty, tail.allSatisfy({ $0.isPythonWhitespace }) {
                                    body.removeSubrange(lineStart...)
                                }
                            }
                        }
                        emitData(String(codePoints: body[...]), at: pos)
                        finishTag(closerStart: closer, closerLength: 2, sign: closerSign)
                        return
                    }
                }
            }
            i += 1
        }
        throw error("Missing end of raw directive", at: start)
    }

    // MARK: Expressions

    private mutating func lexExpression(block: Bool, openedAt start: Int) throws {
        var balance: [Unicode.Scalar] = []
        while true {
            guard pos < source.count else {
                throw error(block ? "Unexpected end of template. Jinja was looking for the end of a block tag ('%}')."
                    : "unexpected end of template, expected 'end of print statement'.", at: start)
            }
            if balance.isEmpty {
                if block {
                    if matches("+%}", at: pos) {
                        tokens.append(JinjaToken(kind: .blockEnd, offset: pos))
                        finishTag(closerStart: pos + 1, closerLength: 2, sign: "+")
                        return
                    }
                    if matches("-%}", at: pos) {
                        tokens.append(JinjaToken(kind: .blockEnd, offset: pos))
                        finishTag(closerStart: pos + 1, closerLength: 2, sign: "-")
                        return
                    }
                    if matches("%}", at: pos) {
                        tokens.append(JinjaToken(kind: .blockEnd, offset: pos))
                        finishTag(closerStart: pos, closerLength: 2, sign: nil)
                        return
                    }
                } else {
                    if matches("-}}", at: pos) {
                        tokens.append(JinjaToken(kind: .variableEnd, offset: pos))
                        pos = skipWhitespace(from: pos + 3)
                        lineStarting = source[pos - 1] == "\n"
                        return
                    }
                    if matches("}}", at: pos) {
                        tokens.append(JinjaToken(kind: .variableEnd, offset: pos))
                        pos += 2
                        lineStarting = false
                        return
                    }
                }
            }
            let c = source[pos]
            if c.isPythonWhitespace {
                let end = skipWhitespace(from: pos)
                lineStarting = source[end - 1] == "\n"
                pos = end
                continue
            }
            lineStarting = false
            let tokenStart = pos
            if let number = lexNumber() {
                tokens.append(JinjaToken(kind: number, offset: tokenStart))
            } else if c == "_" || c.properties.isXIDStart {
                var end = pos + 1
                while end < source.count, source[end] == "_" || source[end].properties.isXIDContinue { end += 1 }
                tokens.append(JinjaToken(kind: .name(String(codePoints: source[pos..<end])), offset: tokenStart))
                pos = end
            } else if c == "'" || c == "\"" {
                let value = try lexString(quote: c)
                tokens.append(JinjaToken(kind: .string(value), offset: tokenStart))
            } else if let op = lexOperator() {
                switch op {
                case "(": balance.append(")")
                case "[": balance.append("]")
                case "{": balance.append("}")
                case ")", "]", "}":
                    guard let expected = balance.popLast() else { throw error("unexpected '\(op)'", at: tokenStart) }
                    if String(expected) != op {
                        throw error("unexpected '\(op)', expected '\(expected)'", at: tokenStart)
                    }
                default: break
                }
                tokens.append(JinjaToken(kind: .op(op), offset: tokenStart))
            } else {
                throw error("unexpected char \(pythonStringLiteral(String(c))) at \(pos)", at: pos)
            }
        }
    }

    private static let operators: [String] = [
        "//", "**", "==", "!=", ">=", "<=",
        "+", "-", "/", "*", "%", "~", "[", "]", "(", ")", "{", "}", ">", "<", "=", ".", ":", "|", ",", ";",
    ]

    private mutating func lexOperator() -> String? {
        for op in JinjaLexer.operators where matches(op, at: pos) {
            pos += op.unicodeScalars.count
            return op
        }
        return nil
    }

    private func isDigit(_ i: Int) -> Bool { i < source.count && source[i].isDecimalDigitASCII }

    /// Digits with single underscores between them (`1_000`), as jinja2's number rules allow.
    private func scanDigits(from start: Int) -> Int? {
        guard isDigit(start) else { return nil }
        var i = start + 1
        while true {
            if isDigit(i) { i += 1 } else if i < source.count, source[i] == "_", isDigit(i + 1) { i += 2 } else { break }
        }
        return i
    }

    private mutating func lexNumber() -> JinjaToken.Kind? {
        guard source[pos].isDecimalDigitASCII else { return nil }
        // Float: digits then (.digits)? e[+-]digits, or digits.digits (not preceded by a dot).
        if pos == 0 || source[pos - 1] != ".", let intEnd = scanDigits(from: pos) {
            var end = intEnd
            var isFloat = false
            if end < source.count, source[end] == ".", let fracEnd = scanDigits(from: end + 1) {
                end = fracEnd
                isFloat = true
            }
            if end < source.count, source[end] == "e" || source[end] == "E" {
                var e = end + 1
                if e < source.count, source[e] == "+" || source[e] == "-" { e += 1 }
                if let expEnd = scanDigits(from: e) {
                    end = expEnd
                    isFloat = true
                }
            }
            if isFloat {
                let text = String(codePoints: source[pos..<end]).replacingOccurrences(of: "_", with: "")
                pos = end
                return .float(Double(text) ?? .nan)
            }
        }
        // Integers: 0b / 0o / 0x prefixes, or decimal (a decimal with leading zeros must be all zeros).
        if source[pos] == "0", pos + 1 < source.count {
            let prefix = Character(source[pos + 1]).lowercased()
            let radix = prefix == "b" ? 2 : prefix == "o" ? 8 : prefix == "x" ? 16 : 0
            if radix != 0 {
                var i = pos + 2
                var digits = ""
                while i < source.count {
                    let c = source[i]
                    if c == "_", i + 1 < source.count, Int(String(source[i + 1]), radix: radix) != nil {
                        i += 1
                        continue
                    }
                    guard Int(String(c), radix: radix) != nil else { break }
                    digits.unicodeScalars.append(c)
                    i += 1
                }
                if !digits.isEmpty, let value = Int(digits, radix: radix) {
                    pos = i
                    return .integer(value)
                }
            }
            // "0", "00", "0_0": zero; "01" lexes as 0 then 1, as in jinja2.
            var i = pos + 1
            while i < source.count {
                if source[i] == "0" { i += 1 } else if source[i] == "_", i + 1 < source.count, source[i + 1] == "0" { i += 2 } else { break }
            }
            pos = i
            return .integer(0)
        }
        guard let end = scanDigits(from: pos) else { return nil }
        let text = String(codePoints: source[pos..<end]).replacingOccurrences(of: "_", with: "")
        pos = end
        // Python ints are unbounded; a literal beyond 64 bits becomes a float rather than failing.
        if let value = Int(text) { return .integer(value) }
        return .float(Double(text) ?? .infinity)
    }

    /// A quoted literal with Python's escapes (jinja2 decodes literals with `unicode-escape`).
    private mutating func lexString(quote: Unicode.Scalar) throws -> String {
        let start = pos
        var i = pos + 1
        var out = String.UnicodeScalarView()
        while i < source.count {
            let c = source[i]
            if c == quote {
                pos = i + 1
                return String(out)
            }
            if c == "\\", i + 1 < source.count {
                let e = source[i + 1]
                i += 2
                switch e {
                case "\n": break
                case "\\": out.append("\\")
                case "'": out.append("'")
                case "\"": out.append("\"")
                case "a": out.append("\u{07}")
                case "b": out.append("\u{08}")
                case "f": out.append("\u{0C}")
                case "n": out.append("\n")
                case "r": out.append("\r")
                case "t": out.append("\t")
                case "v": out.append("\u{0B}")
                case "0"..."7":
                    var value = Int(e.value - 48)
                    var count = 1
                    while count < 3, i < source.count, ("0"..."7").contains(source[i]) {
                        value = value * 8 + Int(source[i].value - 48)
                        i += 1
                        count += 1
                    }
                    out.append(Unicode.Scalar(UInt32(value))!)
                case "x", "u", "U":
                    let width = e == "x" ? 2 : e == "u" ? 4 : 8
                    guard i + width <= source.count,
                        let value = UInt32(String(codePoints: source[i..<(i + width)]), radix: 16),
                        let scalar = Unicode.Scalar(value)
                    else {
                        throw error("truncated \\\(e)\(String(repeating: "X", count: width)) escape", at: start)
                    }
                    out.append(scalar)
                    i += width
                default:
                    // Unknown escapes stay as written, as in Python.
                    out.append("\\")
                    out.append(e)
                }
                continue
            }
            out.append(c)
            i += 1
        }
        throw error("unexpected char \(pythonStringLiteral(String(quote))) at \(start)", at: start)
    }
}

// MARK: - Scalar helpers

extension Unicode.Scalar {
    /// Python's `str.isspace()` (and what `\s` matches in a str regex).
    var isPythonWhitespace: Bool {
        switch value {
        case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000:
            return true
        default:
            return false
        }
    }

    var isDecimalDigitASCII: Bool { value >= 48 && value <= 57 }
}

extension String {
    init<S: Sequence>(codePoints: S) where S.Element == Unicode.Scalar {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: codePoints)
        self = String(view)
    }
}
