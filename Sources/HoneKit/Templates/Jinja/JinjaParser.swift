import Foundation

// MARK: - Parser

/// Builds the AST from tokens, following jinja2's grammar and operator precedence:
/// conditional < or < and < not < comparison < `+ -` < `~` < `* / // %` < `**` < unary `- +` < primary with
/// postfix (`.a`, `[i]`, `(args)`), then filters `|f` and tests `is t`, which bind tighter than any operator.
struct JinjaParser {
    private let tokens: [JinjaToken]
    private let source: [Unicode.Scalar]
    private var index = 0
    /// Blocks being parsed, innermost last, for "the innermost block that needs to be closed" messages.
    private var tagStack: [String] = []
    /// The end tags each open block is waiting for, innermost last (for error messages).
    private var endTagStack: [[String]] = []
    /// Names referenced inside each macro being parsed (to know whether it uses varargs/kwargs/caller).
    private var referencedNames: [Set<String>] = []
    /// How many `for` bodies enclose the current position (inside the current macro).
    private var loopDepth = 0
    /// Nesting of expressions and blocks being parsed. The parser recurses, so absurd nesting is refused
    /// before it can exhaust the stack (jinja2 hits Python's recursion limit at a similar depth).
    private var nesting = 0
    private static let maxNesting = 200

    private mutating func enter() throws {
        nesting += 1
        if nesting > JinjaParser.maxNesting { throw fail("template is nested too deeply") }
    }

    /// One more link of a chain built in a loop (`a + b + c`, `x|f|g`, `x.a.b`, `f()()`): the tree grows a level
    /// deeper per link, and evaluating and freeing it recurse as deep, so links count against `maxNesting` like
    /// brackets do. The caller gives the levels back when its chain is done (`defer { nesting -= links }`).
    private mutating func link(_ links: inout Int) throws {
        try enter()
        links += 1
    }

    init(tokens: [JinjaToken], source: [Unicode.Scalar]) {
        self.tokens = tokens
        self.source = source
    }

    mutating func parse() throws -> [JinjaNode] {
        let (body, _) = try subparse(endTags: [])
        return body
    }

    // MARK: Token helpers

    private var current: JinjaToken { tokens[index] }

    private func peek(_ distance: Int = 1) -> JinjaToken {
        tokens[min(index + distance, tokens.count - 1)]
    }

    private mutating func advance() -> JinjaToken {
        let token = tokens[index]
        if index < tokens.count - 1 { index += 1 }
        return token
    }

    private func isName(_ name: String, _ token: JinjaToken? = nil) -> Bool {
        if case .name(let n) = (token ?? current).kind { return n == name }
        return false
    }

    private func isOp(_ op: String, _ token: JinjaToken? = nil) -> Bool {
        if case .op(let o) = (token ?? current).kind { return o == op }
        return false
    }

    private mutating func skipName(_ name: String) -> Bool {
        guard isName(name) else { return false }
        index += 1
        return true
    }

    private mutating func skipOp(_ op: String) -> Bool {
        guard isOp(op) else { return false }
        index += 1
        return true
    }

    private func fail(_ message: String, at offset: Int? = nil) -> JinjaError {
        let (line, column) = JinjaLexer.position(of: offset ?? current.offset, in: source)
        return .syntax(message, line: line, column: column)
    }

    private static func describe(_ kind: JinjaToken.Kind) -> String {
        switch kind {
        case .data: return "template data"
        case .variableBegin: return "begin of print statement"
        case .variableEnd: return "end of print statement"
        case .blockBegin: return "begin of statement block"
        case .blockEnd: return "end of statement block"
        case .name(let n): return n
        case .string: return "string"
        case .integer: return "integer"
        case .float: return "float"
        case .op(let o): return o
        case .eof: return "end of template"
        }
    }

    private mutating func expectOp(_ op: String) throws {
        guard skipOp(op) else {
            throw fail("expected token '\(op)', got '\(JinjaParser.describe(current.kind))'")
        }
    }

    private mutating func expectName() throws -> String {
        guard case .name(let n) = current.kind else {
            throw fail("expected token 'name', got '\(JinjaParser.describe(current.kind))'")
        }
        index += 1
        return n
    }

    private mutating func expectBlockEnd() throws {
        guard case .blockEnd = current.kind else {
            throw fail("expected token 'end of statement block', got '\(JinjaParser.describe(current.kind))'")
        }
        index += 1
    }

