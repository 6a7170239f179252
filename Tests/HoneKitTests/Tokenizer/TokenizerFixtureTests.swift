import Foundation
import Testing
@testable import HoneKit

/// A tokenizer fixture from tools/oracle/make_tokenizer_fixtures.py: reference ids from HF `tokenizers`
/// (and `sentencepiece` for tokenizer.model) on a corpus of hard strings.
struct TokenizerFixture {
    struct Case {
        let text: String
        let ids: [Int32]
        let idsWithSpecial: [Int32]
        let idsParseSpecial: [Int32]
        let idsSentencePiece: [Int32]?
        let decoded: String
        let decodedSkipSpecial: String
    }

    let name: String
    let directory: String
    let cases: [Case]
    let invalidUTF8: [(bytes: [UInt8], replaced: String, ids: [Int32])]
    let bos: Int32?
    let eos: Int32?

    init(_ name: String) throws {
        self.name = name
        directory = Repository.fixture("tokenizers/\(name)")
        let data = try Data(contentsOf: URL(fileURLWithPath: directory + "/cases.json"))
        // parseJSON, not JSONSerialization, which drops a leading U+FEFF from strings on Linux.
        let json = try parseJSON(data) as! [String: Any]
        func ids(_ value: Any?) -> [Int32] { ((value as? [Any]) ?? []).map { Int32(jsonInteger($0)!) } }
        cases = (json["cases"] as! [[String: Any]]).map { item in
            Case(text: item["text"] as! String, ids: ids(item["ids"]), idsWithSpecial: ids(item["ids_with_special"]),
                 idsParseSpecial: ids(item["ids_parse_special"]),
                 idsSentencePiece: item["ids_sentencepiece"] == nil ? nil : ids(item["ids_sentencepiece"]),
                 decoded: item["decoded"] as! String, decodedSkipSpecial: item["decoded_skip_special"] as! String)
        }
        invalidUTF8 = ((json["invalid_utf8"] as? [[String: Any]]) ?? []).map { item in
            let hex = Array((item["bytes_hex"] as! String).utf8)
            let bytes = stride(from: 0, to: hex.count, by: 2).map { UInt8(String(decoding: hex[$0..<($0 + 2)], as: UTF8.self), radix: 16)! }
            return (bytes, item["text_replaced"] as! String, ids(item["ids"]))
        }
        bos = json["bos_id"].flatMap(jsonInteger).map(Int32.init)
        eos = json["eos_id"].flatMap(jsonInteger).map(Int32.init)
    }
}

/// Swift's == on strings ignores NFC/NFD differences; tokenizers do not, so compare scalars.
func sameScalars(_ a: String, _ b: String) -> Bool { Array(a.unicodeScalars) == Array(b.unicodeScalars) }

@Suite struct TokenizerFixtureTests {
    /// (fixture, file to load relative to the fixture directory)
    static let loaders: [(String, String)] = [
        ("spm-bpe", "tokenizer.json"), ("spm-bpe-gguf", "vocab.gguf"),
        ("gpt2-bpe", "tokenizer.json"), ("gpt2-bpe", "vocab.json"), ("gpt2-gguf", "vocab.gguf"),
        ("llama3-bpe", "tokenizer.json"), ("llama3-gguf", "vocab.gguf"),
        ("qwen2-bpe", "tokenizer.json"), ("qwen2-gguf", "vocab.gguf"),
    ]

    static func load(_ fixture: TokenizerFixture, _ file: String) throws -> Tokenizer {
        let path = fixture.directory + "/" + file
        let config = fixture.directory + "/tokenizer_config.json"
        let hasConfig = FileManager.default.fileExists(atPath: config)
        switch file {
        case "vocab.gguf": return try TokenizerLoader.load(gguf: GGUFFile(path: path))
        case "vocab.json":
            return try ByteLevelBPETokenizer.load(vocabJSON: path, mergesTXT: fixture.directory + "/merges.txt",
                                                  tokenizerConfig: hasConfig ? config : nil)
        default: return try TokenizerLoader.load(tokenizerJSON: path, tokenizerConfig: hasConfig ? config : nil)
        }
    }

    @Test(arguments: loaders.map { "\($0.0)/\($0.1)" })
    func encodesEveryCaseLikeTheReference(_ entry: String) throws {
        let parts = entry.split(separator: "/").map(String.init)
        let fixture = try TokenizerFixture(parts[0])
        let tokenizer = try Self.load(fixture, parts[1])
        #expect(fixture.cases.count > 100)
        var failures = 0
        for item in fixture.cases {
            let plain = tokenizer.encode(item.text, addSpecialTokens: false, parseSpecial: false)
            let withSpecial = tokenizer.encode(item.text, addSpecialTokens: true, parseSpecial: false)
            let parsed = tokenizer.encode(item.text, addSpecialTokens: false, parseSpecial: true)
            let ok = plain == item.ids && withSpecial == item.idsWithSpecial && parsed == item.idsParseSpecial
            if !ok, failures < 5 {
                Issue.record("\(entry) \(item.text.debugDescription): ids \(plain) vs \(item.ids); with special \(withSpecial) vs \(item.idsWithSpecial); parse special \(parsed) vs \(item.idsParseSpecial)")
            }
            if !ok { failures += 1 }
        }
        #expect(failures == 0, "\(failures) of \(fixture.cases.count) cases differ")
    }

