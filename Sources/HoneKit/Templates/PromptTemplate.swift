import Foundation

// MARK: - Messages

/// One turn of a chat.
public struct ChatMessage: Sendable, Equatable, Codable {
    public enum Role: String, Sendable, Codable {
        case user, assistant
    }

    public var role: Role
    public var content: String

    public init(role: Role, content: String) {
        self.role = role
        self.content = content
    }

    public static func user(_ content: String) -> ChatMessage { ChatMessage(role: .user, content: content) }
    public static func assistant(_ content: String) -> ChatMessage { ChatMessage(role: .assistant, content: content) }
}

/// A stretch of a rendered prompt: template markup (whose special-token names such as `<|im_start|>` or
/// `</s>` become their ids when tokenized) or content from the user (always tokenized as plain text, so
/// a user cannot inject control tokens).
public struct PromptPiece: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case markup, content
    }

    public var kind: Kind
    public var text: String

    public init(_ kind: Kind, _ text: String) {
        self.kind = kind
        self.text = text
    }
}

// MARK: - Template

/// How prompts are laid out for a model: pure data, so that a user can describe a new format in a JSON file
/// (`PromptTemplate.load(path:)`) and every built-in goes through the same code.
///
/// Single-turn prompts (`hone generate`, training) use Python-style format strings with `{instruction}`,
/// `{input}` and `{judgment}` (`{{` / `}}` for literal braces), exactly like Alpaca-LoRA's and CUT's
/// `templates/*.json`, whose files load as they are (same key names). Conversations are built from
/// per-role prefixes and suffixes:
///
///     [systemPrefix system systemSuffix]                       (placement .beforeMessages, system not empty)
///     userPrefix [system block] content userSuffix              (per user message; the system block goes
///                                                                here for placement .firstUserMessage)
///     assistantPrefix content assistantSuffix                   (per assistant message)
///     replyPrefix                                               (opens the reply)
///
/// A template without a single-turn format renders a single-turn prompt as a one-message conversation.
public struct PromptTemplate: Sendable, Equatable, Codable {
    /// Where the system text goes in a conversation.
    public enum SystemPlacement: String, Sendable, Codable {
        /// Before the first message (ChatML, Vicuna, fastchat's Alpaca).
        case beforeMessages = "before_messages"
        /// Inside the first user message, after `userPrefix` (Llama-2 chat's `[INST] <<SYS>>...`).
        case firstUserMessage = "first_user_message"
    }

    public var name: String
    public var description: String

    // Single turn.
    /// With a non-empty input: `{instruction}`, `{input}`. Nil: the input is appended to the instruction
    /// with `inputSeparator` and `promptNoInput` is used (what CUT does).
    public var promptInput: String?
    /// `{instruction}`. Nil: the instruction is sent as a one-message conversation.
    public var promptNoInput: String?
    /// `{instruction}`, `{judgment}`: CUT's `prompt_no_input_judge`. Nil: the template has no judgment form.
    public var promptJudge: String?
    /// Joins instruction and input when there is no `promptInput` (CUT: `instruction + "\n" + input`).
    public var inputSeparator: String
    /// The reply starts after the first occurrence of this marker (Alpaca's `### Response:`).
    public var responseSplit: String?

    // Conversation.
    /// The system text used when the caller gives none ("" = no system block).
    public var system: String
    public var systemPrefix: String
    public var systemSuffix: String
    public var systemPlacement: SystemPlacement
    public var userPrefix: String
    public var userSuffix: String
    public var assistantPrefix: String
    public var assistantSuffix: String
    /// Opens the assistant's reply at the end of a conversation prompt.
    public var replyPrefix: String
    /// Strip whitespace from both ends of each message (Python's `str.strip`, as Llama-2's chat template
    /// does), the system block included when it sits inside the first user message.
    public var stripsContent: Bool

    // Tokenization and generation.
    /// Whether the tokenizer's BOS goes first (when the tokenizer's configuration adds one). False for a
    /// template whose text writes the BOS itself.
    public var addsBOS: Bool
    /// Text that ends generation when the model produces it (see `StopMatcher`); the model's EOS token
    /// ends it too.
    public var stopStrings: [String]
    /// Special tokens, by name, that end the reply besides the tokenizer's EOS (ChatML's `<|im_end|>`).
    /// Names the tokenizer does not have are ignored (see `endTokenIDs(for:)`).
    public var endTokens: [String]
    /// A Jinja chat template that renders conversations instead of the prefixes and suffixes above (the model's
    /// own, `PromptTemplate.chat`); nil for templates described as data.
    public var chatTemplate: ChatTemplate? = nil

