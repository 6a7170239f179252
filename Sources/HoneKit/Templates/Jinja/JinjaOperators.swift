import Foundation

// MARK: - Operators

/// Python's operator semantics for the values templates use: int/float promotion, floor division and modulo
/// with the sign of the divisor, `str + str`, `list + list`, `str * int`, and TypeErrors worded like CPython's
/// for everything else (templates that concatenate a string and a list must fail, as they do in Python).
extension JinjaInterpreter {
    func unaryOperation(_ op: String, _ value: JinjaValue) throws -> JinjaValue {
        if value.isUndefined { throw JinjaError.undefined(undefinedHint) }
        switch value.numericValue {
        // -Int.min does not fit: like the other overflows below, it degrades to a float instead of trapping.
        case .int(let i)?: return op == "-" ? checked((0).subtractingReportingOverflow(i), -Double(i)) : .int(i)
        case .double(let d)?: return .double(op == "-" ? -d : d)
        case nil: throw JinjaError.type("bad operand type for unary \(op): '\(value.pythonTypeName)'")
        }
    }

    func binaryOperation(_ op: String, _ left: JinjaValue, _ right: JinjaValue) throws -> JinjaValue {
        if left.isUndefined || right.isUndefined { throw JinjaError.undefined(undefinedHint) }
        if let a = left.numericValue, let b = right.numericValue {
            return try numericOperation(op, a, b)
        }
        switch (op, left, right) {
        case ("+", _, _) where (left.stringValue?.utf8.count ?? left.sequenceItems?.count ?? 0)
                + (right.stringValue?.utf8.count ?? right.sequenceItems?.count ?? 0) > JinjaInterpreter.maxStringBytes:
            throw JinjaError.security("String too big: '+' would build more than \(JinjaInterpreter.maxStringBytes) items.")
        case ("+", .markup(let a), _) where right.stringValue != nil:
            return .markup(a + markupText(right))
        case ("+", .string(let a), .markup(let b)):
            return .markup(htmlEscape(a) + b)
        case ("+", .string(let a), .string(let b)):
            return .string(a + b)
        case ("+", .array(let a), .array(let b)):
            return .array(a + b)
        case ("+", .tuple(let a), .tuple(let b)):
            return .tuple(a + b)
        case ("+", .tuple, _):
            throw JinjaError.type("can only concatenate tuple (not \"\(right.pythonTypeName)\") to tuple")
        case ("+", .string, _), ("+", .markup, _):
            throw JinjaError.type("can only concatenate str (not \"\(right.pythonTypeName)\") to str")
        case ("+", .array, _):
            throw JinjaError.type("can only concatenate list (not \"\(right.pythonTypeName)\") to list")
        case ("*", _, _):
            if let (sequence, count) = repetition(left, right) {
                let n = max(0, count)
                let length = sequence.stringValue?.utf8.count ?? sequence.sequenceItems?.count ?? 0
                // Nothing repeated any number of times is nothing, at once (Python's answer); building it by
                // repetition would spin or allocate for as long as the count says.
                if length == 0 || n == 0 {
                    switch sequence {
                    case .string: return .string("")
                    case .markup: return .markup("")
                    case .array: return .array([])
                    case .tuple: return .tuple([])
                    default: break
                    }
                }
                // A chat template has no business building gigabytes: refuse as the sandbox refuses huge ranges.
                let (total, overflow) = length.multipliedReportingOverflow(by: n)
                guard !overflow, total <= JinjaInterpreter.maxRepetition else {
                    throw JinjaError.security("Repetition too big: '* \(n)' would make more than \(JinjaInterpreter.maxRepetition) items.")
                }
                switch sequence {
                case .string(let s): return .string(String(repeating: s, count: n))
                case .markup(let s): return .markup(String(repeating: s, count: n))
                case .array(let items): return .array(Array([[JinjaValue]](repeating: items, count: n).joined()))
                case .tuple(let items): return .tuple(Array([[JinjaValue]](repeating: items, count: n).joined()))
                default: break
                }
            }
        case ("%", .string(let format), _):
            return .string(try pythonPercentFormat(format, right, escape: false))
        case ("%", .markup(let format), _):
            return .markup(try pythonPercentFormat(format, right, escape: true))
        default:
            break
        }
        throw JinjaError.type("unsupported operand type(s) for \(op): '\(left.pythonTypeName)' and '\(right.pythonTypeName)'")
    }

    /// The most characters (or list items) `*` may build.
    static let maxRepetition = 10_000_000

    private func repetition(_ a: JinjaValue, _ b: JinjaValue) -> (JinjaValue, Int)? {
        if case .int(let n)? = b.numericValue, !b.isDoubleValue, a.stringValue != nil || a.isArray { return (a, n) }
        if case .int(let n)? = a.numericValue, !a.isDoubleValue, b.stringValue != nil || b.isArray { return (b, n) }
        return nil
    }

