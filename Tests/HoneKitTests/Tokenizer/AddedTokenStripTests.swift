import Foundation
import Testing
@testable import HoneKit

/// Added tokens that take the whitespace beside them along (tools/oracle/make_added_token_strip_fixtures.py): HF's
/// `lstrip` / `rstrip` against `tokenizers`, and llama.cpp's RSTRIP on Phi-3's chat tokens against llama-tokenize.
@Suite("Added tokens that strip whitespace")
struct AddedTokenStripTests {
    static let directory = Repository.fixture("tokenizers/strips")

    static func cases(_ file: String) throws -> [String: Any] {
        // parseJSON keeps strings as written (a leading U+FEFF included).
        try parseJSON(Data(contentsOf: URL(fileURLWithPath: "\(directory)/\(file)"))) as! [String: Any]
    }

    static func ids(_ value: Any?) -> [Int32] { ((value as? [Any]) ?? []).compactMap(jsonInteger).map { Int32($0) } }

    @Test("tokenizer.json lstrip and rstrip give tokenizers' ids", arguments: ["strip-spm", "strip-bpe"])
    func huggingFace(name: String) throws {
        let tokenizer = try TokenizerLoader.load(tokenizerJSON: "\(Self.directory)/\(name)/tokenizer.json", tokenizerConfig: nil)
        #expect(!tokenizer.addedTokenStrips.isEmpty)
        let all = try Self.cases("cases.json")["tokenizers"] as! [String: Any]
        let cases = all[name] as! [[String: Any]]
        #expect(cases.count >= 10)
        for entry in cases {
            let text = entry["text"] as! String
            #expect(tokenizer.encode(text, addSpecialTokens: false, parseSpecial: false) == Self.ids(entry["ids"]),
                    "\(name) \(text.debugDescription), special tokens as text")
            #expect(tokenizer.encode(text, addSpecialTokens: false, parseSpecial: true) == Self.ids(entry["ids_parse_special"]),
                    "\(name) \(text.debugDescription), special tokens parsed")
        }
    }

    /// A prompt rendered in pieces (markup and content) encodes as the joined text does with special tokens parsed:
    /// the whitespace after `<|user|>` goes even when it starts the user's content.
    @Test("prompt pieces strip across markup and content", arguments: ["strip-spm", "strip-bpe"])
    func promptPieces(name: String) throws {
        let tokenizer = try TokenizerLoader.load(tokenizerJSON: "\(Self.directory)/\(name)/tokenizer.json", tokenizerConfig: nil)
        let conversations: [[PromptPiece]] = [
            [PromptPiece(.markup, "<|user|>\n"), PromptPiece(.content, "Hello there"), PromptPiece(.markup, "<|end|>\n<|assistant|>\n"),
             PromptPiece(.content, "Hi!"), PromptPiece(.markup, "<|end|>\n")],
            [PromptPiece(.markup, "<|user|>"), PromptPiece(.content, "  \n spaced content "), PromptPiece(.markup, " <mask>"),
             PromptPiece(.content, "\t tail "), PromptPiece(.markup, "<|end|>"), PromptPiece(.content, "   ")],
        ]
        for pieces in conversations {
            let joined = PromptTemplate.join(pieces)
            let bos = PromptTemplate.raw.addsBOS && tokenizer.addsBOS ? [tokenizer.bosTokenID!] : []
            #expect(PromptTemplate.raw.encode(pieces, with: tokenizer)
                    == bos + tokenizer.encode(joined, addSpecialTokens: false, parseSpecial: true), "\(name) \(joined.debugDescription)")
        }
    }

    static let phi3Vocabulary = Repository.shared.appendingPathComponent("data/tokenizer-vectors/ggml-vocab-phi-3.gguf").path

    @Test("a Phi-3 GGUF strips after its chat tokens as llama.cpp does",
          .enabled(if: FileManager.default.fileExists(atPath: phi3Vocabulary),
                   "needs ../shared/data/tokenizer-vectors/ggml-vocab-phi-3.gguf, which is absent"))
    func phi3LlamaCpp() throws {
        let tokenizer = try TokenizerLoader.load(gguf: GGUFFile(path: Self.phi3Vocabulary))
        #expect(tokenizer.addedTokenStrips.asciiOnly)
        let cases = try Self.cases("phi3-llama-cpp.json")["cases"] as! [[String: Any]]
        #expect(cases.count >= 8)
        for entry in cases {
            let text = entry["text"] as! String
            #expect(tokenizer.encode(text, addSpecialTokens: false, parseSpecial: true) == Self.ids(entry["ids_parse_special"]),
                    "\(text.debugDescription)")
        }
    }

    /// The tokenizer.json `hone convert` writes from that GGUF carries the strips as rstrip, so the HF directory
    /// tokenizes as llama.cpp does (where whitespace is ASCII: tokenizers strips Unicode whitespace too).
    @Test("tokenizer.json written from a Phi-3 GGUF keeps the strips",
          .enabled(if: FileManager.default.fileExists(atPath: phi3Vocabulary),
                   "needs ../shared/data/tokenizer-vectors/ggml-vocab-phi-3.gguf, which is absent"))
    func phi3TokenizerJSON() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        for (name, object) in try HuggingFaceTokenizerFiles.sentencePiece(GGUFFile(path: Self.phi3Vocabulary), contextLength: 4096) {
            try HuggingFaceExport.writeJSON(object, to: directory.appendingPathComponent(name).path)
        }
        let tokenizer = try TokenizerLoader.load(directory: directory.path)
        #expect(!tokenizer.addedTokenStrips.asciiOnly && !tokenizer.addedTokenStrips.isEmpty)
        let cases = try Self.cases("phi3-llama-cpp.json")["cases"] as! [[String: Any]]
        for entry in cases {
            let text = entry["text"] as! String
            guard text.unicodeScalars.allSatisfy({ $0.isASCII }) else { continue }
            #expect(tokenizer.encode(text, addSpecialTokens: false, parseSpecial: true) == Self.ids(entry["ids_parse_special"]),
                    "\(text.debugDescription)")
        }
    }
}
