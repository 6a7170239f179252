import Foundation

// MARK: - Pre-tokenizer kinds

/// The regular expressions that byte-level BPE tokenizers use to cut text into pre-tokens before BPE.
///
/// Each one is implemented by a hand-written scanner (`PreTokenScanner`) rather than a regex engine: Foundation's
/// and Swift's regex engines are several times slower here, and their Unicode classes differ in details from
/// Oniguruma, the engine Hugging Face `tokenizers` uses. The scanners reproduce Oniguruma's leftmost-alternative,
/// greedy-with-backtracking semantics for these exact patterns.
public enum PreTokenizerKind: Sendable, Equatable, CaseIterable {
    /// GPT-2, OPT, RoBERTa: `ByteLevel` with `use_regex: true`.
    case gpt2
    /// Llama 3: `Split` on `llama3Pattern`, letters may take one leading non-letter, digits in groups of up to 3.
    case llama3
    /// Qwen2: like Llama 3 but every digit is a pre-token of its own.
    case qwen2
    /// SmolLM (llama.cpp's "smollm", HF `Digits(individual_digits)` then `ByteLevel`): every digit is a pre-token
    /// of its own and GPT-2's pattern runs on the text between digits, each stretch on its own (so `\s+(?!\S)`
    /// sees a digit as the end of the text, and no space joins a number).
    case smollm

    /// GPT-2's pattern, as `tokenizers` hard-codes it in its `ByteLevel` pre-tokenizer.
    public static let gpt2Pattern = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#
    /// Llama 3's pattern, as its tokenizer.json `Split` pre-tokenizer writes it.
    public static let llama3Pattern =
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    /// Qwen2's pattern: Llama 3's with single digits.
    public static let qwen2Pattern =
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    /// The regular expression this kind implements.
    public var pattern: String {
        switch self {
        case .gpt2: return PreTokenizerKind.gpt2Pattern
        case .llama3: return PreTokenizerKind.llama3Pattern
        case .qwen2: return PreTokenizerKind.qwen2Pattern
        case .smollm: return #"\p{N}"# + " then " + PreTokenizerKind.gpt2Pattern // two steps, no single regex
        }
    }

    /// The kind whose pattern is exactly `pattern` (as found in a tokenizer.json `Split` pre-tokenizer), nil when
    /// no scanner implements it.
    public init?(pattern: String) {
        guard let kind = PreTokenizerKind.allCases.first(where: { $0.pattern == pattern }) else { return nil }
        self = kind
    }

    /// Cuts `text` into pre-tokens (for tests and diagnostics; the tokenizer scans UTF-8 bytes directly).
    public func split(_ text: String) -> [String] {
        var text = text
        return text.withUTF8 { bytes in
            var scanner = PreTokenScanner(bytes: bytes, kind: self)
            var pieces: [String] = []
            while let range = scanner.next() {
                pieces.append(String(decoding: UnsafeBufferPointer(rebasing: bytes[range]), as: UTF8.self))
            }
            return pieces
        }
    }
}

// MARK: - Scalar classes

/// Bit flags that say which of the patterns' character classes a Unicode scalar belongs to. A scalar with none
/// of `letter`, `number`, `whitespace` is in `[^\s\p{L}\p{N}]` ("other": punctuation, symbols, marks, controls).
enum ScalarClass {
    /// `\p{L}`: general category Lu, Ll, Lt, Lm, Lo.
    static let letter: UInt8 = 1
    /// `\p{N}`: general category Nd, Nl, No.
    static let number: UInt8 = 2
    /// `\s`: the Unicode White_Space property, which is what Oniguruma's `\s` matches for UTF-8 text.
    static let whitespace: UInt8 = 4
    /// `[\r\n]` (also whitespace).
    static let newline: UInt8 = 8
    /// U+0020, the optional `' ?'` of the patterns (also whitespace).
    static let space: UInt8 = 16

    /// Classifies one scalar from its Unicode properties (the slow path that fills the table).
    static func classify(_ value: UInt32) -> UInt8 {
        guard let scalar = Unicode.Scalar(value) else { return 0 }
        var flags: UInt8 = 0
        switch scalar.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            flags |= letter
        case .decimalNumber, .letterNumber, .otherNumber:
            flags |= number
        default:
            break
        }
        if scalar.properties.isWhitespace { flags |= whitespace }
        if value == 0x0A || value == 0x0D { flags |= newline }
        if value == 0x20 { flags |= space }
        return flags
    }

    /// Scalars below this bound are classified by table lookup: the BMP and the supplementary planes that hold
    /// letters in practice (historic scripts, emoji, CJK extensions B–F). Built once, on first use (~200 KB).
    static let tableLimit: UInt32 = 0x3_0000

    /// The class of every scalar below `tableLimit`, indexed by scalar value (surrogates are classified 0).
    nonisolated(unsafe) static let table: UnsafePointer<UInt8> = {
        let table = UnsafeMutablePointer<UInt8>.allocate(capacity: Int(tableLimit))
        for value in 0..<tableLimit { table[Int(value)] = classify(value) }
        return UnsafePointer(table)
    }()
}

