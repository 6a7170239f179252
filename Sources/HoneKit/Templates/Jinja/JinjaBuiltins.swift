import Foundation

// MARK: - Namespace

/// `namespace()`: the one mutable object in a template, so that loops can carry state out (`{% set ns.x %}`).
final class JinjaNamespace: JinjaObject, @unchecked Sendable {
    var attributes = JinjaDictionary()

    /// Set while this namespace's repr is being written: a namespace that holds itself prints as Python's does,
    /// `<Namespace {'x': <Namespace {...}>}>`, instead of recursing without end.
    private var inRepr = false

    override var typeName: String { "TemplateNamespace" }
    override var pythonRepr: String {
        if inRepr { return "<Namespace {...}>" }
        inRepr = true
        defer { inRepr = false }
        return "<Namespace \(JinjaValue.dictionary(attributes).pythonRepresentation)>"
    }

    override func attribute(_ name: String) -> JinjaValue? { attributes[name] }

    override func setAttribute(_ name: String, _ value: JinjaValue) throws {
        try JinjaNamespace.checkName(name)
        attributes[name] = value
    }

    /// transformers refuses underscore names on namespaces (they could reach Python internals).
    static func checkName(_ name: String) throws {
        if name.hasPrefix("_") {
            throw JinjaError.security("Chat templates cannot store underscore-prefixed attributes on a namespace, but got "
                + "\(pythonStringLiteral(name)). Please rename the attribute.")
        }
    }
}

/// jinja2's `cycler(*items)`.
final class JinjaCycler: JinjaObject, @unchecked Sendable {
    let items: [JinjaValue]
    var position = 0

    init(_ items: [JinjaValue]) { self.items = items }

    override var typeName: String { "Cycler" }

    override func attribute(_ name: String) -> JinjaValue? {
        switch name {
        case "current": return items.isEmpty ? .undefined : items[position]
        case "items": return .array(items)
        case "next":
            // The bound method owns its cycler: in `cycler(1, 2).next()` nothing else does.
            return .function(JinjaFunction(name: "next", isMacro: false) { _ in
                guard !self.items.isEmpty else { return .undefined }
                let value = self.items[self.position]
                self.position = (self.position + 1) % self.items.count
                return value
            })
        case "reset":
            return .function(JinjaFunction(name: "reset", isMacro: false) { _ in
                self.position = 0
                return .none
            })
        default: return nil
        }
    }
}

// MARK: - Globals

enum JinjaBuiltins {
    /// The names every template sees: jinja2's defaults plus what transformers adds (`raise_exception`,
    /// `strftime_now`, its restricted `dict` and `namespace`).
    static func globals(_ interp: JinjaInterpreter) -> [String: JinjaValue] {
        let options = interp.options
        var g: [String: JinjaValue] = [:]

        g["raise_exception"] = .function(JinjaFunction(name: "raise_exception", isMacro: false) { args in
            let message = args.positional.first ?? args[keyword: "message"] ?? .undefined
            throw JinjaError(kind: .raised, message: message.pythonString)
        })

        g["strftime_now"] = .function(JinjaFunction(name: "strftime_now", isMacro: false) { args in
            let a = try JinjaSignature("strftime_now", ["format"]).bind(args)
            guard let format = a["format"]?.stringValue else {
                throw JinjaError.type("strftime() argument 1 must be str, not \(a["format"]!.pythonTypeName)")
            }
            return .string(pythonStrftime(format, options.now(), timeZone: options.timeZone))
        })

        g["range"] = .function(JinjaFunction(name: "range", isMacro: false) { args in
            let numbers = try args.positional.map { try $0.intArgument("range") }
            let (start, stop, step): (Int, Int, Int)
            switch numbers.count {
            case 1: (start, stop, step) = (0, numbers[0], 1)
            case 2: (start, stop, step) = (numbers[0], numbers[1], 1)
            case 3: (start, stop, step) = (numbers[0], numbers[1], numbers[2])
            default: throw JinjaError.type("range expected at most 3 arguments, got \(numbers.count)")
            }
            guard step != 0 else { throw JinjaError.runtime("range() arg 3 must not be zero") }
            // The sandbox caps ranges so templates cannot exhaust memory: measured before anything is made, in
            // wide arithmetic (range(-2**63, 2**63 - 1) has more items than an Int holds).
            let span = step > 0 ? Double(stop) - Double(start) : Double(start) - Double(stop)
            guard span <= 100_000 * Double(step.magnitude) else {
                throw JinjaError.security("Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).")
            }
            return .array(stride(from: start, to: stop, by: step).map { .int($0) })
        })

        g["dict"] = .function(JinjaFunction(name: "dict", isMacro: false) { args in
            .dictionary(try dictionaryArguments(args, interp))
        })

        g["namespace"] = .function(JinjaFunction(name: "namespace", isMacro: false) { args in
            let namespace = interp.makeNamespace()
            for (key, value) in try dictionaryArguments(args, interp).pairs {
                if let name = key.stringValue { try JinjaNamespace.checkName(name) }
                namespace.attributes[key] = value
            }
            return .object(namespace)
        })

        g["cycler"] = .function(JinjaFunction(name: "cycler", isMacro: false) { args in
            .object(JinjaCycler(args.positional))
        })

        g["joiner"] = .function(JinjaFunction(name: "joiner", isMacro: false) { args in
            let a = try JinjaSignature("joiner", ["sep"], defaults: ["sep": ", "]).bind(args)
            let separator = a["sep"]!
            final class State: @unchecked Sendable { var used = false }
            let state = State()
            return .function(JinjaFunction(name: "joiner", isMacro: false) { _ in
                if !state.used {
                    state.used = true
                    return .string("")
                }
                return separator
            })
        })
        return g
    }

    /// `dict(mapping_or_pairs, **kwargs)`, as Python's `dict()` builds it.
    private static func dictionaryArguments(_ args: JinjaArguments, _ interp: JinjaInterpreter) throws -> JinjaDictionary {
        guard args.positional.count <= 1 else {
            throw JinjaError.type("dict expected at most 1 argument, got \(args.positional.count)")
        }
        var dict = JinjaDictionary()
        if let first = args.positional.first {
            switch first {
            case .dictionary(let d): dict = d
            default:
                for pair in try interp.iterate(first) {
                    let items = try interp.iterate(pair)
                    guard items.count == 2 else {
                        throw JinjaError.type("dictionary update sequence element has length \(items.count); 2 is required")
                    }
                    dict[items[0]] = items[1]
                }
            }
        }
        for (key, value) in args.keyword { dict[key] = value }
        return dict
    }
}
