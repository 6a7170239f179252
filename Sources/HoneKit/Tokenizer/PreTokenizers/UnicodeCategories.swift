import Foundation

// MARK: - General categories

/// The Unicode general category of a scalar and whether it is `White_Space`, packed in one byte so that the regex
/// matcher and the split rules classify a scalar with one table load.
///
/// Categories come from the standard library's Unicode data (`Unicode.Scalar.Properties`), the same data the
/// hand-written scanners use. Oniguruma (Hugging Face `tokenizers`) and llama.cpp each ship their own tables; where
/// a Unicode version adds or moves a scalar the three can differ, which only matters for scalars new in recent
/// Unicode versions.
enum UnicodeCategory: UInt8, CaseIterable {
    case uppercaseLetter, lowercaseLetter, titlecaseLetter, modifierLetter, otherLetter
    case nonspacingMark, spacingMark, enclosingMark
    case decimalNumber, letterNumber, otherNumber
    case connectorPunctuation, dashPunctuation, openPunctuation, closePunctuation, initialPunctuation,
         finalPunctuation, otherPunctuation
    case mathSymbol, currencySymbol, modifierSymbol, otherSymbol
    case spaceSeparator, lineSeparator, paragraphSeparator
    case control, format, surrogate, privateUse, unassigned

    /// This category's bit in a `CategoryMask`.
    var bit: UInt32 { 1 << UInt32(rawValue) }

    init(_ category: Unicode.GeneralCategory) {
        switch category {
        case .uppercaseLetter: self = .uppercaseLetter
        case .lowercaseLetter: self = .lowercaseLetter
        case .titlecaseLetter: self = .titlecaseLetter
        case .modifierLetter: self = .modifierLetter
        case .otherLetter: self = .otherLetter
        case .nonspacingMark: self = .nonspacingMark
        case .spacingMark: self = .spacingMark
        case .enclosingMark: self = .enclosingMark
        case .decimalNumber: self = .decimalNumber
        case .letterNumber: self = .letterNumber
        case .otherNumber: self = .otherNumber
        case .connectorPunctuation: self = .connectorPunctuation
        case .dashPunctuation: self = .dashPunctuation
        case .openPunctuation: self = .openPunctuation
        case .closePunctuation: self = .closePunctuation
        case .initialPunctuation: self = .initialPunctuation
        case .finalPunctuation: self = .finalPunctuation
        case .otherPunctuation: self = .otherPunctuation
        case .mathSymbol: self = .mathSymbol
        case .currencySymbol: self = .currencySymbol
        case .modifierSymbol: self = .modifierSymbol
        case .otherSymbol: self = .otherSymbol
        case .spaceSeparator: self = .spaceSeparator
        case .lineSeparator: self = .lineSeparator
        case .paragraphSeparator: self = .paragraphSeparator
        case .control: self = .control
        case .format: self = .format
        case .surrogate: self = .surrogate
        case .privateUse: self = .privateUse
        case .unassigned: self = .unassigned
        @unknown default: self = .unassigned
        }
    }
}

/// A set of general categories, one bit per `UnicodeCategory`.
struct CategoryMask: OptionSet, Sendable {
    let rawValue: UInt32
    init(rawValue: UInt32) { self.rawValue = rawValue }

    static func of(_ categories: UnicodeCategory...) -> CategoryMask {
        CategoryMask(rawValue: categories.reduce(0) { $0 | $1.bit })
    }

    static let letter = of(.uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter)
    static let mark = of(.nonspacingMark, .spacingMark, .enclosingMark)
    static let number = of(.decimalNumber, .letterNumber, .otherNumber)
    static let punctuation = of(.connectorPunctuation, .dashPunctuation, .openPunctuation, .closePunctuation,
                                .initialPunctuation, .finalPunctuation, .otherPunctuation)
    static let symbol = of(.mathSymbol, .currencySymbol, .modifierSymbol, .otherSymbol)
    static let separator = of(.spaceSeparator, .lineSeparator, .paragraphSeparator)
    static let other = of(.control, .format, .surrogate, .privateUse, .unassigned)
    /// Oniguruma's `\w` for Unicode text: letters, marks, decimal digits and connector punctuation.
    static let word = letter.union(mark).union(of(.decimalNumber, .connectorPunctuation))

