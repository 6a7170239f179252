import Foundation
import Testing
@testable import HoneKit

/// `hone train kto|orpo|cpo|simpo` through the binary on the default model with small data written here.
@Suite("train kto, orpo, cpo and simpo from the command line")
struct PreferenceCommandTests {
    /// Every step sees the whole training set (4 pairs or 8 completions), so the first and last steps' logged
    /// rewards compare the same data before and after training.
    static func common(batch: Int = 4, micro: Int = 2) -> [String] {
        ["--base-model", AlignmentCommandTests.model, "--batch-size", "\(batch)", "--micro-batch-size", "\(micro)", "--max-steps", "6",
         "--lora-r", "4", "--learning-rate", "2e-3", "--save-steps", "3", "--threads", "1"]
    }

    static let pairs = """
    {"prompt": "\\n\\nHuman: What is the capital of France?\\n\\nAssistant:", "chosen": " The capital of France is Paris.", "rejected": " I don't know."}
    {"prompt": "\\n\\nHuman: Say something kind.\\n\\nAssistant:", "chosen": " You are doing great today.", "rejected": " No."}
    {"prompt": "\\n\\nHuman: How many legs has a spider?\\n\\nAssistant:", "chosen": " A spider has eight legs.", "rejected": " Six, like an insect."}
    {"prompt": "\\n\\nHuman: Name a fruit.\\n\\nAssistant:", "chosen": " An apple is a fruit.", "rejected": " A carrot."}
    """

    static let unpaired = """
    {"prompt": "Q: What is 2 + 2?\\nA:", "completion": " 4.", "label": true}
    {"prompt": "Q: What is 2 + 2?\\nA:", "completion": " 5.", "label": false}
    {"prompt": "Q: Is ice cold?\\nA:", "completion": " Yes, ice is cold.", "label": true}
    {"prompt": "Q: Is ice cold?\\nA:", "completion": " No, it is hot.", "label": false}
    """

