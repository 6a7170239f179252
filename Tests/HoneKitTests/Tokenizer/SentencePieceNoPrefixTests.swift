import Foundation
import Testing
@testable import HoneKit

/// SentencePiece GGUF vocabularies without the dummy-prefix space (`tokenizer.ggml.add_space_prefix = false`, as
/// llama.cpp's converter writes Gemma's): the shared Llama SPM vocabulary with that key added, against
/// llama-tokenize's ids on the same copy (tools/oracle/make_spm_no_prefix_fixture.py).
@Suite struct SentencePieceNoPrefixTests {
    static let vocabulary = TokenizerVectors.directory.appendingPathComponent("ggml-vocab-llama-spm.gguf").path

    /// The shared vocabulary rewritten with add_space_prefix false (every other key as it was).
    static func vocabularyWithoutPrefix(in directory: URL) throws -> String {
        let original = try GGUFFile(path: vocabulary)
        let writer = GGUFWriter()
        for key in original.metadataKeys where key != "general.alignment" {
            let type = original.metadataTypes[key]!
            writer.add(key, value: original.metadata[key]!, type: type.type, arrayType: type.elementType)
        }
        writer.add("tokenizer.ggml.add_space_prefix", bool: false)
        let path = directory.appendingPathComponent("vocab.gguf").path
        try writer.write(to: path)
        return path
    }

    static func cases() throws -> [(text: String, ids: [Int32], idsParsingSpecial: [Int32])] {
        let path = Repository.fixture("tokenizers/spm-no-prefix/cases.json")
        let json = try #require(try parseJSON(Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
        return try #require(json["cases"] as? [[String: Any]]).map { entry in
            let ids = { (key: String) in (entry[key] as! [Any]).map { Int32(jsonInteger($0)!) } }
            return (entry["text"] as! String, ids("ids"), ids("ids_parse_special"))
        }
    }

    @Test("a SentencePiece GGUF without the prefix space tokenizes as llama.cpp does",
          .enabled(if: TokenizerVectors.available, "../shared/data/tokenizer-vectors is absent"))
    func matchesLlamaCpp() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = try Self.vocabularyWithoutPrefix(in: directory)
        let tokenizer = try TokenizerLoader.load(gguf: GGUFFile(path: path))
        let cases = try Self.cases()
        #expect(cases.count > 40)
        // Without the key the same text starts with "▁Hello" (15043); with it, "Hello" (10994).
        #expect(tokenizer.encode("Hello", addSpecialTokens: false, parseSpecial: false) == [10994])
        for entry in cases {
            #expect(tokenizer.encode(entry.text, addSpecialTokens: false, parseSpecial: false) == entry.ids,
                    "\(entry.text.debugDescription)")
            #expect(tokenizer.encode(entry.text, addSpecialTokens: false, parseSpecial: true) == entry.idsParsingSpecial,
                    "\(entry.text.debugDescription) (special tokens parsed)")
        }
    }

    /// The tokenizer.json `hone convert` writes from such a GGUF adds no prefix either.
    @Test("tokenizer.json written from it keeps the vocabulary's prefix rule",
          .enabled(if: TokenizerVectors.available, "../shared/data/tokenizer-vectors is absent"))
    func writtenTokenizerJSON() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let gguf = try GGUFFile(path: Self.vocabularyWithoutPrefix(in: directory))
        let written = directory.appendingPathComponent("hf")
        try FileManager.default.createDirectory(at: written, withIntermediateDirectories: true)
        for (name, object) in try HuggingFaceTokenizerFiles.sentencePiece(gguf, contextLength: 4096) {
            try HuggingFaceExport.writeJSON(object, to: written.appendingPathComponent(name).path)
        }
        let tokenizer = try TokenizerLoader.load(directory: written.path)
        for entry in try Self.cases() {
            #expect(tokenizer.encode(entry.text, addSpecialTokens: false, parseSpecial: false) == entry.ids,
                    "\(entry.text.debugDescription)")
        }
    }
}
