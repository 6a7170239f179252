import Foundation

// MARK: - Scopes

/// One level of variables. jinja2 gives every `for` iteration, macro call, call/filter/set block body and
/// `with` block its own level: assignments there are invisible afterwards, while reads fall through to the
/// enclosing levels (and see their current values, since macros resolve names when called).
final class JinjaScope {
    var variables: [String: JinjaValue] = [:]
    let parent: JinjaScope?

    init(parent: JinjaScope?) { self.parent = parent }

    func lookup(_ name: String) -> JinjaValue? {
        var scope: JinjaScope? = self
        while let current = scope {
            if let value = current.variables[name] { return value }
            scope = current.parent
        }
        return nil
    }

    func set(_ name: String, _ value: JinjaValue) { variables[name] = value }
}

/// A scope a macro (or a recursive loop's `loop`) closes over. A macro is stored in the very scope it captures, a
/// reference cycle, so the interpreter lets go of every captured scope when rendering ends.
final class CapturedScope {
    var scope: JinjaScope?
    init(_ scope: JinjaScope) { self.scope = scope }

    func get() throws -> JinjaScope {
        guard let scope else { throw JinjaError.runtime("a macro was called after rendering ended") }
        return scope
    }
}

// MARK: - Loop variable

/// The `loop` variable of a `for` block.
final class JinjaLoop: JinjaObject, @unchecked Sendable {
    let items: [JinjaValue]
    let depth: Int
    var index0 = 0
    /// The value `loop.changed()` saw last.
    private var lastChanged: [JinjaValue]? = nil
    /// Renders the loop body again over new items (`loop(children)` in a recursive loop).
    var recurse: ((JinjaValue) throws -> JinjaValue)?

    init(items: [JinjaValue], depth: Int) {
        self.items = items
        self.depth = depth
    }

    override var typeName: String { "LoopContext" }
    override var pythonRepr: String { "<LoopContext \(index0 + 1)/\(items.count)>" }

    override func attribute(_ name: String) -> JinjaValue? {
        let length = items.count
        switch name {
        case "index": return .int(index0 + 1)
        case "index0": return .int(index0)
        case "revindex": return .int(length - index0)
        case "revindex0": return .int(length - index0 - 1)
        case "first": return .bool(index0 == 0)
        case "last": return .bool(index0 == length - 1)
        case "length": return .int(length)
        case "depth": return .int(depth)
        case "depth0": return .int(depth - 1)
        case "previtem": return index0 > 0 ? items[index0 - 1] : .undefined
        case "nextitem": return index0 + 1 < length ? items[index0 + 1] : .undefined
        case "cycle":
            // Bound methods own their loop: a template can keep `loop.cycle` after the loop has ended.
            return .function(JinjaFunction(name: "cycle", isMacro: false) { args in
                guard !args.positional.isEmpty else { throw JinjaError.type("no items for cycling given") }
                return args.positional[self.index0 % args.positional.count]
            })
        case "changed":
            return .function(JinjaFunction(name: "changed", isMacro: false) { args in
                if let last = self.lastChanged, last == args.positional { return .bool(false) }
                self.lastChanged = args.positional
                return .bool(true)
            })
        default: return nil
        }
    }
}

// MARK: - Interpreter

/// Walks a parsed template. One interpreter serves one render call, so its mutable state (scopes, the
/// undefined-name hint) never crosses threads.
final class JinjaInterpreter {
    let options: JinjaOptions
    private let source: [Unicode.Scalar]
    /// Why the most recent lookup produced Undefined, for the error raised when that Undefined is misused
    /// (jinja2 words it "'x' is undefined" or "'dict object' has no attribute 'y'").
    var undefinedHint = "value is undefined"
    /// Nested macro calls and recursive loop calls. Runaway recursion must end in an error, not a crash;
    /// jinja2 reaches Python's recursion limit at about the same depth.
    private var callDepth = 0
    private static let maxCallDepth = 150

    /// Work limits, in the spirit of the sandbox's range limit: a chat prompt needs a few thousand loop steps and
    /// well under a megabyte of text, so a template past these is runaway (nested loops, doubling strings), and
    /// ends in an error instead of hanging or exhausting memory.
    private var loopIterations = 0
    static let maxLoopIterations = 1_000_000
    static let maxStringBytes = 100_000_000

