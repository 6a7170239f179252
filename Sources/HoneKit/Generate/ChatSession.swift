import Foundation

/// A multi-turn conversation in a template's format. When the conversation no longer fits the context (with room
/// for the answer), the oldest turns are dropped, a user message and its answer at a time.
public final class ChatSession {
    public let template: PromptTemplate
    public let tokenizer: Tokenizer
    public var system: String?
    public private(set) var messages: [ChatMessage] = []
    /// Positions the prompt plus answer may use.
    public var contextLimit: Int
    public var maxNewTokens: Int
    /// Every message is a new instruction in the template's single-turn prompt, with no history: what alpaca-lora's
    /// generate.py does, and the exact format `hone train sft` trains on (for a chat template, a conversation of
    /// that one message).
    public var singleTurn = false

    public init(template: PromptTemplate, tokenizer: Tokenizer, contextLimit: Int, maxNewTokens: Int, system: String? = nil) {
        self.template = template
        self.tokenizer = tokenizer
        self.contextLimit = contextLimit
        self.maxNewTokens = maxNewTokens
        self.system = system
    }

    public func reset() { messages.removeAll() }

    /// The prompt ids for a new user message, dropping the oldest turns if needed. Throws when even the new
    /// message alone does not fit.
    public func prompt(for userMessage: String) throws -> [Int32] {
        if singleTurn {
            messages = [ChatMessage(role: .user, content: userMessage)]
            // A chat template's single-turn prompt is the conversation of this message alone (what `pieces(instruction:)`
            // gives, with the template's default system text, unless a system prompt was given).
            let pieces = template.promptNoInput == nil && system != nil
                ? try template.pieces(conversation: messages, system: system)
                : try template.pieces(instruction: userMessage, input: nil)
            let ids = template.encode(pieces, with: tokenizer)
            let room = min(maxNewTokens, max(1, contextLimit / 4))
            guard ids.count + room <= contextLimit else {
                messages.removeAll()
                throw HoneError.contextOverflow(needed: ids.count + room, limit: contextLimit)
            }
            return ids
        }
        messages.append(ChatMessage(role: .user, content: userMessage))
        while true {
            // Markup and messages are tokenized apart: the template's special tokens (<|im_start|>, </s>) become
            // ids, while the same text typed by the user stays text.
            let ids = template.encode(try template.pieces(conversation: messages, system: system), with: tokenizer)
            let room = min(maxNewTokens, max(1, contextLimit / 4))
            if ids.count + room <= contextLimit { return ids }
            if messages.count <= 1 {
                messages.removeAll()
                throw HoneError.contextOverflow(needed: ids.count + room, limit: contextLimit)
            }
            // Drop the oldest exchange (a user message and the answer after it).
            messages.removeFirst(min(2, messages.count - 1))
        }
    }

    /// Records the model's answer so the next turn sees it.
    public func answered(_ text: String) { messages.append(ChatMessage(role: .assistant, content: text)) }
}
