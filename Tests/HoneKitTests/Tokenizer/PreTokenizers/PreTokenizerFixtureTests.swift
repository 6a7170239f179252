import Foundation
import Testing
@testable import HoneKit

/// tokenizer.json pre-tokenizers and the regex matcher against their references
/// (Fixtures/tokenizers/pretokenizers, written by tools/oracle/make_pretokenizer_fixtures.py).
@Suite("Pre-tokenizer fixtures")
struct PreTokenizerFixtureTests {
    static let directory = Repository.fixture("tokenizers/pretokenizers")

    static func load(_ file: String) throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: directory + "/" + file))
        // parseJSON, not JSONSerialization, which drops a leading U+FEFF from strings on Linux.
        return try #require(try parseJSON(data) as? [String: Any])
    }

    static func ids(_ value: Any?) -> [Int32] { ((value as? [Any]) ?? []).map { Int32(jsonInteger($0)!) } }

    /// configs.json, parsed once (it is large, and parsing it per configuration would dominate the suite's time).
    nonisolated(unsafe) static let configs: [[String: Any]] =
        ((try? load("configs.json"))?["configs"] as? [[String: Any]]) ?? []

    static let configNames: [String] = configs.compactMap { $0["name"] as? String }

    // MARK: tokenizer.json pre-tokenizers

    /// A GGUF vocabulary whose tokenizer.ggml.pre is `gpt-4o` (Phi-4-mini, Llama 4) gives the ids of the same
    /// vocabulary under tokenizer.json's GPT-4o Split (tools/oracle/make_gpt4o_vocab_fixture.py checked llama.cpp's
    /// llama-tokenize against the same ids).
    @Test("the GGUF pre-tokenizer gpt-4o gives the ids of its tokenizer.json pattern, also written back as tokenizer.json",
          arguments: [false, true])
    func gpt4oVocabulary(writtenBack: Bool) throws {
        let gguf = try GGUFFile(path: Repository.fixture("tokenizers/gpt4o-gguf/vocab.gguf"))
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        for (file, object) in try HuggingFaceTokenizerFiles.byteLevel(gguf, contextLength: 2048) where writtenBack {
            try HuggingFaceExport.writeJSON(object, to: directory.appendingPathComponent(file).path)
        }
        let tokenizer = writtenBack ? try TokenizerLoader.load(directory: directory.path) : try TokenizerLoader.load(gguf: gguf)
        let config = try #require(Self.configs.first { $0["name"] as? String == "split-gpt4o" })
        let cases = try #require(config["cases"] as? [[String: Any]])
        #expect(cases.count > 150)
        var failures = 0
        for item in cases {
            let text = try #require(item["text"] as? String)
            let got = tokenizer.encode(text, addSpecialTokens: false, parseSpecial: false)
            if got != Self.ids(item["ids"]) {
                failures += 1
                if failures <= 8 { Issue.record("gpt-4o \(String(reflecting: text)): \(got), reference \(Self.ids(item["ids"]))") }
            }
        }
        #expect(failures == 0, "gpt-4o: \(failures) differ")
    }

    /// The gpt2-bpe fixture's tokenizer.json with each configuration's pre_tokenizer gives `tokenizers`' ids.
    @Test("each pre_tokenizer configuration gives the ids of HF tokenizers", arguments: configNames)
    func configuration(_ name: String) throws {
        let config = try #require(Self.configs.first { $0["name"] as? String == name })
        let basePath = Repository.fixture("tokenizers/gpt2-bpe/tokenizer.json")
        var document = try JSONConfig(path: basePath).values
        document["pre_tokenizer"] = config["pre_tokenizer"]
        let tokenizer = try ByteLevelBPETokenizer.load(tokenizerJSON: TokenizerJSONFile(values: document, vocabulary: nil, merges: nil), path: basePath, tokenizerConfig: nil)
        let cases = try #require(config["cases"] as? [[String: Any]])
        #expect(cases.count > 150)
        var failures = 0
        for item in cases {
            let text = try #require(item["text"] as? String)
            for (parseSpecial, key) in [(false, "ids"), (true, "ids_parse_special")] {
                let got = tokenizer.encode(text, addSpecialTokens: false, parseSpecial: parseSpecial)
                if got != Self.ids(item[key]) {
                    failures += 1
                    if failures <= 8 { Issue.record("\(name) \(key) \(String(reflecting: text)): \(got), HF \(Self.ids(item[key]))") }
                }
            }
        }
        #expect(failures == 0, "\(name): \(failures) differ")
    }

    @Test("every configuration uses the generic path unless a scanner does it all")
    func pathsAreAsExpected() throws {
        let basePath = Repository.fixture("tokenizers/gpt2-bpe/tokenizer.json")
        #expect(Self.configs.count >= 20)
        for config in Self.configs {
            var document = try JSONConfig(path: basePath).values
            document["pre_tokenizer"] = config["pre_tokenizer"]
            let tokenizer = try ByteLevelBPETokenizer.load(tokenizerJSON: TokenizerJSONFile(values: document, vocabulary: nil, merges: nil), path: basePath, tokenizerConfig: nil)
            let name = config["name"] as! String
            // SmolLM's Digits(individual) + ByteLevel(regex) has a scanner of its own (.smollm).
            let fast = ["split-llama3-isolated", "bytelevel-prefix-regex", "bytelevel-regex",
                        "digits-individual-bytelevel-regex"].contains(name)
            #expect((tokenizer.preTokenizer != nil) == fast, "\(name)")
        }
    }

    // MARK: Regex matcher

    /// Every pattern of llama.cpp's pre-tokenizer types: the same matches as Python's `regex` on every hard string.
    @Test("regex matches agree with Python's regex module")
    func regexMatches() throws {
        let json = try Self.load("regex.json")
        let texts = try #require(json["texts"] as? [String])
        let patterns = try #require(json["patterns"] as? [[String: Any]])
        #expect(patterns.count >= 15)
        var failures = 0
        for entry in patterns {
            let pattern = try #require(entry["pattern"] as? String)
            let regex = try PreTokenRegex(pattern)
            let expected = try #require(entry["matches"] as? [[[Any]]])
            for (text, spans) in zip(texts, expected) {
                let scalars = Array(text.unicodeScalars)
                let want = spans.map { span -> String in
                    var piece = String.UnicodeScalarView()
                    piece.append(contentsOf: scalars[jsonInteger(span[0])!..<jsonInteger(span[1])!])
                    return String(piece)
                }
                let got = regex.matches(in: text)
                if got.map({ Array($0.unicodeScalars) }) != want.map({ Array($0.unicodeScalars) }) {
                    failures += 1
                    if failures <= 8 { Issue.record("\(pattern.prefix(60)) on \(String(reflecting: text)): \(got), regex \(want)") }
                }
            }
        }
        #expect(failures == 0, "\(failures) pattern/text pairs differ")
    }

    /// The hand-written scanners cut exactly where the generic matcher cuts with their patterns (SmolLM's, which is
    /// two steps rather than one pattern, is checked against the generic steps below).
    @Test("scanners agree with the generic matcher", arguments: PreTokenizerKind.allCases.filter { $0 != .smollm })
    func scannerAgreesWithRegex(_ kind: PreTokenizerKind) throws {
        let regex = try PreTokenRegex(kind.pattern)
        let json = try Self.load("regex.json")
        var texts = try #require(json["texts"] as? [String])
        // Contractions right after a letter (after a space the apostrophe goes with the space), ſ folding to s.
        texts += ["'ſt x'ſt x'S x'Ll x'ʼs x'ſ", "a\u{0085}\u{0085}b", "\r\n\r\n  x", "1234567 x\u{0661}\u{0662}\u{0663}\u{0664}"]
        for text in texts {
            #expect(kind.split(text).map { Array($0.unicodeScalars) } == regex.matches(in: text).map { Array($0.unicodeScalars) },
                    "\(kind) \(String(reflecting: text))")
        }
    }

    /// The SmolLM scanner cuts where the generic steps do: each digit alone, then GPT-2's pattern as a regex.
    @Test func smolLMScannerAgreesWithTheGenericSteps() throws {
        let pipeline = PreTokenizerPipeline([.digits(individual: true),
                                             .split(try PreTokenRegex(PreTokenizerKind.gpt2Pattern), .isolated, invert: false)])
        var texts = try #require(try Self.load("regex.json")["texts"] as? [String])
        texts += ["In 2024, I paid $1,234.56 for 3 items", "a  12 b   c\n\n  x9y  ", "x\u{0661}\u{0662} 33 '12'"]
        for text in texts {
            #expect(PreTokenizerKind.smollm.split(text).map { Array($0.utf8) } == pipeline.split(text), "\(String(reflecting: text))")
        }
    }

    // MARK: Errors

    @Test("unsupported constructs are refused with the pattern named")
    func refusals() {
        for pattern in [#"(?<=a)b"#, #"(a)\1"#, #"(a*)*"#, #"[a"#, #"\p{Nonsense}"#, "a)"] {
            #expect(throws: PreTokenRegexError.self, "\(pattern)") { try PreTokenRegex(pattern) }
        }
    }
}

