import Foundation
import Testing
@testable import HoneKit

/// An unknown pre-tokenizer is one error line naming the file and the value.
@Suite("Pre-tokenizer errors")
struct PreTokenizerErrorTests {
    @Test("an unknown GGUF tokenizer.ggml.pre")
    func unknownGGUFPre() throws {
        let writer = GGUFWriter()
        writer.add("general.architecture", string: "llama")
        writer.add("tokenizer.ggml.model", string: "gpt2")
        writer.add("tokenizer.ggml.pre", string: "no-such-pre")
        writer.add("tokenizer.ggml.tokens", strings: ["a", "b", "ab"])
        writer.add("tokenizer.ggml.merges", strings: ["a b"])
        let path = try makeTemporaryDirectory().appendingPathComponent("vocab.gguf").path
        try writer.write(to: path)
        do {
            _ = try TokenizerLoader.load(gguf: GGUFFile(path: path))
            Issue.record("loaded a vocabulary with an unknown pre-tokenizer")
        } catch let error as HoneError {
            let line = error.description
            #expect(line.hasPrefix(path + ": "), "\(line)")
            #expect(line.contains("'no-such-pre'"), "\(line)")
            #expect(!line.contains("\n"))
        }
    }

    @Test("an unknown tokenizer.json pre_tokenizer type", arguments: [
        (#"{"type": "NoSuchPreTokenizer"}"#, "'NoSuchPreTokenizer'"),
        (#"{"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": "(?<=a)b"}, "behavior": "Isolated", "invert": false}, {"type": "ByteLevel", "add_prefix_space": false, "use_regex": false}]}"#, "(?<=a)b"),
        (#"{"type": "Split", "pattern": {"Regex": "a"}, "behavior": "Sideways", "invert": false}"#, "'Sideways'"),
    ])
    func unknownJSONPreTokenizer(_ preTokenizer: String, _ named: String) throws {
        let basePath = Repository.fixture("tokenizers/gpt2-bpe/tokenizer.json")
        var document = try JSONConfig(path: basePath).values
        document["pre_tokenizer"] = try parseJSON(Data(preTokenizer.utf8))
        do {
            _ = try ByteLevelBPETokenizer.load(tokenizerJSON: TokenizerJSONFile(values: document, vocabulary: nil, merges: nil), path: basePath, tokenizerConfig: nil)
            Issue.record("loaded \(preTokenizer)")
        } catch let error as HoneError {
            let line = error.description
            #expect(line.hasPrefix(basePath + ": "), "\(line)")
            #expect(line.contains(named), "\(line)")
            #expect(!line.contains("\n"))
        }
    }
}