    public init(name: String, description: String = "", promptInput: String? = nil, promptNoInput: String? = nil,
                promptJudge: String? = nil, inputSeparator: String = "\n", responseSplit: String? = nil,
                system: String = "", systemPrefix: String = "", systemSuffix: String = "",
                systemPlacement: SystemPlacement = .beforeMessages, userPrefix: String = "", userSuffix: String = "",
                assistantPrefix: String = "", assistantSuffix: String = "", replyPrefix: String = "",
                stripsContent: Bool = false, addsBOS: Bool = true, stopStrings: [String] = [],
                endTokens: [String] = []) {
        self.name = name
        self.description = description
        self.promptInput = promptInput
        self.promptNoInput = promptNoInput
        self.promptJudge = promptJudge
        self.inputSeparator = inputSeparator
        self.responseSplit = responseSplit
        self.system = system
        self.systemPrefix = systemPrefix
        self.systemSuffix = systemSuffix
        self.systemPlacement = systemPlacement
        self.userPrefix = userPrefix
        self.userSuffix = userSuffix
        self.assistantPrefix = assistantPrefix
        self.assistantSuffix = assistantSuffix
        self.replyPrefix = replyPrefix
        self.stripsContent = stripsContent
        self.addsBOS = addsBOS
        self.stopStrings = stopStrings
        self.endTokens = endTokens
    }

    /// Whether `prompt(instruction:input:judgment:)` uses the judgment.
    public var supportsJudgment: Bool { promptJudge != nil }

    /// True for a template with a single-turn prompt and no turn markup at all (alpaca-lora's JSON files).
    public var isSingleTurnOnly: Bool {
        chatTemplate == nil && promptNoInput != nil
            && [userPrefix, userSuffix, assistantPrefix, assistantSuffix, replyPrefix].allSatisfy(\.isEmpty)
    }
}

// MARK: - Rendering

extension PromptTemplate {
    /// The single-turn prompt. A non-empty `input` uses `promptInput` (Alpaca-LoRA picks it when `input` is
    /// truthy, so "" counts as no input).
    public func prompt(instruction: String, input: String? = nil) throws -> String {
        Self.join(try pieces(instruction: instruction, input: input, judgment: nil))
    }

    /// The single-turn prompt with a judgment (CUT's Align-N rows): `promptJudge` when the judgment is not
    /// nil, the input joined to the instruction with `inputSeparator` as CUT does. Without a judgment (or
    /// for a template without `promptJudge`) this is `prompt(instruction:input:)`.
    public func prompt(instruction: String, input: String?, judgment: String?) throws -> String {
        Self.join(try pieces(instruction: instruction, input: input, judgment: judgment))
    }

    /// The prompt for a conversation whose last message is the user's, opened for the assistant's reply.
    /// `system` nil uses the template's default system text; "" leaves the system block out.
    public func prompt(conversation: [ChatMessage], system: String? = nil) throws -> String {
        Self.join(try pieces(conversation: conversation, system: system))
    }

    /// The single-turn prompt as markup and content pieces (for `encode(_:with:)`).
    public func pieces(instruction: String, input: String?, judgment: String? = nil) throws -> [PromptPiece] {
        let hasInput = !(input ?? "").isEmpty
        if let judgment, let promptJudge {
            let merged = hasInput ? instruction + inputSeparator + input! : instruction
            return Self.format(promptJudge, ["instruction": merged, "judgment": judgment])
        }
        if hasInput, let promptInput {
            return Self.format(promptInput, ["instruction": instruction, "input": input!])
        }
        let merged = hasInput ? instruction + inputSeparator + input! : instruction
        if let promptNoInput { return Self.format(promptNoInput, ["instruction": merged]) }
        return try pieces(conversation: [.user(merged)], system: nil)
    }

