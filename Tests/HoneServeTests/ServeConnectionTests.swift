import AsyncHTTPClient
import Foundation
import HoneKit
import HoneServe
import NIOCore
import Testing

/// Connections: keep-alive, and clients that are slow, send too much or go away (issue 18, "server under abuse";
/// tools/serve/abuse.py runs the same at scale).
@Suite(.serialized) struct ServeConnectionTests {
    /// Whole answers, a streamed answer and the small endpoints, one after the other on one connection.
    @Test func severalRequestsOnOneConnection() async throws {
        let server = try await TestServer.tiny()
        defer { Task { await server.stop() } }
        let connection = try RawConnection(port: server.port)
        let completion = #"{"prompt": "Once upon a time", "max_tokens": 5, "temperature": 0}"#
        try connection.send(RawConnection.post("/v1/completions", completion))
        let first = try connection.response()
        #expect(first.status == 200, "\(first.body)")
        #expect(first.headers["connection"]?.lowercased() != "close")
        try connection.send(RawConnection.post("/v1/chat/completions",
                                               #"{"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4, "stream": true}"#))
        let streamed = try connection.response()
        #expect(streamed.status == 200 && streamed.body.contains("data: [DONE]"), "\(streamed.body)")
        try connection.send("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        #expect(try connection.response().json["status"] as? String == "ok")
        try connection.send(RawConnection.post("/v1/completions", completion))
        let again = try connection.response()
        #expect(again.json.choices.first?["text"] as? String == first.json.choices.first?["text"] as? String)
        // An error answer keeps the connection too.
        try connection.send(RawConnection.post("/v1/completions", "{broken"))
        #expect(try connection.response().status == 400)
        try connection.send(RawConnection.post("/tokenize", #"{"prompt": "Hi"}"#, close: true))
        #expect(try connection.response().status == 200)
        #expect(connection.isClosedByServer())
        // Nothing was cancelled: the whole answers were not mistaken for abandoned ones.
        #expect(try await server.request(.GET, "/health").json["requests_cancelled"] as? Int == 0)
    }

    /// Idle connections, headers that never finish and bodies that trickle are closed after the timeout; the server
    /// answers others meanwhile.
    /// The timeout is 4 s and the trickle lasts 8 s, a byte every 0.5 s: with a 1 s and then a 2 s timeout, the
    /// trickle's connection was now and then closed as idle (no byte for a whole timeout) without its 408 when a full
    /// suite, a fuzzer and an evaluation shared the two cores (the sending task was starved that long).
    @Test func slowAndIdleClientsAreClosed() async throws {
        let server = try await TestServer.tiny(timeout: 4)
        defer { Task { await server.stop() } }
        let idle = try RawConnection(port: server.port, receiveTimeout: 14)
        let slowHeaders = try RawConnection(port: server.port, receiveTimeout: 14)
        try slowHeaders.send("POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Le")
        let start = Date()
        #expect(idle.isClosedByServer())
        #expect(slowHeaders.isClosedByServer())
        let waited = Date().timeIntervalSince(start)
        #expect(waited >= 3.5 && waited < 13.5, "closed after \(waited) s")

        // A body sent a byte at a time never ends within the timeout: 408, then the connection closes.
        let trickle = try RawConnection(port: server.port, receiveTimeout: 14)
        let body = #"{"prompt": "Once upon a time", "max_tokens": 2}"#
        try trickle.send("POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: \(body.utf8.count)\r\n\r\n")
        let sender = Task {
            for byte in body.utf8.prefix(16) {
                try? trickle.send([byte])
                try await Task.sleep(for: .milliseconds(500))
            }
        }
        #expect(try await server.post("/v1/completions", ["prompt": "Hi", "max_tokens": 2]).status == 200)
        let reply = try trickle.response()
        #expect(reply.status == 408, "\(reply.body)")
        #expect(reply.json.error["code"] as? String == "request_timeout")
        #expect(trickle.isClosedByServer())
        _ = await sender.result
    }

    /// A body over the limit is refused with 413 in OpenAI's shape, announced (Content-Length) or not (chunked),
    /// without reading the rest; the server answers others meanwhile and its memory does not hold the body.
    @Test func oversizedBodyIs413() async throws {
        let server = try await TestServer.tiny()
        defer { Task { await server.stop() } }
        let limit = OpenAIServer.bodyLimit
        let announced = try RawConnection(port: server.port)
        try announced.send("POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: \(limit + 1)\r\n\r\n{\"prompt\": \"")
        let reply = try announced.response()
        #expect(reply.status == 413, "\(reply.body)")
        #expect(reply.json.error["code"] as? String == "request_too_large" && reply.json.error["type"] is String)
        #expect(announced.isClosedByServer())

        let chunked = try RawConnection(port: server.port)
        try chunked.send("POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n")
        let piece = [UInt8](repeating: UInt8(ascii: "a"), count: 1 << 20)
        var sent = 0
        while sent <= limit {
            // The server stops reading once the limit is passed; a send may then fail, which is fine.
            do { try chunked.send(Array("\(String(piece.count, radix: 16))\r\n".utf8) + piece + Array("\r\n".utf8)) } catch { break }
            sent += piece.count
        }
        let chunkedReply = try chunked.response()
        #expect(chunkedReply.status == 413, "\(chunkedReply.body)")
        #expect(try await server.post("/v1/completions", ["prompt": "Hi", "max_tokens": 2]).status == 200)
    }

    /// Requests whose size would cost the server far more than their bytes are refused before that cost: too many
    /// prompts × choices (jobs), and text that cannot fit the context whatever it tokenizes to (not tokenized).
    @Test func costlyRequestsAreRefusedEarly() async throws {
        let server = try await TestServer.tiny()
        defer { Task { await server.stop() } }
        let many = try await server.post("/v1/completions", ["prompt": [[Int]](repeating: [1, 2], count: 600), "n": 2, "max_tokens": 1])
        #expect(many.status == 400 && many.json.error["param"] as? String == "prompt", "\(many.body)")
        let manyTexts = try await server.post("/v1/completions", ["prompt": [String](repeating: "Hi", count: 1025), "max_tokens": 1])
        #expect(manyTexts.status == 400, "\(manyTexts.body)")
        let long = String(repeating: "x", count: 1 << 20)
        for reply in [try await server.post("/v1/completions", ["prompt": long]),
                      try await server.post("/v1/chat/completions", ["messages": [["role": "user", "content": long]]])] {
            #expect(reply.status == 400 && reply.json.error["code"] as? String == "context_length_exceeded", "\(reply.body.prefix(300))")
            #expect((reply.json.error["message"] as? String)?.contains("at least") == true, "refused before tokenizing")
        }
    }

    /// A client that goes away mid-stream frees its slot at once, and the answers of the clients still there are
    /// the same as when they run alone.
    @Test func cancelledStreamLeavesOthersUnchanged() async throws {
        let server = try await TestServer.tiny(parallel: 2, queueSize: 4, contextSize: 1024)
        defer { Task { await server.stop() } }
        let prompts = ["Once upon a time", "The capital of France is", "Water boils at"]
        let tokenizer = try LoadedModel.open(Paths.tinyModel).tokenizer()
        let ids = prompts.map { tokenizer.encode($0, addSpecialTokens: true, parseSpecial: true) }
        let expected = try generatorOutputs(ids, maxNewTokens: 24)

        let leaver = try RawConnection(port: server.port)
        try leaver.send(RawConnection.post("/v1/completions", #"{"prompt": "Once", "max_tokens": 100000, "stream": true, "seed": 3}"#))
        let others = Task {
            var texts: [String] = []
            for prompt in ids {
                let reply = try await server.post("/v1/completions", ["prompt": prompt.map(Int.init), "max_tokens": 24, "temperature": 0])
                texts.append(reply.json.choices.first?["text"] as? String ?? "<none>")
            }
            return texts
        }
        try await Task.sleep(for: .milliseconds(300))
        shutdown(leaver.descriptor, Int32(SHUT_RDWR))
        #expect(try await others.value == expected)
        var health: [String: Any] = [:]
        let start = Date()
        while Date().timeIntervalSince(start) < 20 {
            health = try await server.request(.GET, "/health").json
            if health["slots_busy"] as? Int == 0 { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(health["slots_busy"] as? Int == 0 && health["requests_cancelled"] as? Int == 1, "\(health)")
    }
}