    // MARK: Template structure

    /// Parses nodes until a block tag named in `endTags` (returned, its name token consumed) or the end.
    private mutating func subparse(endTags: [String]) throws -> ([JinjaNode], String?) {
        if !endTags.isEmpty { endTagStack.append(endTags) }
        defer { if !endTags.isEmpty { endTagStack.removeLast() } }
        var body: [JinjaNode] = []
        while true {
            let token = current
            switch token.kind {
            case .data(let text):
                index += 1
                body.append(.text(text))
            case .variableBegin:
                index += 1
                let expr = try parseTuple(withCondition: true)
                guard case .variableEnd = current.kind else {
                    throw fail("expected token 'end of print statement', got '\(JinjaParser.describe(current.kind))'")
                }
                index += 1
                body.append(.output(expr, at: token.offset))
            case .blockBegin:
                index += 1
                if case .name(let n) = current.kind, endTags.contains(n) {
                    index += 1
                    return (body, n)
                }
                body.append(contentsOf: try parseStatement())
                try expectBlockEnd()
            case .eof:
                if !endTags.isEmpty { throw fail(unknownTagMessage(nil)) }
                return (body, nil)
            default:
                throw fail("unexpected '\(JinjaParser.describe(token.kind))'")
            }
        }
    }

    /// The body of a block statement: the rest of the opening tag must be `%}`, then nodes up to one of
    /// `endTags`, whose name is returned (the caller consumes anything after it).
    private mutating func parseBody(_ endTags: [String]) throws -> ([JinjaNode], String) {
        _ = skipOp(":")  // jinja2 accepts `{% for x in y: %}` for Python habits
        try expectBlockEnd()
        let (body, end) = try subparse(endTags: endTags)
        return (body, end!)
    }

    /// A body that jinja2 compiles into a function of its own (set/filter blocks, `{% generation %}`), where
    /// `break` and `continue` cannot reach an enclosing loop.
    private mutating func parseIsolatedBody(_ endTags: [String]) throws -> ([JinjaNode], String) {
        let saved = loopDepth
        loopDepth = 0
        defer { loopDepth = saved }
        return try parseBody(endTags)
    }

    /// jinja2's wording for an unknown tag (`name`) or an early end of the template (nil).
    private func unknownTagMessage(_ name: String?) -> String {
        var message = name.map { "Encountered unknown tag '\($0)'." } ?? "Unexpected end of template."
        if let looking = endTagStack.last {
            let expected = Set(endTagStack.joined())
            let list = looking.map { "'\($0)'" }.joined(separator: " or ")
            if let name, expected.contains(name) {
                message += " You probably made a nesting mistake. Jinja is expecting this tag, but currently looking for \(list)."
            } else {
                message += " Jinja was looking for the following tags: \(list)."
            }
        }
        if let open = tagStack.last { message += " The innermost block that needs to be closed is '\(open)'." }
        return message
    }

    private mutating func parseStatement() throws -> [JinjaNode] {
        let token = current
        guard case .name(let tag) = token.kind else { throw fail("tag name expected") }
        try enter()
        defer { nesting -= 1 }
        tagStack.append(tag)
        defer { tagStack.removeLast() }
        switch tag {
        case "for": return [try parseFor()]
        case "if": return [try parseIf()]
        case "set": return [try parseSet()]
        case "macro": return [try parseMacro()]
        case "call": return [try parseCallBlock()]
        case "filter": return [try parseFilterBlock()]
        case "with": return [try parseWith()]
        case "generation":
            index += 1
            let (body, _) = try parseIsolatedBody(["endgeneration"])
            return [.generation(body, at: token.offset)]
        case "print":
            index += 1
            var nodes: [JinjaNode] = []
            while !isBlockEnd {
                if !nodes.isEmpty { try expectOp(",") }
                let start = current.offset
                nodes.append(.output(try parseExpression(), at: start))
            }
            return nodes
        case "break", "continue":
            index += 1
            guard loopDepth > 0 else { throw fail("'\(tag)' outside of a loop", at: token.offset) }
            return [tag == "break" ? .breakLoop : .continueLoop]
        case "block", "extends", "include", "import", "from", "autoescape":
            throw fail("the '\(tag)' tag is not supported in chat templates", at: token.offset)
        default:
            tagStack.removeLast()
            defer { tagStack.append(tag) }
            throw fail(unknownTagMessage(tag), at: token.offset)
        }
    }

