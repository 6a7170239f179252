import Foundation

// MARK: - Steps

/// One step of a pre-tokenizer: Hugging Face's pre-tokenizer types, and the regex lists of llama.cpp's GGUF
/// `tokenizer.ggml.pre` values (each regex is a `Split` with the `Isolated` behavior).
public enum PreTokenizerStep: Sendable {
    /// `Split` on one of the patterns a hand-written scanner implements (same pieces as `.split(..., .isolated)`,
    /// several times faster).
    case scanner(PreTokenizerKind)
    /// `Split` on a regex.
    case split(PreTokenRegex, SplitBehavior, invert: Bool)
    /// `Split` on a literal string.
    case splitString(String, SplitBehavior, invert: Bool)
    /// `Digits`: each digit (Rust's `char::is_numeric`: categories Nd, Nl, No) alone, or runs of digits together.
    case digits(individual: Bool)
    /// `Punctuation`: ASCII punctuation and the Unicode P categories.
    case punctuation(SplitBehavior)
    /// `WhitespaceSplit`: splits on White_Space, dropping it.
    case whitespaceSplit
    /// `Metaspace`: spaces become `replacement`, which is put first as `prependScheme` says; with `split`, each
    /// replacement starts a new piece.
    case metaspace(replacement: String, prependScheme: MetaspacePrependScheme, split: Bool)
    /// `ByteLevel`: a space first when `addPrefixSpace` and the piece does not start with one, GPT-2's pattern when
    /// `useRegex`, then the pieces are spelled in GPT-2's byte alphabet (which later steps see).
    case byteLevel(addPrefixSpace: Bool, useRegex: Bool)