// MARK: - Scanner

/// Finds the pre-tokens of a UTF-8 buffer one at a time, as the pattern of `kind` would match them with
/// `find_iter`. Every scalar belongs to some alternative of these patterns, so the pre-tokens tile the buffer.
///
/// The buffer must be valid UTF-8 (it always comes from a Swift `String`).
struct PreTokenScanner {
    let bytes: UnsafeBufferPointer<UInt8>
    let kind: PreTokenizerKind
    private let table: UnsafePointer<UInt8>
    private(set) var position = 0
    /// smollm: the end of the current stretch between digits (GPT-2's pattern stops there).
    private var stretchEnd = 0

    init(bytes: UnsafeBufferPointer<UInt8>, kind: PreTokenizerKind) {
        self.bytes = bytes
        self.kind = kind
        table = ScalarClass.table
    }

    /// The byte range of the next pre-token, nil at the end of the buffer.
    mutating func next() -> Range<Int>? {
        let start = position
        guard start < bytes.count else { return nil }
        if kind == .smollm { return nextSmolLM(at: start) }
        let end = kind == .gpt2 ? matchGPT2(at: start) : matchLlama3(at: start, maximumDigits: kind == .llama3 ? 3 : 1)
        position = end
        return start..<end
    }

    /// A digit alone, or GPT-2's next pre-token within the stretch up to the next digit (a GPT-2 scanner over the
    /// buffer cut at the stretch's end, so that its lookahead sees the end of the text there).
    private mutating func nextSmolLM(at start: Int) -> Range<Int> {
        if start >= stretchEnd {
            let (flags, length) = scalar(at: start)
            if flags & ScalarClass.number != 0 {
                position = start + length
                return start..<position
            }
            var end = start + length
            while end < bytes.count {
                let (flags, length) = scalar(at: end)
                if flags & ScalarClass.number != 0 { break }
                end += length
            }
            stretchEnd = end
        }
        var stretch = PreTokenScanner(bytes: UnsafeBufferPointer(rebasing: bytes[0..<stretchEnd]), kind: .gpt2)
        stretch.position = start
        let range = stretch.next()!
        position = range.upperBound
        return range
    }

    // MARK: Decoding

    /// The class and UTF-8 length of the scalar that starts at `index` (which must be inside the buffer).
    @inline(__always)
    private func scalar(at index: Int) -> (flags: UInt8, length: Int) {
        let lead = bytes[index]
        if lead < 0x80 { return (table[Int(lead)], 1) }
        let value: UInt32
        let length: Int
        if lead < 0xE0 {
            value = UInt32(lead & 0x1F) << 6 | UInt32(bytes[index + 1] & 0x3F)
            length = 2
        } else if lead < 0xF0 {
            value = UInt32(lead & 0x0F) << 12 | UInt32(bytes[index + 1] & 0x3F) << 6 | UInt32(bytes[index + 2] & 0x3F)
            length = 3
        } else {
            value = UInt32(lead & 0x07) << 18 | UInt32(bytes[index + 1] & 0x3F) << 12
                | UInt32(bytes[index + 2] & 0x3F) << 6 | UInt32(bytes[index + 3] & 0x3F)
            length = 4
        }
        let flags = value < ScalarClass.tableLimit ? table[Int(value)] : ScalarClass.classify(value)
        return (flags, length)
    }

    /// The end of the run of scalars, from `index`, whose class has a bit of `mask` set.
    @inline(__always)
    private func endOfRun(from index: Int, mask: UInt8) -> Int {
        var index = index
        while index < bytes.count {
            let (flags, length) = scalar(at: index)
            guard flags & mask != 0 else { break }
            index += length
        }
        return index
    }

    /// The end of the run of "other" scalars (`[^\s\p{L}\p{N}]`) from `index`.
    @inline(__always)
    private func endOfOtherRun(from index: Int) -> Int {
        var index = index
        let classMask = ScalarClass.letter | ScalarClass.number | ScalarClass.whitespace
        while index < bytes.count {
            let (flags, length) = scalar(at: index)
            guard flags & classMask == 0 else { break }
            index += length
        }
        return index
    }

    @inline(__always)
    private func isOther(_ flags: UInt8) -> Bool {
        flags & (ScalarClass.letter | ScalarClass.number | ScalarClass.whitespace) == 0
    }

    // MARK: Contractions

