import Foundation

// MARK: - Jinja chat templates

/// A model's own Jinja chat template (GGUF `tokenizer.chat_template`, `tokenizer_config.json`'s `chat_template`,
/// `chat_template.jinja`, or a `.jinja` file), rendered as transformers' `apply_chat_template` renders it, with
/// the BOS and EOS texts of the model's tokenizer.
public struct ChatTemplate: Sendable, Equatable {
    public let source: String
    public let bosToken: String?
    public let eosToken: String?
    /// Where the template came from, for messages ("model.gguf (tokenizer.chat_template)").
    public let origin: String
    /// Extra variables every render sees, as the keyword arguments of transformers' `apply_chat_template` and
    /// llama-server's `chat_template_kwargs` (`{"enable_thinking": false}` for Qwen3 and SmolLM3).
    public var variables: [String: JinjaValue] = [:]
    private let parsed: JinjaTemplate

    /// Parses `source`; a syntax error names `origin` with the line and column.
    public init(source: String, bosToken: String?, eosToken: String?, origin: String) throws {
        self.source = source
        self.bosToken = bosToken
        self.eosToken = eosToken
        self.origin = origin
        do {
            parsed = try JinjaTemplate(source)
        } catch let error as JinjaError {
            throw Self.describe(error, origin: origin)
        }
    }

    public static func == (lhs: ChatTemplate, rhs: ChatTemplate) -> Bool {
        lhs.source == rhs.source && lhs.bosToken == rhs.bosToken && lhs.eosToken == rhs.eosToken
    }

    /// The rendered prompt of `messages` (role and content of each; a system message first when `system` is given),
    /// opened for the assistant's reply when `addGenerationPrompt`.
    public func render(_ messages: [ChatMessage], system: String?, addGenerationPrompt: Bool) throws -> String {
        var list: [JinjaValue] = []
        if let system, !system.isEmpty { list.append(["role": "system", "content": .string(system)]) }
        for message in messages { list.append(["role": .string(message.role.rawValue), "content": .string(message.content)]) }
        return try render(messages: list, addGenerationPrompt: addGenerationPrompt)
    }

    /// The rendered prompt of messages given as JSON-like values (`hone template`: any fields a template reads).
    public func render(messages: [JinjaValue], addGenerationPrompt: Bool) throws -> String {
        do {
            return try parsed.renderChat(messages: messages, addGenerationPrompt: addGenerationPrompt,
                                         bosToken: bosToken, eosToken: eosToken, extra: variables)
        } catch let error as JinjaError {
            throw Self.describe(error, origin: origin)
        }
    }

    /// Template variables from a JSON object (`--chat-template-kwargs`, a request's `chat_template_kwargs`).
    public static func variables(json text: String, origin: String) throws -> [String: JinjaValue] {
        let value: JinjaValue
        do {
            value = try JinjaValue(json: text)
        } catch {
            throw HoneError.invalidArgument("\(origin): not valid JSON")
        }
        return try variables(value, origin: origin)
    }

    /// Template variables from a parsed JSON object; anything else is refused.
    public static func variables(_ value: JinjaValue, origin: String) throws -> [String: JinjaValue] {
        guard case .dictionary(let dictionary) = value else {
            throw HoneError.invalidArgument("\(origin) must be a JSON object (as {\"enable_thinking\": false})")
        }
        var variables: [String: JinjaValue] = [:]
        for (key, value) in dictionary.pairs {
            guard case .string(let name) = key else { throw HoneError.invalidArgument("\(origin): keys must be strings") }
            variables[name] = value
        }
        return variables
    }

    /// One line: the template's own message for `raise_exception`, else what failed and where.
    static func describe(_ error: JinjaError, origin: String) -> HoneError {
        if error.kind == .raised { return .template(origin: origin, message: error.message) }
        var place = ""
        if let line = error.line { place = " at line \(line)" + (error.column.map { ", column \($0)" } ?? "") }
        return .template(origin: origin, message: "\(error.message)\(place)")
    }

    /// Special tokens that end a turn in common chat formats; those the tokenizer knows end generation.
    public static let endOfTurnTokens = ["<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>", "<|endoftext|>",
                                         "<|end_of_text|>", "</s>", "<|return|>", "<|call|>"]
}

extension PromptTemplate {
    /// This template with `variables` added to what its Jinja chat template sees (later values win); a template
    /// without one (alpaca, JSON templates) is returned as it is.
    public func withChatTemplateVariables(_ variables: [String: JinjaValue]) -> PromptTemplate {
        guard var chat = chatTemplate, !variables.isEmpty else { return self }
        chat.variables.merge(variables) { $1 }
        var copy = self
        copy.chatTemplate = chat
        return copy
    }

    /// A template that renders conversations with a Jinja chat template (named "chat_template" in adapters and
    /// messages). Its text holds the special tokens it needs (BOS included when the template writes
    /// `bos_token`), so no BOS is added on top, as transformers' `apply_chat_template` does not add one.
    public static func chat(_ template: ChatTemplate) -> PromptTemplate {
        var prompt = PromptTemplate(name: PromptTemplate.chatTemplateName, description: "the model's chat template (\(template.origin))",
                                    addsBOS: false, endTokens: ChatTemplate.endOfTurnTokens)
        prompt.chatTemplate = template
        return prompt
    }

    /// The name recorded for the model's own chat template.
    public static let chatTemplateName = "chat_template"
}

// MARK: - Messages as JSON

extension PromptTemplate {
    /// The prompt of a list of messages given as JSON objects (`{"role", "content", ...}`, the OpenAI chat format):
    /// a Jinja template sees every field; a data template takes one "system" message and user/assistant turns and
    /// always opens the reply. Errors name `origin` (the messages' file).
    public func render(messages: [JinjaValue], addGenerationPrompt: Bool, origin: String) throws -> String {
        if let chatTemplate { return try chatTemplate.render(messages: messages, addGenerationPrompt: addGenerationPrompt) }
        var system: String?
        var conversation: [ChatMessage] = []
        for (index, message) in messages.enumerated() {
            guard case .dictionary(let fields) = message, case .string(let role)? = fields["role"],
                  case .string(let content)? = fields["content"] else {
                throw HoneError.malformedFile(path: origin, message: "message \(index + 1): expected {\"role\": string, \"content\": string}")
            }
            switch role {
            case "system" where index == 0: system = content
            case "user": conversation.append(.user(content))
            case "assistant": conversation.append(.assistant(content))
            default:
                throw HoneError.malformedFile(path: origin, message: "message \(index + 1): role '\(role)' is not one the '\(name)' template has (system first, then user and assistant)")
            }
        }
        return try prompt(conversation: conversation, system: system ?? "")
    }
}
