import Foundation

// MARK: - printf-style formatting

/// Python's `format % values` (`%s`, `%r`, `%d`, `%i`, `%f`, `%e`, `%g`, `%x`, `%o`, `%c`, `%%`, with
/// `%(name)s`, flags, width and precision). A list counts as the argument tuple when the format needs more
/// than one value, since templates have no tuples of their own.
func pythonPercentFormat(_ format: String, _ values: JinjaValue, escape: Bool) throws -> String {
    let f = format.codePoints
    var specs = 0
    var i = 0
    while i < f.count {
        if f[i] == "%" {
            if i + 1 < f.count, f[i + 1] == "%" { i += 2; continue }
            specs += 1
        }
        i += 1
    }
    // A tuple is the argument list; anything else (a list too) is one argument.
    var positional: [JinjaValue]
    if case .tuple(let items) = values { positional = items } else { positional = [values] }
    let mapping: JinjaDictionary? = { if case .dictionary(let d) = values { return d } else { return nil } }()
    var out = ""
    var next = 0
    i = 0
    func arg() throws -> JinjaValue {
        guard next < positional.count else { throw JinjaError.type("not enough arguments for format string") }
        next += 1
        return positional[next - 1]
    }
    while i < f.count {
        let c = f[i]
        guard c == "%" else {
            out.unicodeScalars.append(c)
            i += 1
            continue
        }
        i += 1
        guard i < f.count else { throw JinjaError.runtime("incomplete format") }
        var value: JinjaValue? = nil
        if f[i] == "(" {
            guard let close = f[i...].firstIndex(of: ")") else { throw JinjaError.runtime("incomplete format key") }
            let key = String(codePoints: f[(i + 1)..<close])
            guard let mapping else { throw JinjaError.type("format requires a mapping") }
            guard let v = mapping[key] else { throw JinjaError.runtime("KeyError: \(pythonStringLiteral(key))") }
            value = v
            i = close + 1
        }
        var flags = ""
        while i < f.count, "-+ #0".unicodeScalars.contains(f[i]) { flags.unicodeScalars.append(f[i]); i += 1 }
        var width = ""
        while i < f.count, f[i].isDecimalDigitASCII || f[i] == "*" {
            if f[i] == "*" { width = String(try arg().pythonString) } else { width.unicodeScalars.append(f[i]) }
            i += 1
        }
        var precision: String? = nil
        if i < f.count, f[i] == "." {
            i += 1
            var p = ""
            while i < f.count, f[i].isDecimalDigitASCII { p.unicodeScalars.append(f[i]); i += 1 }
            precision = p
        }
        let widthCount = try formatCount(width, "width")
        let precisionCount = try precision.map { try formatCount($0, "precision") }
        while i < f.count, "hlL".unicodeScalars.contains(f[i]) { i += 1 }
        guard i < f.count else { throw JinjaError.runtime("incomplete format") }
        let type = f[i]
        i += 1
        if type == "%" {
            out += "%"
            continue
        }
        let v = try value ?? arg()
        var text: String
        switch type {
        case "s":
            text = escape ? markupText(v) : v.pythonString
            if let p = precisionCount { text = String(codePoints: text.codePoints.prefix(p)) }
        case "r", "a":
            text = v.pythonRepresentation
            if escape { text = htmlEscape(text) }
            if let p = precisionCount { text = String(codePoints: text.codePoints.prefix(p)) }
        case "d", "i", "u", "x", "X", "o":
            guard let n = v.numericValue else {
                throw JinjaError.type("%\(type) format: a real number is required, not \(v.pythonTypeName)")
            }
            let radix = type == "x" || type == "X" ? 16 : type == "o" ? 8 : 10
            let (negative, magnitude) = try integerParts(n, type: type)
            var digits = magnitude
            if let p = precisionCount, digits.count < p {
                digits = String(repeating: "0", count: p - digits.count) + digits
            }
            if flags.contains("#") && radix != 10 { digits = (radix == 16 ? (type == "X" ? "0X" : "0x") : "0o") + digits }
            let sign = negative ? "-" : flags.contains("+") ? "+" : flags.contains(" ") ? " " : ""
            text = pad(sign: sign, digits: digits, width: widthCount, flags: flags)
        case "f", "F", "e", "E", "g", "G":
            guard let n = v.numericValue else {
                throw JinjaError.type("must be real number, not \(v.pythonTypeName)")
            }
            let d = n.asDouble
            let p = precisionCount ?? 6
            var body = String(format: "%\(flags.contains("#") ? "#" : "").\(p)\(Character(type))", abs(d))
            if d.isNaN { body = type.properties.isUppercase ? "NAN" : "nan" }
            if d.isInfinite { body = type.properties.isUppercase ? "INF" : "inf" }
            let sign = d.sign == .minus && !d.isNaN ? "-" : flags.contains("+") ? "+" : flags.contains(" ") ? " " : ""
            text = pad(sign: sign, digits: body, width: widthCount, flags: d.isFinite ? flags : flags.replacingOccurrences(of: "0", with: ""))
        case "c":
            if case .int(let code)? = v.numericValue {
                text = String(try characterCode(code))
            } else if let s = v.stringValue, s.codePointCount == 1 {
                text = s
            } else {
                throw JinjaError.type("%c requires an int or a unicode character")
            }
        default:
            throw JinjaError.runtime("unsupported format character '\(type)'")
        }
        if "sraAc".unicodeScalars.contains(type), text.codePointCount < widthCount {
            let fill = String(repeating: " ", count: widthCount - text.codePointCount)
            text = flags.contains("-") ? text + fill : fill + text
        }
        out += text
    }
    if mapping == nil, next < positional.count {
        throw JinjaError.type("not all arguments converted during string formatting")
    }
    return out
}

// MARK: - Integers

/// `%c`'s code point: Python refuses anything outside range(0x110000); a surrogate has no Swift scalar.
private func characterCode(_ code: Int) throws -> Unicode.Scalar {
    guard (0..<0x110000).contains(code) else { throw JinjaError.runtime("OverflowError: %c arg not in range(0x110000)") }
    guard let scalar = Unicode.Scalar(UInt32(code)) else { throw JinjaError.runtime("%c of a surrogate code point") }
    return scalar
}

/// The sign and the digits of `%d`/`%x`/`%o`'s integer. `%d` truncates a float as Python's int() does, digit for
/// digit even past Int (every float that large is a whole number); infinity and NaN have no integer; `%x` and
/// `%o` take integers only, as in Python 3.
private func integerParts(_ number: JinjaValue.Number, type: Unicode.Scalar) throws -> (negative: Bool, digits: String) {
    let radix = type == "x" || type == "X" ? 16 : type == "o" ? 8 : 10
    switch number {
    case .int(let x):
        return (x < 0, String(x.magnitude, radix: radix, uppercase: type == "X"))
    case .double(let d):
        guard radix == 10 else { throw JinjaError.type("%\(type) format: an integer is required, not float") }
        guard d.isFinite else {
            throw JinjaError.runtime(d.isNaN ? "ValueError: cannot convert float NaN to integer"
                                             : "OverflowError: cannot convert float infinity to integer")
        }
        let whole = d.rounded(.towardZero)
        if let exact = Int(exactly: whole) { return (exact < 0, String(exact.magnitude)) }
        return (whole < 0, String(format: "%.0f", whole.magnitude))  // glibc prints a whole float exactly
    }
}

// MARK: - Widths and precisions

/// Widths, precisions and fill counts a template asks for are capped like the strings it builds
/// (`JinjaInterpreter.maxStringBytes`): Python would try to build that string and fail with MemoryError, and a
/// number past an Int must not trap.
func checkedWidth(_ n: Int, _ what: String) throws -> Int {
    guard n <= JinjaInterpreter.maxStringBytes else {
        throw JinjaError.security("\(what) too big: \(n) is more than \(JinjaInterpreter.maxStringBytes).")
    }
    return n
}

/// A printf width or precision as written (digits, or a `*` argument's text; empty means 0), checked.
private func formatCount(_ text: String, _ what: String) throws -> Int {
    if text.isEmpty { return 0 }
    guard let n = Int(text) else {
        // Digits that do not fit an Int are too big; anything else came from a `*` argument that is not an int.
        if text.unicodeScalars.drop(while: { $0 == "-" }).allSatisfy(\.isDecimalDigitASCII) { throw JinjaError.security("\(what) too big: \(text)") }
        throw JinjaError.type("* wants int")
    }
    return try checkedWidth(n, what)
}

/// Reads the ASCII digits at the front of `spec` as a width or precision, checked before it can overflow.
private func takeDigits(_ spec: inout [Character], _ what: String) throws -> Int {
    var n = 0
    while let d = spec.first, d.isASCII, let digit = d.wholeNumberValue {
        n = try checkedWidth(n * 10 + digit, what)
        spec.removeFirst()
    }
    return n
}

private func pad(sign: String, digits: String, width: Int, flags: String) -> String {
    let length = sign.count + digits.count
    guard width > length else { return sign + digits }
    let fill = width - length
    if flags.contains("-") { return sign + digits + String(repeating: " ", count: fill) }
    if flags.contains("0") { return sign + String(repeating: "0", count: fill) + digits }
    return String(repeating: " ", count: fill) + sign + digits
}

// MARK: - str.format

/// Python's `str.format`: `{}`, `{0}`, `{name}`, `{0.attr}`, `{0[key]}`, `!r`/`!s` and the common format
/// specs (fill, alignment, sign, width, precision, d/f/e/g/%/x/o/b/s).
func pythonStringFormat(_ format: String, _ args: JinjaArguments, _ interp: JinjaInterpreter) throws -> String {
    let f = format.codePoints
    var out = ""
    var i = 0
    var autoIndex = 0
    while i < f.count {
        let c = f[i]
        if c == "}" {
            guard i + 1 < f.count, f[i + 1] == "}" else { throw JinjaError.runtime("Single '}' encountered in format string") }
            out += "}"
            i += 2
            continue
        }
        guard c == "{" else {
            out.unicodeScalars.append(c)
            i += 1
            continue
        }
        if i + 1 < f.count, f[i + 1] == "{" {
            out += "{"
            i += 2
            continue
        }
        var depth = 1
        var j = i + 1
        while j < f.count, depth > 0 {
            if f[j] == "{" { depth += 1 } else if f[j] == "}" { depth -= 1 }
            if depth > 0 { j += 1 }
        }
        guard j < f.count else { throw JinjaError.runtime("expected '}' before end of string") }
        let field = String(codePoints: f[(i + 1)..<j])
        i = j + 1

        var fieldName = field
        var spec = ""
        var conversion: Character? = nil
        if let colon = field.firstIndex(of: ":") {
            fieldName = String(field[..<colon])
            spec = String(field[field.index(after: colon)...])
        }
        if let bang = fieldName.firstIndex(of: "!") {
            conversion = fieldName[fieldName.index(after: bang)...].first
            fieldName = String(fieldName[..<bang])
        }
        // Split the field name into its head and the .attr / [key] chain.
        var head = ""
        var rest = Substring(fieldName)
        while let ch = rest.first, ch != "." && ch != "[" {
            head.append(ch)
            rest = rest.dropFirst()
        }
        var value: JinjaValue
        if head.isEmpty {
            guard autoIndex < args.positional.count else {
                throw JinjaError.runtime("Replacement index \(autoIndex) out of range for positional args tuple")
            }
            value = args.positional[autoIndex]
            autoIndex += 1
        } else if isIndex(head), let index = Int(head) {
            guard index < args.positional.count else {
                throw JinjaError.runtime("Replacement index \(index) out of range for positional args tuple")
            }
            value = args.positional[index]
        } else {
            guard let named = args[keyword: head] else { throw JinjaError.runtime("KeyError: \(pythonStringLiteral(head))") }
            value = named
        }
        while let ch = rest.first {
            rest = rest.dropFirst()
            if ch == "." {
                var attr = ""
                while let n = rest.first, n != "." && n != "[" { attr.append(n); rest = rest.dropFirst() }
                value = try interp.getAttribute(value, attr)
            } else {
                var key = ""
                while let n = rest.first, n != "]" { key.append(n); rest = rest.dropFirst() }
                rest = rest.dropFirst()
                value = try interp.getItem(value, isIndex(key) ? Int(key).map { .int($0) } ?? .string(key) : .string(key))
            }
        }
        switch conversion {
        case "r"?, "a"?: value = .string(value.pythonRepresentation)
        case "s"?: value = .string(value.pythonString)
        default: break
        }
        out += try pythonFormatSpec(value, spec)
    }
    return out
}

/// Whether a format field name (or an `[key]` in one) is an index: Python reads only ASCII digits as one, so "-84"
/// is a keyword (a KeyError), never a negative index.
private func isIndex(_ text: String) -> Bool {
    !text.isEmpty && text.unicodeScalars.allSatisfy(\.isDecimalDigitASCII)
}

/// Python's format-spec mini-language for one value.
func pythonFormatSpec(_ value: JinjaValue, _ spec: String) throws -> String {
    if spec.isEmpty { return value.pythonString }
    var s = Array(spec)
    var fill: Character = " "
    var align: Character? = nil
    if s.count >= 2, "<>=^".contains(s[1]) {
        fill = s[0]
        align = s[1]
        s.removeFirst(2)
    } else if let first = s.first, "<>=^".contains(first) {
        align = first
        s.removeFirst()
    }
    var sign: Character = "-"
    if let first = s.first, "+- ".contains(first) {
        sign = first
        s.removeFirst()
    }
    var alternate = false
    if s.first == "#" { alternate = true; s.removeFirst() }
    if s.first == "0" {
        if align == nil { fill = "0"; align = "=" }
        s.removeFirst()
    }
    let width = try takeDigits(&s, "width")
    var grouping: Character? = nil
    if let g = s.first, g == "," || g == "_" { grouping = g; s.removeFirst() }
    var precision: Int? = nil
    if s.first == "." {
        s.removeFirst()
        precision = try takeDigits(&s, "precision")
    }
    let type: Character? = s.first

    var body: String
    var signText = ""
    var numeric = false
    switch (type, value.numericValue) {
    case (nil, nil), ("s"?, nil):
        guard value.stringValue != nil || type == nil else {
            throw JinjaError.runtime("Unknown format code 's' for object of type '\(value.pythonTypeName)'")
        }
        body = value.pythonString
        if let precision { body = String(codePoints: body.codePoints.prefix(precision)) }
    case (_, let number?):
        numeric = true
        var t = type
        if t == nil { if case .int = number { t = "d" } else if precision == nil { t = "r" } else { t = "g" } }
        let d = number.asDouble
        switch t! {
        case "d", "n", "b", "o", "x", "X", "c":
            guard case .int(let n) = number else {
                throw JinjaError.runtime("Unknown format code '\(t!)' for object of type 'float'")
            }
            if t == "c" {
                body = String(try characterCode(n))
                numeric = false
            } else {
                let radix = t == "b" ? 2 : t == "o" ? 8 : (t == "x" || t == "X") ? 16 : 10
                body = String(n.magnitude, radix: radix, uppercase: t == "X")
                if let grouping, radix == 10 { body = group(body, String(grouping)) }
                if alternate && radix != 10 { body = (radix == 2 ? "0b" : radix == 8 ? "0o" : t == "X" ? "0X" : "0x") + body }
                signText = n < 0 ? "-" : sign == "+" ? "+" : sign == " " ? " " : ""
            }
        case "r":
            body = pythonFloatRepr(abs(d))
            signText = d.sign == .minus ? "-" : sign == "+" ? "+" : sign == " " ? " " : ""
        case "f", "F", "e", "E", "g", "G", "%":
            let p = precision ?? 6
            var x = abs(d)
            var suffix = ""
            var code = t!
            if code == "%" { x *= 100; suffix = "%"; code = "f" }
            body = String(format: "%\(alternate ? "#" : "").\(p)\(code)", x) + suffix
            if let grouping, code == "f" || code == "F" {
                let parts = body.split(separator: ".", maxSplits: 1)
                body = group(String(parts[0]), String(grouping)) + (parts.count > 1 ? "." + parts[1] : "")
            }
            signText = d.sign == .minus ? "-" : sign == "+" ? "+" : sign == " " ? " " : ""
        default:
            throw JinjaError.runtime("Unknown format code '\(t!)' for object of type '\(value.pythonTypeName)'")
        }
    default:
        throw JinjaError.runtime("Unknown format code '\(type!)' for object of type '\(value.pythonTypeName)'")
    }

    let length = signText.count + body.unicodeScalars.count
    guard width > length else { return signText + body }
    let padding = width - length
    let pad = { (n: Int) in String(repeating: fill, count: n) }
    switch align ?? (numeric ? ">" : "<") {
    case "<": return signText + body + pad(padding)
    case ">": return pad(padding) + signText + body
    case "=": return signText + pad(padding) + body
    default: return pad(padding / 2) + signText + body + pad(padding - padding / 2)
    }
}

private func group(_ digits: String, _ separator: String) -> String {
    var out = ""
    for (i, c) in digits.reversed().enumerated() {
        if i > 0 && i % 3 == 0 { out.append(contentsOf: separator.reversed()) }
        out.append(c)
    }
    return String(out.reversed())
}

// MARK: - strftime

/// C-locale `strftime` as Python's `datetime.now().strftime()` gives it on Linux, for a naive local time
/// (so `%z` and `%Z` are empty).
func pythonStrftime(_ format: String, _ date: Date, timeZone: TimeZone) -> String {
    var calendar = Calendar(identifier: .gregorian)
    calendar.timeZone = timeZone
    let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second, .weekday, .nanosecond], from: date)
    let year = c.year!, month = c.month!, day = c.day!, hour = c.hour!, minute = c.minute!, second = c.second!
    let weekday = c.weekday! - 1  // 0 = Sunday
    let dayOfYear = calendar.ordinality(of: .day, in: .year, for: date) ?? 1
    let days = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
    let months = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
                  "November", "December"]
    func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
    func pad(_ n: Int, _ width: Int, _ fill: Character = "0") -> String {
        let s = String(n)
        return s.count >= width ? s : String(repeating: fill, count: width - s.count) + s
    }
    let hour12 = hour % 12 == 0 ? 12 : hour % 12
    // ISO 8601 week-based year and week.
    let isoWeekday = weekday == 0 ? 7 : weekday
    var isoYear = year
    var isoWeek = (dayOfYear - isoWeekday + 10) / 7
    func weeksInYear(_ y: Int) -> Int {
        func p(_ y: Int) -> Int { (y + y / 4 - y / 100 + y / 400) % 7 }
        return (p(y) == 4 || p(y - 1) == 3) ? 53 : 52
    }
    if isoWeek < 1 {
        isoYear -= 1
        isoWeek = weeksInYear(isoYear)
    } else if isoWeek > weeksInYear(year) {
        isoYear += 1
        isoWeek = 1
    }

    func directive(_ d: Character) -> String? {
        switch d {
        case "a": return String(days[weekday].prefix(3))
        case "A": return days[weekday]
        case "b", "h": return String(months[month - 1].prefix(3))
        case "B": return months[month - 1]
        case "c": return "\(days[weekday].prefix(3)) \(months[month - 1].prefix(3)) \(pad(day, 2, " ")) \(two(hour)):\(two(minute)):\(two(second)) \(year)"
        case "C": return two(year / 100)
        case "d": return two(day)
        case "D", "x": return "\(two(month))/\(two(day))/\(two(year % 100))"
        case "e": return pad(day, 2, " ")
        case "f": return pad((c.nanosecond ?? 0) / 1000, 6)
        case "F": return "\(pad(year, 4))-\(two(month))-\(two(day))"
        case "G": return String(isoYear)
        case "g": return two(isoYear % 100)
        case "H": return two(hour)
        case "I": return two(hour12)
        case "j": return pad(dayOfYear, 3)
        case "k": return pad(hour, 2, " ")
        case "l": return pad(hour12, 2, " ")
        case "m": return two(month)
        case "M": return two(minute)
        case "n": return "\n"
        case "p": return hour < 12 ? "AM" : "PM"
        case "P": return hour < 12 ? "am" : "pm"
        case "r": return "\(two(hour12)):\(two(minute)):\(two(second)) \(hour < 12 ? "AM" : "PM")"
        case "R": return "\(two(hour)):\(two(minute))"
        case "S": return two(second)
        case "t": return "\t"
        case "T", "X": return "\(two(hour)):\(two(minute)):\(two(second))"
        case "u": return String(isoWeekday)
        case "U": return two((dayOfYear + 6 - weekday) / 7)
        case "V": return two(isoWeek)
        case "w": return String(weekday)
        case "W": return two((dayOfYear + 6 - (weekday + 6) % 7) / 7)
        case "y": return two(year % 100)
        case "Y": return String(year)
        case "z", "Z": return ""
        case "%": return "%"
        default: return nil
        }
    }

    var out = ""
    let chars = Array(format)
    var i = 0
    while i < chars.count {
        let ch = chars[i]
        guard ch == "%", i + 1 < chars.count else {
            out.append(ch)
            i += 1
            continue
        }
        var d = chars[i + 1]
        var noPad = false
        if d == "-", i + 2 < chars.count {
            // glibc's %-d: no padding.
            noPad = true
            d = chars[i + 2]
            i += 1
        }
        if var text = directive(d) {
            if noPad {
                let trimmed = text.drop { $0 == "0" || $0 == " " }
                text = trimmed.isEmpty ? "0" : String(trimmed)
            }
            out += text
        } else {
            out.append("%")
            if noPad { out.append("-") }
            out.append(d)
        }
        i += 2
    }
    return out
}
