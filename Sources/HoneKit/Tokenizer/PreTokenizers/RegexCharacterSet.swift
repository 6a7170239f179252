import Foundation

// MARK: - Character sets

/// A set of Unicode scalars as a regex class describes it: `[^\s\p{L}\p{N}]`, `\p{Lu}`, `[A-Za-zµÀ-Ö]`, a literal.
///
/// Members are unioned, then `negated` flips the whole set. ASCII membership is precomputed in a 128-bit map
/// (most text is ASCII); other scalars test the members one by one against the category table.
struct RegexCharacterSet: Sendable {
    enum Member: Sendable {
        case range(UInt32, UInt32)
        /// `\p{..}` (or `\P{..}` when negated), `\d`, `\w` are category masks.
        case categories(CategoryMask, negated: Bool)
        /// `\s` / `\S`: the White_Space property, as Oniguruma's `\s` is for Unicode text.
        case whitespace(negated: Bool)
        /// Rust's `\w` (the `regex` crate, which `tokenizers`' `Whitespace` pre-tokenizer uses rather than
        /// Oniguruma): Alphabetic, marks, decimal digits, connector punctuation and Join_Control (ZWJ, ZWNJ).
        case rustWord(negated: Bool)
        /// A nested set, e.g. `[^a-z]` inside a class.
        case set(RegexCharacterSetBox)
    }

    var members: [Member] = []
    var negated = false
    private var asciiLow: UInt64 = 0
    private var asciiHigh: UInt64 = 0

    init(members: [Member] = [], negated: Bool = false) {
        self.members = members
        self.negated = negated
        finalize()
    }

    /// Recomputes the ASCII map after members change.
    mutating func finalize() {
        asciiLow = 0
        asciiHigh = 0
        for value in UInt32(0)..<128 where slowContains(value) {
            if value < 64 { asciiLow |= 1 << UInt64(value) } else { asciiHigh |= 1 << UInt64(value - 64) }
        }
    }

    @inline(__always)
    func contains(_ value: UInt32) -> Bool {
        if value < 64 { return asciiLow & (1 << UInt64(value)) != 0 }
        if value < 128 { return asciiHigh & (1 << UInt64(value - 64)) != 0 }
        return slowContains(value)
    }

    func slowContains(_ value: UInt32) -> Bool {
        var found = false
        for member in members {
            switch member {
            case .range(let low, let high): found = value >= low && value <= high
            case .categories(let mask, let negatedMember): found = UnicodeScalarTable.isIn(mask, value) != negatedMember
            case .whitespace(let negatedMember): found = UnicodeScalarTable.isWhitespace(value) != negatedMember
            case .rustWord(let negatedMember): found = Self.isRustWord(value) != negatedMember
            case .set(let box): found = box.set.contains(value)
            }
            if found { break }
        }
        return found != negated
    }

    static func isRustWord(_ value: UInt32) -> Bool {
        if UnicodeScalarTable.isIn(CategoryMask.mark.union(.of(.decimalNumber, .connectorPunctuation)), value) { return true }
        guard let scalar = Unicode.Scalar(value) else { return false }
        return scalar.properties.isAlphabetic || scalar.properties.isJoinControl
    }

    /// Whether the set holds no scalar below U+0080 and no scalar at all beyond explicit ranges: used to tell
    /// single literals apart in tests and diagnostics.
    static func literal(_ value: UInt32, ignoringCase: Bool) -> RegexCharacterSet {
        var members: [Member] = [.range(value, value)]
        if ignoringCase {
            for variant in caseVariants(of: value) where variant != value { members.append(.range(variant, variant)) }
        }
        return RegexCharacterSet(members: members)
    }

    /// The scalars that match `value` under `(?i)`: its simple upper and lower case mappings, plus the
    /// non-ASCII scalars whose case folding is an ASCII letter (ſ folds to s, the Kelvin sign K to k, the Angstrom
    /// sign Å to å), which Oniguruma matches too.
    static func caseVariants(of value: UInt32) -> [UInt32] {
        guard let scalar = Unicode.Scalar(value) else { return [value] }
        var variants: Set<UInt32> = [value]
        for mapped in [scalar.properties.lowercaseMapping, scalar.properties.uppercaseMapping] {
            let scalars = Array(mapped.unicodeScalars)
            if scalars.count == 1 { variants.insert(scalars[0].value) }
        }
        let folds: [UInt32: [UInt32]] = [0x73: [0x17F], 0x53: [0x17F], 0x6B: [0x212A], 0x4B: [0x212A],
                                         0xE5: [0x212B], 0xC5: [0x212B]]
        for variant in Array(variants) { variants.formUnion(folds[variant] ?? []) }
        return variants.sorted()
    }
}

/// Lets a set nest inside another (`indirect` is not available for struct members).
final class RegexCharacterSetBox: Sendable {
    let set: RegexCharacterSet
    init(_ set: RegexCharacterSet) { self.set = set }
}
