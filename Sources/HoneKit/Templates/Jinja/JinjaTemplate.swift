import Foundation

// A Jinja2 interpreter for Hugging Face chat templates: the same output, byte for byte, as transformers'
// `apply_chat_template` (jinja2's ImmutableSandboxedEnvironment with trim_blocks, lstrip_blocks, loop
// controls, `{% generation %}`, and transformers' `tojson`, `raise_exception` and `strftime_now`).
//
//     let template = try JinjaTemplate(chatTemplateSource)          // parse once (syntax errors here)
//     let prompt = try template.renderChat(messages: messages, addGenerationPrompt: true,
//                                          bosToken: "<s>", eosToken: "</s>")
//
// Files: JinjaLexer (tokens, whitespace control), JinjaParser + JinjaAST, JinjaInterpreter (scopes,
// statements, expressions), JinjaOperators, JinjaValue (+ JinjaPython: str/repr), JinjaFilters,
// JinjaTestFunctions (`is ...`), JinjaBuiltins (globals) + JinjaMethods (str/dict/list methods),
// JinjaFormatting (`%`, str.format, strftime), JinjaJSON (ordered JSON in, json.dumps out).

// MARK: - Options

/// How a template is lexed and rendered.
public struct JinjaOptions: Sendable {
    /// Remove the first newline after a block or comment tag.
    public var trimBlocks: Bool
    /// Remove spaces and tabs from the start of a line up to a block or comment tag.
    public var lstripBlocks: Bool
    /// Keep a single trailing newline of the template (jinja2 drops it by default).
    public var keepTrailingNewline: Bool
    /// The clock behind `strftime_now` (tests pin it).
    public var now: @Sendable () -> Date
    /// The zone `strftime_now` formats in; Python's `datetime.now()` is the local wall-clock time.
    public var timeZone: TimeZone

    public init(trimBlocks: Bool = false, lstripBlocks: Bool = false, keepTrailingNewline: Bool = false,
                now: @escaping @Sendable () -> Date = { Date() }, timeZone: TimeZone = .current) {
        self.trimBlocks = trimBlocks
        self.lstripBlocks = lstripBlocks
        self.keepTrailingNewline = keepTrailingNewline
        self.now = now
        self.timeZone = timeZone
    }

    /// The environment transformers renders chat templates in: trim_blocks and lstrip_blocks on.
    public static var transformers: JinjaOptions { JinjaOptions(trimBlocks: true, lstripBlocks: true) }

    /// jinja2's defaults (no trimming).
    public static var jinjaDefaults: JinjaOptions { JinjaOptions() }
}

// MARK: - Template

/// A parsed template: parse once, render many times.
public struct JinjaTemplate: Sendable {
    public let options: JinjaOptions
    let nodes: [JinjaNode]
    /// The newline-normalized source, kept to turn error offsets into lines and columns.
    let source: [Unicode.Scalar]

    public init(_ source: String, options: JinjaOptions = .transformers) throws {
        var lexer = JinjaLexer(source, options: options)
        let tokens = try lexer.tokenize()
        var parser = JinjaParser(tokens: tokens, source: lexer.source)
        let nodes = try parser.parse()
        try JinjaTemplate.checkNames(nodes, soft: false, source: lexer.source)
        self.options = options
        self.nodes = nodes
        self.source = lexer.source
    }

    /// Renders with `context` as the template's variables (on top of the globals).
    public func render(_ context: [String: JinjaValue]) throws -> String {
        try JinjaInterpreter(options: options, source: source).render(nodes, context: context)
    }

    // MARK: Compile-time checks

    /// jinja2 rejects an unknown filter or test when compiling, unless it sits inside an `if` (or an inline
    /// if-expression), where it only fails if reached. Chat templates rely on that: DeepSeek's use a
    /// `from_json` filter that only runs for tool calls.
    private static func checkNames(_ nodes: [JinjaNode], soft: Bool, source: [Unicode.Scalar]) throws {
        for node in nodes {
            switch node {
            case .text, .breakLoop, .continueLoop:
                break
            case .output(let expr, _):
                try checkNames(expr, soft: soft, source: source)
            case .ifBlock(let branches, let otherwise, _):
                for branch in branches {
                    try checkNames(branch.test, soft: true, source: source)
                    try checkNames(branch.body, soft: true, source: source)
                }
                try checkNames(otherwise, soft: true, source: source)
            case .forLoop(let loop):
                try checkNames(loop.iterable, soft: soft, source: source)
                if let filter = loop.filter { try checkNames(filter, soft: false, source: source) }
                try checkNames(loop.body, soft: false, source: source)
                try checkNames(loop.elseBody, soft: false, source: source)
            case .set(_, let expr, _):
                try checkNames(expr, soft: soft, source: source)
            case .setBlock(_, let filter, let body, _):
                if let filter { try checkNames(filter, soft: soft, source: source) }
                try checkNames(body, soft: false, source: source)
            case .macro(let macro, _):
                try checkMacro(macro, source: source)
            case .callBlock(let call, let caller, _):
                try checkNames(call, soft: soft, source: source)
                try checkMacro(caller, source: source)
            case .filterBlock(let filter, let body, _):
                try checkNames(filter, soft: soft, source: source)
                try checkNames(body, soft: false, source: source)
            case .with(let assignments, let body, _):
                for (_, expr) in assignments { try checkNames(expr, soft: soft, source: source) }
                try checkNames(body, soft: false, source: source)
            case .generation(let body, _):
                try checkNames(body, soft: false, source: source)
            }
        }
    }

