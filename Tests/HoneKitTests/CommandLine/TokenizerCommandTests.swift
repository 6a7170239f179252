import Foundation
import Testing
@testable import HoneKit

@Suite struct TokenizerCommandTests {
    struct TextCase {
        let text: String
        let tokens: [Int32]
        let logprobs: [Double]
    }

    /// The default model's golden texts: ids from HF tokenizers (with BOS) and transformers' log-probs.
    static func goldenTexts() throws -> [TextCase] {
        let data = try Data(contentsOf: URL(fileURLWithPath: Repository.fixture("logprobs/hone-tiny.json")))
        let json = try parseJSON(data) as! [String: Any]
        return (json["texts"] as! [[String: Any]]).map { item in
            TextCase(text: item["text"] as! String,
                     tokens: (item["tokens"] as! [Any]).map { Int32(jsonInteger($0)!) },
                     logprobs: (item["logprobs"] as! [Any]).dropFirst().map { jsonDouble($0)! })
        }
    }

    static var defaultModel: String { Repository.root.appendingPathComponent("models/hone-tiny").path }

    @Test func tokenizePrintsTheReferenceIds() throws {
        for item in try Self.goldenTexts() {
            let result = try runProcess(Repository.honeExecutable, ["tokenize", "--model", Self.defaultModel, "--text", item.text])
            #expect(result.status == 0, "\(result.stderr)")
            let ids = (try parseJSON(Data(result.stdout.utf8)) as! [Any]).map { Int32(jsonInteger($0)!) }
            #expect(ids == item.tokens)
            let bare = try runProcess(Repository.honeExecutable,
                                      ["tokenize", "--model", Self.defaultModel, "--text", item.text, "--no-add-special-tokens"])
            #expect((try parseJSON(Data(bare.stdout.utf8)) as! [Any]).map { Int32(jsonInteger($0)!) } == Array(item.tokens.dropFirst()))
        }
    }

    @Test func tokenizeJSONLinesAndParseSpecial() throws {
        let directory = try makeTemporaryDirectory()
        let input = directory.appendingPathComponent("texts.jsonl").path
        try Data("{\"text\": \"Hello</s>\"}\n{\"text\": \"\"}\n".utf8).write(to: URL(fileURLWithPath: input))
        let tokenizer = try TokenizerLoader.load(modelPath: Self.defaultModel)
        for (flags, parse) in [([String](), false), (["--parse-special"], true)] {
            let result = try runProcess(Repository.honeExecutable, ["tokenize", "--model", Self.defaultModel, "--input", input] + flags)
            #expect(result.status == 0, "\(result.stderr)")
            let lines = result.stdout.split(separator: "\n").map { try! parseJSON(Data($0.utf8)) as! [String: Any] }
            let first = (lines[0]["tokens"] as! [Any]).map { Int32(jsonInteger($0)!) }
            #expect(first == tokenizer.encode("Hello</s>", addSpecialTokens: true, parseSpecial: parse))
            #expect(first.last == 2 || !parse)
            #expect((lines[1]["tokens"] as! [Any]).map { Int32(jsonInteger($0)!) } == [1])
        }
    }

    /// `hone score` takes text lines, tokenizes them like HF and matches transformers' log-probs.
    @Test func scoreTextMatchesTransformers() throws {
        let cases = try Self.goldenTexts()
        let directory = try makeTemporaryDirectory()
        let input = directory.appendingPathComponent("texts.jsonl").path
        try Data(cases.map { "{\"text\": \(jsonString($0.text))}\n" }.joined().utf8).write(to: URL(fileURLWithPath: input))
        let result = try runProcess(Repository.honeExecutable, ["score", "--model", Self.defaultModel, "--input", input])
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map { try! parseJSON(Data($0.utf8)) as! [String: Any] }
        #expect(lines.count == cases.count)
        for (line, item) in zip(lines, cases) {
            #expect((line["tokens"] as! [Any]).map { Int32(jsonInteger($0)!) } == item.tokens)
            let values = (line["logprobs"] as! [Any]).dropFirst().map { jsonDouble($0)! }
            #expect(maxAbsDifference(values, item.logprobs) <= 1e-4)
        }
    }
}