    @Test("Each method trains, logs TRL's metrics and raises the preferred completions' rewards", arguments: ["kto", "orpo", "cpo", "simpo"])
    func trains(method: String) throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let data = try AlignmentCommandTests.write(method == "kto" ? Self.unpaired : Self.pairs, "data.jsonl", in: directory)
        let output = directory.appendingPathComponent("out").path
        var extra: [String] = []
        if method == "simpo" { extra = ["--beta", "2.0", "--simpo-gamma", "0.5"] }
        if method == "kto" { extra = ["--beta", "0.5"] }
        let result = try runProcess(Repository.honeExecutable, ["train", method, "--data-path", data, "--output-dir", output] + extra + Self.common())
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("done:"), "\(result.stderr)")
        let records = try AlignmentCommandTests.metrics(output)
        #expect(records.count == 6)
        var keys = ["rewards/chosen", "rewards/rejected", "rewards/margins", "logps/chosen", "logps/rejected"]
        switch method {
        case "kto": keys += ["kl"]
        case "orpo": keys += ["rewards/accuracies", "nll_loss", "log_odds_ratio", "log_odds_chosen"]
        default: keys += ["rewards/accuracies", "nll_loss"]
        }
        for key in keys { #expect(records.allSatisfy { $0[key] != nil }, "\(method): \(key) missing") }
        let first = (records.first!["rewards/margins"] as! NSNumber).doubleValue
        let last = (records.last!["rewards/margins"] as! NSNumber).doubleValue
        #expect(last > first, "\(method): margins \(first) → \(last)")
        #expect(try AlignmentCommandTests.config(output)["lora_dropout"] as? Double == 0)
        if method == "simpo" { #expect((records.last!["nll_loss"] as! NSNumber).doubleValue == 0) }
    }

    @Test("kto on DPO pairs splits them, warns on unbalanced classes, and resumes exactly")
    func ktoPairsWarningResume() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let data = try AlignmentCommandTests.write(Self.pairs, "pairs.jsonl", in: directory)
        let whole = directory.appendingPathComponent("whole").path
        // 8 completions, micro-batches of 4: the first holds the chosen completions of all four pairs.
        let wholeRun = try runProcess(Repository.honeExecutable, ["train", "kto", "--data-path", data, "--output-dir", whole]
                                      + Self.common(batch: 8, micro: 4))
        #expect(wholeRun.status == 0, "\(wholeRun.stderr)")
        #expect(wholeRun.stderr.contains("4 pairs from") && wholeRun.stderr.contains("(4 desirable, 4 undesirable)"), "\(wholeRun.stderr)")
        #expect(!wholeRun.stderr.contains("warning"))
        let split = directory.appendingPathComponent("split").path
        let arguments = ["train", "kto", "--data-path", data, "--output-dir", split] + Self.common(batch: 8, micro: 4)
        let stopped = try runProcess(Repository.honeExecutable, arguments + ["--stop-after-steps", "4"])
        #expect(stopped.status == 0, "\(stopped.stderr)")
        let resumed = try runProcess(Repository.honeExecutable, arguments + ["--resume-from-checkpoint", "latest"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        let wholeBytes = try Data(contentsOf: URL(fileURLWithPath: whole + "/adapter_model.safetensors"))
        let splitBytes = try Data(contentsOf: URL(fileURLWithPath: split + "/adapter_model.safetensors"))
        #expect(wholeBytes == splitBytes)

        let unbalanced = try AlignmentCommandTests.write(Self.unpaired + "\n" + #"{"prompt": "Q: Hi\nA:", "completion": " Hello.", "label": true}"# + "\n",
                                                         "unbalanced.jsonl", in: directory)
        let warned = try runProcess(Repository.honeExecutable, ["train", "kto", "--data-path", unbalanced, "--output-dir",
                                                                directory.appendingPathComponent("warned").path, "--max-steps", "1",
                                                                "--base-model", AlignmentCommandTests.model, "--desirable-weight", "2"])
        #expect(warned.status == 0, "\(warned.stderr)")
        #expect(warned.stderr.contains("hone: warning: 3 desirable and 2 undesirable") && warned.stderr.contains("--undesirable-weight in [2.26, 3.0]"),
                "\(warned.stderr)")
    }

    @Test("bad data and settings give one clear line and exit status 1")
    func badInput() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let cases: [(command: String, file: String, content: String, extra: [String], expected: String)] = [
            ("kto", "label.jsonl", Self.unpaired + "\n" + #"{"prompt": "a", "completion": "b", "label": "yes"}"#, [],
             "label.jsonl:5: \"label\" must be true or false, found a string"),
            ("kto", "nolabel.jsonl", #"{"prompt": "a", "completion": "b"}"#, [], "nolabel.jsonl:1: missing \"label\""),
            ("kto", "nocompletion.jsonl", #"{"prompt": "a", "label": true}"#, [], "nocompletion.jsonl:1: missing \"completion\""),
            ("kto", "micro.jsonl", Self.unpaired, ["--micro-batch-size", "1", "--batch-size", "1"], "--micro-batch-size of at least 2"),
            ("kto", "group.jsonl", Self.unpaired, ["--group-by-length", "true"], "--group-by-length does not apply to kto"),
            ("orpo", "norejected.jsonl", #"{"prompt": "a", "chosen": "b"}"#, [], "norejected.jsonl:1: missing \"rejected\""),
            ("orpo", "cutoff.jsonl", Self.pairs, ["--cutoff-len", "64"], "orpo limits rows with --max-length"),
            ("cpo", "loss.jsonl", Self.pairs, ["--loss-type", "kto"], "--loss-type must be one of sigmoid, hinge, ipo, simpo"),
            ("simpo", "smoothing.jsonl", Self.pairs, ["--label-smoothing", "0.5"], "--label-smoothing must lie in [0, 0.5)"),
            ("cpo", "alpha.jsonl", Self.pairs, ["--cpo-alpha=-1"], "--cpo-alpha must be a non-negative number"),
        ]
        for item in cases {
            let path = try AlignmentCommandTests.write(item.content, item.file, in: directory)
            let result = try runProcess(Repository.honeExecutable, ["train", item.command, "--base-model", AlignmentCommandTests.model, "--data-path", path,
                                                                    "--output-dir", directory.appendingPathComponent("out").path,
                                                                    "--max-steps", "1"] + item.extra)
            #expect(result.status == 1, "\(item.file): \(result.stderr)")
            #expect(result.stderr.hasPrefix("hone: error:") && result.stderr.contains(item.expected), "\(item.file): \(result.stderr)")
            #expect(result.stderr.split(separator: "\n").count == 1, "\(item.file): \(result.stderr)")
        }
    }
}
