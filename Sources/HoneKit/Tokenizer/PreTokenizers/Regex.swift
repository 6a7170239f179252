import Foundation

// MARK: - Errors

/// A pattern this matcher cannot read: a syntax error or a construct outside the subset it implements.
public struct PreTokenRegexError: Error, Sendable, CustomStringConvertible {
    public let pattern: String
    public let message: String
    public var description: String { "regex \(pattern): \(message)" }
}

// MARK: - Syntax tree

/// What the parser builds and the compiler turns into instructions.
indirect enum RegexNode {
    case set(RegexCharacterSet)
    case empty
    case sequence([RegexNode])
    case alternation([RegexNode])
    case repetition(RegexNode, min: Int, max: Int?, mode: RepetitionMode)
    /// `(?=...)` / `(?!...)`.
    case lookahead(RegexNode, negative: Bool)
    /// `(?>...)`, and possessive quantifiers: once the body has matched, the matcher never backtracks into it.
    case atomic(RegexNode)
    case assertion(RegexAssertion)

    enum RepetitionMode { case greedy, lazy, possessive }

    /// Whether the node can match the empty string (a loop over such a body could spin without consuming text).
    var isNullable: Bool {
        switch self {
        case .set: return false
        case .empty, .lookahead, .assertion: return true
        case .sequence(let nodes): return nodes.allSatisfy(\.isNullable)
        case .alternation(let nodes): return nodes.contains(where: \.isNullable)
        case .repetition(let node, let min, _, _): return min == 0 || node.isNullable
        case .atomic(let node): return node.isNullable
        }
    }
}

/// Zero-width tests. `^` and `$` are line anchors, as in Oniguruma's Ruby syntax (the one `tokenizers` uses).
enum RegexAssertion: Int32 {
    /// `^`: the start of the text or just after a `\n`.
    case lineStart
    /// `$`: the end of the text or just before a `\n`.
    case lineEnd
    /// `\A`
    case textStart
    /// `\z`
    case textEnd
    /// `\Z`: the end of the text, or before a final `\n`.
    case textEndBeforeNewline
}

// MARK: - Parser

/// Reads the regex dialect of tokenizer.json `Split` patterns and llama.cpp's pre-tokenizer lists: classes with
/// Unicode categories, alternation, groups `(...)`, `(?:...)`, `(?i:...)`, `(?i)`, lookahead `(?=...)`, `(?!...)`,
/// atomic groups `(?>...)`, quantifiers `? * + {n} {n,} {n,m}` with lazy (`?`) and possessive (`+`) forms, anchors.
/// Back-references, lookbehind and capture semantics are not needed to find split points and are refused.
struct RegexParser {
    private let pattern: String
    private let scalars: [Unicode.Scalar]
    private var index = 0
    /// `\w` as Rust's regex crate reads it rather than Oniguruma (see `RegexCharacterSet.Member.rustWord`).
    private let rustWord: Bool

    init(_ pattern: String, rustWord: Bool) {
        self.pattern = pattern
        self.rustWord = rustWord
        scalars = Array(pattern.unicodeScalars)
    }

    static func parse(_ pattern: String, rustWord: Bool = false) throws(PreTokenRegexError) -> RegexNode {
        var parser = RegexParser(pattern, rustWord: rustWord)
        var ignoringCase = false
        let node = try parser.parseAlternation(ignoringCase: &ignoringCase)
        if parser.index < parser.scalars.count { throw parser.error("unbalanced ')'") }
        return node
    }

    private func error(_ message: String) -> PreTokenRegexError {
        PreTokenRegexError(pattern: pattern, message: "\(message) at offset \(index)")
    }

    private var atEnd: Bool { index >= scalars.count }
    private var current: Unicode.Scalar { scalars[index] }
    private func peek(_ offset: Int = 0) -> Unicode.Scalar? {
        index + offset < scalars.count ? scalars[index + offset] : nil
    }

    // MARK: Structure

