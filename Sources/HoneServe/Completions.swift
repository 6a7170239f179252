import Foundation
import HoneKit
import HTTPTypes
import Hummingbird
import NIOCore

// MARK: - Completion requests

/// What a chat or text completion request asks for, read and checked before anything runs.
struct CompletionPlan: Sendable {
    var chat: Bool
    var modelName: String
    var adapter: Int?
    /// Prompt ids, and for text prompts the text to echo.
    var prompts: [[Int32]]
    var promptTexts: [String?]
    var maxTokens: Int?
    var sampling = SamplingParameters()
    var seed: UInt64?
    var frequencyPenalty: Float = 0
    var presencePenalty: Float = 0
    var logitBias: [Int32: Float] = [:]
    var stop: [String] = []
    var n = 1
    /// Generated-token log-probabilities with this many alternatives.
    var logprobs: Int?
    var echo = false
    var stream = false
    var includeUsage = false
    /// llama-server's `cache_prompt`: false prefills the whole prompt, so an answer does not depend on what the slot
    /// held before (reused prefixes run in other-sized pieces, whose sums round differently).
    var cachePrompt = true
}

extension OpenAIServer {
    func plan(_ fields: RequestFields, chat: Bool) throws -> CompletionPlan {
        let adapter = try adapter(for: fields.string("model"))
        var plan = CompletionPlan(chat: chat, modelName: try fields.string("model") ?? modelName, adapter: adapter,
                                  prompts: [], promptTexts: [])
        plan.n = try fields.int("n", range: 1...64) ?? 1
        // Every prompt × choice becomes a job: a cap keeps one request from filling memory with them (an idle
        // server otherwise takes a batch of any size).
        if case .array(let items)? = fields.value("prompt"), !chat, items.count * plan.n > Self.maxChoices,
           items.contains(where: { if case .int = $0 { return false } else { return true } }) {
            throw APIError.invalid("A request may hold at most \(Self.maxChoices) prompts × n choices; it has \(items.count) × \(plan.n).",
                                   param: "prompt")
        }
        if chat {
            guard let messages = fields.value("messages") else { throw APIError.invalid("'messages' is required.", param: "messages") }
            plan.prompts = [try chatPrompt(messages, variables: try templateVariables(fields))]
            plan.promptTexts = [nil]
        } else {
            guard let prompt = fields.value("prompt") else { throw APIError.invalid("'prompt' is required.", param: "prompt") }
            let badPrompt = APIError.invalid("'prompt' must be a string, a list of strings, a list of token ids or a list of such lists.",
                                             param: "prompt")
            let encode = { (text: String) throws -> [Int32] in
                try self.refuseSurelyTooLong(text, param: "prompt")
                return self.tokenizer.encode(text, addSpecialTokens: true, parseSpecial: true)
            }
            switch prompt {
            case .string(let text):
                plan.prompts = [try encode(text)]
                plan.promptTexts = [text]
            case .array(let items) where !items.isEmpty:
                switch items[0] {
                case .string:
                    for item in items {
                        guard case .string(let text) = item else { throw badPrompt }
                        plan.prompts.append(try encode(text))
                        plan.promptTexts.append(text)
                    }
                case .int:
                    // Token ids are taken as given: no BOS is added (lm-eval sends ids it tokenized itself).
                    plan.prompts = [try tokenIDs(items, param: "prompt")]
                    plan.promptTexts = [nil]
                case .array:
                    for item in items {
                        guard case .array(let ids) = item else { throw badPrompt }
                        plan.prompts.append(try tokenIDs(ids, param: "prompt"))
                        plan.promptTexts.append(nil)
                    }
                default: throw badPrompt
                }
            default: throw badPrompt
            }
            plan.echo = try fields.bool("echo") ?? false
        }
        for prompt in plan.prompts {
            if prompt.isEmpty { throw APIError.invalid("The prompt is empty.", param: chat ? "messages" : "prompt") }
            if prompt.count >= engine.contextLimit {
                throw APIError.contextLengthExceeded(tokens: prompt.count, limit: engine.contextLimit, param: chat ? "messages" : "prompt")
            }
        }

        // Length: OpenAI's chat default is "until the context is full", its legacy completions default 16 tokens.
        let maxTokens = try fields.int("max_completion_tokens", range: 0...Int(Int32.max))
            ?? fields.int("max_tokens", range: 0...Int(Int32.max))
        plan.maxTokens = maxTokens ?? (chat ? nil : 16)
        if plan.maxTokens == 0 && !plan.echo {
            throw APIError.invalid("'max_tokens' must be at least 1 (0 is allowed only with 'echo').", param: "max_tokens")
        }

        plan.sampling.temperature = Float(try fields.number("temperature", range: 0...100) ?? 1)
        plan.sampling.topP = Float(try fields.number("top_p", range: 0...1) ?? 1)
        if plan.sampling.topP == 0 { plan.sampling.topP = Float.leastNormalMagnitude }
        plan.sampling.topK = max(0, try fields.int("top_k", range: -1...Int(Int32.max)) ?? 0)
        plan.sampling.minP = Float(try fields.number("min_p", range: 0...1) ?? 0)
        plan.sampling.repetitionPenalty = Float(try fields.number("repetition_penalty", range: 0.0001...100) ?? 1)
        plan.frequencyPenalty = Float(try fields.number("frequency_penalty", range: -2...2) ?? 0)
        plan.presencePenalty = Float(try fields.number("presence_penalty", range: -2...2) ?? 0)
        plan.logitBias = try logitBias(fields)
        if let seed = try fields.int("seed", range: Int(Int64.min)...Int(Int64.max)) { plan.seed = UInt64(bitPattern: Int64(seed)) }
        plan.stop = try fields.stop()
        if chat {
            if try fields.bool("logprobs") == true { plan.logprobs = try fields.int("top_logprobs", range: 0...20) ?? 0 }
        } else {
            plan.logprobs = try fields.int("logprobs", range: 0...20)
        }
        plan.stream = try fields.bool("stream") ?? false
        plan.cachePrompt = try fields.bool("cache_prompt") ?? true
        if let options = try fields.object("stream_options") {
            plan.includeUsage = try options.bool("include_usage") ?? false
        }
        return plan
    }

