import Foundation
import HoneKit

// MARK: - Fuzzing the server's request bodies

/// The fuzz target of `hone serve`'s request bodies, kept in HoneServe because the request decoding and checking
/// lives here; the libFuzzer harness (tools/fuzz) runs it next to `FuzzTargets.all`. One input is one JSON body, fed
/// to every endpoint that reads a body: chat and text completions (decoded, checked and turned into engine
/// requests, as far as the engine's queue), /tokenize and /detokenize, on the tiny fixture model. A 4xx answer is
/// the proper refusal; a 5xx answer, a trap or any other error is a finding.
public enum ServeFuzzTargets {
    public static let all: [FuzzTarget] = [
        FuzzTarget(name: "serve-request", input: "a JSON request body for chat/completions, completions, tokenize and detokenize",
                   body: requestBody),
    ]

    nonisolated(unsafe) private static var server: OpenAIServer?

    /// The server on models/hone-tiny, made once per process; its engine is never started (nothing is generated).
    static func server(_ context: FuzzContext) throws -> OpenAIServer {
        if let server { return server }
        let loaded = try LoadedModel.open((context.repositoryRoot as NSString).appendingPathComponent("models/hone-tiny"))
        let template = try loaded.promptTemplate("auto")
        let engine = try ServeEngine(loaded: loaded, adapters: [], template: template, parallel: 1, contextLimit: 256,
                                     queueLimit: 0)
        let made = OpenAIServer(engine: engine, modelName: "hone-tiny", adapterNames: [], template: template, apiKeys: [],
                                log: { _ in })
        server = made
        return made
    }

    static func requestBody(_ data: Data, _ context: FuzzContext) throws {
        let server = try server(context)
        let fields: RequestFields
        do {
            fields = try RequestFields(body: data)
        } catch let error as APIError {
            try refusal(error)
            return
        }
        for chat in [true, false] {
            do {
                let plan = try server.plan(fields, chat: chat)
                let requests = server.engineRequests(plan)
                precondition(requests.count == plan.prompts.count * plan.n, "one engine request per prompt and choice")
                for request in requests {
                    precondition(!request.prompt.isEmpty && request.prompt.count < server.engine.contextLimit, "prompt within the context")
                    precondition(request.maxNewTokens >= 0, "a length that is not negative")
                }
            } catch let error as APIError {
                try refusal(error)
            }
        }
        for endpoint in [server.tokenize, server.detokenize] {
            do {
                _ = try endpoint(fields)
            } catch let error as APIError {
                try refusal(error)
            }
        }
    }

    /// A client error is the proper answer to a bad body; a server error (5xx) is a finding.
    static func refusal(_ error: APIError) throws {
        guard (400..<500).contains(error.status.code) else { throw error }
    }
}
