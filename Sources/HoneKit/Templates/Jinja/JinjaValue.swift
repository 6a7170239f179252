import Foundation

// MARK: - Value

/// A value as a Jinja template sees it. The cases mirror the Python objects that Hugging Face chat templates
/// meet under jinja2 (messages and tools are plain JSON data there), so that printing, comparing, testing and
/// serializing follow Python's rules rather than Swift's.
public enum JinjaValue: Sendable {
    /// jinja2's `Undefined`: a missing variable, key or attribute. Prints as nothing, is falsy and iterates as
    /// empty, but most other operations on it are errors.
    case undefined
    /// Python `None`.
    case none
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    /// markupsafe's `Markup` (what `|safe` and `|escape` return): prints like a string, but `+` and `%` with a
    /// plain string HTML-escape the other side, as Python does even with autoescaping off.
    case markup(String)
    case array([JinjaValue])
    /// A Python tuple: what `(a, b)`, `dict.items()`, `dictsort` and `varargs` produce. It behaves like a list
    /// but prints as `(a, b)` and never equals a list.
    case tuple([JinjaValue])
    /// A Python dict: keys keep insertion order.
    case dictionary(JinjaDictionary)
    /// A one-shot Python iterator (what `map`, `select`, `items`, `reverse`, `unique` return in jinja2): it is
    /// always truthy, has no length, is not JSON serializable, and a second pass over it yields nothing.
    case iterator(JinjaIterator)
    /// Something with attributes: a `namespace()`, the `loop` variable, a cycler or joiner.
    case object(JinjaObject)
    /// A macro, a global function, a bound method of a value, or `caller`.
    case function(JinjaFunction)
}

// MARK: - Dictionary

/// An insertion-ordered dictionary with Python key semantics (`1`, `1.0` and `True` are the same key).
public struct JinjaDictionary: Sendable {
    public private(set) var keys: [JinjaValue] = []
    private var storage: [JinjaValue: JinjaValue] = [:]

    public init() {}

    public init(_ pairs: [(String, JinjaValue)]) {
        for (key, value) in pairs { self[.string(key)] = value }
    }

    public init(pairs: [(JinjaValue, JinjaValue)]) {
        for (key, value) in pairs { self[key] = value }
    }

    public var count: Int { keys.count }
    public var isEmpty: Bool { keys.isEmpty }

    public subscript(key: JinjaValue) -> JinjaValue? {
        get { storage[key] }
        set {
            if let newValue {
                if storage.updateValue(newValue, forKey: key) == nil { keys.append(key) }
            } else if storage.removeValue(forKey: key) != nil {
                keys.removeAll { $0 == key }
            }
        }
    }

    public subscript(key: String) -> JinjaValue? {
        get { storage[.string(key)] }
        set { self[.string(key)] = newValue }
    }

    /// Key-value pairs in insertion order.
    public var pairs: [(key: JinjaValue, value: JinjaValue)] {
        keys.map { ($0, storage[$0]!) }
    }

    public var values: [JinjaValue] { keys.map { storage[$0]! } }
}

// MARK: - Reference types

/// A one-shot iterator over already computed items. jinja2's filters are lazy generators; computing eagerly
/// is fine for templates, but consuming must still be remembered so that a second pass sees nothing.
public final class JinjaIterator: @unchecked Sendable {
    // Mutable, but only ever touched by the one render call that created it.
    let items: [JinjaValue]
    var position = 0
    let typeName: String

    init(_ items: [JinjaValue], typeName: String = "generator") {
        self.items = items
        self.typeName = typeName
    }

    /// Takes everything that is left.
    func drain() -> [JinjaValue] {
        let rest = Array(items[position...])
        position = items.count
        return rest
    }

    /// Takes one item (`|first` calls `next()` once).
    func next() -> JinjaValue? {
        guard position < items.count else { return nil }
        position += 1
        return items[position - 1]
    }
}

/// Base class of the values that have attributes (namespace, loop, cycler, joiner).
public class JinjaObject: @unchecked Sendable {
    // Objects are created during one render and never leave it, so the unchecked Sendable is safe.
    var typeName: String { "object" }