    /// The conversation prompt as markup and content pieces (for `encode(_:with:)`).
    /// With a Jinja chat template the whole rendered text is markup (its special tokens become ids), as
    /// transformers tokenizes the output of `apply_chat_template`.
    public func pieces(conversation: [ChatMessage], system: String? = nil) throws -> [PromptPiece] {
        if let chatTemplate {
            let text = try chatTemplate.render(conversation, system: system, addGenerationPrompt: true)
            return text.isEmpty ? [] : [PromptPiece(.markup, text)]
        }
        let systemText = system ?? self.system
        // alpaca-lora's JSON templates hold only the single-turn prompts: their empty turn markup made a
        // conversation the bare texts run together ("hiyoagain"). One user message is that prompt; more is refused.
        if isSingleTurnOnly {
            guard conversation.count == 1, conversation[0].role == .user, systemText.isEmpty else {
                throw HoneError.invalidArgument("template '\(name)' has only single-turn prompts (prompt_input, prompt_no_input): "
                                                + "it renders one user message and no system message; a conversation needs "
                                                + "user_prefix, assistant_prefix and reply_prefix")
            }
            return try pieces(instruction: conversation[0].content, input: nil)
        }
        var systemBlock: [PromptPiece] = []
        if !systemText.isEmpty {
            systemBlock = [PromptPiece(.markup, systemPrefix), PromptPiece(.content, systemText),
                           PromptPiece(.markup, systemSuffix)]
        }
        var result: [PromptPiece] = []
        if systemPlacement == .beforeMessages { result += systemBlock }
        var systemPending = systemPlacement == .firstUserMessage
        for message in conversation {
            var body = [PromptPiece(.content, message.content)]
            if message.role == .user, systemPending {
                body = systemBlock + body
                systemPending = false
            }
            if stripsContent { body = Self.strip(body) }
            switch message.role {
            case .user: result += [PromptPiece(.markup, userPrefix)] + body + [PromptPiece(.markup, userSuffix)]
            case .assistant:
                result += [PromptPiece(.markup, assistantPrefix)] + body + [PromptPiece(.markup, assistantSuffix)]
            }
        }
        result.append(PromptPiece(.markup, replyPrefix))
        return result.filter { !$0.text.isEmpty }
    }

    /// The reply in generated text: what lies between the first `responseSplit` marker and the next one (Python's
    /// `text.split(marker)[1]`, as CUT's generate.py takes it), stripped like Python's `str.strip()`; the whole
    /// text stripped when the template has no marker or the text does not hold it.
    ///
    /// CUT's generate.py decodes prompt + reply together and splits there (methods.md §1.9); pass the same
    /// text to reproduce it exactly. Given only the generated continuation, which usually holds no marker,
    /// the whole continuation is returned stripped.
    public func extractResponse(from generated: String) -> String {
        var text = Substring(generated)
        if let responseSplit, !responseSplit.isEmpty, let range = generated.range(of: responseSplit) {
            text = generated[range.upperBound...]
            if let next = text.range(of: responseSplit) { text = text[..<next.lowerBound] }
        }
        return Self.pythonStrip(text)
    }

    static func join(_ pieces: [PromptPiece]) -> String { pieces.map(\.text).joined() }
}

// MARK: - Tokenization

extension PromptTemplate {
    /// Token ids of a rendered prompt: the tokenizer's BOS first (when `addsBOS` and the tokenizer adds one),
    /// special-token names in markup as their ids, everything else (all content) as plain text. Runs of text
    /// between special tokens are encoded whole, so this equals encoding the joined prompt with special
    /// tokens parsed, except that user content can never produce a control token. A special token that strips
    /// whitespace (Phi-3's `<|user|>`, `<|end|>`) takes the whitespace beside it out, content's included, as the
    /// tokenizer does to the joined prompt.
    public func encode(_ pieces: [PromptPiece], with tokenizer: Tokenizer) -> [Int32] {
        var ids: [Int32] = []
        if addsBOS, tokenizer.addsBOS, let bos = tokenizer.bosTokenID { ids.append(bos) }
        let strips = tokenizer.addedTokenStrips
        let splitter = AddedTokenMatcher(tokenizer.specialTokens)
        var run = ""
        var dropsLeadingWhitespace = false
        func isWhitespace(_ character: Character) -> Bool { character.unicodeScalars.allSatisfy(strips.isWhitespace) }
        func append(_ text: Substring) {
            var text = text
            if dropsLeadingWhitespace {
                text = text.drop(while: isWhitespace)
                if !text.isEmpty { dropsLeadingWhitespace = false }
            }
            run += text
        }
        func flush() {
            if !run.isEmpty { ids += tokenizer.encode(run, addSpecialTokens: false, parseSpecial: false) }
            run = ""
        }
        for piece in pieces {
            guard piece.kind == .markup else { append(piece.text[...]); continue }
            for part in splitter.split(piece.text) {
                switch part {
                case .text(let text): append(text)
                case .special(let id):
                    let strip = strips.byID[id] ?? []
                    if strip.contains(.left) { while let last = run.last, isWhitespace(last) { run.removeLast() } }
                    flush()
                    ids.append(id)
                    dropsLeadingWhitespace = strip.contains(.right)
                }
            }
        }
        flush()
        return ids
    }