/// Broken tokenizer files get one clear error naming the file.
@Suite struct TokenizerBadInputTests {
    func damagedCopy(_ fixture: String, file: String, keep fraction: Double) throws -> (directory: String, path: String) {
        let directory = try makeTemporaryDirectory().appendingPathComponent(fixture)
        try FileManager.default.copyItem(at: Repository.fixtures.appendingPathComponent("tokenizers/\(fixture)"), to: directory)
        let path = directory.appendingPathComponent(file).path
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        try data.prefix(Int(Double(data.count) * fraction)).write(to: URL(fileURLWithPath: path))
        return (directory.path, path)
    }

    @Test(arguments: [("spm-bpe", "tokenizer.json"), ("gpt2-bpe", "tokenizer.json"), ("llama3-bpe", "tokenizer.json")])
    func truncatedTokenizerJSON(fixture: String, file: String) throws {
        let (directory, path) = try damagedCopy(fixture, file: file, keep: 0.5)
        do {
            _ = try TokenizerLoader.load(directory: directory)
            Issue.record("a truncated tokenizer.json loaded")
        } catch let error as HoneError {
            #expect(error.description.hasPrefix(path), "\(error)")
        }
    }

    @Test(arguments: [0.5, 0.01])
    func truncatedSentencePieceModel(fraction: Double) throws {
        let (directory, path) = try damagedCopy("spm-bpe", file: "tokenizer.model", keep: fraction)
        try FileManager.default.removeItem(atPath: directory + "/tokenizer.json")
        do {
            _ = try TokenizerLoader.load(directory: directory)
            Issue.record("a truncated tokenizer.model loaded")
        } catch let error as HoneError {
            #expect(error.description.hasPrefix(path), "\(error)")
        }
    }

    /// Varints of ten bytes (past Int's range) where the model file holds a piece type or the model type: making
    /// them an Int trapped.
    @Test func sentencePieceVarintsPastIntsRange() throws {
        let huge: [UInt8] = Array(repeating: 0xFF, count: 9) + [0x01]
        let piece: [UInt8] = [0x0A, 0x01, 0x61, 0x18] + huge  // text "a", type 2^64 - 1
        let trainer: [UInt8] = [0x18] + huge  // model_type 2^64 - 1
        let path = try makeTemporaryDirectory().appendingPathComponent("tokenizer.model").path
        for (bytes, message) in [([0x0A, UInt8(piece.count)] + piece, "piece 'a' has unknown type 18446744073709551615"),
                                 ([0x0A, 0x03, 0x0A, 0x01, 0x61, 0x12, UInt8(trainer.count)] + trainer,
                                  "SentencePiece type -1 models are not supported (BPE is)")] {
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            #expect(throws: HoneError.malformedFile(path: path, message: message)) {
                try SentencePieceTokenizer.load(modelFile: path, tokenizerConfig: nil)
            }
        }
    }

    @Test func ggufWithoutTokenizer() throws {
        let path = Repository.fixture("gguf/llama-gqa-f32.gguf")
        #expect(throws: HoneError.self) { try TokenizerLoader.load(modelPath: path) }
        let result = try runProcess(Repository.honeExecutable, ["tokenize", "--model", path, "--text", "hi"])
        #expect(result.status == 1)
        #expect(result.stderr.hasPrefix("hone: error: \(path): GGUF file has no tokenizer"), "\(result.stderr)")
        #expect(result.stderr.split(separator: "\n").count == 1)
    }

    @Test func directoryWithoutTokenizer() throws {
        let directory = Repository.fixture("models/llama-gqa")
        let input = try makeTemporaryDirectory().appendingPathComponent("t.jsonl").path
        try Data("{\"text\": \"hello\"}\n".utf8).write(to: URL(fileURLWithPath: input))
        let result = try runProcess(Repository.honeExecutable, ["score", "--model", directory, "--input", input])
        #expect(result.status == 1)
        #expect(result.stderr.contains("no tokenizer found"), "\(result.stderr)")
    }
}