    func attribute(_ name: String) -> JinjaValue? { nil }

    func setAttribute(_ name: String, _ value: JinjaValue) throws {
        throw JinjaError.runtime("cannot assign attribute on non-namespace object")
    }

    var pythonRepr: String { "<\(typeName) object>" }
}

/// The arguments of a call, positional then keyword (keyword order kept, as Python keeps it).
public struct JinjaArguments: Sendable {
    public var positional: [JinjaValue]
    public var keyword: [(String, JinjaValue)]

    public init(_ positional: [JinjaValue] = [], keyword: [(String, JinjaValue)] = []) {
        self.positional = positional
        self.keyword = keyword
    }

    public subscript(keyword name: String) -> JinjaValue? {
        keyword.last { $0.0 == name }?.1
    }
}

/// Anything callable from a template.
public final class JinjaFunction: @unchecked Sendable {
    // Macros capture the render's scope chain; like objects, they live and die inside one render.
    public let name: String
    let isMacro: Bool
    let body: (JinjaArguments) throws -> JinjaValue

    public init(name: String, _ body: @escaping @Sendable (JinjaArguments) throws -> JinjaValue) {
        self.name = name
        self.isMacro = false
        self.body = body
    }

    init(name: String, isMacro: Bool, body: @escaping (JinjaArguments) throws -> JinjaValue) {
        self.name = name
        self.isMacro = isMacro
        self.body = body
    }

    func call(_ arguments: JinjaArguments) throws -> JinjaValue { try body(arguments) }
}

// MARK: - Literals

extension JinjaValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: JinjaValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JinjaValue)...) { self = .dictionary(JinjaDictionary(elements)) }
}

// MARK: - Equality and hashing (Python semantics)

extension JinjaValue: Hashable {
    /// Python `==`: numbers compare by value across bool/int/float, Markup equals its plain string, dicts ignore
    /// order, and (as in jinja2) one Undefined equals another.
    public static func == (lhs: JinjaValue, rhs: JinjaValue) -> Bool {
        switch (lhs, rhs) {
        case (.undefined, .undefined), (.none, .none): return true
        case let (.string(a), .string(b)), let (.string(a), .markup(b)), let (.markup(a), .string(b)),
            let (.markup(a), .markup(b)):
            return a == b && a.unicodeScalars.elementsEqual(b.unicodeScalars)
        case let (.array(a), .array(b)), let (.tuple(a), .tuple(b)): return a == b
        case let (.dictionary(a), .dictionary(b)):
            guard a.count == b.count else { return false }
            for (key, value) in a.pairs {
                guard let other = b[key], other == value else { return false }
            }
            return true
        case let (.iterator(a), .iterator(b)): return a === b
        case let (.object(a), .object(b)): return a === b
        case let (.function(a), .function(b)): return a === b
        default:
            if let a = lhs.numericValue, let b = rhs.numericValue {
                switch (a, b) {
                case let (.int(x), .int(y)): return x == y
                default: return a.asDouble == b.asDouble
                }
            }
            return false
        }
    }

    public func hash(into hasher: inout Hasher) {
        switch self {
        case .undefined: hasher.combine(0)
        case .none: hasher.combine(1)
        case .bool(let b): hasher.combine(b ? 1 : 0)
        case .int(let i): hasher.combine(i)
        case .double(let d):
            // Equal numbers must hash alike: 2.0 hashes as 2.
            if d.rounded() == d, let i = Int(exactly: d) { hasher.combine(i) } else { hasher.combine(d) }
        case .string(let s), .markup(let s): hasher.combine(s)
        case .array(let a), .tuple(let a): hasher.combine(a)
        case .dictionary(let d):
            // Order-independent, like dict equality.
            var sum = 0
            for (key, value) in d.pairs { sum = sum &+ Hasher.combined(key, value) }
            hasher.combine(sum)
        case .iterator(let i): hasher.combine(ObjectIdentifier(i))
        case .object(let o): hasher.combine(ObjectIdentifier(o))
        case .function(let f): hasher.combine(ObjectIdentifier(f))
        }
    }
}

