import Foundation
import HoneKit
import HTTPTypes
import Hummingbird
import HummingbirdCore
import NIOCore

// MARK: - Server

/// The OpenAI-compatible HTTP API over one `ServeEngine`: chat and text completions (streamed as server-sent
/// events or whole), models, health, the tokenizer endpoints lm-eval's remote tokenizer reads, and a chat page.
public final class OpenAIServer: Sendable {
    public let engine: ServeEngine
    /// The name clients use for the base model, and the names of the adapters (index = engine adapter index).
    public let modelName: String
    public let adapterNames: [String]
    public let template: PromptTemplate
    /// Accepted API keys; empty: no key needed.
    public let apiKeys: [String]
    let created = Int(Date().timeIntervalSince1970)
    let log: @Sendable (String) -> Void
    /// Bytes one request body may have (larger: 413). lm-eval's largest batches of token-id prompts stay far below.
    public static let bodyLimit = 16 << 20
    var bodyLimit: Int { Self.bodyLimit }
    /// Bytes of bodies received at once across all connections (beyond: 503).
    let bodyBudget = BodyBudget(limit: 256 << 20)
    /// Seconds a connection may stay idle (no request, or headers not finished), and a body may take to arrive.
    public let timeout: Double

    /// Bytes of text /tokenize takes (whole documents for lm-eval's rolling log-likelihoods are far smaller).
    static let tokenizeLimit = 1 << 20
    /// Where request bodies are parsed and tokenized (two at a time).
    let workers: OperationQueue = {
        let queue = OperationQueue()
        queue.maxConcurrentOperationCount = 2
        queue.name = "hone-serve-parse"
        return queue
    }()
    /// Bytes of the longest token's text.
    let longestToken: Int

    public init(engine: ServeEngine, modelName: String, adapterNames: [String], template: PromptTemplate,
                apiKeys: [String], timeout: Double = 60, log: @escaping @Sendable (String) -> Void) {
        let tokenizer = engine.tokenizer
        longestToken = max(1, (0..<Int32(tokenizer.vocabularySize)).map { tokenizer.tokenBytes($0, includeSpecial: true).count }.max() ?? 1)
        self.engine = engine
        self.modelName = modelName
        self.adapterNames = adapterNames
        self.template = template
        self.apiKeys = apiKeys
        self.timeout = timeout
        self.log = log
    }

    var tokenizer: Tokenizer { engine.tokenizer }

