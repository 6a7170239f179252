import Foundation
import HoneKit

// MARK: - Opening a model for serving

/// Everything `hone serve` is given: the model, named adapters, and how many requests run and wait.
public struct ServeSetup: Sendable {
    public var model: String
    /// (name clients use, PEFT adapter directory)
    public var adapters: [(name: String, directory: String)] = []
    public var template = "auto"
    /// --chat-template-kwargs: variables the chat template sees in every request (a request's chat_template_kwargs
    /// add to them).
    public var templateVariables: [String: JinjaValue] = [:]
    /// Slots decoded together.
    public var parallel = 4
    /// Positions a slot may use (prompt + answer); nil: the model's own limit.
    public var contextSize: Int?
    /// Requests that may wait for a slot before the server answers 503; nil: 4 per slot.
    public var queueSize: Int?
    public var apiKeys: [String] = []
    /// Seconds a connection may stay idle or take to send its request's headers or body.
    public var timeout: Double = 60
    /// The name clients use for the base model; nil: the model file's or directory's name.
    public var alias: String?

    public init(model: String) { self.model = model }

    /// Parses `NAME=DIR` (a bare DIR is named after its folder).
    public static func adapter(_ text: String) -> (name: String, directory: String) {
        if let equals = text.firstIndex(of: "="), equals != text.startIndex {
            return (String(text[..<equals]), String(text[text.index(after: equals)...]))
        }
        return (URL(fileURLWithPath: text).standardized.lastPathComponent, text)
    }

    /// Reads API keys from a file, one per line (blank lines and lines starting with # are skipped).
    public static func apiKeys(file: String) throws -> [String] {
        guard let data = FileManager.default.contents(atPath: file) else { throw HoneError.fileNotFound(path: file) }
        let keys = String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty && !$0.hasPrefix("#") }
        guard !keys.isEmpty else { throw HoneError.malformedFile(path: file, message: "no API key in the file") }
        return keys
    }

    /// Opens the model and adapters and starts the engine; the server is ready to run.
    public func makeServer(log: @escaping @Sendable (String) -> Void) throws -> OpenAIServer {
        // Bounds that keep the slots, the queue arithmetic and the timer's nanoseconds within their types
        // (llama.cpp's most sequences is 256; a timeout of 1e300 s trapped converting to nanoseconds).
        guard (1...256).contains(parallel) else { throw HoneError.invalidArgument("\(OptionName("parallel")) must be between 1 and 256, not \(parallel)") }
        if let queueSize, !(0...1_000_000).contains(queueSize) {
            throw HoneError.invalidArgument("\(OptionName("queue_size")) must be between 0 and 1000000, not \(queueSize)")
        }
        guard timeout > 0, timeout <= 1_000_000 else {
            throw HoneError.invalidArgument("\(OptionName("timeout")) must be a positive number of seconds, at most 1000000, not \(timeout)")
        }
        if let contextSize, contextSize < 2 { throw HoneError.invalidArgument("\(OptionName("ctx_size")) must be at least 2") }
        let loaded = try LoadedModel.open(model)
        var sets: [AdapterSet] = []
        var names: [String] = []
        var recorded: String?
        for (name, directory) in adapters {
            guard !names.contains(name) else { throw HoneError.invalidArgument("two adapters are named '\(name)'") }
            let (set, record) = try PEFTAdapter.load(directory: directory, for: loaded.model)
            sets.append(set)
            names.append(name)
            recorded = recorded ?? record.promptTemplate
        }
        let promptTemplate = try loaded.promptTemplate(template, recorded: recorded).withChatTemplateVariables(templateVariables)
        if !templateVariables.isEmpty, promptTemplate.chatTemplate == nil {
            throw HoneError.invalidArgument("\(OptionName("chat_template_kwargs")) needs a Jinja chat template; the '\(promptTemplate.name)' template is not one")
        }
        let engine = try ServeEngine(loaded: loaded, adapters: sets, template: promptTemplate, parallel: parallel,
                                     contextLimit: contextSize, queueLimit: queueSize ?? 4 * parallel)
        let name = alias ?? URL(fileURLWithPath: model).standardized.deletingPathExtension().lastPathComponent
        guard !names.contains(name) else { throw HoneError.invalidArgument("an adapter has the base model's name '\(name)'") }
        engine.start()
        return OpenAIServer(engine: engine, modelName: name, adapterNames: names, template: promptTemplate,
                            apiKeys: apiKeys, timeout: timeout, log: log)
    }
}
