import Foundation
import Testing
@testable import HoneKit

/// `hone train cut|dpo|pro` through the binary on the default model, with small data written here (and, when
/// ../shared/data is present, data made by `hone data` from it).
@Suite("train cut, dpo and pro from the command line")
struct AlignmentCommandTests {
    static let model = Repository.root.appendingPathComponent("models/hone-tiny").path
    static let common = ["--base-model", model, "--batch-size", "4", "--micro-batch-size", "2", "--max-steps", "4",
                         "--lora-r", "4", "--learning-rate", "1e-3", "--warmup-steps", "0", "--save-steps", "2", "--threads", "1"]

    static func write(_ text: String, _ name: String, in directory: URL) throws -> String {
        let path = directory.appendingPathComponent(name).path
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    static func metrics(_ output: String) throws -> [[String: Any]] {
        try String(contentsOfFile: output + "/metrics.jsonl", encoding: .utf8).split(separator: "\n").map {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
        }
    }

    static func config(_ output: String) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: output + "/adapter_config.json"))) as! [String: Any]
    }

    static let judgments = """
    [
      {"instruction": "Name a primary colour.", "input": "", "output": "Green is a primary colour.", "judgment": "Green is not a primary colour of paint; red, yellow and blue are."},
      {"instruction": "What is 2 + 2?", "input": "", "output": "2 + 2 = 4.", "judgment": null},
      {"instruction": "Translate to French:", "input": "Good morning", "output": "Bonne nuit.", "judgment": "That means good night; good morning is bonjour."},
      {"instruction": "Give the capital of Peru.", "input": null, "output": "The capital of Peru is Lima.", "judgment": "Correct.", "score": 9},
      {"instruction": "Sort 3, 1, 2.", "output": "3, 2, 1", "judgment": "That is descending order, not ascending."},
      {"instruction": "Is the sun a star?", "input": "", "output": "Yes, the sun is a star.", "judgment": null}
    ]
    """

    static let pairs = """
    {"prompt": "\\n\\nHuman: What is the capital of France?\\n\\nAssistant:", "chosen": " The capital of France is Paris.", "rejected": " I don't know."}
    {"prompt": "\\n\\nHuman: Say something kind.\\n\\nAssistant:", "chosen": " You are doing great today.", "rejected": " No."}
    {"prompt": "\\n\\nHuman: How many legs has a spider?\\n\\nAssistant:", "chosen": " A spider has eight legs.", "rejected": " Six, like an insect."}
    {"prompt": "\\n\\nHuman: Name a fruit.\\n\\nAssistant:", "chosen": " An apple is a fruit.", "rejected": " A carrot."}
    {"prompt": "\\n\\nHuman: What colour is the sky?\\n\\nAssistant:", "chosen": " On a clear day the sky is blue.", "rejected": " Green."}
    """

    static let rankings = """
    {"prefix": [["<|prompter|>Name a fruit.", "<|assistant|>"], ["<|prompter|>Name a fruit.", "<|assistant|>"], ["<|prompter|>Name a fruit.", "<|assistant|>"]], "suffix": ["An apple is a fruit.", "A tomato, botanically.", "A carrot."], "reward": [2.0, 0.5, -1.0]}
    {"prefix": [["<|prompter|>Hi!", "<|assistant|>Hello.", "<|prompter|>How are you?", "<|assistant|>"], ["<|prompter|>Hi!", "<|assistant|>Hello.", "<|prompter|>How are you?", "<|assistant|>"], ["<|prompter|>Hi!", "<|assistant|>Hello.", "<|prompter|>How are you?", "<|assistant|>"]], "suffix": ["Very well, thank you.", "Fine.", "Go away."], "reward": [1.5, 1.0, -2.0], "sft_index": 0}
    {"prefix": ["<|prompter|>What is 2 + 2?", "<|assistant|>"], "suffix": ["2 + 2 = 4.", "It is 4, I think.", "5."], "reward": [1.0, 0.2, -1.0]}
    {"prefix": ["<|prompter|>Is ice cold?", "<|assistant|>"], "suffix": ["Yes, ice is cold.", "Usually.", "No, it is hot."], "reward": [0.9, 0.3, -0.7]}
    """

    @Test("train cut runs, logs its terms and records its template and wrap")
    func cut() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let data = try Self.write(Self.judgments, "judgments.json", in: directory)
        let output = directory.appendingPathComponent("out").path
        let result = try runProcess(Repository.honeExecutable, ["train", "cut", "--data-path", data, "--output-dir", output,
                                                                "--downsample", "off", "--cutoff-len", "96"] + Self.common)
        #expect(result.status == 0, "\(result.stderr)")
        // 3 judged records (the score-9 judgment is discarded) → 3 pairs + 3 Align-P.
        #expect(result.stderr.contains("6 training (3 Align-N + Misalign pairs, 3 Align-P)"), "\(result.stderr)")
        let records = try Self.metrics(output)
        #expect(records.count == 4)
        #expect(records.allSatisfy { $0["cut/likelihood"] != nil })
        let config = try Self.config(output)
        #expect(config["hone_prompt_template"] == nil)
        let record = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: output + "/hone_training.json"))) as! [String: Any]
        #expect(record["prompt_template"] as? String == "alpaca_judge")
        #expect((record["eos_policy"] as? String)?.contains("prompt wrap double") == true)
        #expect(Set(config["target_modules"] as? [String] ?? []) == ["gate_proj", "up_proj", "down_proj"])
        // The default down-sampling keeps int(3 × 0.25) = 0 of the 3 Align-P records.
        let sampled = try runProcess(Repository.honeExecutable, ["train", "cut", "--data-path", data, "--output-dir", output + "2",
                                                                 "--cutoff-len", "96", "--cut-prompt-wrap", "single"] + Self.common)
        #expect(sampled.status == 0, "\(sampled.stderr)")
        #expect(sampled.stderr.contains("kept 0 of 3 Align-P"), "\(sampled.stderr)")
    }

    @Test("train dpo runs on prompt/chosen/rejected pairs and on raw HH dialogues, logging TRL's metrics")
    func dpo() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let data = try Self.write(Self.pairs, "pairs.jsonl", in: directory)
        let output = directory.appendingPathComponent("out").path
        let result = try runProcess(Repository.honeExecutable, ["train", "dpo", "--data-path", data, "--output-dir", output,
                                                                "--loss-type", "ipo", "--precompute-ref-log-probs"] + Self.common)
        #expect(result.status == 0, "\(result.stderr)")
        let records = try Self.metrics(output)
        for key in ["rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins", "logps/chosen", "logps/rejected"] {
            #expect(records.allSatisfy { $0[key] != nil }, "\(key) missing")
        }
        #expect(try Self.config(output)["lora_dropout"] as? Double == 0)
        let raw = """
        {"chosen": "\\n\\nHuman: Name a fruit.\\n\\nAssistant: An apple.", "rejected": "\\n\\nHuman: Name a fruit.\\n\\nAssistant: A carrot."}
        {"chosen": "\\n\\nHuman: Hi\\n\\nAssistant: Hello there!", "rejected": "\\n\\nHuman: Hi\\n\\nAssistant: Go away."}
        {"chosen": "no dialogue here", "rejected": "nothing shared"}
        """
        let rawPath = try Self.write(raw, "raw.jsonl", in: directory)
        let fromRaw = try runProcess(Repository.honeExecutable, ["train", "dpo", "--data-path", rawPath, "--output-dir", output + "-raw"]
                                     + Self.common.map { $0 == "4" ? "2" : $0 })
        #expect(fromRaw.status == 0, "\(fromRaw.stderr)")
        #expect(fromRaw.stderr.contains("2 training pairs") && fromRaw.stderr.contains("1 dropped without a shared"), "\(fromRaw.stderr)")
    }

    @Test("train dpo --init-adapter: the reference is the starting adapter, and resuming equals an uninterrupted run")
    func dpoFromAdapterResumes() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let data = try Self.write(Self.pairs, "pairs.jsonl", in: directory)
        // A starting adapter with non-zero B: a short DPO run.
        let start = directory.appendingPathComponent("start").path
        let first = try runProcess(Repository.honeExecutable, ["train", "dpo", "--data-path", data, "--output-dir", start] + Self.common)
        #expect(first.status == 0, "\(first.stderr)")
        let whole = directory.appendingPathComponent("whole").path
        let wholeRun = try runProcess(Repository.honeExecutable, ["train", "dpo", "--data-path", data, "--output-dir", whole,
                                                                  "--init-adapter", start] + Self.common)
        #expect(wholeRun.status == 0, "\(wholeRun.stderr)")
        #expect(wholeRun.stderr.contains("base + frozen --init-adapter"))
        // LoRA options that disagree with the starting adapter were silently ignored.
        let other = try runProcess(Repository.honeExecutable, ["train", "dpo", "--data-path", data, "--output-dir", whole + "-other",
                                                               "--init-adapter", start] + Self.common + ["--lora-r", "3", "--lora-target-modules", "q_proj,k_proj"])
        #expect(other.status == 1)
        #expect(other.stderr.hasPrefix("hone: error: --init-adapter \(start) keeps its own shape: --lora-r 3 (it has "), "\(other.stderr)")
        #expect(other.stderr.contains("--lora-target-modules q_proj,k_proj (it has "), "\(other.stderr)")
        // At step 1 the policy is the reference: every reward is exactly 0.
        let records = try Self.metrics(whole)
        #expect(records[0]["rewards/chosen"] as? Double == 0 && records[0]["rewards/rejected"] as? Double == 0)
        #expect((records[3]["rewards/margins"] as! NSNumber).doubleValue != 0)

        let split = directory.appendingPathComponent("split").path
        let stopped = try runProcess(Repository.honeExecutable, ["train", "dpo", "--data-path", data, "--output-dir", split,
                                                                 "--init-adapter", start, "--stop-after-steps", "3"] + Self.common)
        #expect(stopped.status == 0, "\(stopped.stderr)")
        let resumed = try runProcess(Repository.honeExecutable, ["train", "dpo", "--data-path", data, "--output-dir", split,
                                                                 "--init-adapter", start, "--resume-from-checkpoint", "latest"] + Self.common)
        #expect(resumed.status == 0, "\(resumed.stderr)")
        let wholeBytes = try Data(contentsOf: URL(fileURLWithPath: whole + "/adapter_model.safetensors"))
        let splitBytes = try Data(contentsOf: URL(fileURLWithPath: split + "/adapter_model.safetensors"))
        #expect(wholeBytes == splitBytes)
    }

    @Test("train pro runs on ranking-3 records, and on their first two with --ranking-len 2")
    func pro() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let data = try Self.write(Self.rankings, "rankings.jsonl", in: directory)
        let output = directory.appendingPathComponent("out").path
        let result = try runProcess(Repository.honeExecutable, ["train", "pro", "--data-path", data, "--output-dir", output,
                                                                "--cutoff-len", "64", "--gradient-checkpointing"] + Self.common)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("ranking length 3"), "\(result.stderr)")
        #expect(try Self.metrics(output).allSatisfy { $0["pro/ranking_loss"] != nil && $0["pro/ordered"] != nil })
        let two = try runProcess(Repository.honeExecutable, ["train", "pro", "--data-path", data, "--output-dir", output + "2",
                                                             "--ranking-len", "2"] + Self.common)
        #expect(two.status == 0, "\(two.stderr)")
        #expect(two.stderr.contains("ranking length 2") && two.stderr.contains("= 0.05"), "\(two.stderr)")
    }

    @Test("data made by `hone data` from ../shared/data trains with cut, dpo and pro")
    func sharedData() throws {
        let hh = Repository.shared.appendingPathComponent("data/hh_rlhf/helpful-base/test.jsonl.gz").path
        let iteration = Repository.shared.appendingPathComponent("data/cut/iter/train-alpaca-sample-iter1.json.gz").path
        guard FileManager.default.fileExists(atPath: hh), FileManager.default.fileExists(atPath: iteration) else {
            print("skipping: ../shared/data is absent")
            return
        }
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let converted = directory.appendingPathComponent("hh").path
        let conversion = try runProcess(Repository.honeExecutable, ["data", "hh-rlhf", "--input", hh, "--output-dir", converted])
        #expect(conversion.status == 0, "\(conversion.stderr)")
        let steps = Self.common.map { $0 == "4" ? "2" : $0 }
        let dpo = try runProcess(Repository.honeExecutable, ["train", "dpo", "--data-path", converted + "/dpo.jsonl",
                                                             "--output-dir", directory.appendingPathComponent("dpo").path, "--max-length", "128"] + steps)
        #expect(dpo.status == 0, "\(dpo.stderr)")
        let pro = try runProcess(Repository.honeExecutable, ["train", "pro", "--data-path", converted + "/pro.jsonl",
                                                             "--output-dir", directory.appendingPathComponent("pro").path, "--cutoff-len", "128"] + steps)
        #expect(pro.status == 0, "\(pro.stderr)")
        let judgments = directory.appendingPathComponent("cut.json").path
        let made = try runProcess(Repository.honeExecutable, ["data", "judgments", "--input", iteration, "--schema", "cut", "--output", judgments])
        #expect(made.status == 0, "\(made.stderr)")
        let cut = try runProcess(Repository.honeExecutable, ["train", "cut", "--data-path", judgments, "--output-dir",
                                                             directory.appendingPathComponent("cut").path, "--cutoff-len", "128"] + steps)
        #expect(cut.status == 0, "\(cut.stderr)")
        // CUT's iteration 1: 287 judged records and int(287 × 0.25) = 71 Align-P kept (methods.md §1.2).
        #expect(cut.stderr.contains("358 training (287 Align-N + Misalign pairs, 71 Align-P)"), "\(cut.stderr)")
    }

    @Test("bad data and settings give one clear line and exit status 1")
    func badInput() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let cases: [(command: String, file: String, content: String, extra: [String], expected: String)] = [
            ("cut", "nojudgment.json", #"[{"instruction": "a", "output": "b"}]"#, [], "missing \"judgment\""),
            ("cut", "cut.json", Self.judgments, ["--prompt-template-name", "alpaca"], "no judgment prompt"),
            ("cut", "cut2.json", Self.judgments, ["--cut-prompt-wrap", "triple"], "--cut-prompt-wrap"),
            ("dpo", "norejected.jsonl", "{\"prompt\": \"a\", \"chosen\": \"b\"}\n", [], "pairs-missing"),
            ("dpo", "chat.jsonl", "{\"prompt\": [{\"role\": \"user\", \"content\": \"a\"}], \"chosen\": \"b\", \"rejected\": \"c\"}\n", [], "conversational"),
            ("dpo", "pairs.jsonl", Self.pairs, ["--loss-type", "kto"], "--loss-type"),
            ("dpo", "pairs2.jsonl", Self.pairs, ["--prompt-template-name", "alpaca"], "does not apply to dpo"),
            ("dpo", "pairs3.jsonl", Self.pairs, ["--label-smoothing", "0.5"], "--label-smoothing"),
            ("pro", "ascending.jsonl", #"{"prefix": ["<|prompter|>a", "<|assistant|>"], "suffix": ["x", "y"], "reward": [0, 1]}"# + "\n", [], "descending"),
            ("pro", "lengths.jsonl", #"{"prefix": ["<|prompter|>a", "<|assistant|>"], "suffix": ["x", "y"], "reward": [1]}"# + "\n", [], "2 suffixes but 1 rewards"),
            ("pro", "short.jsonl", Self.rankings, ["--ranking-len", "4"], "fewer than --ranking-len 4"),
        ]
        for item in cases {
            let path = try Self.write(item.content, item.file, in: directory)
            let result = try runProcess(Repository.honeExecutable, ["train", item.command, "--base-model", Self.model, "--data-path", path,
                                                                    "--output-dir", directory.appendingPathComponent("out").path,
                                                                    "--max-steps", "1"] + item.extra)
            let expected = item.expected == "pairs-missing" ? "missing \"rejected\"" : item.expected
            #expect(result.status == 1, "\(item.file): \(result.stderr)")
            #expect(result.stderr.hasPrefix("hone: error:") && result.stderr.contains(expected), "\(item.file): \(result.stderr)")
            #expect(result.stderr.split(separator: "\n").count == 1, "\(item.file): \(result.stderr)")
        }
    }
}