    private var isBlockEnd: Bool {
        if case .blockEnd = current.kind { return true }
        return false
    }

    private mutating func parseFor() throws -> JinjaNode {
        let start = advance().offset
        let target = try parseAssignTarget(extraEnd: ["in"])
        guard skipName("in") else {
            throw fail("expected token 'in', got '\(JinjaParser.describe(current.kind))'")
        }
        let iterable = try parseTuple(withCondition: false, extraEnd: ["recursive"])
        var filter: JinjaExpr? = nil
        if skipName("if") { filter = try parseExpression() }
        let recursive = skipName("recursive")
        loopDepth += 1
        let (body, end) = try parseBody(["endfor", "else"])
        loopDepth -= 1
        var elseBody: [JinjaNode] = []
        if end == "else" {
            (elseBody, _) = try parseBody(["endfor"])
        }
        return .forLoop(JinjaForLoop(target: target, iterable: iterable, filter: filter, body: body,
                                     elseBody: elseBody, recursive: recursive, at: start))
    }

    private mutating func parseIf() throws -> JinjaNode {
        let start = advance().offset
        var branches: [(test: JinjaExpr, body: [JinjaNode])] = []
        var otherwise: [JinjaNode] = []
        while true {
            let test = try parseTuple(withCondition: false)
            let (body, end) = try parseBody(["elif", "else", "endif"])
            branches.append((test, body))
            if end == "elif" { continue }
            if end == "else" { (otherwise, _) = try parseBody(["endif"]) }
            break
        }
        return .ifBlock(branches, otherwise: otherwise, at: start)
    }

    private mutating func parseSet() throws -> JinjaNode {
        let start = advance().offset
        let target = try parseAssignTarget(withNamespace: true)
        if skipOp("=") {
            return .set(target, try parseTuple(withCondition: true), at: start)
        }
        let filter = try parseFilter(nil, startInline: false)
        let (body, _) = try parseIsolatedBody(["endset"])
        return .setBlock(target, filter: filter, body: body, at: start)
    }

    private mutating func parseMacro() throws -> JinjaNode {
        let start = advance().offset
        let name = try expectName()
        let macro = try parseMacroDefinition(name: name, endTag: "endmacro")
        return .macro(macro, at: start)
    }

    /// The signature `(a, b=1)` (if `requireSignature` or present) and the body up to `endTag`.
    private mutating func parseMacroDefinition(name: String, endTag: String, signature: Bool = true,
                                               callExpr: ((inout JinjaParser) throws -> Void)? = nil) throws -> JinjaMacro {
        var parameters: [(name: String, defaultValue: JinjaExpr?)] = []
        if signature {
            try expectOp("(")
            while !isOp(")") {
                if !parameters.isEmpty { try expectOp(",") }
                let param = try expectName()
                if skipOp("=") {
                    parameters.append((param, try parseExpression()))
                } else {
                    if parameters.contains(where: { $0.defaultValue != nil }) {
                        throw fail("non-default argument follows default argument")
                    }
                    parameters.append((param, nil))
                }
            }
            try expectOp(")")
        }
        try callExpr?(&self)
        referencedNames.append([])
        let savedLoopDepth = loopDepth
        loopDepth = 0
        let (body, _) = try parseBody([endTag])
        loopDepth = savedLoopDepth
        let used = referencedNames.removeLast()
        return JinjaMacro(name: name, parameters: parameters, body: body, usesVarargs: used.contains("varargs"),
                          usesKwargs: used.contains("kwargs"), usesCaller: used.contains("caller"))
    }

    private mutating func parseCallBlock() throws -> JinjaNode {
        let start = advance().offset
        var callExpr: JinjaExpr? = nil
        let hasSignature = isOp("(")
        let caller = try parseMacroDefinition(name: "caller", endTag: "endcall", signature: hasSignature) { parser in
            let at = parser.current.offset
            let expr = try parser.parseExpression()
            guard case .call = expr else { throw parser.fail("expected call", at: at) }
            callExpr = expr
        }
        return .callBlock(callExpr!, caller: caller, at: start)
    }

    private mutating func parseFilterBlock() throws -> JinjaNode {
        let start = advance().offset
        guard let filter = try parseFilter(nil, startInline: true) else { throw fail("expected filter name") }
        let (body, _) = try parseIsolatedBody(["endfilter"])
        return .filterBlock(filter, body: body, at: start)
    }