    private static func checkMacro(_ macro: JinjaMacro, source: [Unicode.Scalar]) throws {
        for parameter in macro.parameters {
            if let d = parameter.defaultValue { try checkNames(d, soft: false, source: source) }
        }
        try checkNames(macro.body, soft: false, source: source)
    }

    private static func checkNames(_ expr: JinjaExpr, soft: Bool, source: [Unicode.Scalar]) throws {
        func check(_ e: JinjaExpr?, _ s: Bool = soft) throws {
            if let e { try checkNames(e, soft: s, source: source) }
        }
        func checkArgs(_ args: JinjaCallArguments) throws {
            for a in args.positional { try check(a) }
            for (_, a) in args.keyword { try check(a) }
            try check(args.splat)
            try check(args.keywordSplat)
        }
        func unknown(_ kind: String, _ name: String, _ at: Int) -> JinjaError {
            let (line, column) = JinjaLexer.position(of: at, in: source)
            return .syntax("No \(kind) named '\(name)'.", line: line, column: column)
        }
        switch expr {
        case .literal, .name:
            break
        case .list(let items), .tuple(let items), .concat(let items):
            for item in items { try check(item) }
        case .dict(let pairs):
            for (k, v) in pairs {
                try check(k)
                try check(v)
            }
        case .getAttr(let base, _, _):
            try check(base)
        case .getItem(let base, let key, _):
            try check(base)
            try check(key)
        case .slice(let a, let b, let c):
            try check(a)
            try check(b)
            try check(c)
        case .call(let callee, let args, _):
            try check(callee)
            try checkArgs(args)
        case .filter(let base, let name, let args, let at):
            if !soft, JinjaFilters.all[name] == nil { throw unknown("filter", name, at) }
            try check(base)
            try checkArgs(args)
        case .test(let base, let name, let args, let at):
            if !soft, JinjaTestFunctions.all[name] == nil { throw unknown("test", name, at) }
            try check(base)
            try checkArgs(args)
        case .unary(_, let operand, _), .not(let operand):
            try check(operand)
        case .binary(_, let l, let r, _), .and(let l, let r), .or(let l, let r):
            try check(l)
            try check(r)
        case .compare(let first, let ops, _):
            try check(first)
            for (_, e) in ops { try check(e) }
        case .conditional(let test, let then, let otherwise):
            try check(test, true)
            try check(then, true)
            try check(otherwise, true)
        }
    }
}

// MARK: - Chat templates

extension JinjaTemplate {
    /// Renders a chat template with the variables transformers' `apply_chat_template` passes: `messages`
    /// (keys whose value is None dropped; reasoning copied to `thinking` and `reasoning_content`, as
    /// transformers 5 does), `tools` and `documents` (None when not given, which templates test with
    /// `is none` / `is not none`), `add_generation_prompt`, the special tokens, then `extra` (which, like
    /// transformers' kwargs, overrides the special tokens).
    public func renderChat(messages: [JinjaValue], addGenerationPrompt: Bool, bosToken: String?, eosToken: String?,
                           tools: [JinjaValue]? = nil, documents: [JinjaValue]? = nil,
                           extra: [String: JinjaValue] = [:]) throws -> String {
        var context: [String: JinjaValue] = [:]
        if let bosToken { context["bos_token"] = .string(bosToken) }
        if let eosToken { context["eos_token"] = .string(eosToken) }
        for (key, value) in extra { context[key] = value }
        context["messages"] = .array(messages.map(JinjaTemplate.normalizeMessage))
        context["tools"] = tools.map { .array($0) } ?? JinjaValue.none
        context["documents"] = documents.map { .array($0) } ?? JinjaValue.none
        context["add_generation_prompt"] = .bool(addGenerationPrompt)
        return try render(context)
    }

    /// What transformers does to each message before rendering.
    static func normalizeMessage(_ message: JinjaValue) -> JinjaValue {
        guard case .dictionary(let original) = message else { return message }
        var dict = JinjaDictionary()
        for (key, value) in original.pairs where !value.isNone { dict[key] = value }
        guard let reasoning = ["reasoning_content", "thinking", "reasoning"].lazy.compactMap({ dict[$0] }).first else {
            return .dictionary(dict)
        }
        // {"thinking": r, **message, "reasoning_content": r}
        var aliased = JinjaDictionary()
        aliased["thinking"] = reasoning
        for (key, value) in dict.pairs { aliased[key] = value }
        aliased["reasoning_content"] = reasoning
        return .dictionary(aliased)
    }
}

/// One-shot convenience: parse `source` with transformers' options and render a conversation.
public func renderChatTemplate(source: String, messages: [JinjaValue], addGenerationPrompt: Bool, bosToken: String?,
                               eosToken: String?, tools: [JinjaValue]? = nil, documents: [JinjaValue]? = nil,
                               extra: [String: JinjaValue] = [:], options: JinjaOptions = .transformers) throws -> String {
    try JinjaTemplate(source, options: options).renderChat(
        messages: messages, addGenerationPrompt: addGenerationPrompt, bosToken: bosToken, eosToken: eosToken,
        tools: tools, documents: documents, extra: extra)
}