    private mutating func parseAlternation(ignoringCase: inout Bool) throws(PreTokenRegexError) -> RegexNode {
        var branches = [try parseSequence(ignoringCase: &ignoringCase)]
        while !atEnd, current == "|" {
            index += 1
            branches.append(try parseSequence(ignoringCase: &ignoringCase))
        }
        return branches.count == 1 ? branches[0] : .alternation(branches)
    }

    private mutating func parseSequence(ignoringCase: inout Bool) throws(PreTokenRegexError) -> RegexNode {
        var items: [RegexNode] = []
        while !atEnd, current != "|", current != ")" {
            // `(?i)` switches case folding on for the rest of the enclosing group.
            if current == "(", peek(1) == "?", let flags = inlineFlags() {
                ignoringCase = flags
                continue
            }
            let atom = try parseAtom(ignoringCase: ignoringCase)
            items.append(try parseQuantifier(atom))
        }
        if items.isEmpty { return .empty }
        return items.count == 1 ? items[0] : .sequence(items)
    }

    /// `(?i)` or `(?-i)` at the cursor: consumes it and returns the new case-folding setting; nil otherwise.
    private mutating func inlineFlags() -> Bool? {
        var cursor = index + 2
        var on = true
        var value: Bool?
        while cursor < scalars.count {
            switch scalars[cursor] {
            case "-": on = false
            case "i": value = on
            case ")":
                guard let value else { return nil }
                index = cursor + 1
                return value
            default: return nil
            }
            cursor += 1
        }
        return nil
    }

    private mutating func parseGroup(ignoringCase: Bool) throws(PreTokenRegexError) -> RegexNode {
        index += 1  // "("
        var folding = ignoringCase
        var kind = "capture"
        if peek() == "?" {
            index += 1
            switch peek() {
            case ":": kind = "plain"; index += 1
            case "=": kind = "ahead"; index += 1
            case "!": kind = "notAhead"; index += 1
            case ">": kind = "atomic"; index += 1
            case "<": throw error("lookbehind and named groups are not supported")
            default:
                // `(?i:...)`, `(?-i:...)`
                var on = true
                while let scalar = peek(), scalar != ":" {
                    switch scalar {
                    case "-": on = false
                    case "i": folding = on
                    default: throw error("group option '\(scalar)' is not supported")
                    }
                    index += 1
                }
                guard peek() == ":" else { throw error("unterminated group options") }
                index += 1
                kind = "plain"
            }
        }
        let body = try parseAlternation(ignoringCase: &folding)
        guard peek() == ")" else { throw error("missing ')'") }
        index += 1
        switch kind {
        case "ahead": return .lookahead(body, negative: false)
        case "notAhead": return .lookahead(body, negative: true)
        case "atomic": return .atomic(body)
        default: return body
        }
    }

    private mutating func parseAtom(ignoringCase: Bool) throws(PreTokenRegexError) -> RegexNode {
        let scalar = current
        switch scalar {
        case "(":
            return try parseGroup(ignoringCase: ignoringCase)
        case "[":
            return .set(try parseClass(ignoringCase: ignoringCase))
        case ".":
            index += 1
            return .set(RegexCharacterSet(members: [.range(0x0A, 0x0A)], negated: true))
        case "^":
            index += 1
            return .assertion(.lineStart)
        case "$":
            index += 1
            return .assertion(.lineEnd)
        case "\\":
            index += 1
            guard !atEnd else { throw error("trailing backslash") }
            switch current {
            case "A": index += 1; return .assertion(.textStart)
            case "z": index += 1; return .assertion(.textEnd)
            case "Z": index += 1; return .assertion(.textEndBeforeNewline)
            case "b", "B", "G": throw error("\\\(current) is not supported")
            default:
                if let digit = current.properties.numericType, digit == .decimal, current != "0" {
                    throw error("back-references are not supported")
                }
                return .set(try parseEscape(ignoringCase: ignoringCase))
            }
        case "*", "+", "?":
            throw error("quantifier '\(scalar)' without a target")
        default:
            index += 1
            return .set(.literal(scalar.value, ignoringCase: ignoringCase))
        }
    }