    /// Counts one step of a loop (or of its filter); throws past `maxLoopIterations`.
    func countIteration() throws {
        loopIterations += 1
        if loopIterations > JinjaInterpreter.maxLoopIterations {
            throw JinjaError.security("Too many loop iterations: the template ran more than \(JinjaInterpreter.maxLoopIterations).")
        }
    }

    /// Bytes of every string that operators, filters and calls have made in this render. Each string is capped
    /// at `maxStringBytes`, but a loop can make such strings over and over (building 90 MB 100,000 times ran for
    /// hours; 150 strings of 10 MB kept in a list took 1.5 GB): past this total the render is runaway.
    private var bytesBuilt = 0
    static let maxBytesBuilt = 1_000_000_000

    /// Counts a string result toward `maxBytesBuilt`; other values pass through.
    private func charged(_ value: JinjaValue) throws -> JinjaValue {
        switch value {
        case .string(let text), .markup(let text):
            bytesBuilt += text.utf8.count
            if bytesBuilt > JinjaInterpreter.maxBytesBuilt {
                throw JinjaError.security("Too much text: the template built more than \(JinjaInterpreter.maxBytesBuilt) bytes of strings.")
            }
        default: break
        }
        return value
    }

    /// Throws when `text` has grown past `maxStringBytes`.
    func checkSize(_ text: String) throws {
        if text.utf8.count > JinjaInterpreter.maxStringBytes {
            throw JinjaError.security("String too big: the template built more than \(JinjaInterpreter.maxStringBytes) bytes.")
        }
    }

    private func nested<T>(_ body: () throws -> T) throws -> T {
        callDepth += 1
        defer { callDepth -= 1 }
        if callDepth > JinjaInterpreter.maxCallDepth {
            throw JinjaError.runtime("maximum recursion depth exceeded")
        }
        return try body()
    }

    init(options: JinjaOptions, source: [Unicode.Scalar]) {
        self.options = options
        self.source = source
    }

    enum Flow { case normal, breakLoop, continueLoop }

    func render(_ nodes: [JinjaNode], context: [String: JinjaValue]) throws -> String {
        let globals = JinjaScope(parent: nil)
        for (name, value) in JinjaBuiltins.globals(self) { globals.set(name, value) }
        let root = JinjaScope(parent: globals)
        for (name, value) in context { root.set(name, value) }
        defer {
            for captured in capturedScopes { captured.scope = nil }
            capturedScopes.removeAll()
            for namespace in namespaces { namespace.attributes = JinjaDictionary() }
            namespaces.removeAll()
        }
        var out = ""
        _ = try renderNodes(nodes, root, into: &out)
        return out
    }

    /// Every scope captured during this render, released at its end (see `CapturedScope`).
    private var capturedScopes: [CapturedScope] = []
    private var namespaces: [JinjaNamespace] = []

    /// A new `namespace()`. Namespaces are the one value a template can make hold itself (`{% set ns.x = ns %}`),
    /// so each is emptied when rendering ends: no reference cycle outlives the render.
    func makeNamespace() -> JinjaNamespace {
        let namespace = JinjaNamespace()
        namespaces.append(namespace)
        return namespace
    }

    private func capture(_ scope: JinjaScope) -> CapturedScope {
        let captured = CapturedScope(scope)
        capturedScopes.append(captured)
        return captured
    }

    // MARK: Statements

    func renderNodes(_ nodes: [JinjaNode], _ scope: JinjaScope, into out: inout String) throws -> Flow {
        for node in nodes {
            let flow = try renderNode(node, scope, into: &out)
            if flow != .normal { return flow }
        }
        return .normal
    }

    private func located<T>(_ offset: Int, _ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch var error as JinjaError where error.line == nil {
            let (line, column) = JinjaLexer.position(of: offset, in: source)
            error.line = line
            error.column = column
            throw error
        }
    }

