import Foundation

// MARK: - Argument binding

/// Binds call arguments to a Python-style signature (positional or keyword, with defaults), so filters and
/// methods accept exactly what jinja2's accept: `indent(2, first=true)`, `default('x', true)`, ...
struct JinjaSignature {
    let function: String
    let names: [String]
    let defaults: [String: JinjaValue]

    init(_ function: String, _ names: [String], defaults: [String: JinjaValue] = [:]) {
        self.function = function
        self.names = names
        self.defaults = defaults
    }

    func bind(_ args: JinjaArguments) throws -> [String: JinjaValue] {
        guard args.positional.count <= names.count else {
            throw JinjaError.type("\(function)() takes at most \(names.count) argument(s) (\(args.positional.count) given)")
        }
        var bound: [String: JinjaValue] = [:]
        for (name, value) in zip(names, args.positional) { bound[name] = value }
        for (name, value) in args.keyword {
            guard names.contains(name) else {
                throw JinjaError.type("\(function)() got an unexpected keyword argument '\(name)'")
            }
            guard bound[name] == nil else {
                throw JinjaError.type("\(function)() got multiple values for argument '\(name)'")
            }
            bound[name] = value
        }
        for name in names where bound[name] == nil {
            guard let value = defaults[name] else {
                throw JinjaError.type("\(function)() missing required argument: '\(name)'")
            }
            bound[name] = value
        }
        return bound
    }
}

extension JinjaValue {
    /// An integer argument (bools count, as in Python).
    func intArgument(_ what: String) throws -> Int {
        if case .int(let i)? = numericValue, !isDoubleValue { return i }
        throw JinjaError.type("'\(pythonTypeName)' object cannot be interpreted as an integer (\(what))")
    }

    /// jinja2's `soft_str`: strings (and Markup) as they are, anything else through `str()`.
    var softString: String { pythonString }

    /// A string result of the same kind as this value: Markup methods return Markup.
    func sameKind(_ text: String) -> JinjaValue {
        if case .markup = self { return .markup(text) }
        return .string(text)
    }
}

// MARK: - Filters

typealias JinjaFilter = @Sendable (JinjaInterpreter, JinjaValue, JinjaArguments) throws -> JinjaValue

