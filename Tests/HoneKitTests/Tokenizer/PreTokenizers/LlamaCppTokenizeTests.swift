import Foundation
import Testing
@testable import HoneKit

/// SmolLM2's GGUF (pre-tokenizer `smollm`: single digits, then GPT-2's pattern) against llama.cpp's
/// `llama-tokenize` on the oracle's hard strings (Fixtures/tokenizers/smollm2-llama-cpp, written by
/// tools/oracle/make_llama_cpp_tokenize_fixture.py). Skips when the model file (tools/fetch-default-model) is absent.
@Suite("llama-tokenize: SmolLM2")
struct LlamaCppTokenizeTests {
    static let modelPath = Repository.root.appendingPathComponent("models/SmolLM2-135M-Instruct.Q4_1.gguf").path
    static var modelAvailable: Bool { FileManager.default.fileExists(atPath: modelPath) }

    @Test("ids match llama-tokenize", .enabled(if: modelAvailable,
        "needs models/SmolLM2-135M-Instruct.Q4_1.gguf (tools/fetch-default-model), which is absent"))
    func smolLM2() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: Repository.fixture("tokenizers/smollm2-llama-cpp/cases.json")))
        let json = try #require(try parseJSON(data) as? [String: Any])
        let cases = try #require(json["cases"] as? [[String: Any]])
        #expect(cases.count > 150)
        let file = try GGUFFile(path: Self.modelPath)
        #expect(file.string("tokenizer.ggml.pre") == "smollm")
        let tokenizer = try TokenizerLoader.load(gguf: file)
        // The file says add_bos_token = false, and llama.cpp adds none for `smollm`.
        #expect(!tokenizer.addsBOS)
        func ids(_ value: Any?) -> [Int32] { ((value as? [Any]) ?? []).map { Int32(jsonInteger($0)!) } }
        var failures = 0
        for item in cases {
            let text = try #require(item["text"] as? String)
            for (parseSpecial, key) in [(false, "ids"), (true, "ids_parse_special")] {
                let got = tokenizer.encode(text, addSpecialTokens: false, parseSpecial: parseSpecial)
                if got != ids(item[key]) {
                    failures += 1
                    Issue.record("\(key) \(String(reflecting: text)): \(got), llama.cpp \(ids(item[key]))")
                }
            }
        }
        #expect(failures == 0)
    }
}