    private func renderNode(_ node: JinjaNode, _ scope: JinjaScope, into out: inout String) throws -> Flow {
        switch node {
        case .text(let text):
            out += text
        case .output(let expr, let at):
            try located(at) { out += try eval(expr, scope).pythonString }
        case .ifBlock(let branches, let otherwise, let at):
            for branch in branches {
                if try located(at, { try eval(branch.test, scope).isTruthy }) {
                    return try renderNodes(branch.body, scope, into: &out)
                }
            }
            return try renderNodes(otherwise, scope, into: &out)
        case .forLoop(let loop):
            let iterable = try located(loop.at) { try eval(loop.iterable, scope) }
            try located(loop.at) { try runLoop(loop, iterable, scope, depth: 1, into: &out) }
        case .set(let target, let expr, let at):
            try located(at) { try assign(target, try eval(expr, scope), scope) }
        case .setBlock(let target, let filter, let body, let at):
            var text = ""
            _ = try renderNodes(body, JinjaScope(parent: scope), into: &text)
            try located(at) {
                var value = JinjaValue.string(text)
                if let filter { value = try applyFilterChain(filter, to: value, scope) }
                try assign(target, value, scope)
            }
        case .macro(let macro, _):
            scope.set(macro.name, .function(makeMacro(macro, scope)))
        case .callBlock(let call, let caller, let at):
            let callerFunction = makeMacro(caller, scope)
            try located(at) {
                guard case .call(let callee, let args, _) = call else { throw JinjaError.runtime("expected call") }
                let value = try evalCall(callee, args, scope, extraKeyword: [("caller", .function(callerFunction))])
                out += value.pythonString
            }
        case .filterBlock(let filter, let body, let at):
            var text = ""
            _ = try renderNodes(body, JinjaScope(parent: scope), into: &text)
            try located(at) { out += try applyFilterChain(filter, to: .string(text), scope).pythonString }
        case .with(let assignments, let body, let at):
            let inner = JinjaScope(parent: scope)
            for (target, expr) in assignments {
                try located(at) { try assign(target, try eval(expr, scope), inner) }
            }
            return try renderNodes(body, inner, into: &out)
        case .generation(let body, _):
            // transformers wraps the body in a call block, so it gets a scope of its own.
            _ = try renderNodes(body, JinjaScope(parent: scope), into: &out)
        case .breakLoop:
            return .breakLoop
        case .continueLoop:
            return .continueLoop
        }
        return .normal
    }

    private func runLoop(_ loop: JinjaForLoop, _ iterable: JinjaValue, _ scope: JinjaScope, depth: Int,
                         into out: inout String) throws {
        var items = try iterate(iterable)
        if let filter = loop.filter {
            // The `if` of a for loop filters before the loop starts, so loop.length counts what passes.
            items = try items.filter { item in
                try countIteration()
                let probe = JinjaScope(parent: scope)
                try assign(loop.target, item, probe)
                return try eval(filter, probe).isTruthy
            }
        }
        if items.isEmpty {
            _ = try renderNodes(loop.elseBody, JinjaScope(parent: scope), into: &out)
            return
        }
        let state = JinjaLoop(items: items, depth: depth)
        if loop.recursive {
            let captured = capture(scope)
            state.recurse = { [unowned self] newItems in
                try self.nested {
                    var text = ""
                    try self.runLoop(loop, newItems, captured.get(), depth: depth + 1, into: &text)
                    return .string(text)
                }
            }
        }
        for (i, item) in items.enumerated() {
            try countIteration()
            try checkSize(out)
            state.index0 = i
            let iteration = JinjaScope(parent: scope)
            try assign(loop.target, item, iteration)
            iteration.set("loop", .object(state))
            if try renderNodes(loop.body, iteration, into: &out) == .breakLoop { break }
        }
    }

    func assign(_ target: JinjaTarget, _ value: JinjaValue, _ scope: JinjaScope) throws {
        switch target {
        case .name(let name):
            scope.set(name, value)
        case .tuple(let targets):
            let items = try iterate(value)
            if items.count < targets.count {
                throw JinjaError.type("not enough values to unpack (expected \(targets.count), got \(items.count))")
            }
            if items.count > targets.count {
                throw JinjaError.type("too many values to unpack (expected \(targets.count))")
            }
            for (t, item) in zip(targets, items) { try assign(t, item, scope) }
        case .namespaceAttribute(let name, let attribute):
            guard case .object(let object) = scope.lookup(name) ?? .undefined, object is JinjaNamespace else {
                throw JinjaError.runtime("cannot assign attribute on non-namespace object")
            }
            try object.setAttribute(attribute, value)
        }
    }

