import AsyncHTTPClient
import Foundation
import HoneKit
import HoneServe
import NIOCore
import NIOHTTP1

// MARK: - An in-process server on a free loopback port

enum Paths {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let tinyModel = root.appendingPathComponent("models/hone-tiny").path
    static let fixtures = root.appendingPathComponent("Tests/HoneKitTests/Fixtures")

    /// The `hone` built beside this test runner (so a sanitizer build's tests run its own sanitized `hone`), else
    /// the debug build; nil when neither is built.
    static var hone: String? {
        let runner = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let candidates = [runner, runner.deletingLastPathComponent(), root.appendingPathComponent(".build/debug")]
        return candidates.map { $0.appendingPathComponent("hone").path }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Scratch space for one test process, removed when it exits (the same root HoneKitTests' `Scratch` uses: both
    /// test targets run in one process).
    static let scratch: URL = {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("hone-tests-\(getpid())")
        atexit { try? FileManager.default.removeItem(at: Paths.scratch) }
        return url
    }()

    static func temporaryDirectory() throws -> URL {
        let url = scratch.appendingPathComponent("hone-serve-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

final class TestServer: @unchecked Sendable {
    let server: OpenAIServer
    let port: Int
    let task: Task<Void, Error>
    let lines: LogLines

    final class LogLines: @unchecked Sendable {
        private let lock = NSLock()
        private var stored: [String] = []
        func append(_ line: String) { lock.lock(); stored.append(line); lock.unlock() }
        var all: [String] { lock.lock(); defer { lock.unlock() }; return stored }
    }

    private init(server: OpenAIServer, port: Int, task: Task<Void, Error>, lines: LogLines) {
        self.server = server
        self.port = port
        self.task = task
        self.lines = lines
    }

    static func start(_ setup: ServeSetup) async throws -> TestServer {
        Runtime.setThreads(1)
        let lines = LogLines()
        let server = try setup.makeServer(log: { lines.append($0) })
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let task = Task {
            defer { continuation.finish() }
            try await server.run(host: "127.0.0.1", port: 0) { continuation.yield($0) }
        }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else {
            _ = try await task.value
            throw HoneError.invalidArgument("the test server did not start")
        }
        return TestServer(server: server, port: port, task: task, lines: lines)
    }

    static func tiny(parallel: Int = 4, queueSize: Int? = nil, contextSize: Int? = nil, apiKeys: [String] = [],
                     adapters: [(String, String)] = [], timeout: Double = 60) async throws -> TestServer {
        var setup = ServeSetup(model: Paths.tinyModel)
        setup.timeout = timeout
        setup.parallel = parallel
        setup.queueSize = queueSize
        setup.contextSize = contextSize
        setup.apiKeys = apiKeys
        setup.adapters = adapters.map { (name: $0.0, directory: $0.1) }
        return try await start(setup)
    }

    func stop() async {
        server.engine.stop()
        task.cancel()
        _ = try? await task.value
    }

    var base: String { "http://127.0.0.1:\(port)" }

    // MARK: Requests

    struct Reply {
        let status: Int
        let headers: HTTPHeaders
        let body: String
        var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] ?? [:] }
    }

    func request(_ method: HTTPMethod, _ path: String, body: String? = nil, headers: [(String, String)] = []) async throws -> Reply {
        var request = HTTPClientRequest(url: base + path)
        request.method = method
        request.headers.add(name: "content-type", value: "application/json")
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(string: body)) }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(120))
        let data = try await response.body.collect(upTo: 64 << 20)
        return Reply(status: Int(response.status.code), headers: response.headers, body: String(buffer: data))
    }

    func post(_ path: String, _ json: [String: Any], headers: [(String, String)] = []) async throws -> Reply {
        let data = try JSONSerialization.data(withJSONObject: json)
        return try await request(.POST, path, body: String(decoding: data, as: UTF8.self), headers: headers)
    }

    /// A streamed request: the `data:` payloads in order (the last one is "[DONE]").
    func stream(_ path: String, _ json: [String: Any]) async throws -> [String] {
        var request = HTTPClientRequest(url: base + path)
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/json")
        request.body = .bytes(ByteBuffer(data: try JSONSerialization.data(withJSONObject: json)))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(120))
        var text = ""
        for try await buffer in response.body { text += String(buffer: buffer) }
        return text.components(separatedBy: "\n\n").filter { !$0.isEmpty }.map {
            $0.hasPrefix("data: ") ? String($0.dropFirst(6)) : $0
        }
    }
}

func parse(_ text: String) -> [String: Any] {
    (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
}

extension Dictionary where Key == String, Value == Any {
    var choices: [[String: Any]] { self["choices"] as? [[String: Any]] ?? [] }
    var error: [String: Any] { self["error"] as? [String: Any] ?? [:] }
}

/// Greedy continuations straight from HoneKit's Generator (what `hone generate` runs), one prompt at a time.
func generatorOutputs(_ prompts: [[Int32]], maxNewTokens: Int, adapter: String? = nil, stop: [String] = []) throws -> [String] {
    let loaded = try LoadedModel.open(Paths.tinyModel)
    if let adapter { _ = try loaded.attachAdapter(directory: adapter) }
    let template = try loaded.promptTemplate("auto")
    let generator = try loaded.makeGenerator(template: template)
    var outputs = [String](repeating: "", count: prompts.count)
    try generator.generate(prompts.map { GenerationRequest(promptTokens: $0, maxNewTokens: maxNewTokens, stopStrings: stop,
                                                           decodesAfterPrompt: true) },
                           batchSize: 1, onFinish: { index, result in outputs[index] = result.text })
    return outputs
}