    /// Every route, behind the request log and the API key check.
    public func makeRouter() -> Router<ServeContext> {
        let router = Router(context: ServeContext.self)
        router.add(middleware: RequestLogMiddleware(log: log))
        router.add(middleware: APIKeyMiddleware(keys: apiKeys))
        router.add(middleware: UnknownRouteMiddleware())
        router.get("/health") { _, _ in
            let load = self.engine.load, counts = self.engine.counts
            return self.json(["status": "ok", "slots": .int(self.engine.parallel), "slots_busy": .int(load.busy),
                              "queued": .int(load.waiting), "requests_finished": .int(counts.finished),
                              "requests_cancelled": .int(counts.cancelled)])
        }
        router.get("/") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8"],
                     body: .init(byteBuffer: ByteBuffer(string: ChatPage.html)))
        }
        router.get("/v1/models") { _, _ in self.json(self.modelsList()) }
        router.get("/v1/models/:id") { _, context in
            let id = context.parameters.get("id") ?? ""
            guard let entry = self.modelEntries().first(where: { $0.0 == id }) else {
                throw APIError.unknownModel(id, available: self.modelEntries().map(\.0))
            }
            return self.json(entry.1)
        }
        router.get("/tokenizer_info") { _, _ in self.json(self.tokenizerInfo()) }
        router.post("/tokenize") { request, context in
            let data = try await self.body(request, context: context)
            return try await self.offload { try self.tokenize(RequestFields(body: data)) }
        }
        router.post("/detokenize") { request, context in
            let data = try await self.body(request, context: context)
            return try await self.offload { try self.detokenize(RequestFields(body: data)) }
        }
        // llama-server's: the prompt a chat request's messages render to, without running the model.
        router.post("/apply-template") { request, context in
            let data = try await self.body(request, context: context)
            return try await self.offload {
                let fields = try RequestFields(body: data)
                guard let messages = fields.value("messages") else {
                    throw APIError.invalid("'messages' is required.", param: "messages")
                }
                let prompt = try self.chatPromptText(messages, addGenerationPrompt: try fields.bool("add_generation_prompt") ?? true,
                                                     variables: try self.templateVariables(fields))
                return self.json(["prompt": .string(prompt)])
            }
        }
        router.post("/v1/chat/completions") { request, context in try await self.completion(request, context: context, chat: true) }
        router.post("/v1/completions") { request, context in try await self.completion(request, context: context, chat: false) }
        return router
    }

    /// Serves until SIGINT or SIGTERM (or until the task is cancelled); `onRunning` gets the bound port.
    public func run(host: String, port: Int, onRunning: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        raiseOpenFileLimit()
        // The idle timeout closes keep-alive connections left unused and connections whose headers never finish
        // (slow clients); a request being answered is never cut by it.
        let http = HTTP1Channel.Configuration(additionalChannelHandlers: [ConnectionWatchHandler()],
                                              idleTimeout: .milliseconds(Int64(timeout * 1000)))
        let app = Application(router: makeRouter(), server: .http1(configuration: http),
                              configuration: .init(address: .hostname(host, port: port), serverName: "hone"),
                              onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? port) })
        try await app.runService()
    }

    // MARK: Helpers

    /// Runs parsing and tokenizing on `workers`, so that a huge body keeps neither the event loops nor Swift's
    /// cooperative threads busy, and at most two bodies are expanded into JSON values at once (bounded memory).
    func offload<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            workers.addOperation { continuation.resume(with: Result(catching: work)) }
        }
    }

    /// Refuses a text that cannot fit in the context whatever it tokenizes to, before tokenizing it: no token
    /// covers more than `longestToken` bytes (a margin of 4 covers normalizers that shorten text).
    func refuseSurelyTooLong(_ text: String, param: String) throws {
        let fewestTokens = text.utf8.count / (4 * longestToken)
        if fewestTokens >= engine.contextLimit {
            throw APIError.contextLengthExceeded(tokens: fewestTokens, limit: engine.contextLimit, param: param, atLeast: true)
        }
    }

    func json(_ value: JSONOutput, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json"],
                 body: .init(byteBuffer: ByteBuffer(string: value.text)))
    }

    /// The request body, read within the size limit, the shared budget and the time limit. A body refused midway is
    /// not read further: the connection closes after the error answer.
    func body(_ request: Request, context: ServeContext) async throws -> Data {
        let tooLarge = APIError(status: .contentTooLarge, message: "The request body is larger than \(bodyLimit) bytes.",
                                type: "invalid_request_error", code: "request_too_large")
        if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > bodyLimit {
            context.stopReading()
            throw tooLarge
        }
        let budget = bodyBudget, limit = bodyLimit, body = request.body
        let reserved = ReservedBytes()
        defer { budget.release(reserved.count) }
        let result: Result<Data, APIError>? = try await withThrowingTaskGroup(of: Result<Data, APIError>?.self) { group in
            group.addTask {
                var data = Data()
                for try await buffer in body {
                    guard data.count + buffer.readableBytes <= limit else { return .failure(tooLarge) }
                    guard budget.reserve(buffer.readableBytes) else { return .failure(.busy) }
                    reserved.add(buffer.readableBytes)
                    data.append(contentsOf: buffer.readableBytesView)
                }
                return .success(data)
            }
            group.addTask {
                try await Task.sleep(nanoseconds: UInt64(self.timeout * 1e9))
                return nil
            }
            let first = try await group.next() ?? nil
            if first == nil || (try? first?.get()) == nil {
                // The reader may be waiting for bytes that never come: ending the input ends its wait.
                context.stopReading()
            }
            group.cancelAll()
            return first
        }
        switch result {
        case .success(let data)?: return data
        case .failure(let error)?: throw error
        case nil: throw APIError(status: .requestTimeout, message: "The request body did not arrive within \(timeout) seconds.",
                                 type: "invalid_request_error", code: "request_timeout")
        }
    }

    func modelEntries() -> [(String, JSONOutput)] {
        let entry = { (id: String, parent: String?) -> JSONOutput in
            ["id": .string(id), "object": "model", "created": .int(self.created), "owned_by": "hone",
             "root": .string(parent ?? id), "parent": .optional(parent), "max_model_len": .int(self.engine.contextLimit)]
        }
        return [(modelName, entry(modelName, nil))] + adapterNames.map { ($0, entry($0, modelName)) }
    }

    func modelsList() -> JSONOutput {
        ["object": "list", "data": .array(modelEntries().map(\.1))]
    }

    /// The adapter index a `model` field names (nil: the base); absent means the base.
    func adapter(for name: String?) throws -> Int? {
        guard let name, name != modelName, name != engine.loaded.path else { return nil }
        if let index = adapterNames.firstIndex(of: name) { return index }
        throw APIError.unknownModel(name, available: [modelName] + adapterNames)
    }

    /// The printable text of one token (its bytes, special tokens written out). A token that is part of a
    /// character (a byte-fallback piece) is named by its bytes, `bytes:\xf0\x9f`, as OpenAI names them: as
    /// U+FFFD, distinct tokens shared one key of a top_logprobs object.
    func tokenText(_ id: Int32) -> String {
        let bytes = tokenizer.tokenBytes(id, includeSpecial: true)
        if let text = String(validating: bytes, as: UTF8.self) { return text }
        return "bytes:" + bytes.map { String(format: "\\x%02x", $0) }.joined()
    }

    // MARK: Tokenizer endpoints

    func tokenizerInfo() -> JSONOutput {
        let text = { (id: Int32?) -> JSONOutput in id.map { .string(self.tokenText($0)) } ?? .null }
        let chat = template.chatTemplate?.source
        return ["tokenizer_class": .string(String(describing: type(of: tokenizer))),
                "vocab_size": .int(tokenizer.vocabularySize),
                "model_max_length": .int(engine.contextLimit),
                "bos_token": text(tokenizer.bosTokenID), "eos_token": text(tokenizer.eosTokenID),
                "pad_token": text(tokenizer.padTokenID), "unk_token": text(tokenizer.unknownTokenID),
                "bos_token_id": tokenizer.bosTokenID.map { .int(Int($0)) } ?? .null,
                "eos_token_id": tokenizer.eosTokenID.map { .int(Int($0)) } ?? .null,
                "add_bos_token": .bool(tokenizer.addsBOS), "add_eos_token": .bool(tokenizer.addsEOS),
                "chat_template": .optional(chat)]
    }

    func tokenize(_ fields: RequestFields) throws -> Response {
        _ = try adapter(for: fields.string("model"))
        let addSpecial = try fields.bool("add_special_tokens") ?? true
        let tokens: [Int32]
        if let messages = fields.value("messages") {
            let prompt = try chatPrompt(messages, addGenerationPrompt: try fields.bool("add_generation_prompt") ?? true, checkLength: false,
                                        variables: try templateVariables(fields))
            tokens = prompt
        } else {
            // vLLM's field is "prompt", llama-server's "content".
            guard let prompt = try fields.string("prompt") ?? fields.string("content") ?? fields.string("text") else {
                throw APIError.invalid("'prompt' (or llama-server's 'content', a string) or 'messages' is required.", param: "prompt")
            }
            // A bound on the text: tokenizing one multi-megabyte word costs far more than linear time.
            guard prompt.utf8.count <= Self.tokenizeLimit else {
                throw APIError.invalid("/tokenize takes at most \(Self.tokenizeLimit) bytes of text per request.", param: "prompt")
            }
            tokens = tokenizer.encode(prompt, addSpecialTokens: addSpecial, parseSpecial: true)
        }
        var result: [(String, JSONOutput)] = [("count", .int(tokens.count)), ("max_model_len", .int(engine.contextLimit)),
                                              ("tokens", .array(tokens.map { .int(Int($0)) }))]
        if try fields.bool("return_token_strs") == true {
            result.append(("token_strs", .array(tokens.map { .string(tokenizer.piece(for: $0) ?? "") })))
        }
        return json(.object(result))
    }

    func detokenize(_ fields: RequestFields) throws -> Response {
        _ = try adapter(for: fields.string("model"))
        guard case .array(let items)? = fields.value("tokens") else {
            throw APIError.invalid("'tokens' (a list of token ids) is required.", param: "tokens")
        }
        let ids = try tokenIDs(items, param: "tokens")
        let skip = try fields.bool("skip_special_tokens") ?? true
        // Both names: vLLM answers "prompt", llama-server "content".
        let text = tokenizer.decode(ids, skipSpecialTokens: skip)
        return json(["prompt": .string(text), "content": .string(text)])
    }

    func tokenIDs(_ items: [JinjaValue], param: String) throws -> [Int32] {
        try items.map {
            guard case .int(let id) = $0 else { throw APIError.invalid("'\(param)' must hold integer token ids.", param: param) }
            guard id >= 0, id < engine.model.config.vocabularySize else {
                throw APIError.invalid("Token id \(id) in '\(param)' is outside the vocabulary (0..<\(engine.model.config.vocabularySize)).",
                                       param: param)
            }
            return Int32(id)
        }
    }

    // MARK: Chat prompts

    /// The prompt ids of a `messages` list, rendered with the server's template.
    func chatPrompt(_ value: JinjaValue, addGenerationPrompt: Bool = true, checkLength: Bool = true,
                    variables: [String: JinjaValue] = [:]) throws -> [Int32] {
        let text = try chatPromptText(value, addGenerationPrompt: addGenerationPrompt, variables: variables)
        if checkLength { try refuseSurelyTooLong(text, param: "messages") }
        // Templates that write special tokens in their text have them parsed; plain instruction templates do not.
        let parseSpecial = template.chatTemplate != nil || template.promptNoInput == nil
        return tokenizer.encode(text, addSpecialTokens: template.addsBOS, parseSpecial: parseSpecial)
    }

    /// A request's `chat_template_kwargs` (llama-server's and vLLM's field): variables for the chat template,
    /// added to the server's --chat-template-kwargs.
    func templateVariables(_ fields: RequestFields) throws -> [String: JinjaValue] {
        guard let value = fields.value("chat_template_kwargs"), value != JinjaValue.none else { return [:] }
        guard case .dictionary = value else {
            throw APIError.invalid("'chat_template_kwargs' must be an object.", param: "chat_template_kwargs")
        }
        guard template.chatTemplate != nil else {
            throw APIError.invalid("'chat_template_kwargs' needs a Jinja chat template; the server's '\(template.name)' template is not one.",
                                   param: "chat_template_kwargs")
        }
        do {
            return try ChatTemplate.variables(value, origin: "chat_template_kwargs")
        } catch let error as HoneError {
            throw APIError.invalid(error.description, param: "chat_template_kwargs")
        }
    }

    /// The text a `messages` list renders to with the server's template (what /apply-template answers).
    func chatPromptText(_ value: JinjaValue, addGenerationPrompt: Bool = true,
                        variables: [String: JinjaValue] = [:]) throws -> String {
        guard case .array(let items) = value, !items.isEmpty else {
            throw APIError.invalid("'messages' must be a non-empty list of {\"role\", \"content\"} objects.", param: "messages")
        }
        var messages: [JinjaValue] = []
        for (index, item) in items.enumerated() {
            guard case .dictionary(var fields) = item, case .string? = fields["role"] else {
                throw APIError.invalid("messages[\(index)] must be an object with a string 'role'.", param: "messages")
            }
            // Content given as parts ([{"type": "text", "text": ...}]) is joined into one string.
            switch fields["content"] {
            case .string?, .none?, nil: break
            case .array(let parts)?:
                var text = ""
                for part in parts {
                    guard case .dictionary(let partFields) = part, case .string(let piece)? = partFields["text"] else {
                        throw APIError.invalid("messages[\(index)].content: only text parts are supported.", param: "messages")
                    }
                    text += piece
                }
                fields["content"] = .string(text)
            default:
                throw APIError.invalid("messages[\(index)].content must be a string or a list of text parts.", param: "messages")
            }
            if fields["content"] == nil || fields["content"] == JinjaValue.none { fields["content"] = .string("") }
            messages.append(.dictionary(fields))
        }
        let text: String
        do {
            text = try template.withChatTemplateVariables(variables)
                .render(messages: messages, addGenerationPrompt: addGenerationPrompt, origin: "messages")
        } catch let error as HoneError {
            throw APIError.invalid("The messages cannot be rendered with the '\(template.name)' template: \(error.description)",
                                   param: "messages")
        }
        return text
    }
}