    /// `logit_bias`: OpenAI's object of token id (a string, as JSON keys are) → bias in [-100, 100], or the list of
    /// [id, bias] pairs llama-server also takes. An id outside the vocabulary is a 400, not silently dropped.
    func logitBias(_ fields: RequestFields) throws -> [Int32: Float] {
        guard let value = fields.value("logit_bias") else { return [:] }
        let vocabulary = engine.model.config.vocabularySize
        let bad = APIError.invalid("'logit_bias' must map token ids to numbers between -100 and 100.", param: "logit_bias")
        var pairs: [(JinjaValue, JinjaValue)] = []
        switch value {
        case .dictionary(let map): pairs = map.keys.map { ($0, map[$0] ?? .none) }
        case .array(let items):
            for item in items {
                guard case .array(let pair) = item, pair.count == 2 else { throw bad }
                pairs.append((pair[0], pair[1]))
            }
        default: throw bad
        }
        var result: [Int32: Float] = [:]
        for (key, number) in pairs {
            let id: Int
            switch key {
            case .int(let integer): id = integer
            case .string(let text):
                guard let integer = Int(text.trimmingCharacters(in: .whitespaces)) else { throw bad }
                id = integer
            default: throw bad
            }
            guard id >= 0, id < vocabulary else {
                throw APIError.invalid("Token id \(id) in 'logit_bias' is outside the vocabulary (0..<\(vocabulary)).", param: "logit_bias")
            }
            let bias: Double
            switch number {
            case .int(let integer): bias = Double(integer)
            case .double(let real): bias = real
            default: throw bad
            }
            guard bias.isFinite, (-100...100).contains(bias) else { throw bad }
            result[Int32(id)] = Float(bias)
        }
        return result
    }

    /// The engine requests of a plan: each prompt `n` times, each choice with its own seed.
    func engineRequests(_ plan: CompletionPlan) -> [EngineRequest] {
        var requests: [EngineRequest] = []
        for prompt in plan.prompts {
            for choice in 0..<plan.n {
                var sampling = plan.sampling
                sampling.seed = plan.seed.map { $0 &+ UInt64(choice) } ?? UInt64.random(in: 0...UInt64.max)
                let room = engine.contextLimit - prompt.count
                var request = EngineRequest(prompt: prompt, maxNewTokens: min(plan.maxTokens ?? room, room), sampling: sampling)
                request.frequencyPenalty = plan.frequencyPenalty
                request.presencePenalty = plan.presencePenalty
                request.logitBias = plan.logitBias
                request.stop = plan.stop + (plan.chat ? template.stopStrings : [])
                request.adapter = plan.adapter
                request.logprobs = plan.logprobs
                request.cachePrompt = plan.cachePrompt
                if plan.echo && plan.logprobs != nil { request.promptLogprobs = plan.logprobs }
                requests.append(request)
            }
        }
        return requests
    }