/// jinja2's built-in filters, with transformers' `tojson` in place of jinja2's own.
enum JinjaFilters {
    static let all: [String: JinjaFilter] = {
        var f: [String: JinjaFilter] = [:]

        f["abs"] = { _, value, _ in
            switch value.numericValue {
            // |Int.min| is past 64 bits: it degrades to a float, as the arithmetic operators do.
            case .int(let i)?: return i == .min ? .double(-Double(i)) : .int(abs(i))
            case .double(let d)?: return .double(abs(d))
            case nil: throw JinjaError.type("bad operand type for abs(): '\(value.pythonTypeName)'")
            }
        }

        f["attr"] = { interp, value, args in
            let a = try JinjaSignature("attr", ["name"]).bind(args)
            guard let name = a["name"]?.stringValue else { return .undefined }
            // Only real attributes, never the item fallback of `a.b`.
            switch value {
            case .object(let object): return object.attribute(name) ?? .undefined
            case .undefined: throw JinjaError.undefined(interp.undefinedHint)
            default: return JinjaBuiltins.method(of: value, name, interp) ?? .undefined
            }
        }

        f["batch"] = { interp, value, args in
            let a = try JinjaSignature("batch", ["linecount", "fill_with"], defaults: ["fill_with": .none]).bind(args)
            let count = try a["linecount"]!.intArgument("linecount")
            guard count > 0 else { throw JinjaError.runtime("batch size must be positive") }
            var batches: [JinjaValue] = []
            var current: [JinjaValue] = []
            for item in try interp.iterate(value) {
                if current.count == count {
                    batches.append(.array(current))
                    current = []
                }
                current.append(item)
            }
            if !current.isEmpty {
                if !a["fill_with"]!.isNone, current.count < count {
                    guard count - current.count <= JinjaInterpreter.maxRepetition else {
                        throw JinjaError.security("Batch too big: filling to \(count) would make more than \(JinjaInterpreter.maxRepetition) items.")
                    }
                    current += Array(repeating: a["fill_with"]!, count: count - current.count)
                }
                batches.append(.array(current))
            }
            return .iterator(JinjaIterator(batches))
        }

        f["capitalize"] = { _, value, _ in value.sameKind(value.softString.pythonCapitalized) }

        f["center"] = { _, value, args in
            let a = try JinjaSignature("center", ["width"], defaults: ["width": 80]).bind(args)
            return value.sameKind(value.softString.pythonCenter(try checkedWidth(a["width"]!.intArgument("width"), "width")))
        }

        let length: JinjaFilter = { _, value, _ in .int(try JinjaFilters.pythonLength(value)) }
        f["length"] = length
        f["count"] = length

        let defaultFilter: JinjaFilter = { _, value, args in
            let a = try JinjaSignature("default", ["default_value", "boolean"],
                                       defaults: ["default_value": "", "boolean": false]).bind(args)
            if value.isUndefined || (a["boolean"]!.isTruthy && !value.isTruthy) { return a["default_value"]! }
            return value
        }
        f["default"] = defaultFilter
        f["d"] = defaultFilter

        f["dictsort"] = { _, value, args in
            let a = try JinjaSignature("dictsort", ["case_sensitive", "by", "reverse"],
                                       defaults: ["case_sensitive": false, "by": "key", "reverse": false]).bind(args)
            guard case .dictionary(let dict) = value else {
                throw JinjaError.type("'\(value.pythonTypeName)' object has no attribute 'items'")
            }
            let position: Int
            switch a["by"]!.stringValue {
            case "key": position = 0
            case "value": position = 1
            default: throw JinjaError.runtime("You can only sort by either \"key\" or \"value\"")
            }
            let caseSensitive = a["case_sensitive"]!.isTruthy
            let pairs: [JinjaValue] = dict.pairs.map { .tuple([$0.key, $0.value]) }
            let sorted = try JinjaFilters.pythonSorted(pairs, reverse: a["reverse"]!.isTruthy) { pair in
                guard let kv = pair.sequenceItems else { return pair }
                return caseSensitive ? kv[position] : JinjaFilters.ignoreCase(kv[position])
            }
            return .array(sorted)
        }

        let escape: JinjaFilter = { _, value, _ in .markup(markupText(value)) }
        f["escape"] = escape
        f["e"] = escape
        f["forceescape"] = { _, value, _ in .markup(htmlEscape(value.pythonString)) }

        f["first"] = { interp, value, _ in
            if case .iterator(let iterator) = value { return iterator.next() ?? .undefined }
            return try interp.iterate(value).first ?? .undefined
        }

        f["last"] = { interp, value, _ in
            if case .iterator = value { throw JinjaError.type("'generator' object is not reversible") }
            return try interp.iterate(value).last ?? .undefined
        }

        f["float"] = { _, value, args in
            let a = try JinjaSignature("float", ["default"], defaults: ["default": .double(0)]).bind(args)
            return JinjaFilters.pythonFloat(value).map { .double($0) } ?? a["default"]!
        }

        f["int"] = { _, value, args in
            let a = try JinjaSignature("int", ["default", "base"], defaults: ["default": 0, "base": 10]).bind(args)
            let base = try a["base"]!.intArgument("base")
            if let s = value.stringValue {
                let cleaned = s.pythonStrip(nil).replacingOccurrences(of: "_", with: "")
                var digits = Substring(cleaned)
                var negative = false
                if digits.first == "-" || digits.first == "+" {
                    negative = digits.first == "-"
                    digits = digits.dropFirst()
                }
                let prefixes: [Int: String] = [16: "0x", 8: "0o", 2: "0b"]
                // Python's int(s, base): base 0 reads the prefix (0x, 0o, 0b, else decimal without leading zeros);
                // any base outside 2…36 is a ValueError, which jinja2 turns into the float fallback below.
                var radix = base
                if base == 0 {
                    radix = prefixes.first { digits.lowercased().hasPrefix($0.value) }?.key ?? 10
                    if radix == 10, digits.count > 1, digits.first == "0", digits.contains(where: { $0 != "0" }) { radix = -1 }
                }
                if let prefix = prefixes[radix], digits.lowercased().hasPrefix(prefix) { digits = digits.dropFirst(2) }
                if (2...36).contains(radix), !digits.isEmpty, digits.first != "-", digits.first != "+",
                   let n = Int(digits, radix: radix) {
                    return .int(negative ? -n : n)
                }
                // "42.23"|int is 42: jinja2 falls back to int(float(value)).
                if let d = JinjaFilters.pythonFloat(value), d.isFinite, let n = Int(exactly: d.rounded(.towardZero)) {
                    return .int(n)
                }
                return a["default"]!
            }
            switch value.numericValue {
            case .int(let i)?: return .int(i)
            case .double(let d)?:
                if d.isFinite, let n = Int(exactly: d.rounded(.towardZero)) { return .int(n) }
                return a["default"]!
            case nil: return a["default"]!
            }
        }

        f["format"] = { _, value, args in
            guard args.positional.isEmpty || args.keyword.isEmpty else {
                throw JinjaError.runtime("can't handle positional and keyword arguments at the same time")
            }
            let values: JinjaValue = args.keyword.isEmpty ? .tuple(args.positional) : .dictionary(JinjaDictionary(args.keyword))
            if case .markup(let s) = value { return .markup(try pythonPercentFormat(s, values, escape: true)) }
            return .string(try pythonPercentFormat(value.softString, values, escape: false))
        }

        f["groupby"] = { interp, value, args in
            let a = try JinjaSignature("groupby", ["attribute", "default", "case_sensitive"],
                                       defaults: ["default": .none, "case_sensitive": false]).bind(args)
            let caseSensitive = a["case_sensitive"]!.isTruthy
            let getter = try JinjaFilters.attributeGetter(interp, a["attribute"]!, default: a["default"]!)
            let sorted = try JinjaFilters.pythonSorted(try interp.iterate(value), reverse: false) { item in
                let key = try getter(item)
                return caseSensitive ? key : JinjaFilters.ignoreCase(key)
            }
            var groups: [JinjaValue] = []
            var currentKey: JinjaValue? = nil
            var currentItems: [JinjaValue] = []
            for item in sorted {
                let raw = try getter(item)
                let key = caseSensitive ? raw : JinjaFilters.ignoreCase(raw)
                if let k = currentKey, k == key {
                    currentItems.append(item)
                } else {
                    if currentKey != nil { groups.append(JinjaFilters.group(currentItems, try getter(currentItems[0]))) }
                    currentKey = key
                    currentItems = [item]
                }
            }
            if currentKey != nil { groups.append(JinjaFilters.group(currentItems, try getter(currentItems[0]))) }
            return .array(groups)
        }

        f["indent"] = { _, value, args in
            let a = try JinjaSignature("indent", ["width", "first", "blank"],
                                       defaults: ["width": 4, "first": false, "blank": false]).bind(args)
            let indentation: String
            if let s = a["width"]!.stringValue { indentation = s } else {
                indentation = String(repeating: " ", count: max(0, try checkedWidth(a["width"]!.intArgument("width"), "width")))
            }
            // jinja2 appends a newline before splitlines() so a trailing newline survives.
            let lines = (value.softString + "\n").pythonSplitLines()
            // Every line gets the indentation: a long indentation times many lines must not outgrow the string limit.
            _ = try checkedWidth(lines.count * indentation.utf8.count + value.softString.utf8.count, "indented text")
            var result: String
            if a["blank"]!.isTruthy {
                result = lines.joined(separator: "\n" + indentation)
            } else {
                result = lines.first ?? ""
                let rest = lines.dropFirst()
                if !rest.isEmpty {
                    result += "\n" + rest.map { $0.isEmpty ? $0 : indentation + $0 }.joined(separator: "\n")
                }
            }
            if a["first"]!.isTruthy { result = indentation + result }
            return value.sameKind(result)
        }

        f["items"] = { _, value, _ in
            switch value {
            case .undefined: return .iterator(JinjaIterator([]))
            case .dictionary(let dict): return .iterator(JinjaIterator(dict.pairs.map { .tuple([$0.key, $0.value]) }))
            default: throw JinjaError.runtime("Can only get item pairs from a mapping.")
            }
        }

        f["join"] = { interp, value, args in
            let a = try JinjaSignature("join", ["d", "attribute"], defaults: ["d": "", "attribute": .none]).bind(args)
            var items = try interp.iterate(value)
            if !a["attribute"]!.isNone {
                let getter = try JinjaFilters.attributeGetter(interp, a["attribute"]!)
                items = try items.map(getter)
            }
            return .string(items.map(\.pythonString).joined(separator: a["d"]!.pythonString))
        }

        f["list"] = { interp, value, _ in .array(try interp.iterate(value)) }
        f["lower"] = { _, value, _ in value.sameKind(value.softString.lowercased()) }
        f["upper"] = { _, value, _ in value.sameKind(value.softString.uppercased()) }

        f["map"] = { interp, value, args in
            guard value.isTruthy else { return .iterator(JinjaIterator([])) }
            let items = try interp.iterate(value)
            if args.positional.isEmpty, let attribute = args[keyword: "attribute"] {
                if let extra = args.keyword.first(where: { $0.0 != "attribute" && $0.0 != "default" }) {
                    throw JinjaError.runtime("Unexpected keyword argument '\(extra.0)'")
                }
                let getter = try JinjaFilters.attributeGetter(interp, attribute, default: args[keyword: "default"] ?? JinjaValue.none)
                return .iterator(JinjaIterator(try items.map(getter)))
            }
            guard let name = args.positional.first?.stringValue else {
                throw JinjaError.runtime("map requires a filter argument")
            }
            let rest = JinjaArguments(Array(args.positional.dropFirst()), keyword: args.keyword)
            return .iterator(JinjaIterator(try items.map { try interp.applyFilter(name, $0, rest) }))
        }

        f["max"] = { interp, value, args in try JinjaFilters.minOrMax(interp, value, args, max: true) }
        f["min"] = { interp, value, args in try JinjaFilters.minOrMax(interp, value, args, max: false) }

        f["select"] = { interp, value, args in try JinjaFilters.selectOrReject(interp, value, args, select: true, attribute: false) }
        f["reject"] = { interp, value, args in try JinjaFilters.selectOrReject(interp, value, args, select: false, attribute: false) }
        f["selectattr"] = { interp, value, args in try JinjaFilters.selectOrReject(interp, value, args, select: true, attribute: true) }
        f["rejectattr"] = { interp, value, args in try JinjaFilters.selectOrReject(interp, value, args, select: false, attribute: true) }

        f["replace"] = { _, value, args in
            let a = try JinjaSignature("replace", ["old", "new", "count"], defaults: ["count": .none]).bind(args)
            let count = a["count"]!.isNone ? -1 : try a["count"]!.intArgument("count")
            // With autoescaping off jinja2 works on plain str(), so the result is never Markup.
            return .string(try value.softString.checkedPythonReplace(a["old"]!.pythonString, a["new"]!.pythonString, count: count))
        }

        f["reverse"] = { interp, value, _ in
            switch value {
            case .string(let s), .markup(let s): return value.sameKind(String(codePoints: s.unicodeScalars.reversed()))
            case .iterator(let iterator): return .array(iterator.drain().reversed())
            case .array, .tuple, .dictionary, .undefined:
                return .iterator(JinjaIterator(try interp.iterate(value).reversed(), typeName: "list_reverseiterator"))
            default: throw JinjaError.runtime("argument must be iterable")
            }
        }

        f["round"] = { _, value, args in
            let a = try JinjaSignature("round", ["precision", "method"], defaults: ["precision": 0, "method": "common"]).bind(args)
            let precision = try a["precision"]!.intArgument("precision")
            guard let number = value.numericValue else {
                throw JinjaError.type("type \(value.pythonTypeName) doesn't define __round__ method")
            }
            switch a["method"]!.stringValue {
            case "common":
                if case .int(let i) = number { return .int(i) }
                return .double(JinjaFilters.pythonRound(number.asDouble, precision))
            case "ceil", "floor":
                // jinja2 computes value * 10**precision with Python's exact integer power: past a float's range
                // that is OverflowError, and below it the float 0.0 divides by zero.
                let scale = pow(10, Double(precision))
                guard scale.isFinite else { throw JinjaError.runtime("OverflowError: int too large to convert to float") }
                guard scale > 0 else { throw JinjaError.runtime("ZeroDivisionError: float division by zero") }
                let scaled = number.asDouble * scale
                return .double((a["method"]!.stringValue == "ceil" ? scaled.rounded(.up) : scaled.rounded(.down)) / scale)
            default:
                throw JinjaError.runtime("method must be common, ceil or floor")
            }
        }

        f["safe"] = { _, value, _ in .markup(value.pythonString) }

        f["slice"] = { interp, value, args in
            let a = try JinjaSignature("slice", ["slices", "fill_with"], defaults: ["fill_with": .none]).bind(args)
            let items = try interp.iterate(value)
            let slices = try a["slices"]!.intArgument("slices")
            guard slices > 0 else { throw JinjaError.runtime("integer division or modulo by zero") }
            guard slices <= JinjaInterpreter.maxRepetition else {
                throw JinjaError.security("Slices too many: \(slices) is more than \(JinjaInterpreter.maxRepetition).")
            }
            let perSlice = items.count / slices
            let withExtra = items.count % slices
            var offset = 0
            var result: [JinjaValue] = []
            for n in 0..<slices {
                let start = offset + n * perSlice
                if n < withExtra { offset += 1 }
                let end = offset + (n + 1) * perSlice
                var chunk = Array(items[start..<end])
                if !a["fill_with"]!.isNone, n >= withExtra { chunk.append(a["fill_with"]!) }
                result.append(.array(chunk))
            }
            return .iterator(JinjaIterator(result))
        }

        f["sort"] = { interp, value, args in
            let a = try JinjaSignature("sort", ["reverse", "case_sensitive", "attribute"],
                                       defaults: ["reverse": false, "case_sensitive": false, "attribute": .none]).bind(args)
            let caseSensitive = a["case_sensitive"]!.isTruthy
            let getters = try JinjaFilters.multiAttributeGetter(interp, a["attribute"]!)
            return .array(try JinjaFilters.pythonSorted(try interp.iterate(value), reverse: a["reverse"]!.isTruthy) { item in
                let keys = try getters.map { try $0(item) }.map { caseSensitive ? $0 : JinjaFilters.ignoreCase($0) }
                return keys.count == 1 ? keys[0] : .array(keys)
            })
        }

        f["string"] = { _, value, _ in
            if case .markup = value { return value }
            return .string(value.pythonString)
        }

        f["striptags"] = { _, value, _ in .string(JinjaFilters.stripTags(value.pythonString)) }

        f["sum"] = { interp, value, args in
            let a = try JinjaSignature("sum", ["attribute", "start"], defaults: ["attribute": .none, "start": 0]).bind(args)
            var items = try interp.iterate(value)
            if !a["attribute"]!.isNone {
                let getter = try JinjaFilters.attributeGetter(interp, a["attribute"]!)
                items = try items.map(getter)
            }
            var total = a["start"]!
            for item in items { total = try interp.binaryOperation("+", total, item) }
            return total
        }

        f["title"] = { _, value, _ in
            // jinja2's own title: words start after runs of whitespace, - ( { [ <.
            var out = ""
            var atWordStart = true
            for c in value.softString.unicodeScalars {
                if c.isPythonWhitespace || "-({[<".unicodeScalars.contains(c) {
                    out.unicodeScalars.append(c)
                    atWordStart = true
                } else {
                    out += atWordStart ? String(c).uppercased() : String(c).lowercased()
                    atWordStart = false
                }
            }
            return value.sameKind(out)
        }

        f["tojson"] = { _, value, args in
            // transformers' override: json.dumps(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False).
            let a = try JinjaSignature("tojson", ["ensure_ascii", "indent", "separators", "sort_keys"],
                                       defaults: ["ensure_ascii": false, "indent": .none, "separators": .none,
                                                  "sort_keys": false]).bind(args)
            var options = JinjaJSONOptions()
            options.ensureASCII = a["ensure_ascii"]!.isTruthy
            options.sortKeys = a["sort_keys"]!.isTruthy
            switch a["indent"]! {
            case .none: break
            case .string(let s), .markup(let s): options.indent = s
            case let indent:
                options.indent = String(repeating: " ", count: max(0, try checkedWidth(indent.intArgument("indent"), "indent")))
            }
            if options.indent != nil { options.itemSeparator = "," }
            if let separators = a["separators"]!.sequenceItems {
                guard separators.count == 2, let item = separators[0].stringValue, let key = separators[1].stringValue else {
                    throw JinjaError.type("separators must be a pair of strings")
                }
                options.itemSeparator = item
                options.keySeparator = key
            }
            return .string(try pythonJSONDumps(value, options))
        }

        f["trim"] = { _, value, args in
            let a = try JinjaSignature("trim", ["chars"], defaults: ["chars": .none]).bind(args)
            return value.sameKind(value.softString.pythonStrip(a["chars"]!.isNone ? nil : a["chars"]!.pythonString))
        }

        f["truncate"] = { _, value, args in
            let a = try JinjaSignature("truncate", ["length", "killwords", "end", "leeway"],
                                       defaults: ["length": 255, "killwords": false, "end": "...", "leeway": .none]).bind(args)
            let s = value.softString.codePoints
            let length = try a["length"]!.intArgument("length")
            let end = a["end"]!.pythonString
            let leeway = a["leeway"]!.isNone ? 5 : try a["leeway"]!.intArgument("leeway")
            guard length >= end.codePointCount else { throw JinjaError.runtime("expected length >= \(end.codePointCount), got \(length)") }
            guard leeway >= 0 else { throw JinjaError.runtime("expected leeway >= 0, got \(leeway)") }
            if s.count - leeway <= length { return value }  // not length + leeway: that can overflow
            let kept = String(codePoints: s.prefix(max(0, length - end.codePointCount)))
            if a["killwords"]!.isTruthy { return .string(kept + end) }
            return .string((kept.pythonRSplit(" ", maxSplit: 1).first ?? "") + end)
        }

        f["unique"] = { interp, value, args in
            let a = try JinjaSignature("unique", ["case_sensitive", "attribute"],
                                       defaults: ["case_sensitive": false, "attribute": .none]).bind(args)
            let caseSensitive = a["case_sensitive"]!.isTruthy
            let getter = try JinjaFilters.attributeGetter(interp, a["attribute"]!)
            var seen = Set<JinjaValue>()
            var result: [JinjaValue] = []
            for item in try interp.iterate(value) {
                let key = caseSensitive ? try getter(item) : JinjaFilters.ignoreCase(try getter(item))
                if seen.insert(key).inserted { result.append(item) }
            }
            return .iterator(JinjaIterator(result))
        }

        f["wordcount"] = { _, value, _ in
            // Python's \w+: runs of letters, digits and underscores.
            var count = 0
            var inWord = false
            for c in value.softString.unicodeScalars {
                let isWord = c == "_" || c.properties.isAlphabetic || c.properties.numericType != nil
                if isWord && !inWord { count += 1 }
                inWord = isWord
            }
            return .int(count)
        }

        f["pprint"] = { _, value, _ in .string(value.pythonRepresentation) }
        return f
    }()

