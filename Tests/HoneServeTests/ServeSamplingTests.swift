import Foundation
import HoneKit
import HoneServe
import Testing

/// `logit_bias`, `frequency_penalty` and `presence_penalty` against a greedy decode written out here from OpenAI's
/// definitions: logit[t] += bias[t] (-100: banned), then logit[t] -= count[t] * frequency + (count[t] > 0) * presence,
/// where count[t] is how often t was generated so far (prompt tokens do not count).
@Suite(.serialized) struct ServeSamplingTests {
    static let steps = 16

    /// Greedy continuation of `prompt` with the request fields applied by hand to the model's logits.
    static func reference(_ prompt: [Int32], steps: Int = steps, bias: [Int32: Float] = [:], frequency: Float = 0,
                          presence: Float = 0, countPrompt: Bool = false) throws -> [Int32] {
        let loaded = try LoadedModel.open(Paths.tinyModel)
        let model = loaded.model
        let ends = try loaded.makeGenerator(template: try loaded.promptTemplate("auto")).endOfSequenceIDs
        let vocabulary = model.config.vocabularySize
        let cache = model.makeCache()
        var logits = [Float](repeating: 0, count: vocabulary)
        var generated: [Int32] = []
        // llama-server's way (prompt tokens counted too), only to show that the test tells the two apart.
        var counts: [Int32: Int] = countPrompt ? Dictionary(prompt.map { ($0, 1) }, uniquingKeysWith: +) : [:]
        var input = prompt
        for _ in 0..<steps {
            let hidden = try model.forward([SequenceInput(tokens: input, cache: cache)])
            logits.withUnsafeMutableBufferPointer {
                model.projectToVocabulary(hidden.values.pointer + (hidden.rows - 1) * hidden.width, rows: 1, into: $0.baseAddress!)
            }
            for (token, value) in bias { logits[Int(token)] = value == -100 ? -.infinity : logits[Int(token)] + value }
            for (token, count) in counts { logits[Int(token)] -= Float(count) * frequency + presence }
            var best = 0
            for index in 1..<vocabulary where logits[index] > logits[best] { best = index }
            let token = Int32(best)
            if ends.contains(token) { break }
            generated.append(token)
            counts[token, default: 0] += 1
            input = [token]
        }
        return generated
    }

    /// The text of `tokens` as the server decodes a continuation: after the prompt's last ids (" tak", not "tak").
    static func text(_ tokens: [Int32], after prompt: [Int32]) throws -> String {
        let detokenizer = StreamingDetokenizer(tokenizer: try LoadedModel.open(Paths.tinyModel).tokenizer(), context: prompt)
        return tokens.map(detokenizer.push).joined() + detokenizer.finish()
    }

    func complete(_ server: TestServer, _ prompt: [Int32], _ extra: [String: Any]) async throws -> String {
        var body: [String: Any] = ["prompt": prompt.map(Int.init), "max_tokens": Self.steps, "temperature": 0]
        body.merge(extra) { $1 }
        let reply = try await server.post("/v1/completions", body)
        #expect(reply.status == 200, "\(reply.body)")
        return reply.json.choices.first?["text"] as? String ?? "<none>"
    }

    func chat(_ server: TestServer, _ extra: [String: Any]) async throws -> String {
        var body: [String: Any] = ["messages": [["role": "user", "content": "Tell me about the sea."]],
                                   "max_tokens": Self.steps, "temperature": 0]
        body.merge(extra) { $1 }
        let reply = try await server.post("/v1/chat/completions", body)
        #expect(reply.status == 200, "\(reply.body)")
        return (reply.json.choices.first?["message"] as? [String: Any])?["content"] as? String ?? "<none>"
    }