    /// The length of the contraction (`'s 't 're 've 'm 'll 'd`) at `index`, which holds an apostrophe, or 0.
    /// With `ignoringCase`, letters match as Oniguruma's `(?i:...)` does: either ASCII case, and U+017F (ſ, long s),
    /// whose case folding is "s".
    @inline(__always)
    private func contractionLength(at index: Int, ignoringCase: Bool) -> Int {
        let count = bytes.count
        guard index + 1 < count else { return 0 }
        let fold: UInt8 = ignoringCase ? 0x20 : 0
        let first = bytes[index + 1] | fold
        switch first {
        case UInt8(ascii: "s"), UInt8(ascii: "t"), UInt8(ascii: "m"), UInt8(ascii: "d"):
            return 2
        case UInt8(ascii: "r"), UInt8(ascii: "v"):
            return index + 2 < count && bytes[index + 2] | fold == UInt8(ascii: "e") ? 3 : 0
        case UInt8(ascii: "l"):
            return index + 2 < count && bytes[index + 2] | fold == UInt8(ascii: "l") ? 3 : 0
        default:
            // ſ is 0xC5 0xBF in UTF-8. (`| 0x20` maps 0xC5 to 0xE5, so test the raw byte.)
            if ignoringCase, bytes[index + 1] == 0xC5, index + 2 < count, bytes[index + 2] == 0xBF { return 3 }
            return 0
        }
    }

    // MARK: GPT-2

    /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+` at `start`; returns the end.
    private func matchGPT2(at start: Int) -> Int {
        let lead = bytes[start]
        if lead == UInt8(ascii: "'") {
            let length = contractionLength(at: start, ignoringCase: false)
            if length > 0 { return start + length }
        }
        var flags = scalar(at: start).flags
        // ` ?X+`: a space may lead a run of letters, of digits or of other symbols; the class of the scalar after
        // it decides which (when it is whitespace, the space is part of a whitespace run, handled below).
        var runStart = start
        if lead == UInt8(ascii: " "), start + 1 < bytes.count {
            let following = scalar(at: start + 1).flags
            if following & ScalarClass.whitespace == 0 {
                runStart = start + 1
                flags = following
            }
        }
        if flags & ScalarClass.letter != 0 { return endOfRun(from: runStart, mask: ScalarClass.letter) }
        if flags & ScalarClass.number != 0 { return endOfRun(from: runStart, mask: ScalarClass.number) }
        if isOther(flags) { return endOfOtherRun(from: runStart) }
        return matchWhitespace(at: start)
    }

    /// `\s+(?!\S)|\s+` at `start`, which holds whitespace: the whole run when it ends the text, or when it is a single
    /// scalar; otherwise all but its last scalar, which is left to lead the next pre-token.
    @inline(__always)
    private func matchWhitespace(at start: Int) -> Int {
        var index = start
        var lastStart = start
        while index < bytes.count {
            let (flags, length) = scalar(at: index)
            guard flags & ScalarClass.whitespace != 0 else { break }
            lastStart = index
            index += length
        }
        if index == bytes.count || lastStart == start { return index }
        return lastStart
    }

    // MARK: Llama 3 and Qwen2

    /// `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,k}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
    /// at `start`, with k = `maximumDigits`; returns the end.
    private func matchLlama3(at start: Int, maximumDigits: Int) -> Int {
        let lead = bytes[start]
        if lead == UInt8(ascii: "'") {
            let length = contractionLength(at: start, ignoringCase: true)
            if length > 0 { return start + length }
        }
        let (flags, length) = scalar(at: start)
        // `[^\r\n\p{L}\p{N}]?\p{L}+`
        if flags & ScalarClass.letter != 0 { return endOfRun(from: start, mask: ScalarClass.letter) }
        if flags & (ScalarClass.newline | ScalarClass.number) == 0, start + length < bytes.count,
           scalar(at: start + length).flags & ScalarClass.letter != 0 {
            return endOfRun(from: start + length, mask: ScalarClass.letter)
        }
        // `\p{N}{1,k}`
        if flags & ScalarClass.number != 0 {
            var index = start + length
            var digits = 1
            while digits < maximumDigits, index < bytes.count {
                let (next, nextLength) = scalar(at: index)
                guard next & ScalarClass.number != 0 else { break }
                index += nextLength
                digits += 1
            }
            return index
        }
        // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
        var runStart = -1
        if isOther(flags) {
            runStart = start
        } else if lead == UInt8(ascii: " "), start + 1 < bytes.count, isOther(scalar(at: start + 1).flags) {
            runStart = start + 1
        }
        if runStart >= 0 {
            var index = endOfOtherRun(from: runStart)
            while index < bytes.count, bytes[index] == 0x0A || bytes[index] == 0x0D { index += 1 }
            return index
        }
        // Whitespace from here on. `\s*[\r\n]+`: the run up to and including its last line break, if it has one.
        var index = start
        var lastStart = start
        var afterLastNewline = -1
        while index < bytes.count {
            let (next, nextLength) = scalar(at: index)
            guard next & ScalarClass.whitespace != 0 else { break }
            if next & ScalarClass.newline != 0 { afterLastNewline = index + nextLength }
            lastStart = index
            index += nextLength
        }
        if afterLastNewline >= 0 { return afterLastNewline }
        // `\s+(?!\S)|\s+`
        if index == bytes.count || lastStart == start { return index }
        return lastStart
    }
}