    // MARK: Helpers

    /// Python `len()`.
    static func pythonLength(_ value: JinjaValue) throws -> Int {
        switch value {
        case .undefined: return 0
        case .string(let s), .markup(let s): return s.codePointCount
        case .array(let items), .tuple(let items): return items.count
        case .dictionary(let dict): return dict.count
        default: throw JinjaError.type("object of type '\(value.pythonTypeName)' has no len()")
        }
    }

    /// Python `float(value)`, nil where Python raises.
    static func pythonFloat(_ value: JinjaValue) -> Double? {
        if let n = value.numericValue { return n.asDouble }
        guard let s = value.stringValue else { return nil }
        let text = s.pythonStrip(nil).replacingOccurrences(of: "_", with: "").lowercased()
        switch text {
        case "inf", "+inf", "infinity", "+infinity": return .infinity
        case "-inf", "-infinity": return -.infinity
        case "nan", "+nan", "-nan": return .nan
        default:
            guard !text.isEmpty, text.allSatisfy({ "0123456789+-.e".contains($0) }) else { return nil }
            return Double(text)
        }
    }

    /// Python's `round(x, n)` for floats: half-to-even on the exact binary value, which is what C's printf
    /// rounding does too.
    static func pythonRound(_ x: Double, _ digits: Int) -> Double {
        guard x.isFinite else { return x }
        if digits >= 0 {
            return Double(String(format: "%.\(min(digits, 300))f", x)) ?? x
        }
        let scale = pow(10, -Double(digits))  // not Double(-digits): -Int.min traps
        // Past 10^308 every finite float rounds to a signed zero, as in Python.
        guard scale.isFinite else { return x.sign == .minus ? -0.0 : 0.0 }
        let scaled = (x / scale)
        let rounded = scaled.rounded(.toNearestOrEven)
        return rounded * scale
    }