    private mutating func parseWith() throws -> JinjaNode {
        let start = advance().offset
        var assignments: [(JinjaTarget, JinjaExpr)] = []
        while !isBlockEnd {
            if !assignments.isEmpty { try expectOp(",") }
            let target = try parseAssignTarget()
            try expectOp("=")
            assignments.append((target, try parseExpression()))
        }
        let (body, _) = try parseBody(["endwith"])
        return .with(assignments, body: body, at: start)
    }

    /// `x`, `a, b` or (with `withNamespace`) `ns.attr`.
    private mutating func parseAssignTarget(extraEnd: Set<String> = [], withNamespace: Bool = false) throws -> JinjaTarget {
        var items: [JinjaTarget] = []
        var isTuple = false
        let start = current.offset
        while true {
            if !items.isEmpty { try expectOp(",") }
            if isTupleEnd(extraEnd) { break }
            items.append(try parseTargetPrimary(withNamespace: withNamespace))
            if isOp(",") { isTuple = true } else { break }
        }
        if !isTuple {
            guard let single = items.first else { throw fail("Expected an expression, got '\(JinjaParser.describe(current.kind))'") }
            return single
        }
        if items.isEmpty { throw fail("can't assign to 'tuple'", at: start) }
        return .tuple(items)
    }

    private mutating func parseTargetPrimary(withNamespace: Bool) throws -> JinjaTarget {
        let token = current
        switch token.kind {
        case .name(let n):
            index += 1
            if ["true", "false", "True", "False", "none", "None"].contains(n) {
                throw fail("can't assign to 'const'", at: token.offset)
            }
            if withNamespace, skipOp(".") {
                return .namespaceAttribute(n, try expectName())
            }
            return .name(n)
        case .op("("):
            index += 1
            let inner = try parseAssignTarget(extraEnd: [], withNamespace: false)
            try expectOp(")")
            return inner
        default:
            throw fail("can't assign to '\(JinjaParser.describe(token.kind))'", at: token.offset)
        }
    }

    // MARK: Expressions

    private func isTupleEnd(_ extraEnd: Set<String>) -> Bool {
        switch current.kind {
        case .variableEnd, .blockEnd, .op(")"): return true
        case .name(let n): return extraEnd.contains(n)
        default: return false
        }
    }

    /// Comma-separated expressions; more than one (or a trailing comma) makes a tuple.
    private mutating func parseTuple(withCondition: Bool, extraEnd: Set<String> = [], explicitParentheses: Bool = false) throws -> JinjaExpr {
        var items: [JinjaExpr] = []
        var isTuple = false
        while true {
            if !items.isEmpty { try expectOp(",") }
            if isTupleEnd(extraEnd) { break }
            items.append(withCondition ? try parseExpression() : try parseOr())
            if isOp(",") { isTuple = true } else { break }
        }
        if !isTuple {
            if let single = items.first { return single }
            if !explicitParentheses {
                throw fail("Expected an expression, got '\(JinjaParser.describe(current.kind))'")
            }
        }
        return .tuple(items)
    }

    mutating func parseExpression() throws -> JinjaExpr {
        try enter()
        defer { nesting -= 1 }
        var expr = try parseOr()
        var links = 0
        defer { nesting -= links }
        while skipName("if") {
            try link(&links)
            let test = try parseOr()
            var otherwise: JinjaExpr? = nil
            if skipName("else") { otherwise = try parseExpression() }
            expr = .conditional(test: test, then: expr, otherwise: otherwise)
        }
        return expr
    }

    private mutating func parseOr() throws -> JinjaExpr {
        var left = try parseAnd()
        var links = 0
        defer { nesting -= links }
        while skipName("or") {
            try link(&links)
            left = .or(left, try parseAnd())
        }
        return left
    }

    private mutating func parseAnd() throws -> JinjaExpr {
        var left = try parseNot()
        var links = 0
        defer { nesting -= links }
        while skipName("and") {
            try link(&links)
            left = .and(left, try parseNot())
        }
        return left
    }

    private mutating func parseNot() throws -> JinjaExpr {
        if skipName("not") {
            try enter()
            defer { nesting -= 1 }
            return .not(try parseNot())
        }
        return try parseCompare()
    }