extension Hasher {
    fileprivate static func combined(_ a: JinjaValue, _ b: JinjaValue) -> Int {
        var hasher = Hasher()
        hasher.combine(a)
        hasher.combine(b)
        return hasher.finalize()
    }
}

// MARK: - Inspection helpers

extension JinjaValue {
    enum Number {
        case int(Int)
        case double(Double)

        var asDouble: Double {
            switch self {
            case .int(let i): return Double(i)
            case .double(let d): return d
            }
        }
    }

    /// The value as a Python number (bool counts, as `True + 1 == 2` in Python).
    var numericValue: Number? {
        switch self {
        case .bool(let b): return .int(b ? 1 : 0)
        case .int(let i): return .int(i)
        case .double(let d): return .double(d)
        default: return nil
        }
    }

    /// The text of a `str` (plain or Markup).
    var stringValue: String? {
        switch self {
        case .string(let s), .markup(let s): return s
        default: return nil
        }
    }

    /// The items of a list or tuple.
    var sequenceItems: [JinjaValue]? {
        switch self {
        case .array(let items), .tuple(let items): return items
        default: return nil
        }
    }

    var isUndefined: Bool {
        if case .undefined = self { return true }
        return false
    }

    var isNone: Bool {
        if case .none = self { return true }
        return false
    }

    /// Python truthiness (`bool(x)`); objects without a length are always true.
    public var isTruthy: Bool {
        switch self {
        case .undefined, .none: return false
        case .bool(let b): return b
        case .int(let i): return i != 0
        case .double(let d): return d != 0
        case .string(let s), .markup(let s): return !s.isEmpty
        case .array(let a), .tuple(let a): return !a.isEmpty
        case .dictionary(let d): return !d.isEmpty
        case .iterator, .object, .function: return true
        }
    }

    /// The Python type name, used in error messages the way CPython words them.
    var pythonTypeName: String {
        switch self {
        case .undefined: return "Undefined"
        case .none: return "NoneType"
        case .bool: return "bool"
        case .int: return "int"
        case .double: return "float"
        case .string: return "str"
        case .markup: return "Markup"
        case .array: return "list"
        case .tuple: return "tuple"
        case .dictionary: return "dict"
        case .iterator(let i): return i.typeName
        case .object(let o): return o.typeName
        case .function(let f): return f.isMacro ? "Macro" : "function"
        }
    }
}

// MARK: - Foundation conversion

extension JinjaValue {
    /// Converts the output of `JSONSerialization` (or any nest of Swift dictionaries, arrays, strings, numbers,
    /// booleans and NSNull). Dictionary key order is whatever Foundation gives, so anything whose order matters
    /// (messages, tool schemas) should come through `JinjaValue(json:)` instead.
    public init(any value: Any?) {
        guard let value else { self = .none; return }
        switch value {
        case let v as JinjaValue: self = v
        case is NSNull: self = .none
        case let v as String: self = .string(v)
        case let v as Bool where type(of: value) == Bool.self: self = .bool(v)
        case let v as Int where type(of: value) == Int.self: self = .int(v)
        case let v as Double where type(of: value) == Double.self: self = .double(v)
        case let v as NSNumber:
            // Foundation boxes JSON numbers; the boxed C type tells booleans, integers and floats apart.
            switch String(cString: v.objCType) {
            case "c", "B": self = .bool(v.boolValue)
            case "f", "d": self = .double(v.doubleValue)
            default: self = .int(v.intValue)
            }
        case let v as [Any?]: self = .array(v.map { JinjaValue(any: $0) })
        case let v as [Any]: self = .array(v.map { JinjaValue(any: $0) })
        case let v as [(String, Any?)]:
            self = .dictionary(JinjaDictionary(v.map { ($0.0, JinjaValue(any: $0.1)) }))
        case let v as [String: Any]:
            // Foundation dictionaries have no order; sort the keys so that at least the result is stable.
            self = .dictionary(JinjaDictionary(v.keys.sorted().map { ($0, JinjaValue(any: v[$0])) }))
        default: self = .string(String(describing: value))
        }
    }
}
