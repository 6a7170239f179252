import Foundation
import Testing
@testable import HoneKit

/// `hone train rm` and `hone reward` through the binary: a reward model trained on the default tiny model learns
/// its training pairs, resumes exactly, and `hone reward` reads both HF sequence-classification directories and
/// reward adapters.
@Suite("train rm and reward from the command line")
struct RewardCommandTests {
    static let model = Repository.root.appendingPathComponent("models/hone-tiny").path

    /// 24 pairs whose chosen replies are helpful and rejected ones curt, with Llama 2 ratings.
    static var pairs: String {
        let topics = ["apples", "rivers", "music", "chess", "clouds", "trains", "bread", "stars", "paint", "tea", "maps", "bees"]
        let good = ["Sure, here is a clear answer about %@.", "Happy to help: %@ are interesting because of their history.",
                    "Of course! Let me explain %@ step by step."]
        let bad = ["No.", "I do not care about %@.", "Go away."]
        let ratings = ["significantly better", "better", "slightly better", "negligibly better"]
        return (0..<24).map { index in
            let topic = topics[index % topics.count]
            let prompt = "\\n\\nHuman: Tell me about \(topic).\\n\\nAssistant: "
            let chosen = String(format: good[index % 3], topic), rejected = String(format: bad[(index / 3) % 3], topic)
            return "{\"prompt\": \"\(prompt)\", \"chosen\": \"\(chosen)\", \"rejected\": \"\(rejected)\", \"rating\": \"\(ratings[index % 4])\"}\n"
        }.joined()
    }

    static let common = ["--base-model", model, "--batch-size", "8", "--micro-batch-size", "4", "--learning-rate", "3e-3",
                         "--margin", "small", "--threads", "1"]