    // MARK: Handling

    /// Prompts × choices one request may hold.
    static let maxChoices = 1024

    func completion(_ request: Request, context: ServeContext, chat: Bool) async throws -> Response {
        let data = try await body(request, context: context)
        // Parsing and tokenizing run on the server's few work threads, and only the plan (token ids) outlives them.
        let plan = try await offload { try self.plan(RequestFields(body: data), chat: chat) }
        return try await answer(plan, watch: await context.connectionWatch())
    }

    /// Runs a request's jobs. They are cancelled (their slots freed at the next step) when the client goes away:
    /// its connection's input ends or the connection closes, or, while streaming, a write fails.
    private func answer(_ plan: CompletionPlan, watch: ConnectionWatch?) async throws -> Response {
        let chat = plan.chat
        guard plan.prompts.count * plan.n <= Self.maxChoices else {
            throw APIError.invalid("A request may hold at most \(Self.maxChoices) prompts × n choices; it has \(plan.prompts.count) × \(plan.n).",
                                   param: "prompt")
        }
        let requests = engineRequests(plan)
        let (events, continuation) = AsyncStream<(Int, EngineEvent)>.makeStream()
        guard let jobs = engine.submit(requests, sink: { continuation.yield(($0, $1)) }) else {
            continuation.finish()
            throw APIError.queueFull
        }
        continuation.onTermination = { _ in for job in jobs { job.cancel() } }
        let watching = watch?.onGone { for job in jobs { job.cancel() } }
        let id = (chat ? "chatcmpl-" : "cmpl-") + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        if plan.stream {
            return streamingResponse(plan, id: id, count: requests.count, events: events, continuation: continuation) {
                watch?.remove(watching)
            }
        }
        defer {
            watch?.remove(watching)
            continuation.finish()
        }
        return try await wholeResponse(plan, id: id, count: requests.count, events: events)
    }

    /// The state of one choice while its events arrive.
    final class Choice {
        var text = ""
        var tokens: [Int32] = []
        var logprobs: [TokenLogprob] = []
        var promptLogprobs: [TokenLogprob?]?
        var finishReason: FinishReason?
        var promptTokens = 0
        var completionTokens = 0
        var cachedTokens = 0
    }

    func finishReason(_ reason: FinishReason) -> String {
        switch reason {
        case .endOfSequence, .stopString: return "stop"
        case .length, .contextFull: return "length"
        case .cancelled: return "abort"
        }
    }

    func usage(_ choices: [Choice], plan: CompletionPlan) -> JSONOutput {
        // A prompt counts once however many choices it has, as OpenAI counts it.
        var prompt = 0, completion = 0, cached = 0
        for (index, choice) in choices.enumerated() {
            if index % plan.n == 0 {
                prompt += choice.promptTokens
                cached += choice.cachedTokens
            }
            completion += choice.completionTokens
        }
        return ["prompt_tokens": .int(prompt), "completion_tokens": .int(completion), "total_tokens": .int(prompt + completion),
                "prompt_tokens_details": ["cached_tokens": .int(cached)]]
    }

    /// Applies one event to its choice; returns the text it adds.
    func apply(_ event: EngineEvent, to choice: Choice) throws -> String {
        switch event {
        case .promptLogprobs(let values):
            choice.promptLogprobs = values
            return ""
        case .token(let id, let text, let logprob):
            choice.tokens.append(id)
            if let logprob { choice.logprobs.append(logprob) }
            choice.text += text
            return text
        case .finished(let text, let reason, let promptTokens, let completionTokens, let cachedTokens):
            choice.text += text
            choice.finishReason = reason
            choice.promptTokens = promptTokens
            choice.completionTokens = completionTokens
            choice.cachedTokens = cachedTokens
            return text
        case .failed(let message):
            throw APIError(status: .internalServerError, message: message, type: "server_error")
        }
    }

