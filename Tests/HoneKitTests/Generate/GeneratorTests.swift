import Foundation
import Testing
@testable import HoneKit

@Suite struct GeneratorTests {
    static let texts = [
        "Below is an instruction.", "Write a poem about the sea.", "1 2 3 4 5", "def f(x):",
        "The quick brown fox", "Hello", "Why is the sky blue? Explain briefly and clearly.",
        "Il était une fois", "Name three colors.",
    ]

    func setUp() throws -> (LoadedModel, Tokenizer) {
        let path = Repository.root.appendingPathComponent("models/hone-tiny").path
        return (try LoadedModel.open(path), try TokenizerLoader.load(modelPath: path))
    }

    func run(_ generator: Generator, _ requests: [GenerationRequest], batchSize: Int) throws -> [GenerationResult] {
        var results = [GenerationResult?](repeating: nil, count: requests.count)
        var streamed = [String](repeating: "", count: requests.count)
        try generator.generate(requests, batchSize: batchSize, onText: { streamed[$0] += $1 },
                               onFinish: { results[$0] = $1 })
        for (index, result) in results.enumerated() {
            #expect(result?.text == streamed[index], "streamed text equals the result text")
        }
        return results.map { $0! }
    }

    /// Continuous batching gives every request exactly its batch-size-1 output, greedy or sampled (each request
    /// has its own seeded sampler).
    @Test(arguments: [SamplingParameters(), SamplingParameters(temperature: 0.9, topK: 40, topP: 0.95, seed: 7)])
    func batchEqualsSingle(sampling: SamplingParameters) throws {
        let (loaded, tokenizer) = try setUp()
        let generator = Generator(model: loaded.model, tokenizer: tokenizer)
        generator.endOfSequenceIDs = []  // random weights: run every request to its length
        let requests = Self.texts.enumerated().map { index, text in
            GenerationRequest(promptTokens: tokenizer.encode(text), maxNewTokens: 6 + 3 * index, sampling: sampling)
        }
        let single = try run(generator, requests, batchSize: 1)
        for batchSize in [3, 4, 16] {
            let batched = try run(generator, requests, batchSize: batchSize)
            for (a, b) in zip(single, batched) {
                #expect(a.tokens == b.tokens, "batch size \(batchSize)")
                #expect(a.text == b.text)
            }
        }
        #expect(single.enumerated().allSatisfy { $0.element.tokens.count == 6 + 3 * $0.offset })
        #expect(single.allSatisfy { $0.finishReason == .length })
    }

    @Test func sameSeedSameTextOtherSeedOtherText() throws {
        let (loaded, tokenizer) = try setUp()
        let generator = Generator(model: loaded.model, tokenizer: tokenizer)
        generator.endOfSequenceIDs = []
        func sample(_ seed: UInt64) throws -> [Int32] {
            let request = GenerationRequest(promptTokens: tokenizer.encode("Once upon a time"), maxNewTokens: 30,
                                            sampling: SamplingParameters(temperature: 1.0, seed: seed))
            return try run(generator, [request], batchSize: 1)[0].tokens
        }
        #expect(try sample(11) == sample(11))
        #expect(try sample(11) != sample(12))
    }

    /// A stop string ends the answer and is never printed, even when it arrives split across tokens.
    @Test func stopStringsAreCutAndNeverPrinted() throws {
        let (loaded, tokenizer) = try setUp()
        let generator = Generator(model: loaded.model, tokenizer: tokenizer)
        generator.endOfSequenceIDs = []
        let prompt = tokenizer.encode("Write a poem about the sea.")
        let free = try run(generator, [GenerationRequest(promptTokens: prompt, maxNewTokens: 40)], batchSize: 1)[0]
        let text = free.text
        #expect(text.count > 12)
        // A stop string taken from the middle of the free-running text, spanning token boundaries.
        let start = text.index(text.startIndex, offsetBy: text.count / 2)
        let stop = String(text[start...].prefix(5))
        let stopped = try run(generator, [GenerationRequest(promptTokens: prompt, maxNewTokens: 40, stopStrings: [stop])],
                              batchSize: 1)[0]
        #expect(stopped.finishReason == .stopString)
        #expect(stopped.text == String(text[..<text.range(of: stop)!.lowerBound]))
        #expect(!stopped.text.contains(stop))
    }