    static func lines(_ path: String) throws -> [[String: Any]] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
        }
    }

    @Test("train rm learns its pairs (accuracy ≥ 90 % by hone reward), logs TRL's figures and writes a SEQ_CLS adapter")
    func trainAndScore() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let data = directory.appendingPathComponent("pairs.jsonl").path
        try Self.pairs.write(toFile: data, atomically: true, encoding: .utf8)
        let output = directory.appendingPathComponent("out").path
        let before = try runProcess(Repository.honeExecutable, ["reward", "--model", Self.model, "--input", data])
        #expect(before.status == 1 && before.stderr.contains("no score head"), "\(before.stderr)")
        let trained = try runProcess(Repository.honeExecutable, ["train", "rm"] + Self.common + [
            "--data-path", data, "--output-dir", output, "--num-epochs", "4", "--val-set-size", "4", "--eval-steps", "5",
            "--save-steps", "0", "--gradient-checkpointing"])
        #expect(trained.status == 0, "\(trained.stderr)")
        let metrics = try Self.lines(output + "/metrics.jsonl")
        for key in ["accuracy", "margin", "mean_reward", "rewards/chosen", "rewards/rejected"] { #expect(metrics.last?[key] != nil, "\(key)") }
        #expect(metrics.last?["eval_accuracy"] != nil && metrics.last?["eval_loss"] != nil)
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: output + "/adapter_config.json"))) as! [String: Any]
        #expect(config["task_type"] as? String == "SEQ_CLS" && config["modules_to_save"] as? [String] == ["score"])
        let rewards = directory.appendingPathComponent("rewards.jsonl").path
        let scored = try runProcess(Repository.honeExecutable, ["reward", "--model", Self.model, "--adapter", output,
                                                                "--input", data, "--output", rewards, "--threads", "1"])
        #expect(scored.status == 0, "\(scored.stderr)")
        let results = try Self.lines(rewards)
        #expect(results.count == 24)
        let right = results.filter { ($0["chosen_reward"] as! Double) > ($0["rejected_reward"] as! Double) }.count
        #expect(Double(right) / 24 >= 0.9, "accuracy on the training pairs \(right)/24")
        #expect(scored.stderr.contains("pair accuracy"))
    }

    @Test("train rm resumed from a checkpoint ends with the same adapter and score head as an uninterrupted run")
    func resume() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let data = directory.appendingPathComponent("pairs.jsonl").path
        try Self.pairs.write(toFile: data, atomically: true, encoding: .utf8)
        let whole = directory.appendingPathComponent("whole").path, split = directory.appendingPathComponent("split").path
        let settings = Self.common + ["--data-path", data, "--max-steps", "4", "--save-steps", "2", "--val-set-size", "0",
                                      "--center-rewards-coefficient", "0.01"]
        #expect(try runProcess(Repository.honeExecutable, ["train", "rm"] + settings + ["--output-dir", whole]).status == 0)
        #expect(try runProcess(Repository.honeExecutable, ["train", "rm"] + settings + ["--output-dir", split, "--stop-after-steps", "2"]).status == 0)
        let resumed = try runProcess(Repository.honeExecutable, ["train", "rm"] + settings + ["--output-dir", split,
                                                                                             "--resume-from-checkpoint", "latest"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        let a = try SafetensorsFile(path: whole + "/adapter_model.safetensors")
        let b = try SafetensorsFile(path: split + "/adapter_model.safetensors")
        #expect(a.tensors.keys.sorted() == b.tensors.keys.sorted() && a.tensors["base_model.model.score.weight"] != nil)
        for name in a.tensors.keys { #expect(a.tensors[name]!.floats() == b.tensors[name]!.floats(), "\(name)") }
    }

    @Test("reward scores an HF sequence-classification directory as transformers does; bad input is one line")
    func rewardOnSequenceClassificationModel() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let root = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Repository.fixture("reward/rewards.json")))) as! [String: Any]
        let item = (root["models"] as! [String: [String: Any]])["qwen2-seqcls"]!
        let rows = item["rows"] as! [[NSNumber]]
        let input = directory.appendingPathComponent("rows.jsonl").path
        try rows.map { "{\"tokens\": [\($0.map(\.stringValue).joined(separator: ", "))]}\n" }.joined()
            .write(toFile: input, atomically: true, encoding: .utf8)
        let result = try runProcess(Repository.honeExecutable, ["reward", "--model", Repository.fixture("reward/models/qwen2-seqcls"),
                                                               "--input", input, "--threads", "1"])
        #expect(result.status == 0, "\(result.stderr)")
        let ours = result.stdout.split(separator: "\n").map { (try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any])["reward"] as! Double }
        #expect(maxAbsDifference(ours, (item["rewards"] as! [NSNumber]).map(\.doubleValue)) < 1e-4)
        try "{\"tokens\": [1, 2]}\n{\"question\": \"?\"}\n".write(toFile: input, atomically: true, encoding: .utf8)
        let bad = try runProcess(Repository.honeExecutable, ["reward", "--model", Repository.fixture("reward/models/qwen2-seqcls"), "--input", input])
        #expect(bad.status == 1 && bad.stderr.contains(":2:") && bad.stderr.split(separator: "\n").count == 1, "\(bad.stderr)")
        let info = try runProcess(Repository.honeExecutable, ["info", Repository.fixture("reward/models/qwen2-seqcls")])
        #expect(info.stdout.contains("sequence classification"))
    }

    @Test("a NaN weight stops hone reward, naming the record, instead of writing null rewards and a nan mean")
    func rewardStopsOnANaN() throws {
        let model = try poisonedCopy(of: Repository.fixture("reward/models/llama-seqcls"), tensor: "model.layers.0.mlp.down_proj.weight")
        let input = model.appendingPathComponent("rows.jsonl").path
        try "{\"tokens\": [1, 5, 7]}\n{\"tokens\": [1, 2]}\n".write(toFile: input, atomically: true, encoding: .utf8)
        let result = try runProcess(Repository.honeExecutable, ["reward", "--model", model.path, "--input", input, "--threads", "1"])
        #expect(result.status == 1)
        #expect(result.stdout.isEmpty)
        #expect(result.stderr.split(separator: "\n").last == "hone: error: reward stopped: \(input): line 1: the reward is nan; the model produces non-finite numbers",
                "\(result.stderr)")
    }

    @Test("bad reward-model data and settings give one line naming the file, record and field, and exit status 1")
    func badInput() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = directory.appendingPathComponent("out").path
        for (text, expected) in [("{\"chosen\": \"a\", \"rejected\": \"b\", \"rating\": \"much better\"}\n", ":1: \"rating\""),
                                 ("{\"chosen\": \"a\", \"rejected\": \"b\"}\n{\"chosen\": \"a\"}\n", ":2: missing \"rejected\""),
                                 ("{\"chosen\": \"a\", \"rejected\": \"b\", \"margin\": 1, \"rating\": \"better\"}\n", ":1: has both")] {
            let data = directory.appendingPathComponent("bad.jsonl").path
            try text.write(toFile: data, atomically: true, encoding: .utf8)
            let result = try runProcess(Repository.honeExecutable, ["train", "rm", "--base-model", Self.model, "--data-path", data,
                                                                   "--output-dir", output])
            #expect(result.status == 1 && result.stderr.contains(expected) && result.stderr.split(separator: "\n").count == 1,
                    "\(result.stderr)")
        }
        let margin = try runProcess(Repository.honeExecutable, ["train", "rm", "--base-model", Self.model, "--data-path", output,
                                                               "--output-dir", output, "--margin", "huge"])
        #expect(margin.status == 1 && margin.stderr.contains("--margin"))
    }
}