    private func makeMacro(_ macro: JinjaMacro, _ definitionScope: JinjaScope) -> JinjaFunction {
        let captured = capture(definitionScope)
        return JinjaFunction(name: macro.name, isMacro: true) { [unowned self] args in
            try self.nested { try self.callMacro(macro, captured.get(), args) }
        }
    }

    private func callMacro(_ macro: JinjaMacro, _ definitionScope: JinjaScope, _ args: JinjaArguments) throws -> JinjaValue {
        let scope = JinjaScope(parent: definitionScope)
        var keyword = args.keyword
        func takeKeyword(_ name: String) -> JinjaValue? {
            guard let i = keyword.firstIndex(where: { $0.0 == name }) else { return nil }
            return keyword.remove(at: i).1
        }
        let caller = macro.usesCaller ? takeKeyword("caller") : nil
        for (i, parameter) in macro.parameters.enumerated() {
            if i < args.positional.count {
                if keyword.contains(where: { $0.0 == parameter.name }) {
                    throw JinjaError.type("macro '\(macro.name)' got multiple values for argument '\(parameter.name)'")
                }
                scope.set(parameter.name, args.positional[i])
            } else if let value = takeKeyword(parameter.name) {
                scope.set(parameter.name, value)
            } else if let defaultValue = parameter.defaultValue {
                scope.set(parameter.name, try eval(defaultValue, scope))
            } else {
                scope.set(parameter.name, .undefined)
            }
        }
        let extra = Array(args.positional.dropFirst(macro.parameters.count))
        if macro.usesVarargs {
            scope.set("varargs", .tuple(extra))
        } else if !extra.isEmpty {
            throw JinjaError.type("macro '\(macro.name)' takes not more than \(macro.parameters.count) argument(s)")
        }
        if macro.usesKwargs {
            scope.set("kwargs", .dictionary(JinjaDictionary(keyword)))
        } else if let first = keyword.first {
            throw JinjaError.type("macro '\(macro.name)' takes no keyword argument '\(first.0)'")
        }
        if macro.usesCaller { scope.set("caller", caller ?? .undefined) }
        var out = ""
        _ = try renderNodes(macro.body, scope, into: &out)
        return .string(out)
    }

    // MARK: Expressions

    func eval(_ expr: JinjaExpr, _ scope: JinjaScope) throws -> JinjaValue {
        switch expr {
        case .literal(let value):
            return value
        case .name(let name, _):
            if let value = scope.lookup(name) { return value }
            undefinedHint = "'\(name)' is undefined"
            return .undefined
        case .list(let items):
            return .array(try items.map { try eval($0, scope) })
        case .tuple(let items):
            return .tuple(try items.map { try eval($0, scope) })
        case .dict(let pairs):
            var dict = JinjaDictionary()
            for (key, value) in pairs { dict[try eval(key, scope)] = try eval(value, scope) }
            return .dictionary(dict)
        case .getAttr(let base, let name, _):
            return try getAttribute(try eval(base, scope), name)
        case .getItem(let base, let key, _):
            let container = try eval(base, scope)
            if case .slice(let start, let stop, let step) = key {
                return try slice(container, start.map { try eval($0, scope) }, stop.map { try eval($0, scope) },
                                 step.map { try eval($0, scope) })
            }
            return try getItem(container, try eval(key, scope))
        case .slice:
            throw JinjaError.runtime("a slice is only valid inside brackets")
        case .call(let callee, let args, _):
            return try charged(try evalCall(callee, args, scope, extraKeyword: []))
        case .filter(let base, let name, let args, _):
            guard let base else { throw JinjaError.runtime("filter without a value") }
            return try charged(try applyFilter(name, try eval(base, scope), args, scope))
        case .test(let base, let name, let args, _):
            return .bool(try applyTest(name, try eval(base, scope), try evalArguments(args, scope)))
        case .unary(let op, let operand, _):
            return try unaryOperation(op, try eval(operand, scope))
        case .binary(let op, let left, let right, _):
            return try charged(try binaryOperation(op, try eval(left, scope), try eval(right, scope)))
        case .and(let left, let right):
            let l = try eval(left, scope)
            return l.isTruthy ? try eval(right, scope) : l
        case .or(let left, let right):
            let l = try eval(left, scope)
            return l.isTruthy ? l : try eval(right, scope)
        case .not(let operand):
            return .bool(!(try eval(operand, scope).isTruthy))
        case .compare(let first, let ops, _):
            var left = try eval(first, scope)
            for (op, rightExpr) in ops {
                let right = try eval(rightExpr, scope)
                if !(try compare(op, left, right)) { return .bool(false) }
                left = right
            }
            return .bool(true)
        case .concat(let items):
            var text = ""
            for item in items {
                text += try eval(item, scope).pythonString
                try checkSize(text)
            }
            return try charged(.string(text))
        case .conditional(let test, let then, let otherwise):
            if try eval(test, scope).isTruthy { return try eval(then, scope) }
            if let otherwise { return try eval(otherwise, scope) }
            undefinedHint = "the inline if-expression evaluated to false and no else section was defined."
            return .undefined
        }
    }