    /// Any id of the EOS list ends the sequence; the EOS itself is not part of the output.
    @Test func everyEndOfSequenceIDStops() throws {
        let (loaded, tokenizer) = try setUp()
        let generator = Generator(model: loaded.model, tokenizer: tokenizer)
        generator.endOfSequenceIDs = []
        let prompt = tokenizer.encode("Name three colors.")
        let free = try run(generator, [GenerationRequest(promptTokens: prompt, maxNewTokens: 20)], batchSize: 1)[0]
        let cut = free.tokens.firstIndex(of: free.tokens[5])!
        generator.endOfSequenceIDs = [99_999, free.tokens[5]]
        let stopped = try run(generator, [GenerationRequest(promptTokens: prompt, maxNewTokens: 20)], batchSize: 1)[0]
        #expect(stopped.finishReason == .endOfSequence)
        #expect(stopped.tokens == Array(free.tokens[..<cut]))
    }

    @Test func contextLimitEndsCleanly() throws {
        let (loaded, tokenizer) = try setUp()
        let generator = Generator(model: loaded.model, tokenizer: tokenizer)
        generator.endOfSequenceIDs = []
        let prompt = tokenizer.encode("The quick brown fox")
        generator.contextLimit = prompt.count + 5
        let result = try run(generator, [GenerationRequest(promptTokens: prompt, maxNewTokens: 50)], batchSize: 1)[0]
        #expect(result.finishReason == .contextFull)
        #expect(result.tokens.count <= 5)
        generator.contextLimit = prompt.count
        #expect(throws: HoneError.self) {
            try run(generator, [GenerationRequest(promptTokens: prompt, maxNewTokens: 5)], batchSize: 1)
        }
    }
}

/// A tokenizer for models without one (the oracle's fixture models): ids only, no text.
final class IdsOnlyTokenizer: Tokenizer, @unchecked Sendable {
    let vocabularySize: Int
    init(vocabularySize: Int) { self.vocabularySize = vocabularySize }
    var bosTokenID: Int32? { nil }
    var eosTokenID: Int32? { nil }
    var unknownTokenID: Int32? { nil }
    var padTokenID: Int32? { nil }
    var addsBOS: Bool { false }
    var addsEOS: Bool { false }
    var specialTokens: [String: Int32] { [:] }
    func encode(_ text: String, addSpecialTokens: Bool, parseSpecial: Bool) -> [Int32] { [] }
    func tokenBytes(_ id: Int32, includeSpecial: Bool) -> [UInt8] { [] }
    func decode(_ ids: [Int32], skipSpecialTokens: Bool) -> String { "" }
    func piece(for id: Int32) -> String? { nil }
    func id(forPiece piece: String) -> Int32? { nil }
    func isSpecial(_ id: Int32) -> Bool { false }
}

@Suite struct GreedyGenerationOracleTests {
    /// Greedy output equals transformers' `generate(do_sample=False)` token for token, alone and in a batch
    /// (tools/oracle/make_generation_fixtures.py; the batch was run by transformers with left padding).
    @Test func matchesTransformersGenerate() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: Repository.fixture("generation/greedy.json")))
        let json = try parseJSON(data) as! [String: Any]
        let models = json["models"] as! [[String: Any]]
        #expect(models.count >= 4)
        for entry in models {
            let name = entry["model"] as! String
            let path = name.hasPrefix("models/hone") ? Repository.root.appendingPathComponent(name).path : Repository.fixture(name)
            let loaded = try LoadedModel.open(path)
            let tokenizer: Tokenizer = (try? TokenizerLoader.load(modelPath: path)) ?? IdsOnlyTokenizer(vocabularySize: loaded.config.vocabularySize)
            let generator = Generator(model: loaded.model, tokenizer: tokenizer)
            let eos = Int32(jsonInteger(entry["eos_token_id"]!)!)
            generator.endOfSequenceIDs = [eos]
            let maxNewTokens = jsonInteger(entry["max_new_tokens"]!)!
            var cases = entry["cases"] as! [[String: Any]]
            if let batch = entry["batch"] as? [String: Any] { cases += batch["rows"] as! [[String: Any]] }
            let requests = cases.map { item in
                GenerationRequest(promptTokens: (item["prompt_tokens"] as! [Any]).map { Int32(jsonInteger($0)!) },
                                  maxNewTokens: maxNewTokens)
            }
            var results = [GenerationResult?](repeating: nil, count: requests.count)
            try generator.generate(requests, batchSize: 4, onFinish: { results[$0] = $1 })
            for (item, result) in zip(cases, results) {
                let expected = (item["generated_tokens"] as! [Any]).map { Int32(jsonInteger($0)!) }
                let ours = result!.tokens + (result!.finishReason == .endOfSequence ? [eos] : [])
                #expect(ours == expected, "\(name)")
                #expect((item["stopped_by"] as! String) == (result!.finishReason == .endOfSequence ? "eos" : "length"))
            }
        }
    }
}