    /// The mask a `\p{...}` name stands for (one- and two-letter category names, and the long names that
    /// patterns in the wild use), nil for names this matcher does not know.
    init?(propertyName name: String) {
        let table: [String: CategoryMask] = [
            "L": .letter, "Letter": .letter, "M": .mark, "Mark": .mark, "N": .number, "Number": .number,
            "P": .punctuation, "Punctuation": .punctuation, "S": .symbol, "Symbol": .symbol,
            "Z": .separator, "Separator": .separator, "C": .other, "Other": .other,
            "Lu": .of(.uppercaseLetter), "Ll": .of(.lowercaseLetter), "Lt": .of(.titlecaseLetter),
            "Lm": .of(.modifierLetter), "Lo": .of(.otherLetter), "L&": .of(.uppercaseLetter, .lowercaseLetter, .titlecaseLetter),
            "Mn": .of(.nonspacingMark), "Mc": .of(.spacingMark), "Me": .of(.enclosingMark),
            "Nd": .of(.decimalNumber), "Nl": .of(.letterNumber), "No": .of(.otherNumber),
            "Pc": .of(.connectorPunctuation), "Pd": .of(.dashPunctuation), "Ps": .of(.openPunctuation),
            "Pe": .of(.closePunctuation), "Pi": .of(.initialPunctuation), "Pf": .of(.finalPunctuation),
            "Po": .of(.otherPunctuation), "Sm": .of(.mathSymbol), "Sc": .of(.currencySymbol),
            "Sk": .of(.modifierSymbol), "So": .of(.otherSymbol), "Zs": .of(.spaceSeparator),
            "Zl": .of(.lineSeparator), "Zp": .of(.paragraphSeparator), "Cc": .of(.control), "Cf": .of(.format),
            "Cs": .of(.surrogate), "Co": .of(.privateUse), "Cn": .of(.unassigned),
        ]
        guard let mask = table[name] else { return nil }
        self = mask
    }
}

// MARK: - Scalar table

/// One byte per scalar: the category's raw value in the low 5 bits, `whitespaceFlag` for `White_Space`.
enum UnicodeScalarTable {
    static let whitespaceFlag: UInt8 = 0x80
    static let categoryBits: UInt8 = 0x1F

    /// Scalars below this bound are looked up; the rest (rare: supplementary planes past CJK extension F) are
    /// classified on the fly.
    static let tableLimit: UInt32 = 0x3_0000

    static func entry(computing value: UInt32) -> UInt8 {
        guard let scalar = Unicode.Scalar(value) else { return UnicodeCategory.surrogate.rawValue }
        var entry = UnicodeCategory(scalar.properties.generalCategory).rawValue
        if scalar.properties.isWhitespace { entry |= whitespaceFlag }
        return entry
    }

    /// Built once, on first use (192 KB).
    nonisolated(unsafe) static let table: UnsafePointer<UInt8> = {
        let table = UnsafeMutablePointer<UInt8>.allocate(capacity: Int(tableLimit))
        for value in 0..<tableLimit { table[Int(value)] = entry(computing: value) }
        return UnsafePointer(table)
    }()

    @inline(__always)
    static func entry(_ value: UInt32) -> UInt8 {
        value < tableLimit ? table[Int(value)] : entry(computing: value)
    }

    @inline(__always)
    static func category(_ value: UInt32) -> UnicodeCategory {
        UnicodeCategory(rawValue: entry(value) & categoryBits)!
    }

    @inline(__always)
    static func isWhitespace(_ value: UInt32) -> Bool { entry(value) & whitespaceFlag != 0 }

    /// Whether the category of `value` is in `mask`.
    @inline(__always)
    static func isIn(_ mask: CategoryMask, _ value: UInt32) -> Bool {
        mask.rawValue & (1 << UInt32(entry(value) & categoryBits)) != 0
    }
}

// MARK: - UTF-8 stepping

/// Decoding helpers for valid UTF-8 (every buffer here comes from a Swift `String`).
enum UTF8Scalars {
    /// The scalar that starts at `index` and its length in bytes.
    @inline(__always)
    static func decode(_ bytes: UnsafeBufferPointer<UInt8>, at index: Int) -> (value: UInt32, length: Int) {
        let lead = bytes[index]
        if lead < 0x80 { return (UInt32(lead), 1) }
        if lead < 0xE0 { return (UInt32(lead & 0x1F) << 6 | UInt32(bytes[index + 1] & 0x3F), 2) }
        if lead < 0xF0 {
            return (UInt32(lead & 0x0F) << 12 | UInt32(bytes[index + 1] & 0x3F) << 6 | UInt32(bytes[index + 2] & 0x3F), 3)
        }
        return (UInt32(lead & 0x07) << 18 | UInt32(bytes[index + 1] & 0x3F) << 12
            | UInt32(bytes[index + 2] & 0x3F) << 6 | UInt32(bytes[index + 3] & 0x3F), 4)
    }

    /// The start of the scalar that ends at `index` (which must be above the buffer's start).
    @inline(__always)
    static func previousBoundary(_ bytes: UnsafeBufferPointer<UInt8>, before index: Int) -> Int {
        var index = index - 1
        while index > 0, bytes[index] & 0xC0 == 0x80 { index -= 1 }
        return index
    }
}