    @Test(arguments: loaders.filter { !$0.1.hasSuffix("gguf") }.map { "\($0.0)/\($0.1)" })
    func decodesLikeTheReference(_ entry: String) throws {
        let parts = entry.split(separator: "/").map(String.init)
        let fixture = try TokenizerFixture(parts[0])
        let tokenizer = try Self.load(fixture, parts[1])
        var failures = 0
        for item in fixture.cases {
            let decoded = tokenizer.decode(item.idsWithSpecial, skipSpecialTokens: false)
            let skipped = tokenizer.decode(item.idsWithSpecial, skipSpecialTokens: true)
            let ok = sameScalars(decoded, item.decoded) && sameScalars(skipped, item.decodedSkipSpecial)
            if !ok, failures < 5 {
                Issue.record("\(entry) \(item.text.debugDescription): decoded \(decoded.debugDescription) vs \(item.decoded.debugDescription); skipping special \(skipped.debugDescription) vs \(item.decodedSkipSpecial.debugDescription)")
            }
            if !ok { failures += 1 }
        }
        #expect(failures == 0)
    }

    /// Invalid UTF-8 read from a file becomes U+FFFD exactly as Python's errors="replace" does, then encodes alike.
    @Test(arguments: ["spm-bpe", "gpt2-bpe", "llama3-bpe", "qwen2-bpe"])
    func invalidUTF8IsReplacedAsPythonDoes(_ name: String) throws {
        let fixture = try TokenizerFixture(name)
        let tokenizer = try TokenizerLoader.load(directory: fixture.directory)
        #expect(!fixture.invalidUTF8.isEmpty)
        for item in fixture.invalidUTF8 {
            let text = String(decoding: item.bytes, as: UTF8.self)
            #expect(sameScalars(text, item.replaced))
            #expect(tokenizer.encode(text, addSpecialTokens: false, parseSpecial: false) == item.ids)
        }
    }

    /// tokenizer.model goes through our own protobuf parser and sentencepiece's algorithm.
    @Test func sentencePieceModelFileMatchesSentencePiece() throws {
        let fixture = try TokenizerFixture("spm-bpe")
        let tokenizer = try SentencePieceTokenizer.load(modelFile: fixture.directory + "/tokenizer.model",
                                                        tokenizerConfig: fixture.directory + "/tokenizer_config.json")
        var failures = 0
        for item in fixture.cases {
            let expected = item.idsSentencePiece ?? item.ids
            let plain = tokenizer.encode(item.text, addSpecialTokens: false, parseSpecial: false)
            let withSpecial = tokenizer.encode(item.text, addSpecialTokens: true, parseSpecial: false)
            if plain != expected || withSpecial != [fixture.bos!] + expected {
                failures += 1
                if failures <= 5 { Issue.record("\(item.text.debugDescription): \(plain) vs \(expected)") }
            }
        }
        #expect(failures == 0)
    }

    /// Encode then decode gives the text back wherever the reference does.
    @Test(arguments: ["spm-bpe", "gpt2-bpe", "llama3-bpe"])
    func roundTrips(_ name: String) throws {
        let fixture = try TokenizerFixture(name)
        let tokenizer = try TokenizerLoader.load(directory: fixture.directory)
        for item in fixture.cases where sameScalars(item.decodedSkipSpecial, item.text) {
            let ids = tokenizer.encode(item.text, addSpecialTokens: true, parseSpecial: false)
            #expect(sameScalars(tokenizer.decode(ids, skipSpecialTokens: true), item.text), "\(item.text.debugDescription)")
        }
    }

    /// Streaming output, concatenated, equals a full decode, and no piece ever holds a broken character.
    @Test(arguments: ["spm-bpe", "gpt2-bpe"])
    func streamingDetokenizerEqualsFullDecode(_ name: String) throws {
        let fixture = try TokenizerFixture(name)
        let tokenizer = try TokenizerLoader.load(directory: fixture.directory)
        for item in fixture.cases {
            let streamer = StreamingDetokenizer(tokenizer: tokenizer)
            var text = ""
            for id in item.idsWithSpecial {
                let piece = streamer.push(id)
                #expect(!piece.contains("\u{FFFD}") || item.decodedSkipSpecial.contains("\u{FFFD}"))
                text += piece
            }
            text += streamer.finish()
            #expect(sameScalars(text, tokenizer.decode(item.idsWithSpecial, skipSpecialTokens: true)), "\(item.text.debugDescription)")
        }
    }

    /// With a context (a prompt's ids), the streamed text of what follows is exactly what those ids add to the
    /// context's decode: prompt + text is the whole decoded sequence, so a SentencePiece word after the prompt keeps
    /// its space (it was dropped: "tak" after "Once upon a time").
    @Test(arguments: ["spm-bpe", "gpt2-bpe"])
    func streamingAfterAContextContinuesIt(_ name: String) throws {
        let fixture = try TokenizerFixture(name)
        let tokenizer = try TokenizerLoader.load(directory: fixture.directory)
        var checked = 0
        for item in fixture.cases where item.ids.count >= 3 {
            let ids = item.ids
            for cut in 1..<ids.count {
                let (context, rest) = (Array(ids[..<cut]), Array(ids[cut...]))
                let before = tokenizer.decode(context, skipSpecialTokens: true), whole = tokenizer.decode(ids, skipSpecialTokens: true)
                // Only where the context ends on a whole character and the whole text extends it.
                guard !before.hasSuffix("\u{FFFD}"), whole.hasPrefix(before) else { continue }
                let streamer = StreamingDetokenizer(tokenizer: tokenizer, context: context)
                let text = rest.map(streamer.push).joined() + streamer.finish()
                #expect(before + text == whole, "\(item.text.debugDescription) cut at \(cut)")
                checked += 1
            }
        }
        #expect(checked > 50)
    }
}
