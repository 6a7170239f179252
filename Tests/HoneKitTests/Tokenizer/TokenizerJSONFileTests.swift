import Foundation
import Testing
@testable import HoneKit

/// `TokenizerJSONFile` reads model.vocab and model.merges from the bytes: what it reads must be what the full parse
/// (`JSONConfig`) gives, and whatever it does not expect must leave the file to the full parse.
@Suite struct TokenizerJSONFileTests {
    /// The full parse's reading of the same file: piece → id, merge pairs, and the document without the two values.
    private func fullParse(_ path: String) throws -> (vocabulary: [String: Int32], merges: [(String, String)], rest: NSDictionary) {
        let slow = TokenizerJSONFile(values: try JSONConfig(path: path).values, vocabulary: nil, merges: nil)
        var rest = slow.values
        var model = rest["model"] as! [String: Any]
        model["vocab"] = [String: Any]()
        model["merges"] = [Any]()
        rest["model"] = model
        return (try slow.vocabulary(path: path), try slow.merges(path: path), rest as NSDictionary)
    }

    private func expectSameAsFullParse(_ path: String) throws {
        let fast = try TokenizerJSONFile(path: path)
        let slow = try fullParse(path)
        #expect(fast.vocabulary != nil, "\(path): the byte reader gave up")
        #expect(fast.vocabulary == slow.vocabulary, "\(path)")
        let merges = try #require(fast.merges)
        #expect(merges.count == slow.merges.count, "\(path)")
        #expect(zip(merges, slow.merges).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }, "\(path)")
        #expect((fast.values as NSDictionary).isEqual(to: slow.rest as! [AnyHashable: Any]), "\(path)")
    }

    private func write(_ text: String) throws -> String {
        let path = try makeTemporaryDirectory().appendingPathComponent("tokenizer.json").path
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test func everyBPEFixtureReadsAsTheFullParse() throws {
        let enumerator = FileManager.default.enumerator(atPath: Repository.fixtures.path)!
        var checked = 0
        for case let relative as String in enumerator where relative.hasSuffix("tokenizer.json") {
            let path = Repository.fixture(relative)
            let model = (try JSONConfig(path: path).values)["model"] as? [String: Any]
            guard model?["vocab"] is [String: Any], model?["merges"] != nil else { continue }
            try expectSameAsFullParse(path)
            checked += 1
        }
        #expect(checked >= 6)
        let smol = Repository.root.appendingPathComponent("models/SmolLM2-135M-Instruct-f32/tokenizer.json").path
        if FileManager.default.fileExists(atPath: smol) {
            try expectSameAsFullParse(smol)
        } else {
            print("skipped: models/SmolLM2-135M-Instruct-f32 is absent (tools/oracle/make_eval_fixtures.py --smollm2 makes it)")
        }
    }

    @Test func escapesSurrogatePairsAndBothMergeForms() throws {
        let path = try write(#"""
            {"version": "1.0", "added_tokens": [{"id": 7, "content": "<s>", "special": true}],
             "model": {"type": "BPE", "merges": [["a", "\u0120b"], "a \"q\"", ["\ud83d\ude00", "x"]],
                       "vocab": {"a": 0, "\u0120b": 1, "\"q\"": 2, "a\"q\"": 3, "\ud83d\ude00": 4, "x": 5,
                                 "\ud83d\ude00x": 6, "t\t\/\\\b\f\n\r": 8, "é": 9, "a\u0120b": 10, "\u00e9\u0301": 11},
                       "dropout": null, "ignore_merges": false},
             "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": [1.5e3, -2]}}
            """#)
        try expectSameAsFullParse(path)
        let file = try TokenizerJSONFile(path: path)
        #expect(file.vocabulary?["\u{1F600}x"] == 6)
        #expect(file.vocabulary?["t\t/\\\u{8}\u{C}\n\r"] == 8)
        #expect(file.vocabulary?["Ġb"] == 1)
        #expect(file.merges?.map { [$0.0, $0.1] } == [["a", "Ġb"], ["a", "\"q\""], ["\u{1F600}", "x"]])
        #expect((file.values["pre_tokenizer"] as? [String: Any])?["trim_offsets"] != nil)
    }

    /// Each of these leaves the file to the full parse (vocabulary nil), which then reads or refuses it as before.
    @Test func whatTheReaderDoesNotExpectGoesToTheFullParse() throws {
        let duplicate = try write(#"{"model": {"vocab": {"a": 0, "a": 1}, "merges": []}}"#)
        #expect(try TokenizerJSONFile(path: duplicate).vocabulary == nil)

        let fractional = try write(#"{"model": {"vocab": {"a": 0, "b": 1.0}, "merges": []}}"#)
        let file = try TokenizerJSONFile(path: fractional)
        #expect(file.vocabulary == nil)
        #expect(try file.vocabulary(path: fractional) == ["a": 0, "b": 1])

        let negative = try write(#"{"model": {"vocab": {"a": -1}, "merges": []}}"#)
        #expect(try TokenizerJSONFile(path: negative).vocabulary == nil)
        #expect(throws: HoneError.self) { try TokenizerJSONFile(path: negative).vocabulary(path: negative) }

        let threeSymbols = try write(#"{"model": {"vocab": {"a": 0}, "merges": ["a b c"]}}"#)
        #expect(try TokenizerJSONFile(path: threeSymbols).merges == nil)
        #expect(throws: HoneError.self) { try TokenizerJSONFile(path: threeSymbols).merges(path: threeSymbols) }

        let loneSurrogate = try write(#"{"model": {"vocab": {"\ud800": 0}, "merges": []}}"#)
        #expect((try? TokenizerJSONFile(path: loneSurrogate))?.vocabulary == nil)

        let twoModels = try write(#"{"model": {"vocab": {"a": 0}, "merges": []}, "model": {"vocab": {"b": 0}, "merges": []}}"#)
        #expect((try? TokenizerJSONFile(path: twoModels))?.vocabulary == nil)

        // Not at the top level: a "model" inside another object is not the tokenizer's.
        let nested = try write(#"{"decoder": {"model": {"vocab": {"a": 0}, "merges": []}}, "model": {"type": "Unigram", "vocab": [["a", 0.0]]}}"#)
        let unigram = try TokenizerJSONFile(path: nested)
        #expect(unigram.vocabulary == nil)
        #expect(((unigram.values["model"] as? [String: Any])?["vocab"] as? [Any])?.count == 1)

        // Nested deeper than the reader goes: it gives up instead of recursing on.
        let deep = try write(#"{"model": {"vocab": {"a": 0}, "merges": []}, "x": "# + String(repeating: "[", count: 300)
                             + String(repeating: "]", count: 300) + "}")
        #expect((try? TokenizerJSONFile(path: deep))?.vocabulary == nil)

        let truncated = try write(#"{"model": {"vocab": {"a": 0}, "merges": ["#)
        #expect(throws: HoneError.self) { try TokenizerJSONFile(path: truncated) }
        let trailing = try write(#"{"model": {"vocab": {"a": 0}, "merges": []}} x"#)
        #expect(throws: HoneError.self) { try TokenizerJSONFile(path: trailing) }
    }
}