    /// jinja2's `ignore_case`: lower-case strings, leave everything else.
    static func ignoreCase(_ value: JinjaValue) -> JinjaValue {
        if let s = value.stringValue { return value.sameKind(s.lowercased()) }
        return value
    }

    /// Python's stable `sorted(items, key=key, reverse=reverse)`.
    static func pythonSorted(_ items: [JinjaValue], reverse: Bool, key: (JinjaValue) throws -> JinjaValue) throws -> [JinjaValue] {
        let keyed = try items.enumerated().map { (offset: $0.offset, key: try key($0.element), item: $0.element) }
        var failure: Error? = nil
        let sorted = keyed.sorted { a, b in
            do {
                // Python's reverse sort keeps equal items in their original order too.
                if try pythonLessThan(a.key, b.key) { return !reverse }
                if try pythonLessThan(b.key, a.key) { return reverse }
            } catch {
                failure = error
            }
            return a.offset < b.offset
        }
        if let failure { throw failure }
        return sorted.map(\.item)
    }

    /// jinja2's `make_attrgetter`: "a.b.0" looks up a, then b, then item 0, each like `x[part]`.
    static func attributeGetter(_ interp: JinjaInterpreter, _ attribute: JinjaValue,
                                default defaultValue: JinjaValue = .none) throws -> (JinjaValue) throws -> JinjaValue {
        let parts: [JinjaValue]
        switch attribute {
        case .none: parts = []
        case .string(let s), .markup(let s):
            parts = s.pythonSplit(".").map { part in
                part.allSatisfy(\.isNumber) && !part.isEmpty ? (Int(part).map { .int($0) } ?? .string(part)) : .string(part)
            }
        default: parts = [attribute]
        }
        return { item in
            var value = item
            for part in parts {
                value = try interp.getItem(value, part)
                if !defaultValue.isNone, value.isUndefined { value = defaultValue }
            }
            return value
        }
    }

