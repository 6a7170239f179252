import Foundation

// MARK: - Tests (`x is name`)

typealias JinjaTestFunction = @Sendable (JinjaInterpreter, JinjaValue, JinjaArguments) throws -> Bool

/// jinja2's built-in tests. Type tests follow Python's types: `true is number` holds (bool is an int subclass)
/// but `true is integer` does not, and Undefined counts as iterable and as a sequence (it has a length).
enum JinjaTestFunctions {
    static let all: [String: JinjaTestFunction] = {
        var t: [String: JinjaTestFunction] = [:]

        @Sendable func argument(_ args: JinjaArguments, _ test: String) throws -> JinjaValue {
            guard let first = args.positional.first ?? args.keyword.first?.1 else {
                throw JinjaError.type("\(test)() missing 1 required positional argument")
            }
            return first
        }

        t["defined"] = { _, value, _ in !value.isUndefined }
        t["undefined"] = { _, value, _ in value.isUndefined }
        t["none"] = { _, value, _ in value.isNone }
        t["boolean"] = { _, value, _ in
            if case .bool = value { return true }
            return false
        }
        t["true"] = { _, value, _ in
            if case .bool(true) = value { return true }
            return false
        }
        t["false"] = { _, value, _ in
            if case .bool(false) = value { return true }
            return false
        }
        t["integer"] = { _, value, _ in
            if case .int = value { return true }
            return false
        }
        t["float"] = { _, value, _ in value.isDoubleValue }
        t["number"] = { _, value, _ in value.numericValue != nil }
        t["string"] = { _, value, _ in value.stringValue != nil }
        t["mapping"] = { _, value, _ in
            if case .dictionary = value { return true }
            return false
        }
        t["sequence"] = { _, value, _ in
            switch value {
            case .undefined, .string, .markup, .array, .tuple, .dictionary: return true
            default: return false
            }
        }
        t["iterable"] = { _, value, _ in
            switch value {
            case .undefined, .string, .markup, .array, .tuple, .dictionary, .iterator: return true
            default: return false
            }
        }
        t["callable"] = { _, value, _ in
            switch value {
            case .function, .undefined: return true
            case .object(let object): return object is JinjaLoop
            default: return false
            }
        }
        t["escaped"] = { _, value, _ in
            if case .markup = value { return true }
            return false
        }
        t["odd"] = { interp, value, _ in
            try interp.binaryOperation("%", value, 2) == 1
        }
        t["even"] = { interp, value, _ in
            try interp.binaryOperation("%", value, 2) == 0
        }
        t["divisibleby"] = { interp, value, args in
            try interp.binaryOperation("%", value, try argument(args, "divisibleby")) == 0
        }
        t["lower"] = { _, value, _ in JinjaTestFunctions.caseTest(value.pythonString, upper: false) }
        t["upper"] = { _, value, _ in JinjaTestFunctions.caseTest(value.pythonString, upper: true) }
        t["in"] = { interp, value, args in try interp.contains(try argument(args, "in"), value) }
        t["sameas"] = { _, value, args in
            // Python `is`: singletons and small scalars compare by value, containers by identity.
            let other = try argument(args, "sameas")
            switch (value, other) {
            case (.array, _), (.tuple, _), (.dictionary, _): return false
            case (.bool(let a), .bool(let b)): return a == b
            case (.bool, _), (_, .bool): return false
            default: return value == other && value.pythonTypeName == other.pythonTypeName
            }
        }
        t["filter"] = { _, value, _ in value.stringValue.map { JinjaFilters.all[$0] != nil } ?? false }
        t["test"] = { _, value, _ in value.stringValue.map { JinjaTestFunctions.all[$0] != nil } ?? false }

        let comparisons: [(names: [String], op: String)] = [
            (["==", "eq", "equalto"], "=="), (["!=", "ne"], "!="), ([">", "gt", "greaterthan"], ">"),
            ([">=", "ge"], ">="), (["<", "lt", "lessthan"], "<"), (["<=", "le"], "<="),
        ]
        for (names, op) in comparisons {
            for name in names {
                t[name] = { interp, value, args in try interp.compare(op, value, try argument(args, name)) }
            }
        }
        return t
    }()

    /// Python's `str.islower()` / `str.isupper()`: some cased character, and none of the other case.
    static func caseTest(_ s: String, upper: Bool) -> Bool {
        var sawCased = false
        for c in s.unicodeScalars where c.properties.isCased {
            if upper ? c.properties.isLowercase : c.properties.isUppercase { return false }
            if upper ? c.properties.isUppercase : c.properties.isLowercase { sawCased = true }
        }
        return sawCased
    }
}