// MARK: - Middleware

/// One line per request on stderr: method, path, status, time.
struct RequestLogMiddleware<Context: RequestContext>: RouterMiddleware {
    let log: @Sendable (String) -> Void

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = DispatchTime.now()
        let method = request.method.rawValue
        let path = request.uri.path
        func line(_ status: Int) {
            let milliseconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e6
            log(String(format: "%@ %@ %d %.1f ms", method, path, status, milliseconds))
        }
        do {
            let response = try await next(request, context)
            line(response.status.code)
            return response
        } catch let error as HTTPResponseError {
            line(error.status.code)
            throw error
        } catch {
            line(500)
            throw error
        }
    }
}

/// An unknown path, or a known one asked with another method, answers OpenAI's JSON error as the OpenAI API and
/// llama-server do (the router's own answer is a 404 with an empty body, which clients report as a bare status).
struct UnknownRouteMiddleware<Context: RequestContext>: RouterMiddleware {
    static var routes: String { "GET /health, /v1/models, /tokenizer_info; POST /v1/chat/completions, /v1/completions, /tokenize, /detokenize, /apply-template" }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound {
            throw APIError(status: .notFound, message: "Invalid URL (\(request.method.rawValue) \(request.uri.path)); this server answers \(Self.routes).",
                           type: "invalid_request_error", code: "not_found")
        }
    }
}

/// Requires `Authorization: Bearer KEY` (or `x-api-key`) on everything but /health and the chat page, which holds
/// nothing and asks for the key itself.
struct APIKeyMiddleware<Context: RequestContext>: RouterMiddleware {
    let keys: [String]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        guard !keys.isEmpty, path != "/health", !(path == "/" && request.method == .get) else { return try await next(request, context) }
        var given: String?
        if let header = request.headers[.authorization] {
            let parts = header.split(separator: " ", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == "bearer" { given = String(parts[1]) }
        }
        if given == nil, let name = HTTPField.Name("x-api-key") { given = request.headers[name] }
        guard let given, keys.contains(given) else { throw APIError.unauthorized }
        return try await next(request, context)
    }
}