    /// `sort(attribute="a,b")`: one getter per comma-separated path.
    static func multiAttributeGetter(_ interp: JinjaInterpreter, _ attribute: JinjaValue) throws -> [(JinjaValue) throws -> JinjaValue] {
        if let s = attribute.stringValue {
            return try s.pythonSplit(",").map { try attributeGetter(interp, .string($0)) }
        }
        return [try attributeGetter(interp, attribute)]
    }

    static func minOrMax(_ interp: JinjaInterpreter, _ value: JinjaValue, _ args: JinjaArguments, max: Bool) throws -> JinjaValue {
        let a = try JinjaSignature(max ? "max" : "min", ["case_sensitive", "attribute"],
                                   defaults: ["case_sensitive": false, "attribute": .none]).bind(args)
        let items = try interp.iterate(value)
        guard var best = items.first else { return .undefined }
        let caseSensitive = a["case_sensitive"]!.isTruthy
        let getter = try attributeGetter(interp, a["attribute"]!)
        func key(_ v: JinjaValue) throws -> JinjaValue { caseSensitive ? try getter(v) : ignoreCase(try getter(v)) }
        var bestKey = try key(best)
        for item in items.dropFirst() {
            let k = try key(item)
            // Python's min/max keep the first of equal items.
            if max ? try pythonLessThan(bestKey, k) : try pythonLessThan(k, bestKey) {
                best = item
                bestKey = k
            }
        }
        return best
    }

