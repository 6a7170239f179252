import Foundation

// MARK: - Errors

/// Every failure of parsing or rendering a template. `description` is always one line, so a command-line tool
/// can print it as is; for `raise_exception(msg)` it is exactly `msg`, because chat templates use that to tell
/// the user what is wrong with their conversation ("Conversation roles must alternate user/assistant/...").
public struct JinjaError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// The template does not parse (jinja2's TemplateSyntaxError / TemplateAssertionError).
        case syntax
        /// An operation on an undefined value (jinja2's UndefinedError).
        case undefined
        /// An operation on the wrong type of value (Python's TypeError / ValueError).
        case type
        /// Something the sandbox refuses, such as `list.append` (jinja2's SecurityError).
        case security
        /// Any other failure while rendering (jinja2's TemplateRuntimeError, FilterArgumentError, ...).
        case runtime
        /// The template called `raise_exception(message)` (jinja2's bare TemplateError).
        case raised
    }

    public let kind: Kind
    public let message: String
    /// 1-based position in the template source, where known (always for syntax errors).
    public var line: Int?
    public var column: Int?

    public init(kind: Kind, message: String, line: Int? = nil, column: Int? = nil) {
        self.kind = kind
        self.message = message
        self.line = line
        self.column = column
    }

    public var description: String {
        let flat = message.replacingOccurrences(of: "\n", with: " ")
        switch kind {
        case .raised:
            return message
        case .syntax:
            return "template syntax error at line \(line ?? 0), column \(column ?? 0): \(flat)"
        default:
            if let line { return "template error at line \(line): \(flat)" }
            return "template error: \(flat)"
        }
    }

    static func syntax(_ message: String, line: Int, column: Int) -> JinjaError {
        JinjaError(kind: .syntax, message: message, line: line, column: column)
    }

    static func runtime(_ message: String) -> JinjaError { JinjaError(kind: .runtime, message: message) }
    static func type(_ message: String) -> JinjaError { JinjaError(kind: .type, message: message) }
    static func undefined(_ message: String) -> JinjaError { JinjaError(kind: .undefined, message: message) }
    static func security(_ message: String) -> JinjaError { JinjaError(kind: .security, message: message) }
}

extension JinjaError: LocalizedError {
    public var errorDescription: String? { description }
}