    // MARK: Quantifiers

    private mutating func parseQuantifier(_ atom: RegexNode) throws(PreTokenRegexError) -> RegexNode {
        var node = atom
        while !atEnd {
            var bounds: (Int, Int?)
            switch current {
            case "?": bounds = (0, 1); index += 1
            case "*": bounds = (0, nil); index += 1
            case "+": bounds = (1, nil); index += 1
            case "{":
                guard let parsed = braceBounds() else { return node }
                bounds = parsed
            default:
                return node
            }
            if case .assertion = node { throw error("quantifier after an anchor") }
            var mode = RegexNode.RepetitionMode.greedy
            if peek() == "?" {
                mode = .lazy
                index += 1
            } else if peek() == "+" {
                mode = .possessive
                index += 1
            }
            if let upper = bounds.1, upper < bounds.0 { throw error("{n,m} with m < n") }
            node = .repetition(node, min: bounds.0, max: bounds.1, mode: mode)
        }
        return node
    }

    /// `{n}`, `{n,}`, `{n,m}`, `{,m}` at the cursor (consumed); nil when the brace is a literal.
    private mutating func braceBounds() -> (Int, Int?)? {
        var cursor = index + 1
        func number() -> Int? {
            var value: Int?
            while cursor < scalars.count, let digit = Int(String(scalars[cursor])), scalars[cursor].isASCII {
                value = (value ?? 0) * 10 + digit
                cursor += 1
            }
            return value
        }
        let lower = number()
        var upper: Int?
        var bounded = true
        if cursor < scalars.count, scalars[cursor] == "," {
            cursor += 1
            upper = number()
            bounded = upper != nil
        } else {
            upper = lower
        }
        guard cursor < scalars.count, scalars[cursor] == "}", lower != nil || upper != nil else { return nil }
        index = cursor + 1
        return (lower ?? 0, bounded ? upper : nil)
    }

    // MARK: Classes and escapes

    /// `[...]`: literals, ranges, escapes, nested classes; `^` first negates. A `]` right after `[` or `[^` is
    /// a literal, as in Oniguruma.
    private mutating func parseClass(ignoringCase: Bool) throws(PreTokenRegexError) -> RegexCharacterSet {
        index += 1  // "["
        var negated = false
        if peek() == "^" {
            negated = true
            index += 1
        }
        var members: [RegexCharacterSet.Member] = []
        var first = true
        while true {
            guard !atEnd else { throw error("missing ']'") }
            let scalar = current
            if scalar == "]", !first {
                index += 1
                break
            }
            first = false
            if scalar == "[" {
                members.append(.set(RegexCharacterSetBox(try parseClass(ignoringCase: ignoringCase))))
                continue
            }
            if scalar == "&", peek(1) == "&" { throw error("class intersection '&&' is not supported") }
            let low: UInt32
            if scalar == "\\" {
                index += 1
                guard !atEnd else { throw error("trailing backslash") }
                let escaped = try parseEscape(ignoringCase: ignoringCase)
                guard let single = Self.singleScalar(escaped) else {
                    members.append(.set(RegexCharacterSetBox(escaped)))
                    continue
                }
                low = single
            } else {
                low = scalar.value
                index += 1
            }
            // A range `a-b`; a '-' before ']' is a literal.
            if peek() == "-", let next = peek(1), next != "]" {
                index += 1
                let high: UInt32
                if next == "\\" {
                    index += 1
                    guard !atEnd, let single = Self.singleScalar(try parseEscape(ignoringCase: false)) else {
                        throw error("a range must end in a single character")
                    }
                    high = single
                } else {
                    high = next.value
                    index += 1
                }
                guard high >= low else { throw error("range out of order") }
                members.append(.range(low, high))
                if ignoringCase { members += Self.caseFoldedRanges(low, high) }
                continue
            }
            members.append(.range(low, low))
            if ignoringCase {
                for variant in RegexCharacterSet.caseVariants(of: low) where variant != low { members.append(.range(variant, variant)) }
            }
        }
        return RegexCharacterSet(members: members, negated: negated)
    }