    static func selectOrReject(_ interp: JinjaInterpreter, _ value: JinjaValue, _ args: JinjaArguments,
                               select: Bool, attribute: Bool) throws -> JinjaValue {
        guard value.isTruthy else { return .iterator(JinjaIterator([])) }
        var positional = args.positional
        var transform: (JinjaValue) throws -> JinjaValue = { $0 }
        if attribute {
            guard !positional.isEmpty else { throw JinjaError.runtime("Missing parameter for attribute name") }
            transform = try attributeGetter(interp, positional.removeFirst())
        }
        var test: (JinjaValue) throws -> Bool = { $0.isTruthy }
        if !positional.isEmpty {
            guard let name = positional.removeFirst().stringValue else { throw JinjaError.runtime("test name must be a string") }
            let rest = JinjaArguments(positional, keyword: args.keyword)
            test = { try interp.applyTest(name, $0, rest) }
        }
        let kept = try interp.iterate(value).filter { try test(try transform($0)) == select }
        return .iterator(JinjaIterator(kept))
    }

    /// groupby's result rows: (grouper, list) tuples, which templates also read as `.grouper` and `.list`.
    static func group(_ items: [JinjaValue], _ key: JinjaValue) -> JinjaValue {
        .tuple([key, .array(items)])
    }

    /// markupsafe's `striptags`: drop comments and tags, unescape entities, collapse whitespace.
    static func stripTags(_ text: String) -> String {
        var s = text
        while let start = s.range(of: "<!--"), let end = s.range(of: "-->", range: start.upperBound..<s.endIndex) {
            s.removeSubrange(start.lowerBound..<end.upperBound)
        }
        var out = ""
        var inTag = false
        for c in s {
            if c == "<" { inTag = true } else if c == ">" && inTag { inTag = false } else if !inTag { out.append(c) }
        }
        let entities = ["&lt;": "<", "&gt;": ">", "&quot;": "\"", "&#34;": "\"", "&#39;": "'", "&amp;": "&"]
        for (entity, char) in entities { out = out.replacingOccurrences(of: entity, with: char) }
        return out.pythonSplit(nil).joined(separator: " ")
    }
}
