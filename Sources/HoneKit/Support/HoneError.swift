import Foundation

/// Every error Hone reports: one line that says what went wrong and where (file, tensor, record).
public enum HoneError: Error, CustomStringConvertible, Equatable {
    case fileNotFound(path: String)
    case io(path: String, message: String)
    /// A file whose bytes do not follow its format (truncated, offsets out of range, bad magic).
    case malformedFile(path: String, message: String)
    case missingConfigKey(path: String, key: String)
    case invalidConfig(path: String, message: String)
    case unsupportedArchitecture(name: String, path: String)
    case missingTensor(name: String, path: String)
    case tensorShape(name: String, expected: [Int], actual: [Int], path: String)
    case unsupportedDType(name: String, dtype: String, path: String)
    case tokenOutOfRange(token: Int, vocabularySize: Int, location: String)
    /// A record of an input file (JSON, JSONL) that cannot be used; `line` is 1-based.
    case malformedRecord(path: String, line: Int, message: String)
    case invalidArgument(String)
    case contextOverflow(needed: Int, limit: Int)
    /// Long work stopped by Ctrl-C after saving what resumes it.
    case interrupted(message: String)
    /// A run met a NaN or an infinity and stopped rather than report it as a result (training before the optimizer
    /// step, so nothing of that step is kept; evaluation and perplexity before printing a score).
    case nonFinite(message: String)
    /// A chat template that does not parse, or that raised while rendering (its own message).
    case template(origin: String, message: String)

    public var description: String {
        switch self {
        case .fileNotFound(let path):
            return "\(path): no such file or directory"
        case .io(let path, let message):
            return "\(path): \(message)"
        case .malformedFile(let path, let message):
            return "\(path): \(message)"
        case .missingConfigKey(let path, let key):
            return "\(path): missing required key '\(key)'"
        case .invalidConfig(let path, let message):
            return "\(path): \(message)"
        case .unsupportedArchitecture(let name, let path):
            return "\(path): unsupported architecture '\(name)' (supported: \(ModelArchitectures.supportedNames.joined(separator: ", ")))"
        case .missingTensor(let name, let path):
            return "\(path): missing tensor '\(name)'"
        case .tensorShape(let name, let expected, let actual, let path):
            return "\(path): tensor '\(name)' has shape \(actual), expected \(expected)"
        case .unsupportedDType(let name, let dtype, let path):
            return "\(path): tensor '\(name)' has unsupported dtype \(dtype)"
        case .tokenOutOfRange(let token, let vocabularySize, let location):
            return "\(location): token id \(token) is outside the vocabulary (0..<\(vocabularySize))"
        case .malformedRecord(let path, let line, let message):
            return "\(path):\(line): \(message)"
        case .invalidArgument(let message):
            return message
        case .contextOverflow(let needed, let limit):
            return "the sequence needs \(needed) positions but the model's context is \(limit)"
        case .nonFinite(let message):
            return message
        case .template(let origin, let message):
            return "\(origin): chat template: \(message)"
        case .interrupted(let message):
            return "interrupted: \(message)"
        }
    }
}

// MARK: - Option names in messages

/// A setting a user chose, named in a message the way that user knows it: by its option name (`cutoff_len`, the
/// spelling of the Python scripts Hone follows) for library callers, as a flag (`--cutoff-len`) once the command
/// line sets `OptionName.spelling = .flag`. The library never spells flags itself.
public struct OptionName: CustomStringConvertible, Sendable {
    public enum Spelling: Sendable { case name, flag }
    /// Set once at start-up by the executable, before any work.
    nonisolated(unsafe) public static var spelling = Spelling.name

    public let name: String
    public init(_ name: String) { self.name = name }

    public var description: String {
        switch Self.spelling {
        case .name: return name
        case .flag: return "--" + name.replacingOccurrences(of: "_", with: "-")
        }
    }
}