    /// The other-case ranges of the ASCII letters in `low...high` (enough for the patterns in use).
    private static func caseFoldedRanges(_ low: UInt32, _ high: UInt32) -> [RegexCharacterSet.Member] {
        var members: [RegexCharacterSet.Member] = []
        let upper = max(low, 0x41)...min(high, 0x5A)
        let lower = max(low, 0x61)...min(high, 0x7A)
        if upper.lowerBound <= upper.upperBound { members.append(.range(upper.lowerBound + 0x20, upper.upperBound + 0x20)) }
        if lower.lowerBound <= lower.upperBound { members.append(.range(lower.lowerBound - 0x20, lower.upperBound - 0x20)) }
        return members
    }

    /// The one scalar a set built from a literal or a character escape stands for.
    private static func singleScalar(_ set: RegexCharacterSet) -> UInt32? {
        guard !set.negated, case .range(let low, let high)? = set.members.first, low == high else { return nil }
        return low
    }

    /// The escape after a backslash (the cursor is on the character after it).
    private mutating func parseEscape(ignoringCase: Bool) throws(PreTokenRegexError) -> RegexCharacterSet {
        let scalar = current
        index += 1
        switch scalar {
        case "s": return RegexCharacterSet(members: [.whitespace(negated: false)])
        case "S": return RegexCharacterSet(members: [.whitespace(negated: true)])
        case "d": return RegexCharacterSet(members: [.categories(.of(.decimalNumber), negated: false)])
        case "D": return RegexCharacterSet(members: [.categories(.of(.decimalNumber), negated: true)])
        case "w", "W":
            let negated = scalar == "W"
            return RegexCharacterSet(members: [rustWord ? .rustWord(negated: negated) : .categories(.word, negated: negated)])
        case "h": return RegexCharacterSet(members: [.range(0x30, 0x39), .range(0x41, 0x46), .range(0x61, 0x66)])
        case "p", "P":
            var negated = scalar == "P"
            guard peek() == "{" else { throw error("\\p needs {Name}") }
            index += 1
            var name = ""
            while let next = peek(), next != "}" {
                name.unicodeScalars.append(next)
                index += 1
            }
            guard peek() == "}" else { throw error("unterminated \\p{") }
            index += 1
            if name.hasPrefix("^") {
                negated.toggle()
                name.removeFirst()
            }
            guard let mask = CategoryMask(propertyName: name) else { throw error("unknown property \\p{\(name)}") }
            return RegexCharacterSet(members: [.categories(mask, negated: negated)])
        case "n": return .literal(0x0A, ignoringCase: false)
        case "r": return .literal(0x0D, ignoringCase: false)
        case "t": return .literal(0x09, ignoringCase: false)
        case "f": return .literal(0x0C, ignoringCase: false)
        case "v": return .literal(0x0B, ignoringCase: false)
        case "a": return .literal(0x07, ignoringCase: false)
        case "e": return .literal(0x1B, ignoringCase: false)
        case "0": return .literal(0, ignoringCase: false)
        case "x", "u":
            var digits = ""
            if peek() == "{" {
                index += 1
                while let next = peek(), next != "}" { digits.unicodeScalars.append(next); index += 1 }
                index += 1
            } else {
                for _ in 0..<(scalar == "x" ? 2 : 4) {
                    guard let next = peek() else { break }
                    digits.unicodeScalars.append(next)
                    index += 1
                }
            }
            guard let value = UInt32(digits, radix: 16), Unicode.Scalar(value) != nil else {
                throw error("bad \\\(scalar) escape")
            }
            return .literal(value, ignoringCase: ignoringCase)
        default:
            if scalar.properties.isAlphabetic && scalar.isASCII { throw error("escape \\\(scalar) is not supported") }
            return .literal(scalar.value, ignoringCase: ignoringCase)
        }
    }
}
