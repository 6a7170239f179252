import Foundation
import Testing
@testable import HoneKit

/// llama.cpp's tokenizer test vectors (../shared/data/tokenizer-vectors): inputs split on the separator,
/// expected ids one line each; encoded without BOS/EOS and without parsing special tokens.
struct TokenizerVectors {
    let inputs: [String]
    let expected: [[Int32]]

    static var directory: URL { Repository.shared.appendingPathComponent("data/tokenizer-vectors") }
    static var available: Bool { FileManager.default.fileExists(atPath: directory.path) }

    init(family: String) throws {
        let base = TokenizerVectors.directory.appendingPathComponent("ggml-vocab-\(family).gguf")
        let input = try String(contentsOf: URL(fileURLWithPath: base.path + ".inp"), encoding: .utf8)
        var parts = input.components(separatedBy: "\n__ggml_vocab_test__\n")
        parts.removeLast()
        inputs = parts
        let output = try String(contentsOf: URL(fileURLWithPath: base.path + ".out"), encoding: .utf8)
        var lines = output.components(separatedBy: "\n")
        if lines.last == "" { lines.removeLast() }
        expected = lines.map { line in line.split(separator: " ").map { Int32($0)! } }
    }
}

@Suite struct SentencePieceTests {
    @Test(.enabled(if: TokenizerVectors.available, "../shared/data/tokenizer-vectors is absent"))
    func llamaVectorsFromGGUF() throws {
        let vectors = try TokenizerVectors(family: "llama-spm")
        let gguf = try GGUFFile(path: TokenizerVectors.directory.appendingPathComponent("ggml-vocab-llama-spm.gguf").path)
        let tokenizer = try SentencePieceTokenizer.load(gguf: gguf)
        #expect(vectors.inputs.count == 46 && vectors.expected.count == 46)
        for (text, expected) in zip(vectors.inputs, vectors.expected) {
            let ids = tokenizer.encode(text, addSpecialTokens: false, parseSpecial: false)
            #expect(ids == expected, "\(text.debugDescription)")
        }
    }
}