    private mutating func parseCompare() throws -> JinjaExpr {
        let start = current.offset
        let first = try parseMath1()
        var ops: [(String, JinjaExpr)] = []
        while true {
            if case .op(let o) = current.kind, ["==", "!=", "<", "<=", ">", ">="].contains(o) {
                index += 1
                ops.append((o, try parseMath1()))
            } else if skipName("in") {
                ops.append(("in", try parseMath1()))
            } else if isName("not"), isName("in", peek()) {
                index += 2
                ops.append(("notin", try parseMath1()))
            } else {
                break
            }
        }
        return ops.isEmpty ? first : .compare(first, ops, at: start)
    }

    private mutating func parseMath1() throws -> JinjaExpr {
        var left = try parseConcat()
        var links = 0
        defer { nesting -= links }
        while case .op(let o) = current.kind, o == "+" || o == "-" {
            try link(&links)
            let at = advance().offset
            left = .binary(o, left, try parseConcat(), at: at)
        }
        return left
    }

    private mutating func parseConcat() throws -> JinjaExpr {
        var items = [try parseMath2()]
        while skipOp("~") { items.append(try parseMath2()) }
        return items.count == 1 ? items[0] : .concat(items)
    }

    private mutating func parseMath2() throws -> JinjaExpr {
        var left = try parsePow()
        var links = 0
        defer { nesting -= links }
        while case .op(let o) = current.kind, ["*", "/", "//", "%"].contains(o) {
            try link(&links)
            let at = advance().offset
            left = .binary(o, left, try parsePow(), at: at)
        }
        return left
    }

    private mutating func parsePow() throws -> JinjaExpr {
        var left = try parseUnary()
        var links = 0
        defer { nesting -= links }
        while isOp("**") {
            try link(&links)
            let at = advance().offset
            left = .binary("**", left, try parseUnary(), at: at)
        }
        return left
    }

    private mutating func parseUnary(withFilter: Bool = true) throws -> JinjaExpr {
        var node: JinjaExpr
        if case .op(let o) = current.kind, o == "-" || o == "+" {
            let at = advance().offset
            try enter()
            defer { nesting -= 1 }
            node = .unary(o, try parseUnary(withFilter: false), at: at)
        } else {
            node = try parsePrimary()
        }
        node = try parsePostfix(node)
        if withFilter { node = try parseFilterExpression(node) }
        return node
    }

    private mutating func parsePrimary() throws -> JinjaExpr {
        let token = current
        switch token.kind {
        case .name(let n):
            index += 1
            switch n {
            case "true", "True": return .literal(.bool(true))
            case "false", "False": return .literal(.bool(false))
            case "none", "None": return .literal(.none)
            default:
                for i in referencedNames.indices { referencedNames[i].insert(n) }
                return .name(n, at: token.offset)
            }
        case .string(let s):
            index += 1
            // Adjacent literals concatenate, as in Python.
            var text = s
            while case .string(let more) = current.kind {
                text += more
                index += 1
            }
            return .literal(.string(text))
        case .integer(let i):
            index += 1
            return .literal(.int(i))
        case .float(let d):
            index += 1
            return .literal(.double(d))
        case .op("("):
            index += 1
            let expr = try parseTuple(withCondition: true, explicitParentheses: true)
            try expectOp(")")
            return expr
        case .op("["):
            index += 1
            var items: [JinjaExpr] = []
            while !isOp("]") {
                if !items.isEmpty { try expectOp(",") }
                if isOp("]") { break }
                items.append(try parseExpression())
            }
            try expectOp("]")
            return .list(items)
        case .op("{"):
            index += 1
            var items: [(JinjaExpr, JinjaExpr)] = []
            while !isOp("}") {
                if !items.isEmpty { try expectOp(",") }
                if isOp("}") { break }
                let key = try parseExpression()
                try expectOp(":")
                items.append((key, try parseExpression()))
            }
            try expectOp("}")
            return .dict(items)
        default:
            throw fail("unexpected '\(JinjaParser.describe(token.kind))'")
        }
    }

    private mutating func parsePostfix(_ base: JinjaExpr) throws -> JinjaExpr {
        var node = base
        var links = 0
        defer { nesting -= links }
        while true {
            if isOp(".") || isOp("[") || isOp("(") { try link(&links) }
            if isOp(".") || isOp("[") {
                node = try parseSubscript(node)
            } else if isOp("(") {
                let at = current.offset
                node = .call(node, try parseCallArguments(), at: at)
            } else {
                return node
            }
        }
    }

