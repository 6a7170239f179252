import Foundation

// MARK: - Expressions

/// A parsed expression. `at` is the scalar offset of the token that starts it, for error positions.
indirect enum JinjaExpr: Sendable {
    case literal(JinjaValue)
    case name(String, at: Int)
    case list([JinjaExpr])
    case tuple([JinjaExpr])
    case dict([(JinjaExpr, JinjaExpr)])
    /// `a.b` (attribute first, then item, as jinja2's `getattr`).
    case getAttr(JinjaExpr, String, at: Int)
    /// `a[b]` and `a.0` (item first, then attribute, as jinja2's `getitem`).
    case getItem(JinjaExpr, JinjaExpr, at: Int)
    /// `start:stop:step` inside brackets.
    case slice(JinjaExpr?, JinjaExpr?, JinjaExpr?)
    case call(JinjaExpr, JinjaCallArguments, at: Int)
    /// `value | name(args)`; the operand is nil in `{% filter %}` and `{% set x | f %}`, where the filter
    /// applies to the rendered body.
    case filter(JinjaExpr?, String, JinjaCallArguments, at: Int)
    case test(JinjaExpr, String, JinjaCallArguments, at: Int)
    case unary(String, JinjaExpr, at: Int)
    case binary(String, JinjaExpr, JinjaExpr, at: Int)
    case and(JinjaExpr, JinjaExpr)
    case or(JinjaExpr, JinjaExpr)
    case not(JinjaExpr)
    /// Python-style chained comparison `a < b <= c`; operators are ==, !=, <, <=, >, >=, in, notin.
    case compare(JinjaExpr, [(String, JinjaExpr)], at: Int)
    /// `a ~ b ~ c`.
    case concat([JinjaExpr])
    /// `then if test else otherwise`; without `else` the result is undefined.
    case conditional(test: JinjaExpr, then: JinjaExpr, otherwise: JinjaExpr?)

    var offset: Int? {
        switch self {
        case .name(_, let at), .getAttr(_, _, let at), .getItem(_, _, let at), .call(_, _, let at),
            .filter(_, _, _, let at), .test(_, _, _, let at), .unary(_, _, let at), .binary(_, _, _, let at),
            .compare(_, _, let at):
            return at
        default:
            return nil
        }
    }
}

struct JinjaCallArguments: Sendable {
    var positional: [JinjaExpr] = []
    var keyword: [(String, JinjaExpr)] = []
    /// `*args` and `**kwargs` in a call.
    var splat: JinjaExpr? = nil
    var keywordSplat: JinjaExpr? = nil

    static let none = JinjaCallArguments()
}

// MARK: - Statements

/// Where `{% set %}` and `{% for %}` put values.
indirect enum JinjaTarget: Sendable {
    case name(String)
    case tuple([JinjaTarget])
    /// `ns.attr` (only namespaces accept attribute assignment).
    case namespaceAttribute(String, String)

    var names: [String] {
        switch self {
        case .name(let n): return [n]
        case .tuple(let items): return items.flatMap(\.names)
        case .namespaceAttribute: return []
        }
    }
}

struct JinjaMacro: Sendable {
    let name: String
    let parameters: [(name: String, defaultValue: JinjaExpr?)]
    let body: [JinjaNode]
    /// Whether the body mentions `varargs`, `kwargs` or `caller`: jinja2 only accepts extra positional or
    /// keyword arguments, or a call block, for macros that use them.
    let usesVarargs: Bool
    let usesKwargs: Bool
    let usesCaller: Bool
}

struct JinjaForLoop: Sendable {
    let target: JinjaTarget
    let iterable: JinjaExpr
    let filter: JinjaExpr?
    let body: [JinjaNode]
    let elseBody: [JinjaNode]
    let recursive: Bool
    let at: Int
}

indirect enum JinjaNode: Sendable {
    case text(String)
    case output(JinjaExpr, at: Int)
    case ifBlock([(test: JinjaExpr, body: [JinjaNode])], otherwise: [JinjaNode], at: Int)
    case forLoop(JinjaForLoop)
    case set(JinjaTarget, JinjaExpr, at: Int)
    case setBlock(JinjaTarget, filter: JinjaExpr?, body: [JinjaNode], at: Int)
    case macro(JinjaMacro, at: Int)
    /// `{% call(params) m(args) %}body{% endcall %}`: the body becomes `caller`.
    case callBlock(JinjaExpr, caller: JinjaMacro, at: Int)
    case filterBlock(JinjaExpr, body: [JinjaNode], at: Int)
    case with([(JinjaTarget, JinjaExpr)], body: [JinjaNode], at: Int)
    /// transformers' `{% generation %}`: renders its body like a call block's caller (its own scope).
    case generation([JinjaNode], at: Int)
    case breakLoop
    case continueLoop
}