    @Test func logitBiasBansAndFavoursOnBothEndpoints() async throws {
        let server = try await TestServer.tiny()
        defer { Task { await server.stop() } }
        let tokenizer = try LoadedModel.open(Paths.tinyModel).tokenizer()
        let prompt = tokenizer.encode("Once upon a time", addSpecialTokens: true, parseSpecial: true)

        let plain = try Self.reference(prompt)
        #expect(try await complete(server, prompt, [:]) == Self.text(plain, after: prompt))
        // Ban the first token the model picks, and the one it repeats most: neither may appear.
        let first = plain[0]
        let frequent = Dictionary(plain.map { ($0, 1) }, uniquingKeysWith: +).filter { $0.key != first }
            .max { $0.value < $1.value }?.key ?? (first + 1)
        let bans: [Int32: Float] = [first: -100, frequent: -100]
        let banned = try Self.reference(prompt, bias: bans)
        #expect(!banned.contains(first) && !banned.contains(frequent))
        #expect(banned != plain)
        #expect(try await complete(server, prompt, ["logit_bias": ["\(first)": -100, "\(frequent)": -100]]) == Self.text(banned, after: prompt))
        // llama-server's list form means the same.
        #expect(try await complete(server, prompt, ["logit_bias": [[Int(first), -100], [Int(frequent), -100]]]) == Self.text(banned, after: prompt))
        // A finite bias shifts the logit: +100 on a token makes greedy pick it every time.
        let favoured = Int32(tokenizer.encode(" sea", addSpecialTokens: false, parseSpecial: false).last!)
        let pushed = try Self.reference(prompt, bias: [favoured: 100])
        #expect(pushed == [Int32](repeating: favoured, count: Self.steps))
        #expect(try await complete(server, prompt, ["logit_bias": ["\(favoured)": 100]]) == Self.text(pushed, after: prompt))
        // A small bias: what the hand computation says, whatever it changes.
        let nudged = try Self.reference(prompt, bias: [first: -1.5, frequent: 2.5])
        #expect(try await complete(server, prompt, ["logit_bias": ["\(first)": -1.5, "\(frequent)": 2.5]]) == Self.text(nudged, after: prompt))

        // Chat: the same on the prompt the server renders.
        let rendered = try await server.post("/tokenize", ["messages": [["role": "user", "content": "Tell me about the sea."]]])
        let chatPrompt = (rendered.json["tokens"] as? [Int] ?? []).map(Int32.init)
        #expect(!chatPrompt.isEmpty)
        let chatPlain = try Self.reference(chatPrompt)
        #expect(try await chat(server, [:]) == Self.text(chatPlain, after: chatPrompt))
        if let chatFirst = chatPlain.first {
            let chatBanned = try Self.reference(chatPrompt, bias: [chatFirst: -100])
            #expect(chatBanned.first != chatFirst)
            #expect(try await chat(server, ["logit_bias": ["\(chatFirst)": -100]]) == Self.text(chatBanned, after: chatPrompt))
        }
    }

    @Test func frequencyAndPresencePenaltiesFollowOpenAIsFormula() async throws {
        let server = try await TestServer.tiny()
        defer { Task { await server.stop() } }
        let tokenizer = try LoadedModel.open(Paths.tinyModel).tokenizer()
        // A prompt whose greedy continuation repeats itself, so that the penalties have something to act on.
        let prompt = tokenizer.encode("1, 2, 3, 4,", addSpecialTokens: true, parseSpecial: true)
        let plain = try Self.reference(prompt)
        #expect(Set(plain).count < plain.count, "the plain continuation repeats tokens: \(plain)")
        #expect(try await complete(server, prompt, [:]) == Self.text(plain, after: prompt))
        for (frequency, presence) in [(Float(1.5), Float(0)), (0, 1.5), (0.7, 0.4), (-0.5, 0), (2, 2)] {
            let expected = try Self.reference(prompt, frequency: frequency, presence: presence)
            let got = try await complete(server, prompt, ["frequency_penalty": Double(frequency), "presence_penalty": Double(presence)])
            #expect(try got == Self.text(expected, after: prompt), "frequency \(frequency), presence \(presence)")
            if frequency > 0 || presence > 0 { #expect(expected != plain, "the penalties change the greedy answer") }
        }
        // Prompt tokens do not count (OpenAI counts sampled tokens; llama-server would count these repeats).
        let repeated = prompt + [Int32](repeating: plain[0], count: 6)
        let openAI = try Self.reference(repeated, steps: 4, frequency: 2, presence: 2)
        let countingPrompt = try Self.reference(repeated, steps: 4, frequency: 2, presence: 2, countPrompt: true)
        #expect(openAI != countingPrompt, "counting the prompt would change this answer")
        #expect(try await complete(server, repeated, ["max_tokens": 4, "frequency_penalty": 2, "presence_penalty": 2])
            == Self.text(openAI, after: repeated))
    }

    @Test func badLogitBiasIsA400() async throws {
        let server = try await TestServer.tiny()
        defer { Task { await server.stop() } }
        for bias: Any in [["999999": 1], ["5": 101], ["5": -100.5], ["x": 1], ["5": "high"], [[5]], 3, ["-1": 1]] {
            let reply = try await server.post("/v1/completions", ["prompt": "Hi", "max_tokens": 2, "logit_bias": bias])
            #expect(reply.status == 400, "\(bias): \(reply.body)")
            #expect(reply.json.error["param"] as? String == "logit_bias", "\(bias): \(reply.body)")
        }
        let chat = try await server.post("/v1/chat/completions", ["messages": [["role": "user", "content": "Hi"]],
                                                                  "logit_bias": ["999999": 1]])
        #expect(chat.status == 400 && chat.json.error["param"] as? String == "logit_bias", "\(chat.body)")
    }
}
