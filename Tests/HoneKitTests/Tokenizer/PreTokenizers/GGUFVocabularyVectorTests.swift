import Foundation
import Testing
@testable import HoneKit

/// llama.cpp's `test-tokenizer-0` vectors for every vocabulary in ../shared/data/tokenizer-vectors: each GGUF loads
/// through Hone's loader (its `tokenizer.ggml.pre` picks the pre-tokenizer) and must give the expected ids for
/// every input, without BOS/EOS and with special tokens as plain text.
@Suite("GGUF vocabulary vectors")
struct GGUFVocabularyVectorTests {
    static let vocabularies = [
        "llama-spm", "phi-3", "gpt-2", "llama-bpe", "qwen2", "deepseek-llm", "deepseek-coder", "falcon", "mpt",
        "starcoder", "refact",
    ]

    static func path(_ name: String) -> String {
        ByteLevelVectors.directory.appendingPathComponent("ggml-vocab-\(name).gguf").path
    }

    static var available: Bool { FileManager.default.fileExists(atPath: path("gpt-2")) }

    @Test("every input gives llama.cpp's ids", .enabled(if: available,
        "needs ../shared/data/tokenizer-vectors (llama.cpp's vocab GGUFs), which is absent"), arguments: vocabularies)
    func vectors(_ name: String) throws {
        let path = Self.path(name)
        try #require(FileManager.default.fileExists(atPath: path), "\(path) is missing")
        let tokenizer = try TokenizerLoader.load(gguf: GGUFFile(path: path))
        let cases = try ByteLevelVectors.cases(path)
        #expect(cases.count >= 40)
        var failures = 0
        for (text, expected) in cases {
            let ids = tokenizer.encode(text, addSpecialTokens: false, parseSpecial: false)
            if ids != expected {
                failures += 1
                Issue.record("\(name): \(String(reflecting: text)) gave \(ids), expected \(expected)")
            }
        }
        #expect(failures == 0, "\(name): \(failures) of \(cases.count) inputs differ")
    }

    /// The tokenizer.json `hone convert` writes from each byte-level vocabulary (its pre-tokenizer as tokenizer.json
    /// pre-tokenizers: one scanner's pattern, or llama.cpp's list of regexes as a Sequence of Splits) gives the same
    /// ids through Hone's tokenizer.json loader.
    @Test("tokenizer.json written from each byte-level vocabulary gives llama.cpp's ids", .enabled(if: available,
        "needs ../shared/data/tokenizer-vectors (llama.cpp's vocab GGUFs), which is absent"),
          arguments: ["gpt-2", "llama-bpe", "qwen2", "deepseek-llm", "deepseek-coder", "falcon", "mpt", "starcoder", "refact"])
    func writtenTokenizerJSON(_ name: String) throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = Self.path(name)
        for (file, object) in try HuggingFaceTokenizerFiles.byteLevel(GGUFFile(path: path), contextLength: 2048) {
            try HuggingFaceExport.writeJSON(object, to: directory.appendingPathComponent(file).path)
        }
        let tokenizer = try TokenizerLoader.load(directory: directory.path)
        var failures = 0
        for (text, expected) in try ByteLevelVectors.cases(path) {
            let ids = tokenizer.encode(text, addSpecialTokens: false, parseSpecial: false)
            if ids != expected {
                failures += 1
                if failures <= 5 { Issue.record("\(name): \(String(reflecting: text)) gave \(ids), expected \(expected)") }
            }
        }
        #expect(failures == 0, "\(name): \(failures) inputs differ")
    }

    /// A vocabulary added to the directory later gets noticed rather than silently untested.
    @Test("every vocabulary in the directory is covered", .enabled(if: available))
    func everyVocabularyIsCovered() throws {
        let names = try FileManager.default.contentsOfDirectory(atPath: ByteLevelVectors.directory.path)
            .filter { $0.hasSuffix(".gguf") }
            .map { String($0.dropFirst("ggml-vocab-".count).dropLast(".gguf".count)) }
        #expect(Set(names).subtracting(Self.vocabularies).isEmpty, "vocabularies without a test: \(Set(names).subtracting(Self.vocabularies))")
    }
}