    private mutating func parseFilterExpression(_ base: JinjaExpr) throws -> JinjaExpr {
        var node = base
        var links = 0
        defer { nesting -= links }
        while true {
            if isOp("|") || isName("is") || isOp("(") { try link(&links) }
            if isOp("|") {
                node = try parseFilter(node, startInline: false)!
            } else if isName("is") {
                node = try parseTest(node)
            } else if isOp("(") {
                let at = current.offset
                node = .call(node, try parseCallArguments(), at: at)
            } else {
                return node
            }
        }
    }

    private mutating func parseSubscript(_ base: JinjaExpr) throws -> JinjaExpr {
        let token = advance()
        if isOp(".", token) {
            let attr = advance()
            switch attr.kind {
            case .name(let n): return .getAttr(base, n, at: token.offset)
            case .integer(let i): return .getItem(base, .literal(.int(i)), at: token.offset)
            default: throw fail("expected name or number", at: attr.offset)
            }
        }
        var args: [JinjaExpr] = []
        while !isOp("]") {
            if !args.isEmpty { try expectOp(",") }
            args.append(try parseSubscribed())
        }
        try expectOp("]")
        return .getItem(base, args.count == 1 ? args[0] : .tuple(args), at: token.offset)
    }

    private mutating func parseSubscribed() throws -> JinjaExpr {
        var parts: [JinjaExpr?] = []
        if skipOp(":") {
            parts.append(nil)
        } else {
            let node = try parseExpression()
            guard skipOp(":") else { return node }
            parts.append(node)
        }
        if isOp(":") || isOp("]") || isOp(",") {
            parts.append(nil)
        } else {
            parts.append(try parseExpression())
        }
        if skipOp(":") {
            parts.append(isOp("]") || isOp(",") ? nil : try parseExpression())
        } else {
            parts.append(nil)
        }
        return .slice(parts[0], parts[1], parts[2])
    }

    private mutating func parseCallArguments() throws -> JinjaCallArguments {
        let open = current.offset
        try expectOp("(")
        var args = JinjaCallArguments()
        var requireComma = false
        while !isOp(")") {
            if requireComma {
                try expectOp(",")
                if isOp(")") { break }
            }
            if skipOp("*") {
                guard args.splat == nil, args.keywordSplat == nil else { throw fail("invalid syntax for function call expression", at: open) }
                args.splat = try parseExpression()
            } else if skipOp("**") {
                guard args.keywordSplat == nil else { throw fail("invalid syntax for function call expression", at: open) }
                args.keywordSplat = try parseExpression()
            } else if case .name(let key) = current.kind, isOp("=", peek()) {
                guard args.keywordSplat == nil else { throw fail("invalid syntax for function call expression", at: open) }
                index += 2
                args.keyword.append((key, try parseExpression()))
            } else {
                guard args.splat == nil, args.keywordSplat == nil, args.keyword.isEmpty else {
                    throw fail("invalid syntax for function call expression", at: open)
                }
                args.positional.append(try parseExpression())
            }
            requireComma = true
        }
        try expectOp(")")
        return args
    }

    private mutating func parseFilter(_ base: JinjaExpr?, startInline: Bool) throws -> JinjaExpr? {
        var node = base
        var inline = startInline
        var links = 0
        defer { nesting -= links }
        while isOp("|") || inline {
            try link(&links)
            if !inline { index += 1 }
            inline = false
            let at = current.offset
            var name = try expectName()
            while skipOp(".") { name += "." + (try expectName()) }
            let args = isOp("(") ? try parseCallArguments() : .none
            node = .filter(node, name, args, at: at)
        }
        return node
    }

    private mutating func parseTest(_ base: JinjaExpr) throws -> JinjaExpr {
        let at = advance().offset  // `is`
        let negated = skipName("not")
        var name = try expectName()
        while skipOp(".") { name += "." + (try expectName()) }
        var args = JinjaCallArguments()
        if isOp("(") {
            args = try parseCallArguments()
        } else {
            // A single argument without parentheses: `x is divisibleby 3`, `x is sameas none`.
            var startsArgument = false
            switch current.kind {
            case .name(let n): startsArgument = !["else", "or", "and"].contains(n)
            case .string, .integer, .float, .op("["), .op("{"): startsArgument = true
            default: break
            }
            if startsArgument {
                if isName("is") { throw fail("You cannot chain multiple tests with is") }
                args.positional = [try parsePostfix(try parsePrimary())]
            }
        }
        let test = JinjaExpr.test(base, name, args, at: at)
        return negated ? .not(test) : test
    }
}
