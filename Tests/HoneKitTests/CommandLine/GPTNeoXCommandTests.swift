import Foundation
import Testing
@testable import HoneKit

/// The commands on GPT-NeoX models (fixtures from tools/oracle/make_neox_fixtures.py): `hone reward` gives
/// transformers' rewards, `hone score` its log-probs, `hone info` describes the models, and LoRA training (SFT and
/// reward model) with NeoX's module names runs end to end and is read back by `hone reward` and `hone eval hh`.
@Suite("GPT-NeoX from the command line")
struct GPTNeoXCommandTests {
    static let causal = Repository.fixture("models/neox-parallel")
    static let rewardModel = Repository.fixture("neox/models/neox-rm")

    static func json(_ path: String) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
    }

    static func lines(_ text: String) throws -> [[String: Any]] {
        try text.split(separator: "\n").map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
    }

    @Test("hone reward on {tokens} records equals transformers' rewards within 1e-4; hone info describes the model")
    func rewardAndInfo() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let golden = try Self.json(Repository.fixture("neox/rewards.json"))
        let rows = golden["rows"] as! [[NSNumber]]
        let input = directory.appendingPathComponent("rows.jsonl").path
        try rows.map { "{\"tokens\": [\($0.map(\.stringValue).joined(separator: ", "))]}\n" }.joined()
            .write(toFile: input, atomically: true, encoding: .utf8)
        let output = directory.appendingPathComponent("rewards.jsonl").path
        let result = try runProcess(Repository.honeExecutable, ["reward", "--model", Self.rewardModel, "--input", input,
                                                                "--output", output, "--threads", "1"])
        #expect(result.status == 0, "\(result.stderr)")
        let rewards = try Self.lines(String(contentsOfFile: output, encoding: .utf8)).map { ($0["reward"] as! NSNumber).doubleValue }
        #expect(maxAbsDifference(rewards, (golden["rewards"] as! [NSNumber]).map(\.doubleValue)) <= 1e-4, "\(rewards)")

        // OpenAssistant's layout (GPTNeoXRewardModel, out_proj with bias, last-token pooling).
        let oasst = try Self.json(Repository.fixture("neox/oasst_rewards.json"))
        try (oasst["rows"] as! [[NSNumber]]).map { "{\"tokens\": [\($0.map(\.stringValue).joined(separator: ", "))]}\n" }.joined()
            .write(toFile: input, atomically: true, encoding: .utf8)
        let scored = try runProcess(Repository.honeExecutable, ["reward", "--model", Repository.fixture("neox/models/oasst-rm"),
                                                                "--input", input, "--threads", "1"])
        #expect(scored.status == 0, "\(scored.stderr)")
        let oasstRewards = try Self.lines(scored.stdout).map { ($0["reward"] as! NSNumber).doubleValue }
        #expect(maxAbsDifference(oasstRewards, (oasst["last"] as! [NSNumber]).map(\.doubleValue)) <= 1e-4, "\(oasstRewards)")
        let oasstInfo = try runProcess(Repository.honeExecutable, ["info", Repository.fixture("neox/models/oasst-rm")])
        #expect(oasstInfo.stdout.contains("out_proj [1, 64] with bias, read at the last token"), "\(oasstInfo.stdout)")

        let info = try runProcess(Repository.honeExecutable, ["info", Self.rewardModel])
        #expect(info.status == 0, "\(info.stderr)")
        for fragment in ["gpt_neox", "rotary 4 of 16", "parallel residual", "sequence classification"] {
            #expect(info.stdout.contains(fragment), "\(fragment) in \(info.stdout)")
        }
    }

    @Test("hone score gives transformers' per-token log-probs; generate and perplexity run")
    func causalCommands() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let golden = try GoldenFile(name: "neox-parallel")
        let input = directory.appendingPathComponent("rows.jsonl").path
        try golden.rows.map { "{\"tokens\": [\($0.tokens.map(String.init).joined(separator: ", "))]}\n" }.joined()
            .write(toFile: input, atomically: true, encoding: .utf8)
        let scored = try runProcess(Repository.honeExecutable, ["score", "--model", Self.causal, "--input", input, "--threads", "1"])
        #expect(scored.status == 0, "\(scored.stderr)")
        let results = try Self.lines(scored.stdout)
        #expect(results.count == golden.rows.count)
        for (result, row) in zip(results, golden.rows) {
            let values = ((result["logprobs"] as? [Any]) ?? []).compactMap { ($0 as? NSNumber)?.doubleValue }
            #expect(values.count == row.logprobs.count && maxAbsDifference(values, row.logprobs) <= 1e-4, "\(result)")
        }
        let instructions = directory.appendingPathComponent("instructions.jsonl").path
        try "{\"instruction\": \"Say hello.\"}\n".write(toFile: instructions, atomically: true, encoding: .utf8)
        let answers = directory.appendingPathComponent("answers.json").path
        let generated = try runProcess(Repository.honeExecutable, ["generate", "--model", Self.causal, "--instructions", instructions,
                                                                   "--output", answers, "--max-new-tokens", "6", "--threads", "1"])
        #expect(generated.status == 0 && FileManager.default.fileExists(atPath: answers), "\(generated.stderr)")
        let text = directory.appendingPathComponent("text.txt").path
        try String(repeating: "The quick brown fox jumps over the lazy dog. ", count: 20).write(toFile: text, atomically: true, encoding: .utf8)
        let perplexity = try runProcess(Repository.honeExecutable, ["perplexity", "--model", Self.causal, "-f", text, "-c", "64",
                                                                    "--threads", "1"])
        #expect(perplexity.status == 0, "\(perplexity.stderr)")
    }

    @Test("LoRA SFT and reward-model training on NeoX modules write PEFT adapters that reward and eval hh read")
    func training() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let modules = "[query_key_value,dense,dense_h_to_4h,dense_4h_to_h]"
        let sftData = directory.appendingPathComponent("sft.jsonl").path
        try (0..<8).map { "{\"instruction\": \"Say something about \($0).\", \"output\": \"Number \($0) is fine.\"}\n" }.joined()
            .write(toFile: sftData, atomically: true, encoding: .utf8)
        let sft = directory.appendingPathComponent("sft").path
        let trained = try runProcess(Repository.honeExecutable, [
            "train", "sft", "--base-model", Self.causal, "--data-path", sftData, "--output-dir", sft, "--batch-size", "4",
            "--micro-batch-size", "2", "--max-steps", "2", "--val-set-size", "0", "--save-steps", "0", "--lora-r", "4",
            "--lora-target-modules", modules, "--threads", "1"])
        #expect(trained.status == 0, "\(trained.stderr)")
        let config = try Self.json(sft + "/adapter_config.json")
        #expect(Set(config["target_modules"] as? [String] ?? []) == ["query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"])
        let keys = try SafetensorsFile(path: sft + "/adapter_model.safetensors").tensors.keys
        #expect(keys.contains("base_model.model.gpt_neox.layers.1.attention.query_key_value.lora_B.weight"), "\(keys.sorted())")
        #expect(keys.count == 2 * 4 * 2)

        let pairs = directory.appendingPathComponent("pairs.jsonl").path
        try "{\"chosen\": \"a good reply\", \"rejected\": \"bad\"}\n{\"chosen\": \"another good reply\", \"rejected\": \"no\"}\n"
            .write(toFile: pairs, atomically: true, encoding: .utf8)
        let rm = directory.appendingPathComponent("rm").path
        let rmRun = try runProcess(Repository.honeExecutable, [
            "train", "rm", "--base-model", Self.causal, "--data-path", pairs, "--output-dir", rm, "--max-steps", "2",
            "--batch-size", "2", "--micro-batch-size", "2", "--val-set-size", "0", "--save-steps", "0", "--threads", "1"])
        #expect(rmRun.status == 0, "\(rmRun.stderr)")
        // Without --lora-target-modules: the recipe's [q_proj,v_proj] is PEFT's default for gpt_neox.
        #expect(try Self.json(rm + "/adapter_config.json")["target_modules"] as? [String] == ["query_key_value"])
        let rewarded = try runProcess(Repository.honeExecutable, ["reward", "--model", Self.causal, "--adapter", rm, "--input", pairs,
                                                                  "--threads", "1"])
        #expect(rewarded.status == 0 && rewarded.stderr.contains("pair accuracy"), "\(rewarded.stderr)")

        let test = directory.appendingPathComponent("test.jsonl").path
        try """
        {"chosen": "\\n\\nHuman: What is 2 + 2?\\n\\nAssistant: It is 4.", "rejected": "\\n\\nHuman: What is 2 + 2?\\n\\nAssistant: Five."}
        """.write(toFile: test, atomically: true, encoding: .utf8)
        let output = directory.appendingPathComponent("hh.json").path
        let evaluated = try runProcess(Repository.honeExecutable, ["eval", "hh", "--model", Self.causal, "--adapter", sft,
                                                                   "--reward-model", Self.rewardModel, "--data", test,
                                                                   "--output", output, "--max-new-tokens", "4", "--threads", "1"])
        #expect(evaluated.status == 0, "\(evaluated.stderr)")
        let samples = try Self.json(output)["samples"] as? [[String: Any]] ?? []
        #expect(samples.count == 1 && samples.allSatisfy { let r = $0["reward"] as! Double; return r > 0 && r < 1 })
    }

    @Test("A NeoX config missing a required field: one line naming the file and the field, exit status 1")
    func badConfig() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let source = Repository.fixture("models/neox-sequential")
        try FileManager.default.copyItem(atPath: source + "/model.safetensors", toPath: directory.appendingPathComponent("model.safetensors").path)
        var config = try Self.json(source + "/config.json")
        config.removeValue(forKey: "hidden_size")
        let path = directory.appendingPathComponent("config.json").path
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: path))
        let result = try runProcess(Repository.honeExecutable, ["info", directory.path])
        #expect(result.status == 1)
        let lines = result.stderr.split(separator: "\n")
        #expect(lines.count == 1 && result.stderr.contains(path) && result.stderr.contains("hidden_size"), "\(result.stderr)")
    }
}
