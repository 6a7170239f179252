import Foundation
import Testing
@testable import HoneKit

/// No training run may end "done" on a NaN: a poisoned weight stops every objective with one line naming the step
/// and micro-batch, exit status 1, and no adapter written.
@Suite struct NonFiniteTrainingTests {
    /// hone-tiny copied, with the first value of `tensor` set to NaN in model.safetensors.
    static func poisonedModel(_ tensor: String) throws -> URL {
        try poisonedCopy(of: Repository.root.appendingPathComponent("models/hone-tiny").path, tensor: tensor)
    }

    @Test(arguments: ["sft", "dpo"])
    func aPoisonedWeightStopsTheRunWithOneLine(objective: String) throws {
        let model = try Self.poisonedModel("model.layers.1.mlp.down_proj.weight")
        let output = model.deletingLastPathComponent().appendingPathComponent("out").path
        var data = Repository.root.appendingPathComponent("examples/alpaca-sample.json").path
        if objective == "dpo" {
            data = model.deletingLastPathComponent().appendingPathComponent("pairs.jsonl").path
            let pairs = (0..<8).map { #"{"prompt": "Question \#($0)?", "chosen": " Yes.", "rejected": " No."}"# }
            try Data(pairs.joined(separator: "\n").utf8).write(to: URL(fileURLWithPath: data))
        }
        let result = try runProcess(Repository.honeExecutable, [
            "train", objective, "--base-model", model.path, "--data-path", data, "--output-dir", output,
            "--max-steps", "2", "--batch-size", "4", "--micro-batch-size", "2", "--val-set-size", "0", "--threads", "1"])
        #expect(result.status == 1)
        let lines = result.stderr.split(separator: "\n").filter { $0.hasPrefix("hone: error:") }
        #expect(lines.count == 1, "\(result.stderr)")
        #expect(lines.first?.hasPrefix("hone: error: training stopped: step 1, micro-batch 1 of 2: a non-finite loss") == true,
                "\(result.stderr)")
        #expect(result.stderr.contains("no checkpoint was written yet"))
        #expect(!FileManager.default.fileExists(atPath: output + "/adapter_model.safetensors"), "no adapter from a NaN run")
        #expect(!result.stderr.contains("done:"))
    }
}

@Suite struct NonFiniteGradientTests {
    /// The first factor, in the set's order, whose gradient holds a NaN or an infinity is named.
    @Test func firstNonFiniteGradientIsNamed() throws {
        let loaded = try LoadedModel.open(Repository.root.appendingPathComponent("models/hone-tiny").path)
        let set = try AdapterSet.makeNew(configuration: LoRAConfiguration(rank: 2, targetModules: ["q_proj", "v_proj"]),
                                         model: loaded.model, seed: 1)
        for (_, _, adapter) in set.ordered { adapter.allocateGradients() }
        #expect(set.firstNonFiniteGradient() == nil)
        set.ordered[5].adapter.gradientB![3] = .infinity
        set.ordered[2].adapter.gradientA![0] = .nan
        #expect(set.firstNonFiniteGradient() == "base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight")
    }
}
