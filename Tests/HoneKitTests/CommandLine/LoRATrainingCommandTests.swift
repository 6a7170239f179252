import Foundation
import Testing
@testable import HoneKit

// The tests of these suites that run the built `hone` binary.

extension PEFTReadBackTests {
    @Test("Training the fixture again from the command line writes the same adapter")
    func retrainingReproducesTheFixture() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = directory.appendingPathComponent("out").path
        let result = try runProcess(Repository.honeExecutable, [
            "train", "sft", "--base-model", Repository.fixture("models/llama-gqa"), "--data-path", Self.fixture + "/rows.jsonl",
            "--output-dir", output, "--batch-size", "4", "--micro-batch-size", "2", "--max-steps", "4", "--val-set-size", "0",
            "--lora-r", "4", "--lora-alpha", "8", "--lora-target-modules", "[q,k,v,o,gate,up,down]", "--learning-rate", "5e-3",
            "--warmup-steps", "0", "--save-steps", "0",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        let config = try String(contentsOfFile: output + "/adapter_config.json", encoding: .utf8)
        #expect(config == (try String(contentsOfFile: Self.fixture + "/adapter_config.json", encoding: .utf8))
            .replacingOccurrences(of: "Tests/HoneKitTests/Fixtures/models/llama-gqa", with: Repository.fixture("models/llama-gqa")))
        let ours = try SafetensorsFile(path: output + "/adapter_model.safetensors")
        let committed = try SafetensorsFile(path: Self.fixture + "/adapter_model.safetensors")
        #expect(ours.tensors.keys.sorted() == committed.tensors.keys.sorted())
        // The committed adapter was written on an AVX-512 machine; AVX2 and scalar kernels sum in other orders, and
        // four AdamW steps (whose first moves are ±lr whatever the gradient's size) carry that to 0.7–4.4e-4 of a
        // tensor's norm (Zen 3: AVX2 by pairs 7.4e-5, AVX2 in blocks 2.4e-4, scalar 4.4e-4). A real change is far
        // larger: the learning rate 1 % off moves every tensor by 1.0e-2.
        for name in committed.tensors.keys {
            let difference = relativeDifference(ours.tensors[name]!.floats(), committed.tensors[name]!.floats())
            #expect(difference < 1e-3, "\(name): relative difference \(difference)")
        }
    }
}