    func wholeResponse(_ plan: CompletionPlan, id: String, count: Int, events: AsyncStream<(Int, EngineEvent)>) async throws -> Response {
        let choices = (0..<count).map { _ in Choice() }
        var finished = 0
        for await (index, event) in events {
            _ = try apply(event, to: choices[index])
            if case .finished = event { finished += 1 }
            if finished == count { break }
        }
        guard finished == count else { throw CancellationError() }
        var list: [JSONOutput] = []
        for (index, choice) in choices.enumerated() {
            let reason = JSONOutput.string(finishReason(choice.finishReason ?? .length))
            if plan.chat {
                list.append(["index": .int(index),
                             "message": ["role": "assistant", "content": .string(choice.text), "refusal": .null],
                             "logprobs": plan.logprobs == nil ? .null : ["content": chatLogprobs(choice.logprobs), "refusal": .null],
                             "finish_reason": reason])
            } else {
                let promptText = plan.echo ? echoText(plan, index: index) : ""
                list.append(["index": .int(index), "text": .string(promptText + choice.text),
                             "logprobs": plan.logprobs == nil ? .null : legacyLogprobs(choice, plan: plan, index: index),
                             "finish_reason": reason])
            }
        }
        return json(["id": .string(id), "object": .string(plan.chat ? "chat.completion" : "text_completion"),
                     "created": .int(Int(Date().timeIntervalSince1970)), "model": .string(plan.modelName),
                     "system_fingerprint": .string("hone-\(HoneKit.version)"),
                     "choices": .array(list), "usage": usage(choices, plan: plan)])
    }

    /// The prompt text an echo repeats: the text sent, or the ids decoded.
    func echoText(_ plan: CompletionPlan, index: Int) -> String {
        let prompt = index / plan.n
        return plan.promptTexts[prompt] ?? tokenizer.decode(plan.prompts[prompt], skipSpecialTokens: false)
    }

    func chatLogprobs(_ values: [TokenLogprob]) -> JSONOutput {
        .array(values.map { value in
            let entry = { (token: Int32, logprob: Float) -> [(String, JSONOutput)] in
                let text = self.tokenText(token)
                return [("token", .string(text)), ("logprob", .number(logprob)),
                        ("bytes", .array(self.tokenizer.tokenBytes(token, includeSpecial: true).map { .int(Int($0)) }))]
            }
            return .object(entry(value.token, value.logprob)
                + [("top_logprobs", .array(value.top.map { .object(entry($0.token, $0.logprob)) }))])
        })
    }

    /// The completions API's logprobs: tokens, token_logprobs (null for a prompt's first token), top_logprobs
    /// (token → logprob), text_offset (character offsets into the choice's text; after the prompt without echo).
    /// `firstOffset`: where the first token's text starts (a streamed chunk's tokens follow the text sent so far).
    func legacyLogprobs(_ choice: Choice, plan: CompletionPlan, index: Int, firstOffset: Int? = nil) -> JSONOutput {
        var entries: [(Int32, TokenLogprob?)] = []
        let prompt = plan.prompts[index / plan.n]
        if plan.echo {
            let values = choice.promptLogprobs ?? []
            for (position, token) in prompt.enumerated() { entries.append((token, position < values.count ? values[position] : nil)) }
        }
        for value in choice.logprobs { entries.append((value.token, value)) }
        var offset = firstOffset ?? (plan.echo ? 0 : echoText(plan, index: index).unicodeScalars.count)
        // Offsets index the text as it was made: each token's is where the text stood before it, decoded as the
        // engine decodes it (a token inside a character adds nothing until the character ends, BOS adds nothing
        // to a text prompt's echo, a SentencePiece word's space counts). Counting each token's own text drifted.
        let textPrompt = plan.promptTexts[index / plan.n] != nil
        let replay = StreamingDetokenizer(tokenizer: tokenizer, skipSpecialTokens: !plan.echo || textPrompt,
                                          context: plan.echo ? [] : prompt)
        var tokens: [JSONOutput] = [], logprobs: [JSONOutput] = [], tops: [JSONOutput] = [], offsets: [JSONOutput] = []
        for (token, value) in entries {
            let text = tokenText(token)
            tokens.append(.string(text))
            offsets.append(.int(offset))
            offset += replay.push(token).unicodeScalars.count
            guard let value else {
                logprobs.append(.null)
                tops.append(.null)
                continue
            }
            logprobs.append(.number(value.logprob))
            // The sampled token is always listed, as OpenAI's legacy API does ("up to logprobs + 1 elements"),
            // with logprobs 0 too.
            var top: [(String, JSONOutput)] = value.top.map { (tokenText($0.token), .number($0.logprob)) }
            if !value.top.contains(where: { $0.token == token }) { top.append((text, .number(value.logprob))) }
            var seen = Set<String>()
            tops.append(.object(top.filter { seen.insert($0.0).inserted }))
        }
        return ["tokens": .array(tokens), "token_logprobs": .array(logprobs), "top_logprobs": .array(tops),
                "text_offset": .array(offsets)]
    }