    /// The ids that end a reply with this template and tokenizer: the tokenizer's EOS and every
    /// `endTokens` name the tokenizer knows as a special token.
    public func endTokenIDs(for tokenizer: Tokenizer) -> Set<Int32> {
        var ids = Set(endTokens.compactMap { tokenizer.specialTokens[$0] })
        if let eos = tokenizer.eosTokenID { ids.insert(eos) }
        return ids
    }
}

// MARK: - Built-ins and files

extension PromptTemplate {
    /// The built-in template called `name` (see `builtinNames`), nil if there is none.
    public static func named(_ name: String) -> PromptTemplate? { builtins.first { $0.name == name } }

    /// Names of the built-in templates, in a stable order.
    public static var builtinNames: [String] { builtins.map(\.name) }

    /// A built-in name, or else the path of a template JSON file.
    public static func resolve(_ nameOrPath: String) throws -> PromptTemplate {
        if let builtin = named(nameOrPath) { return builtin }
        guard FileManager.default.fileExists(atPath: nameOrPath) else {
            throw HoneError.invalidArgument(
                "unknown template '\(nameOrPath)': not a built-in (\(builtinNames.joined(separator: ", "))) nor a file")
        }
        return try load(path: nameOrPath)
    }

    /// Reads a template from JSON: snake_case keys (`prompt_input`, `prompt_no_input`,
    /// `prompt_no_input_judge`, `response_split`, `system`, `user_prefix`, ..., see `CodingKeys`), all
    /// optional, so Alpaca-LoRA's and CUT's `templates/*.json` load as they are. The name defaults to the
    /// file's base name. Unknown keys and bad placeholders are errors naming the file.
    public static func load(path: String) throws -> PromptTemplate {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw FileManager.default.fileExists(atPath: path)
                ? HoneError.io(path: path, message: "cannot read the template file")
                : HoneError.fileNotFound(path: path)
        }
        var template: PromptTemplate
        do {
            template = try JSONDecoder().decode(PromptTemplate.self, from: data)
        } catch let error as HoneError {
            throw HoneError.malformedFile(path: path, message: "\(error)")
        } catch let error as DecodingError {
            throw HoneError.malformedFile(path: path, message: "not a prompt template: \(Self.describe(error))")
        } catch {
            throw HoneError.malformedFile(path: path, message: "not a prompt template: \(error)")
        }
        if template.name.isEmpty { template.name = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent }
        if let problem = template.validationProblem() { throw HoneError.malformedFile(path: path, message: problem) }
        return template
    }

    /// Writes the template as pretty-printed JSON (atomically, via a temporary file).
    public func save(path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try writeFileAtomically(try encoder.encode(self), to: path)
    }

    /// Checks the format strings: balanced braces and only the placeholders each one can fill.
    public func validate() throws {
        if let problem = validationProblem() { throw HoneError.invalidArgument("template '\(name)': \(problem)") }
    }

    /// What is wrong with the format strings, nil when nothing is.
    func validationProblem() -> String? {
        let checks: [(String, String?, Set<String>)] = [
            ("prompt_input", promptInput, ["instruction", "input"]),
            ("prompt_no_input", promptNoInput, ["instruction"]),
            ("prompt_no_input_judge", promptJudge, ["instruction", "judgment"]),
        ]
        for (key, format, allowed) in checks {
            guard let format else { continue }
            guard let names = Self.placeholders(format) else {
                return "\(key) has an unmatched brace (write {{ or }} for a literal one)"
            }
            if let unknown = names.first(where: { !allowed.contains($0) }) {
                let list = allowed.sorted().map { "{\($0)}" }.joined(separator: ", ")
                return "\(key) uses {\(unknown)}; it may use \(list)"
            }
        }
        return nil
    }

    private static func describe(_ error: DecodingError) -> String {
        switch error {
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .keyNotFound(_, let context),
             .dataCorrupted(let context):
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            return path.isEmpty ? context.debugDescription : "\(path): \(context.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }
}

// MARK: - Coding

extension PromptTemplate {
    enum CodingKeys: String, CodingKey, CaseIterable {
        case name, description
        case promptInput = "prompt_input"
        case promptNoInput = "prompt_no_input"
        case promptJudge = "prompt_no_input_judge"
        case inputSeparator = "input_separator"
        case responseSplit = "response_split"
        case system
        case systemPrefix = "system_prefix"
        case systemSuffix = "system_suffix"
        case systemPlacement = "system_placement"
        case userPrefix = "user_prefix"
        case userSuffix = "user_suffix"
        case assistantPrefix = "assistant_prefix"
        case assistantSuffix = "assistant_suffix"
        case replyPrefix = "reply_prefix"
        case stripsContent = "strips_content"
        case addsBOS = "adds_bos"
        case stopStrings = "stop_strings"
        case endTokens = "end_tokens"
    }

    private struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    public init(from decoder: Decoder) throws {
        // Unknown keys are refused so that a misspelt key ("stop_string") is not silently ignored.
        let all = try decoder.container(keyedBy: AnyKey.self)
        let known = Set(CodingKeys.allCases.map(\.rawValue))
        if let unknown = all.allKeys.map(\.stringValue).sorted().first(where: { !known.contains($0) }) {
            throw HoneError.invalidArgument(
                "unknown key '\(unknown)' (known: \(CodingKeys.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let defaults = PromptTemplate(name: "")
        self.init(
            name: try c.decodeIfPresent(String.self, forKey: .name) ?? defaults.name,
            description: try c.decodeIfPresent(String.self, forKey: .description) ?? defaults.description,
            promptInput: try c.decodeIfPresent(String.self, forKey: .promptInput),
            promptNoInput: try c.decodeIfPresent(String.self, forKey: .promptNoInput),
            promptJudge: try c.decodeIfPresent(String.self, forKey: .promptJudge),
            inputSeparator: try c.decodeIfPresent(String.self, forKey: .inputSeparator) ?? defaults.inputSeparator,
            responseSplit: try c.decodeIfPresent(String.self, forKey: .responseSplit),
            system: try c.decodeIfPresent(String.self, forKey: .system) ?? defaults.system,
            systemPrefix: try c.decodeIfPresent(String.self, forKey: .systemPrefix) ?? defaults.systemPrefix,
            systemSuffix: try c.decodeIfPresent(String.self, forKey: .systemSuffix) ?? defaults.systemSuffix,
            systemPlacement: try c.decodeIfPresent(SystemPlacement.self, forKey: .systemPlacement) ?? defaults.systemPlacement,
            userPrefix: try c.decodeIfPresent(String.self, forKey: .userPrefix) ?? defaults.userPrefix,
            userSuffix: try c.decodeIfPresent(String.self, forKey: .userSuffix) ?? defaults.userSuffix,
            assistantPrefix: try c.decodeIfPresent(String.self, forKey: .assistantPrefix) ?? defaults.assistantPrefix,
            assistantSuffix: try c.decodeIfPresent(String.self, forKey: .assistantSuffix) ?? defaults.assistantSuffix,
            replyPrefix: try c.decodeIfPresent(String.self, forKey: .replyPrefix) ?? defaults.replyPrefix,
            stripsContent: try c.decodeIfPresent(Bool.self, forKey: .stripsContent) ?? defaults.stripsContent,
            addsBOS: try c.decodeIfPresent(Bool.self, forKey: .addsBOS) ?? defaults.addsBOS,
            stopStrings: try c.decodeIfPresent([String].self, forKey: .stopStrings) ?? defaults.stopStrings,
            endTokens: try c.decodeIfPresent([String].self, forKey: .endTokens) ?? defaults.endTokens)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(description, forKey: .description)
        try c.encodeIfPresent(promptInput, forKey: .promptInput)
        try c.encodeIfPresent(promptNoInput, forKey: .promptNoInput)
        try c.encodeIfPresent(promptJudge, forKey: .promptJudge)
        try c.encode(inputSeparator, forKey: .inputSeparator)
        try c.encodeIfPresent(responseSplit, forKey: .responseSplit)
        try c.encode(system, forKey: .system)
        try c.encode(systemPrefix, forKey: .systemPrefix)
        try c.encode(systemSuffix, forKey: .systemSuffix)
        try c.encode(systemPlacement, forKey: .systemPlacement)
        try c.encode(userPrefix, forKey: .userPrefix)
        try c.encode(userSuffix, forKey: .userSuffix)
        try c.encode(assistantPrefix, forKey: .assistantPrefix)
        try c.encode(assistantSuffix, forKey: .assistantSuffix)
        try c.encode(replyPrefix, forKey: .replyPrefix)
        try c.encode(stripsContent, forKey: .stripsContent)
        try c.encode(addsBOS, forKey: .addsBOS)
        try c.encode(stopStrings, forKey: .stopStrings)
        try c.encode(endTokens, forKey: .endTokens)
    }
}

// MARK: - Format strings and whitespace

extension PromptTemplate {
    /// Python `str.format` with named fields only: `{name}` is replaced by its value (which is never
    /// re-scanned, so braces in user text are kept), `{{` and `}}` are literal braces. Literal stretches
    /// become markup pieces, values content pieces. An unknown name is left as written (`validate` rejects
    /// such templates).
    static func format(_ format: String, _ values: [String: String]) -> [PromptPiece] {
        var pieces: [PromptPiece] = []
        var literal = ""
        var index = format.startIndex
        while index < format.endIndex {
            let character = format[index]
            let next = format.index(after: index)
            if character == "{", next < format.endIndex, format[next] == "{" {
                literal.append("{"); index = format.index(after: next); continue
            }
            if character == "}", next < format.endIndex, format[next] == "}" {
                literal.append("}"); index = format.index(after: next); continue
            }
            if character == "{", let close = format[next...].firstIndex(of: "}") {
                let field = String(format[next..<close])
                if let value = values[field] {
                    if !literal.isEmpty { pieces.append(PromptPiece(.markup, literal)); literal = "" }
                    pieces.append(PromptPiece(.content, value))
                } else {
                    literal += format[index...close]
                }
                index = format.index(after: close)
                continue
            }
            literal.append(character)
            index = next
        }
        if !literal.isEmpty { pieces.append(PromptPiece(.markup, literal)) }
        return pieces.filter { !$0.text.isEmpty }
    }

    /// The field names of a format string, nil on an unmatched brace (Python's format would raise).
    static func placeholders(_ format: String) -> [String]? {
        var names: [String] = []
        let characters = Array(format)
        var index = 0
        while index < characters.count {
            let character = characters[index]
            if character == "{" || character == "}" {
                if index + 1 < characters.count, characters[index + 1] == character { index += 2; continue }
                guard character == "{", let close = characters[(index + 1)...].firstIndex(of: "}") else { return nil }
                names.append(String(characters[(index + 1)..<close]))
                index = close + 1
                continue
            }
            index += 1
        }
        return names
    }

    /// Python's `str.isspace` set: Unicode White_Space plus the information separators U+001C...U+001F.
    static func isPythonWhitespace(_ scalar: Unicode.Scalar) -> Bool {
        scalar.properties.isWhitespace || (0x1C...0x1F).contains(scalar.value)
    }

    /// Python's `str.strip()` (no arguments), per Unicode scalar.
    static func pythonStrip<S: StringProtocol>(_ text: S) -> String {
        let scalars = text.unicodeScalars
        guard let first = scalars.firstIndex(where: { !isPythonWhitespace($0) }) else { return "" }
        let last = scalars.lastIndex(where: { !isPythonWhitespace($0) })!
        return String(String.UnicodeScalarView(scalars[first...last]))
    }

    /// `str.strip()` applied to the concatenation of `pieces`, keeping the piece boundaries.
    static func strip(_ pieces: [PromptPiece]) -> [PromptPiece] {
        var result = pieces
        // Leading whitespace: trim pieces from the front until one keeps a non-space.
        for index in result.indices {
            let scalars = result[index].text.unicodeScalars
            if let first = scalars.firstIndex(where: { !isPythonWhitespace($0) }) {
                result[index].text = String(String.UnicodeScalarView(scalars[first...]))
                break
            }
            result[index].text = ""
        }
        for index in result.indices.reversed() {
            let scalars = result[index].text.unicodeScalars
            if let last = scalars.lastIndex(where: { !isPythonWhitespace($0) }) {
                result[index].text = String(String.UnicodeScalarView(scalars[...last]))
                break
            }
            result[index].text = ""
        }
        return result
    }
}
