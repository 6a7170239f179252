import Foundation

// MARK: - Methods

extension JinjaBuiltins {
    /// The Python methods templates call on values (`message.content.strip()`, `tools.items()`, ...), bound
    /// to their receiver. Methods that mutate a list or dict exist but refuse to run, as the immutable sandbox
    /// refuses them.
    static func method(of value: JinjaValue, _ name: String, _ interp: JinjaInterpreter) -> JinjaValue? {
        let body: ((JinjaArguments) throws -> JinjaValue)?
        switch value {
        case .string(let s), .markup(let s): body = stringMethod(s, value, name, interp)
        case .dictionary(let d): body = dictionaryMethod(d, name)
        case .array(let items): body = listMethod(items, name, "list")
        case .tuple(let items): body = listMethod(items, name, "tuple")
        default: body = nil
        }
        guard let body else { return nil }
        return .function(JinjaFunction(name: name, isMacro: false, body: body))
    }

    private static func unsafe(_ name: String, _ type: String) -> (JinjaArguments) throws -> JinjaValue {
        { _ in throw JinjaError.security("access to attribute '\(name)' of '\(type)' object is unsafe.") }
    }

    private static func dictionaryMethod(_ dict: JinjaDictionary, _ name: String) -> ((JinjaArguments) throws -> JinjaValue)? {
        switch name {
        case "items": return { _ in .array(dict.pairs.map { .tuple([$0.key, $0.value]) }) }
        case "keys": return { _ in .array(dict.keys) }
        case "values": return { _ in .array(dict.values) }
        case "copy": return { _ in .dictionary(dict) }
        case "get":
            return { args in
                let a = try JinjaSignature("get", ["key", "default"], defaults: ["default": .none]).bind(args)
                return dict[a["key"]!] ?? a["default"]!
            }
        case "clear", "pop", "popitem", "setdefault", "update": return unsafe(name, "dict")
        default: return nil
        }
    }

    private static func listMethod(_ items: [JinjaValue], _ name: String, _ type: String) -> ((JinjaArguments) throws -> JinjaValue)? {
        switch name {
        case "count":
            return { args in
                let a = try JinjaSignature("count", ["value"]).bind(args)
                return .int(items.filter { $0 == a["value"]! }.count)
            }
        case "index":
            return { args in
                let a = try JinjaSignature("index", ["value"]).bind(args)
                guard let i = items.firstIndex(of: a["value"]!) else {
                    throw JinjaError.runtime("\(a["value"]!.pythonRepresentation) is not in \(type)")
                }
                return .int(i)
            }
        case "copy" where type == "list": return { _ in .array(items) }
        case "append", "clear", "extend", "insert", "pop", "remove", "reverse", "sort":
            return type == "list" ? unsafe(name, "list") : nil
        default: return nil
        }
    }