    // MARK: Streaming

    func streamingResponse(_ plan: CompletionPlan, id: String, count: Int, events: AsyncStream<(Int, EngineEvent)>,
                           continuation: AsyncStream<(Int, EngineEvent)>.Continuation,
                           onEnd: @escaping @Sendable () -> Void) -> Response {
        let created = Int(Date().timeIntervalSince1970)
        let object = plan.chat ? "chat.completion.chunk" : "text_completion"
        let body = ResponseBody { writer in
            defer {
                onEnd()
                continuation.finish()
            }
            func send(_ value: JSONOutput) async throws {
                try await writer.write(ByteBuffer(string: "data: \(value.text)\n\n"))
            }
            func chunk(_ choices: [JSONOutput]) -> JSONOutput {
                var fields: [(String, JSONOutput)] = [
                    ("id", .string(id)), ("object", .string(object)), ("created", .int(created)),
                    ("model", .string(plan.modelName)), ("system_fingerprint", .string("hone-\(HoneKit.version)")),
                    ("choices", .array(choices)),
                ]
                if plan.includeUsage { fields.append(("usage", .null)) }
                return .object(fields)
            }
            /// `generatedBefore`: characters of generated text sent before this piece.
            func piece(_ index: Int, text: String, logprobs: [TokenLogprob], finish: FinishReason?, generatedBefore: Int = 0) -> JSONOutput {
                let reason = finish.map { JSONOutput.string(self.finishReason($0)) } ?? .null
                if plan.chat {
                    let delta: JSONOutput = finish != nil && text.isEmpty ? [:] : ["content": .string(text)]
                    return ["index": .int(index), "delta": delta,
                            "logprobs": plan.logprobs == nil || logprobs.isEmpty ? .null : ["content": self.chatLogprobs(logprobs)],
                            "finish_reason": reason]
                }
                var logprobField = JSONOutput.null
                if plan.logprobs != nil, !logprobs.isEmpty {
                    let choice = Choice()
                    choice.logprobs = logprobs
                    var single = plan
                    single.echo = false
                    // The chunk's token starts where the text sent before it ends, after the prompt (echoed or
                    // not); the offset had stayed at the prompt's end in every chunk.
                    let before = self.echoText(plan, index: index).unicodeScalars.count + generatedBefore
                    logprobField = self.legacyLogprobs(choice, plan: single, index: index, firstOffset: before)
                }
                return ["index": .int(index), "text": .string(text), "logprobs": logprobField, "finish_reason": reason]
            }

            let choices = (0..<count).map { _ in Choice() }
            if plan.chat {
                for index in 0..<count {
                    try await send(chunk([["index": .int(index), "delta": ["role": "assistant", "content": ""],
                                           "logprobs": .null, "finish_reason": .null]]))
                }
            } else if plan.echo {
                for index in 0..<count {
                    try await send(chunk([piece(index, text: self.echoText(plan, index: index), logprobs: [], finish: nil)]))
                }
            }
            var finished = 0
            do {
                for await (index, event) in events {
                    let text = try self.apply(event, to: choices[index])
                    switch event {
                    case .token(_, _, let logprob):
                        if !text.isEmpty || logprob != nil {
                            try await send(chunk([piece(index, text: text, logprobs: logprob.map { [$0] } ?? [], finish: nil,
                                                        generatedBefore: choices[index].text.unicodeScalars.count - text.unicodeScalars.count)]))
                        }
                    case .finished(_, let reason, _, _, _):
                        if !text.isEmpty { try await send(chunk([piece(index, text: text, logprobs: [], finish: nil)])) }
                        try await send(chunk([piece(index, text: "", logprobs: [], finish: reason)]))
                        finished += 1
                    default: break
                    }
                    if finished == count { break }
                }
            } catch let error as APIError {
                try await send(error.json)
            }
            guard finished == count else {
                try await writer.finish(nil)
                return
            }
            if plan.includeUsage {
                try await send(["id": .string(id), "object": .string(object), "created": .int(created),
                                "model": .string(plan.modelName), "system_fingerprint": .string("hone-\(HoneKit.version)"),
                                "choices": [], "usage": self.usage(choices, plan: plan)])
            }
            try await writer.write(ByteBuffer(string: "data: [DONE]\n\n"))
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"], body: body)
    }
}