    func evalArguments(_ args: JinjaCallArguments, _ scope: JinjaScope) throws -> JinjaArguments {
        var result = JinjaArguments(try args.positional.map { try eval($0, scope) })
        if let splat = args.splat { result.positional += try iterate(try eval(splat, scope)) }
        result.keyword = try args.keyword.map { ($0.0, try eval($0.1, scope)) }
        if let splat = args.keywordSplat {
            guard case .dictionary(let dict) = try eval(splat, scope) else {
                throw JinjaError.type("argument after ** must be a mapping")
            }
            for (key, value) in dict.pairs {
                guard let name = key.stringValue else { throw JinjaError.type("keywords must be strings") }
                result.keyword.append((name, value))
            }
        }
        return result
    }

    private func evalCall(_ calleeExpr: JinjaExpr, _ argExprs: JinjaCallArguments, _ scope: JinjaScope,
                          extraKeyword: [(String, JinjaValue)]) throws -> JinjaValue {
        let callee = try eval(calleeExpr, scope)
        var args = try evalArguments(argExprs, scope)
        args.keyword += extraKeyword
        return try call(callee, args)
    }

    func call(_ callee: JinjaValue, _ args: JinjaArguments) throws -> JinjaValue {
        switch callee {
        case .function(let function):
            return try function.call(args)
        case .object(let loop as JinjaLoop):
            guard let recurse = loop.recurse else {
                throw JinjaError.type("Tried to call non recursive loop. Maybe you forgot the 'recursive' modifier.")
            }
            guard args.positional.count == 1 else { throw JinjaError.type("loop() takes exactly one argument") }
            return try recurse(args.positional[0])
        case .undefined:
            throw JinjaError.undefined(undefinedHint)
        default:
            throw JinjaError.type("'\(callee.pythonTypeName)' object is not callable")
        }
    }

    // MARK: Attribute and item access

    /// `a.b`: Python attributes (methods of str/dict/list, namespace and loop attributes) first, then `a['b']`.
    func getAttribute(_ value: JinjaValue, _ name: String) throws -> JinjaValue {
        switch value {
        case .undefined:
            throw JinjaError.undefined(undefinedHint)
        case .object(let object):
            if let attribute = object.attribute(name) { return attribute }
        case .dictionary(let dict):
            if let method = JinjaBuiltins.method(of: value, name, self) { return method }
            if let item = dict[name] { return item }
        default:
            if let method = JinjaBuiltins.method(of: value, name, self) { return method }
        }
        undefinedHint = "'\(JinjaInterpreter.objectTypeDescription(value))' has no attribute '\(name)'"
        return .undefined
    }

    /// `a[b]`: the item first, then (for string keys) the attribute.
    func getItem(_ value: JinjaValue, _ key: JinjaValue) throws -> JinjaValue {
        switch value {
        case .undefined:
            throw JinjaError.undefined(undefinedHint)
        case .dictionary(let dict):
            if let item = dict[key] { return item }
        case .array(let items), .tuple(let items):
            if case .int(let i)? = key.numericValue, !(key.isDoubleValue) {
                let index = i < 0 ? items.count + i : i
                if index >= 0 && index < items.count { return items[index] }
            }
        case .string(let s), .markup(let s):
            if case .int(let i)? = key.numericValue, !(key.isDoubleValue) {
                let scalars = s.codePoints
                let index = i < 0 ? scalars.count + i : i
                if index >= 0 && index < scalars.count {
                    let char = String(scalars[index])
                    if case .markup = value { return .markup(char) }
                    return .string(char)
                }
            }
        default:
            break
        }
        if let name = key.stringValue {
            return try getAttribute(value, name)
        }
        let element = key.isDoubleValue || key.numericValue == nil ? key.pythonRepresentation : key.pythonString
        undefinedHint = "'\(JinjaInterpreter.objectTypeDescription(value))' has no element \(element)"
        return .undefined
    }