    private static func stringMethod(_ s: String, _ receiver: JinjaValue, _ name: String,
                                     _ interp: JinjaInterpreter) -> ((JinjaArguments) throws -> JinjaValue)? {
        func optionalString(_ v: JinjaValue?) -> String? {
            guard let v, !v.isNone else { return nil }
            return v.pythonString
        }
        func affix(_ args: JinjaArguments, _ method: String, suffix: Bool) throws -> JinjaValue {
            let a = try JinjaSignature(method, ["prefix", "start", "end"], defaults: ["start": .none, "end": .none]).bind(args)
            let scalars = s.codePoints
            let start = a["start"]!.isNone ? 0 : try a["start"]!.intArgument("start")
            let end = a["end"]!.isNone ? nil : try a["end"]!.intArgument("end")
            let (lo, hi) = pythonSliceBounds(count: scalars.count, start: start, end: end)
            let window = Array(scalars[lo..<hi])
            let candidates: [JinjaValue]
            if case .tuple(let items) = a["prefix"]! { candidates = items } else { candidates = [a["prefix"]!] }
            for candidate in candidates {
                guard let text = candidate.stringValue else {
                    throw JinjaError.type("\(method) first arg must be str or a tuple of str, not \(candidate.pythonTypeName)")
                }
                let c = text.codePoints
                if c.count <= window.count, (suffix ? Array(window.suffix(c.count)) : Array(window.prefix(c.count))) == c {
                    return .bool(true)
                }
            }
            return .bool(false)
        }
        func find(_ args: JinjaArguments, _ method: String, reverse: Bool) throws -> Int {
            let a = try JinjaSignature(method, ["sub", "start", "end"], defaults: ["start": .none, "end": .none]).bind(args)
            guard let sub = a["sub"]!.stringValue else {
                throw JinjaError.type("must be str, not \(a["sub"]!.pythonTypeName)")
            }
            let start = a["start"]!.isNone ? 0 : try a["start"]!.intArgument("start")
            let end = a["end"]!.isNone ? nil : try a["end"]!.intArgument("end")
            return s.pythonFind(sub, start: start, end: end, reverse: reverse)
        }
        func strip(_ args: JinjaArguments, leading: Bool, trailing: Bool) throws -> JinjaValue {
            let a = try JinjaSignature(name, ["chars"], defaults: ["chars": .none]).bind(args)
            return receiver.sameKind(s.pythonStrip(optionalString(a["chars"]), leading: leading, trailing: trailing))
        }
        func split(_ args: JinjaArguments, reverse: Bool) throws -> JinjaValue {
            let a = try JinjaSignature(name, ["sep", "maxsplit"], defaults: ["sep": .none, "maxsplit": -1]).bind(args)
            let separator = optionalString(a["sep"])
            if separator == "" { throw JinjaError.runtime("empty separator") }
            let maxSplit = try a["maxsplit"]!.intArgument("maxsplit")
            let parts = reverse ? s.pythonRSplit(separator, maxSplit: maxSplit) : s.pythonSplit(separator, maxSplit: maxSplit)
            return .array(parts.map { receiver.sameKind($0) })
        }
        func justify(_ args: JinjaArguments, _ placement: (String, Int, String) -> String) throws -> JinjaValue {
            let a = try JinjaSignature(name, ["width", "fillchar"], defaults: ["fillchar": " "]).bind(args)
            let width = try checkedWidth(a["width"]!.intArgument("width"), "width")
            guard let fill = a["fillchar"]!.stringValue, fill.codePointCount == 1 else {
                throw JinjaError.type("The fill character must be exactly one character long")
            }
            return receiver.sameKind(placement(s, width, fill))
        }
        func partition(_ args: JinjaArguments, reverse: Bool) throws -> JinjaValue {
            let a = try JinjaSignature(name, ["sep"]).bind(args)
            guard let sep = a["sep"]!.stringValue, !sep.isEmpty else { throw JinjaError.runtime("empty separator") }
            let i = s.pythonFind(sep, reverse: reverse)
            let scalars = s.codePoints
            guard i >= 0 else { return reverse ? .tuple(["", "", .string(s)]) : .tuple([.string(s), "", ""]) }
            return .tuple([.string(String(codePoints: scalars[..<i])), .string(sep),
                           .string(String(codePoints: scalars[(i + sep.codePointCount)...]))])
        }
        func predicate(_ test: @escaping (Unicode.Scalar) -> Bool) -> (JinjaArguments) throws -> JinjaValue {
            { _ in .bool(!s.isEmpty && s.unicodeScalars.allSatisfy(test)) }
        }

        switch name {
        case "strip": return { try strip($0, leading: true, trailing: true) }
        case "lstrip": return { try strip($0, leading: true, trailing: false) }
        case "rstrip": return { try strip($0, leading: false, trailing: true) }
        case "split": return { try split($0, reverse: false) }
        case "rsplit": return { try split($0, reverse: true) }
        case "splitlines":
            return { args in
                let a = try JinjaSignature("splitlines", ["keepends"], defaults: ["keepends": false]).bind(args)
                return .array(s.pythonSplitLines(keepEnds: a["keepends"]!.isTruthy).map { receiver.sameKind($0) })
            }
        case "startswith": return { try affix($0, "startswith", suffix: false) }
        case "endswith": return { try affix($0, "endswith", suffix: true) }
        case "upper": return { _ in receiver.sameKind(s.uppercased()) }
        case "lower": return { _ in receiver.sameKind(s.lowercased()) }
        case "casefold": return { _ in receiver.sameKind(s.lowercased()) }
        case "title": return { _ in receiver.sameKind(s.pythonTitle) }
        case "capitalize": return { _ in receiver.sameKind(s.pythonCapitalized) }
        case "swapcase":
            return { _ in
                receiver.sameKind(s.unicodeScalars.map { c in
                    c.properties.isUppercase ? String(c).lowercased() : c.properties.isLowercase ? String(c).uppercased() : String(c)
                }.joined())
            }
        case "replace":
            return { args in
                let a = try JinjaSignature("replace", ["old", "new", "count"], defaults: ["count": -1]).bind(args)
                guard let old = a["old"]!.stringValue, let new = a["new"]!.stringValue else {
                    throw JinjaError.type("replace() argument must be str")
                }
                return receiver.sameKind(try s.checkedPythonReplace(old, new, count: try a["count"]!.intArgument("count")))
            }
        case "find": return { .int(try find($0, "find", reverse: false)) }
        case "rfind": return { .int(try find($0, "rfind", reverse: true)) }
        case "index", "rindex":
            return { args in
                let i = try find(args, name, reverse: name == "rindex")
                guard i >= 0 else { throw JinjaError.runtime("substring not found") }
                return .int(i)
            }
        case "count":
            return { args in
                let a = try JinjaSignature("count", ["sub"]).bind(args)
                guard let sub = a["sub"]!.stringValue else { throw JinjaError.type("must be str, not \(a["sub"]!.pythonTypeName)") }
                return .int(s.pythonCount(sub))
            }
        case "join":
            return { args in
                let a = try JinjaSignature("join", ["iterable"]).bind(args)
                let items = try interp.iterate(a["iterable"]!)
                var parts: [String] = []
                for (i, item) in items.enumerated() {
                    guard let text = item.stringValue else {
                        throw JinjaError.type("sequence item \(i): expected str instance, \(item.pythonTypeName) found")
                    }
                    parts.append(text)
                }
                return receiver.sameKind(parts.joined(separator: s))
            }
        case "format":
            return { args in receiver.sameKind(try pythonStringFormat(s, args, interp)) }
        case "zfill":
            return { args in
                let a = try JinjaSignature("zfill", ["width"]).bind(args)
                let width = try checkedWidth(a["width"]!.intArgument("width"), "width")
                let scalars = s.codePoints
                guard width > scalars.count else { return receiver }
                let zeros = String(repeating: "0", count: width - scalars.count)
                if let first = scalars.first, first == "+" || first == "-" {
                    return receiver.sameKind(String(first) + zeros + String(codePoints: scalars.dropFirst()))
                }
                return receiver.sameKind(zeros + s)
            }
        case "ljust":
            return { try justify($0) { s, w, f in s + String(repeating: f, count: max(0, w - s.codePointCount)) } }
        case "rjust":
            return { try justify($0) { s, w, f in String(repeating: f, count: max(0, w - s.codePointCount)) + s } }
        case "center":
            return { try justify($0) { s, w, f in s.pythonCenter(w, fill: f) } }
        case "partition": return { try partition($0, reverse: false) }
        case "rpartition": return { try partition($0, reverse: true) }
        case "removeprefix", "removesuffix":
            return { args in
                let a = try JinjaSignature(name, ["affix"]).bind(args)
                guard let affix = a["affix"]!.stringValue else { throw JinjaError.type("\(name)() argument must be str") }
                if name == "removeprefix", s.unicodeScalars.starts(with: affix.unicodeScalars) {
                    return receiver.sameKind(String(codePoints: s.unicodeScalars.dropFirst(affix.codePointCount)))
                }
                if name == "removesuffix", !affix.isEmpty, s.codePoints.suffix(affix.codePointCount) == affix.codePoints[...] {
                    return receiver.sameKind(String(codePoints: s.unicodeScalars.dropLast(affix.codePointCount)))
                }
                return receiver
            }
        case "isdigit", "isdecimal", "isnumeric":
            return predicate { $0.properties.numericType != nil }
        case "isalpha": return predicate { $0.properties.isAlphabetic }
        case "isalnum": return predicate { $0.properties.isAlphabetic || $0.properties.numericType != nil }
        case "isspace": return predicate { $0.isPythonWhitespace }
        case "islower": return { _ in .bool(JinjaTestFunctions.caseTest(s, upper: false)) }
        case "isupper": return { _ in .bool(JinjaTestFunctions.caseTest(s, upper: true)) }
        default: return nil
        }
    }
}
