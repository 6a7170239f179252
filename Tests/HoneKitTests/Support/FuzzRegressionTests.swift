import Foundation
import Testing
@testable import HoneKit

/// Replays every input the fuzzers found (Fixtures/fuzz-regressions/<target>/, one file each, kept once fixed) and
/// the committed seeds (tools/fuzz/seeds/<target>/) through the same entry points the libFuzzer harness calls. A crash
/// kills the test run; any error other than a HoneError (a message without file or record) fails the test.
struct FuzzRegressionTests {
    static let regressions = Repository.fixtures.appendingPathComponent("fuzz-regressions")
    static let seeds = Repository.root.appendingPathComponent("tools/fuzz/seeds")

    /// A few fixtures that are valid inputs of the binary-format targets (their seeds are not copied into tools/fuzz).
    static let fixtureSeeds: [String: [String]] = [
        "safetensors": ["lora/llama-gqa/adapter/adapter_model.safetensors"],
        "gguf": ["gguf/llama-gqa-q4_0.gguf", "gguf/llama-k256-iq-mix.gguf", "tokenizers/gpt2-gguf/vocab.gguf"],
        "gguf-tokenizer": ["tokenizers/spm-bpe-gguf/vocab.gguf", "tokenizers/llama3-gguf/vocab.gguf"],
        "gguf-model": ["gguf/llama-gqa-q4_0.gguf", "gguf/llama-gqa-f16.gguf", "gguf/llama-k256-q3_k.gguf",
                       "gguf/llama-tied-llama3-f32.gguf", "gguf/qwen2-bias-f32.gguf"],
        "tokenizer-json": ["tokenizers/spm-bpe/tokenizer.json", "tokenizers/gpt2-bpe/tokenizer.json"],
        "tokenizer-model": ["tokenizers/spm-bpe/tokenizer.model"],
        "model-config": ["models/llama-gqa/config.json", "models/opt-preln/config.json", "models/llama-gqa/generation_config.json"],
        "peft-config": ["lora/llama-gqa/adapter/adapter_config.json"],
        "peft-weights": ["lora/llama-gqa/adapter/adapter_model.safetensors"],
    ]

    static func inputs(_ target: String) -> [URL] {
        [regressions, seeds].flatMap { base -> [URL] in
            let directory = base.appendingPathComponent(target)
            let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
            return names.sorted().map { directory.appendingPathComponent($0) }
        } + (fixtureSeeds[target] ?? []).map { Repository.fixtures.appendingPathComponent($0) }
    }

    @Test("every kept input is refused with a HoneError or accepted", arguments: FuzzTargets.all.map(\.name))
    func replay(_ name: String) throws {
        let target = try #require(FuzzTargets.named(name))
        let scratch = Scratch.path("hone-fuzz-regressions")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let context = try FuzzContext(scratch: scratch.path, repositoryRoot: Repository.root.path)
        for input in Self.inputs(name) {
            let data = try Data(contentsOf: input)
            do {
                try target.run(data, in: context)
            } catch is HoneError {
                // Refused properly.
            } catch {
                Issue.record("\(name) \(input.lastPathComponent): error that is not a HoneError: \(type(of: error)): \(error)")
            }
        }
    }

    @Test("every target has at least one kept input")
    func everyTargetHasInputs() {
        #expect(FuzzTargets.all.map(\.name).filter { Self.inputs($0).isEmpty } == [])
    }
}