    /// jinja2's `object_type_repr`: "dict object", "list object", "None".
    static func objectTypeDescription(_ value: JinjaValue) -> String {
        switch value {
        case .none: return "None"
        default: return "\(value.pythonTypeName) object"
        }
    }

    private func slice(_ value: JinjaValue, _ start: JinjaValue?, _ stop: JinjaValue?, _ step: JinjaValue?) throws -> JinjaValue {
        func bound(_ v: JinjaValue?) throws -> Int? {
            guard let v, !v.isNone else { return nil }
            guard case .int(let i)? = v.numericValue, !v.isDoubleValue else {
                throw JinjaError.type("slice indices must be integers or None or have an __index__ method")
            }
            return i
        }
        let (a, b, c) = (try bound(start), try bound(stop), try bound(step))
        switch value {
        case .array(let items):
            return .array(try pythonSliceIndices(count: items.count, start: a, stop: b, step: c).map { items[$0] })
        case .tuple(let items):
            return .tuple(try pythonSliceIndices(count: items.count, start: a, stop: b, step: c).map { items[$0] })
        case .string(let s), .markup(let s):
            let scalars = s.codePoints
            let text = String(codePoints: try pythonSliceIndices(count: scalars.count, start: a, stop: b, step: c).map { scalars[$0] })
            if case .markup = value { return .markup(text) }
            return .string(text)
        case .undefined:
            throw JinjaError.undefined(undefinedHint)
        default:
            undefinedHint = "'\(JinjaInterpreter.objectTypeDescription(value))' has no element slice"
            return .undefined
        }
    }

    // MARK: Iteration

    /// What `for` (and `list()`) sees when iterating a value: dict keys, string characters, and nothing for
    /// Undefined, which jinja2's default Undefined allows.
    func iterate(_ value: JinjaValue) throws -> [JinjaValue] {
        switch value {
        case .undefined: return []
        case .array(let items), .tuple(let items): return items
        case .dictionary(let dict): return dict.keys
        case .string(let s): return s.unicodeScalars.map { .string(String($0)) }
        case .markup(let s): return s.unicodeScalars.map { .markup(String($0)) }
        case .iterator(let iterator): return iterator.drain()
        case .object(let namespace as JinjaNamespace):
            throw JinjaError.type("'\(namespace.typeName)' object is not iterable")
        default:
            throw JinjaError.type("'\(value.pythonTypeName)' object is not iterable")
        }
    }

    // MARK: Filters and tests

    func applyFilter(_ name: String, _ value: JinjaValue, _ args: JinjaCallArguments, _ scope: JinjaScope) throws -> JinjaValue {
        guard let filter = JinjaFilters.all[name] else {
            throw JinjaError.runtime("No filter named '\(name)' found.")
        }
        return try filter(self, value, try evalArguments(args, scope))
    }

    func applyFilter(_ name: String, _ value: JinjaValue, _ args: JinjaArguments) throws -> JinjaValue {
        guard let filter = JinjaFilters.all[name] else {
            throw JinjaError.runtime("No filter named '\(name)' found.")
        }
        return try filter(self, value, args)
    }

    /// A `{% filter %}` or `{% set x | f %}` chain, whose innermost operand is the rendered body.
    private func applyFilterChain(_ expr: JinjaExpr, to input: JinjaValue, _ scope: JinjaScope) throws -> JinjaValue {
        guard case .filter(let base, let name, let args, _) = expr else { return try eval(expr, scope) }
        let value = try base.map { try applyFilterChain($0, to: input, scope) } ?? input
        return try applyFilter(name, value, args, scope)
    }

    func applyTest(_ name: String, _ value: JinjaValue, _ args: JinjaArguments) throws -> Bool {
        guard let test = JinjaTestFunctions.all[name] else {
            throw JinjaError.runtime("No test named '\(name)' found.")
        }
        return try test(self, value, args)
    }
}

extension JinjaValue {
    var isDoubleValue: Bool {
        if case .double = self { return true }
        return false
    }
}