    private func numericOperation(_ op: String, _ a: JinjaValue.Number, _ b: JinjaValue.Number) throws -> JinjaValue {
        if case .int(let x) = a, case .int(let y) = b {
            switch op {
            case "+": return checked(x.addingReportingOverflow(y), Double(x) + Double(y))
            case "-": return checked(x.subtractingReportingOverflow(y), Double(x) - Double(y))
            case "*": return checked(x.multipliedReportingOverflow(by: y), Double(x) * Double(y))
            case "/":
                guard y != 0 else { throw JinjaError.runtime("division by zero") }
                return .double(Double(x) / Double(y))
            case "//":
                guard y != 0 else { throw JinjaError.runtime("integer division or modulo by zero") }
                // Int.min // -1 overflows (Python gives 2**63): a float, as `checked` does.
                if y == -1 { return checked((0).subtractingReportingOverflow(x), -Double(x)) }
                let q = x / y
                return .int((x % y != 0 && (x < 0) != (y < 0)) ? q - 1 : q)
            case "%":
                guard y != 0 else { throw JinjaError.runtime("integer division or modulo by zero") }
                if y == -1 { return .int(0) }  // Int.min % -1 would trap; every x % -1 is 0
                let r = x % y
                return .int(r != 0 && (r < 0) != (y < 0) ? r + y : r)
            case "**":
                if y < 0 {
                    guard x != 0 else { throw JinjaError.runtime("0.0 cannot be raised to a negative power") }
                    return .double(pow(Double(x), Double(y)))
                }
                // By squaring: a loop of y multiplications would spin for ages on `1 ** 10**18`.
                var result = 1
                var base = x
                var exponent = y
                var overflow = false
                while exponent > 0, !overflow {
                    if exponent & 1 == 1 {
                        let (r, o) = result.multipliedReportingOverflow(by: base)
                        result = r
                        overflow = o
                    }
                    exponent >>= 1
                    if exponent > 0, !overflow {
                        let (b, o) = base.multipliedReportingOverflow(by: base)
                        base = b
                        overflow = o
                    }
                }
                return overflow ? .double(pow(Double(x), Double(y))) : .int(result)
            default: break
            }
        }
        let x = a.asDouble
        let y = b.asDouble
        switch op {
        case "+": return .double(x + y)
        case "-": return .double(x - y)
        case "*": return .double(x * y)
        case "/":
            guard y != 0 else { throw JinjaError.runtime("float division by zero") }
            return .double(x / y)
        case "//":
            guard y != 0 else { throw JinjaError.runtime("float floor division by zero") }
            return .double((x / y).rounded(.down))
        case "%":
            guard y != 0 else { throw JinjaError.runtime("float modulo") }
            let r = fmod(x, y)
            return .double(r != 0 && (r < 0) != (y < 0) ? r + y : r)
        case "**":
            return .double(pow(x, y))
        default:
            throw JinjaError.runtime("unknown operator \(op)")
        }
    }

    /// Python ints do not overflow; past 64 bits the result degrades to a float rather than wrapping.
    private func checked(_ result: (partialValue: Int, overflow: Bool), _ fallback: Double) -> JinjaValue {
        result.overflow ? .double(fallback) : .int(result.partialValue)
    }

    // MARK: Comparisons

    func compare(_ op: String, _ left: JinjaValue, _ right: JinjaValue) throws -> Bool {
        switch op {
        case "==": return left == right
        case "!=": return left != right
        case "in": return try contains(right, left)
        case "notin": return !(try contains(right, left))
        case "<": return try pythonLessThan(left, right, op: "<")
        case ">": return try pythonLessThan(right, left, op: ">")
        case "<=": return try !pythonLessThan(right, left, op: "<=")
        case ">=": return try !pythonLessThan(left, right, op: ">=")
        default: throw JinjaError.runtime("unknown comparison \(op)")
        }
    }

    /// Python's `item in container`.
    func contains(_ container: JinjaValue, _ item: JinjaValue) throws -> Bool {
        switch container {
        case .undefined:
            return false
        case .string(let s), .markup(let s):
            guard let needle = item.stringValue else {
                if item.isUndefined { throw JinjaError.undefined(undefinedHint) }
                throw JinjaError.type("'in <string>' requires string as left operand, not \(item.pythonTypeName)")
            }
            return needle.isEmpty || s.pythonFind(needle) >= 0
        case .array(let items), .tuple(let items):
            return items.contains(item)
        case .dictionary(let dict):
            return dict[item] != nil
        case .iterator(let iterator):
            while let next = iterator.next() {
                if next == item { return true }
            }
            return false
        default:
            throw JinjaError.type("argument of type '\(container.pythonTypeName)' is not iterable")
        }
    }
}

/// Python's `a < b` for numbers, strings (by code point), and lists (lexicographically).
func pythonLessThan(_ a: JinjaValue, _ b: JinjaValue, op: String = "<") throws -> Bool {
    if let x = a.numericValue, let y = b.numericValue {
        if case .int(let i) = x, case .int(let j) = y { return i < j }
        return x.asDouble < y.asDouble
    }
    if let x = a.stringValue, let y = b.stringValue {
        return x.unicodeScalars.lexicographicallyPrecedes(y.unicodeScalars)
    }
    if let x = a.sequenceItems, let y = b.sequenceItems, a.pythonTypeName == b.pythonTypeName {
        for (p, q) in zip(x, y) where p != q { return try pythonLessThan(p, q, op: op) }
        return x.count < y.count
    }
    if a.isUndefined || b.isUndefined { throw JinjaError.undefined("'\(op)' on an undefined value") }
    throw JinjaError.type("'\(op)' not supported between instances of '\(a.pythonTypeName)' and '\(b.pythonTypeName)'")
}

extension JinjaValue {
    var isArray: Bool {
        sequenceItems != nil
    }
}