    /// `Whitespace`: `\w+|[^\w\s]+`, the whitespace between dropped. `tokenizers` runs this one with Rust's regex
    /// crate, not Oniguruma, so `\w` takes in ZWJ and other Join_Control and Alphabetic scalars.
    public static func whitespace() -> PreTokenizerStep {
        // The pattern is a constant that the matcher reads.
        .split(try! PreTokenRegex(#"\w+|[^\w\s]+"#, rustWord: true), .removed, invert: true)
    }
}

public enum MetaspacePrependScheme: String, Sendable {
    case always, first, never
}

// MARK: - Pipeline

/// The pre-tokenizer of a byte-level BPE tokenizer: its steps in order, each applied to every piece the previous
/// steps left, as `tokenizers`' `Sequence` does.
public struct PreTokenizerPipeline: Sendable {
    public let steps: [PreTokenizerStep]

    public init(_ steps: [PreTokenizerStep]) { self.steps = steps }

    /// The hand-written scanner that does the whole job, and whether a space is put first (GPT-2's ByteLevel with
    /// add_prefix_space), when the steps are just that: `[ByteLevel(regex)]`, `[Split(known pattern), ByteLevel]`, or
    /// SmolLM's digits-then-GPT-2 steps.
    public var fastPath: (kind: PreTokenizerKind, addPrefixSpace: Bool)? {
        switch steps.count {
        case 1:
            if case .byteLevel(let prefix, true) = steps[0] { return (.gpt2, prefix) }
            if case .scanner(let kind) = steps[0] { return (kind, false) }
        case 2:
            if case .scanner(let kind) = steps[0], case .byteLevel(false, false) = steps[1] { return (kind, false) }
            // SmolLM's tokenizer.json: Digits(individual) then ByteLevel with GPT-2's pattern.
            if case .digits(true) = steps[0], case .byteLevel(false, true) = steps[1] { return (.smollm, false) }
        case 3:
            // llama.cpp's "smollm": each digit alone, then GPT-2's pattern, then the byte alphabet.
            if case .digits(true) = steps[0], case .scanner(.gpt2) = steps[1], case .byteLevel(false, false) = steps[2] {
                return (.smollm, false)
            }
        default:
            break
        }
        return nil
    }

    /// Cuts text into pre-tokens. `atTextStart` says whether `bytes` begins the text (it does not after an added
    /// token), which `Metaspace`'s `first` scheme needs. The result's pieces are raw bytes, ready for BPE.
    func split(_ bytes: UnsafeBufferPointer<UInt8>, atTextStart: Bool) -> PreTokenPieces {
        var pieces = PreTokenPieces(storage: Array(bytes), ranges: bytes.isEmpty ? [] : [0..<bytes.count],
                                    firstAtOrigin: atTextStart)
        for (index, step) in steps.enumerated() {
            let isLast = index == steps.count - 1
            pieces.apply(step, spellInAlphabet: !isLast)
        }
        if pieces.inAlphabet { pieces.unspellAlphabet() }
        return pieces
    }

    /// The pre-tokens of `text` as strings (tests and diagnostics; alphabet spelling undone).
    public func split(_ text: String) -> [[UInt8]] {
        var text = text
        return text.withUTF8 { bytes in
            let pieces = split(bytes, atTextStart: true)
            return pieces.ranges.map { Array(pieces.storage[$0]) }
        }
    }
}

// MARK: - Pieces

/// Pre-tokens as byte ranges of one buffer, rebuilt only by the steps that change text.
struct PreTokenPieces {
    var storage: [UInt8]
    var ranges: [Range<Int>]
    /// Whether the first piece starts where the text started (Metaspace's `first` scheme).
    var firstAtOrigin: Bool
    /// Whether the pieces are spelled in GPT-2's byte alphabet (after a `ByteLevel` that other steps follow).
    var inAlphabet = false

    mutating func apply(_ step: PreTokenizerStep, spellInAlphabet: Bool) {
        switch step {
        case .scanner(let kind):
            splitEach(.isolated, invert: false) { bytes, matches in
                var scanner = PreTokenScanner(bytes: bytes, kind: kind)
                while let range = scanner.next() { matches.append(range) }
            }
        case .split(let regex, let behavior, let invert):
            splitEach(behavior, invert: invert) { bytes, matches in regex.matches(in: bytes, into: &matches) }
        case .splitString(let literal, let behavior, let invert):
            let needle = Array(literal.utf8)
            splitEach(behavior, invert: invert) { bytes, matches in Self.occurrences(of: needle, in: bytes, into: &matches) }
        case .digits(let individual):
            splitEach(individual ? .isolated : .contiguous, invert: false) { bytes, matches in
                Self.scalars(in: bytes, into: &matches) { UnicodeScalarTable.isIn(.number, $0) }
            }
        case .punctuation(let behavior):
            splitEach(behavior, invert: false) { bytes, matches in
                Self.scalars(in: bytes, into: &matches) { value in
                    // Rust's is_ascii_punctuation takes in the ASCII symbols ($+<=>^`|~) too.
                    value < 0x80 ? Self.isASCIIPunctuation(value) : UnicodeScalarTable.isIn(.punctuation, value)
                }
            }
        case .whitespaceSplit:
            splitEach(.removed, invert: false) { bytes, matches in
                Self.scalars(in: bytes, into: &matches) { UnicodeScalarTable.isWhitespace($0) }
            }
        case .metaspace(let replacement, let scheme, let split):
            applyMetaspace(replacement: Array(replacement.utf8), scheme: scheme, split: split)
        case .byteLevel(let addPrefixSpace, let useRegex):
            if addPrefixSpace { prefixSpaces() }
            if useRegex { apply(.scanner(.gpt2), spellInAlphabet: false) }
            if spellInAlphabet && !inAlphabet { spellAlphabet() }
        }
    }

    // MARK: Splitting

    /// Replaces each piece by its pieces under `behavior`, given a function that finds the matches in a piece
    /// (ranges relative to the piece).
    private mutating func splitEach(_ behavior: SplitBehavior, invert: Bool,
                                    _ find: (UnsafeBufferPointer<UInt8>, inout [Range<Int>]) -> Void) {
        let originStart = ranges.first?.lowerBound
        var output: [Range<Int>] = []
        output.reserveCapacity(ranges.count * 2)
        var matches: [Range<Int>] = []
        storage.withUnsafeBufferPointer { buffer in
            for range in ranges {
                matches.removeAll(keepingCapacity: true)
                find(UnsafeBufferPointer(rebasing: buffer[range]), &matches)
                for index in matches.indices {
                    matches[index] = (matches[index].lowerBound + range.lowerBound)..<(matches[index].upperBound + range.lowerBound)
                }
                SplitRules.apply(behavior, invert: invert, whole: range, matches: matches, into: &output)
            }
        }
        if firstAtOrigin { firstAtOrigin = output.first?.lowerBound == originStart }
        ranges = output
    }

    /// Each scalar for which `predicate` holds is a match of its own (a `char` predicate pattern in `tokenizers`).
    private static func scalars(in bytes: UnsafeBufferPointer<UInt8>, into matches: inout [Range<Int>],
                                where predicate: (UInt32) -> Bool) {
        var index = 0
        while index < bytes.count {
            let (value, length) = UTF8Scalars.decode(bytes, at: index)
            if predicate(value) { matches.append(index..<(index + length)) }
            index += length
        }
    }

    private static func occurrences(of needle: [UInt8], in bytes: UnsafeBufferPointer<UInt8>,
                                    into matches: inout [Range<Int>]) {
        guard !needle.isEmpty, needle.count <= bytes.count else { return }
        var index = 0
        while index + needle.count <= bytes.count {
            if bytes[index] == needle[0], needle.indices.allSatisfy({ bytes[index + $0] == needle[$0] }) {
                matches.append(index..<(index + needle.count))
                index += needle.count
            } else {
                index += 1
            }
        }
    }

    private static func isASCIIPunctuation(_ value: UInt32) -> Bool {
        (0x21...0x2F).contains(value) || (0x3A...0x40).contains(value) || (0x5B...0x60).contains(value)
            || (0x7B...0x7E).contains(value)
    }

    // MARK: Rewriting

    /// Rebuilds the storage piece by piece through `transform`, which appends a piece's new bytes.
    private mutating func rewrite(_ transform: (_ index: Int, _ piece: ArraySlice<UInt8>, _ output: inout [UInt8]) -> Void) {
        var newStorage: [UInt8] = []
        newStorage.reserveCapacity(storage.count + ranges.count * 3)
        var newRanges: [Range<Int>] = []
        newRanges.reserveCapacity(ranges.count)
        for (index, range) in ranges.enumerated() {
            let start = newStorage.count
            transform(index, storage[range], &newStorage)
            newRanges.append(start..<newStorage.count)
        }
        storage = newStorage
        ranges = newRanges
    }

    /// ByteLevel's add_prefix_space: every piece that does not start with a space gets one (in `tokenizers` this
    /// happens per piece, not only at the start of the text).
    private mutating func prefixSpaces() {
        let space = inAlphabet ? Array("Ġ".utf8) : [UInt8(ascii: " ")]
        rewrite { _, piece, output in
            if !piece.starts(with: space) { output += space }
            output += piece
        }
    }

    private mutating func applyMetaspace(replacement: [UInt8], scheme: MetaspacePrependScheme, split: Bool) {
        let firstAtOrigin = self.firstAtOrigin
        rewrite { index, piece, output in
            var replaced: [UInt8] = []
            replaced.reserveCapacity(piece.count)
            for byte in piece {
                if byte == UInt8(ascii: " ") { replaced += replacement } else { replaced.append(byte) }
            }
            let prepend: Bool
            switch scheme {
            case .always: prepend = true
            case .first: prepend = index == 0 && firstAtOrigin
            case .never: prepend = false
            }
            if prepend, !replaced.starts(with: replacement) { output += replacement }
            output += replaced
        }
        if split {
            let needle = replacement
            splitEach(.mergedWithNext, invert: false) { bytes, matches in Self.occurrences(of: needle, in: bytes, into: &matches) }
        }
    }

    /// Spells every piece in GPT-2's byte alphabet, as `ByteLevel` leaves text for the steps after it.
    private mutating func spellAlphabet() {
        rewrite { _, piece, output in
            for byte in piece {
                let scalar = Unicode.Scalar(ByteLevelAlphabet.scalars[Int(byte)])!
                output += Array(String(scalar).utf8)
            }
        }
        inAlphabet = true
    }

    /// Back to raw bytes for BPE (which spells them in the alphabet itself).
    mutating func unspellAlphabet() {
        rewrite { _, piece, output in
            let text = String(decoding: piece, as: UTF8.self)
            output += ByteLevelAlphabet.bytes(ofPiece: text)
        }
        inAlphabet = false
    }
}
