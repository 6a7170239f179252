import ArgumentParser
import Foundation
import HoneKit
import HoneServe

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve a model over an OpenAI-compatible HTTP API (chat, completions, a chat page at /).",
        discussion: """
        Endpoints: POST /v1/chat/completions, POST /v1/completions (echo and logprobs included, as lm-eval's \
        local-completions model sends them), GET /v1/models, GET /health, GET /tokenizer_info, POST /tokenize, \
        POST /detokenize, POST /apply-template (the prompt that messages render to), and a chat page at GET /. Requests decode together in --parallel slots (continuous \
        batching); greedy answers do not depend on what else runs. More requests wait in a queue; beyond it the \
        server answers 503. A request that continues a slot's cached tokens (the next turn of a chat) prefills \
        only the new ones; its prompt then runs in other-sized pieces, and pieces of up to 16 tokens and longer \
        ones take different kernels whose sums round differently, so a near-tie greedy choice, and more often a \
        seeded sampled answer (most on quantized weights, whose activations are quantized per piece), can differ from a \
        cold start, as llama-server warns for cache_prompt; send "cache_prompt": false for answers that never depend \
        on the cache. Listens on 127.0.0.1 unless --host says otherwise; with --api-key every endpoint but \
        /health and the page needs "Authorization: Bearer KEY". One line per request goes to stderr; Ctrl-C or \
        SIGTERM stops the server.

        Examples:
          hone serve --model models/SmolLM2-135M-Instruct.Q4_1.gguf --port 8080 --parallel 8
          hone serve --model base.gguf --adapter alpaca=runs/alpaca --adapter chat=runs/chat --api-key secret
        """)

    @Option(name: [.long, .short], help: "An HF model directory or a GGUF file.")
    var model: String

    @Option(name: [.long, .customLong("lora")], help: "A PEFT LoRA adapter served as model NAME: NAME=DIR (repeatable; a bare DIR is named after its folder).")
    var adapter: [String] = []

    @Option(name: .long, help: "Address to listen on (0.0.0.0 for every interface).")
    var host = "127.0.0.1"

    @Option(name: .long, help: "Port to listen on (0: any free port, printed at start).")
    var port = 8080

    @Option(name: [.long, .customShort("n"), .customLong("np", withSingleDash: true)], help: "Requests decoded together (slots).")
    var parallel = 4

    @Option(name: [.customLong("ctx-size"), .customLong("ctx_size"), .customShort("c")],
            help: "Positions per slot, prompt and answer (default: the model's own limit).")
    var ctxSize: Int?

    @Option(name: [.customLong("queue-size"), .customLong("queue_size")],
            help: "Requests that may wait for a slot before the server answers 503 (default: 4 per slot).")
    var queueSize: Int?

    @Option(name: [.customLong("api-key"), .customLong("api_key")], help: "Require this key (Authorization: Bearer KEY).")
    var apiKey: String?

    @Option(name: [.customLong("api-key-file"), .customLong("api_key_file")], help: "Require one of the keys in this file, one per line.")
    var apiKeyFile: String?

    @Option(name: [.long, .customLong("to", withSingleDash: true)],
            help: "Seconds a connection may stay idle, or take to send a request's headers or body, before it is closed.")
    var timeout: Double = 60

    @Option(name: .long, help: "The name clients use for the base model (default: the model's file or folder name).")
    var alias: String?

    @Option(name: .long, help: "Prompt template for chat: auto (an adapter's recorded template, else the model's own chat template, else alpaca), chat_template, \(PromptTemplate.builtinNames.joined(separator: ", ")), a JSON template file or a .jinja chat template.")
    var template = "auto"

    @OptionGroup var templateKwargs: ChatTemplateKwargsOption

    @OptionGroup var runtime: RuntimeOptions

    func validate() throws {
        guard parallel >= 1 else { throw ValidationError("--parallel must be at least 1") }
        guard (0...65535).contains(port) else { throw ValidationError("--port must be between 0 and 65535") }
        if let queueSize, queueSize < 0 { throw ValidationError("--queue-size must be at least 0") }
        if apiKey != nil && apiKeyFile != nil { throw ValidationError("give --api-key or --api-key-file, not both") }
    }

    func run() throws {
        try runtime.apply()
        try reportingErrors {
            var setup = ServeSetup(model: model)
            setup.adapters = adapter.map(ServeSetup.adapter)
            setup.template = template
            setup.templateVariables = try templateKwargs.variables()
            setup.parallel = parallel
            setup.contextSize = ctxSize
            setup.queueSize = queueSize
            setup.alias = alias
            setup.timeout = timeout
            if let apiKey { setup.apiKeys = [apiKey] }
            if let apiKeyFile { setup.apiKeys = try ServeSetup.apiKeys(file: apiKeyFile) }
            // A closed stderr (a parent that went away) must not stop the server: write errors are ignored.
            let log: @Sendable (String) -> Void = { try? FileHandle.standardError.write(contentsOf: Data("\($0)\n".utf8)) }
            let server = try setup.makeServer(log: log)

            // Ctrl-C / SIGTERM: the engine ends running requests at once, so the graceful shutdown does not wait
            // for long answers.
            let signals = [SIGINT, SIGTERM].map { number -> DispatchSourceSignal in
                signal(number, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
                source.setEventHandler {
                    log("shutting down")
                    server.engine.stop()
                }
                source.resume()
                return source
            }
            let done = DispatchSemaphore(value: 0)
            let failure = ErrorBox()
            let host = host, port = port
            Task {
                do {
                    try await server.run(host: host, port: port) { bound in
                        log("hone serve: \(server.modelName) on http://\(host):\(bound) (\(server.engine.parallel) slots, context \(server.engine.contextLimit))")
                    }
                } catch {
                    failure.error = error
                }
                done.signal()
            }
            done.wait()
            server.engine.stop()
            _ = signals
            if let error = failure.error {
                throw HoneError.invalidArgument("the server stopped: \(error)")
            }
        }
    }
}

private final class ErrorBox: @unchecked Sendable {
    var error: Error?
}
