import Foundation
import Testing
@testable import HoneKit

/// `hone train sft`, `hone merge` and `--adapter` through the binary, on the default model and the bundled sample.
@Suite("train, merge and --adapter from the command line")
struct TrainCommandTests {
    static let model = Repository.root.appendingPathComponent("models/hone-tiny").path
    static let sample = Repository.root.appendingPathComponent("examples/alpaca-sample.json").path

    static func train(_ output: String, extra: [String] = []) throws -> (status: Int32, stdout: String, stderr: String) {
        try runProcess(Repository.honeExecutable, [
            "train", "sft", "--base-model", model, "--data-path", sample, "--output-dir", output,
            "--batch-size", "8", "--micro_batch_size", "4", "--max-steps", "6", "--val-set-size", "5",
            "--lora-r", "4", "--lora-target-modules", "[q,k,v,o,gate,up,down]", "--lora-dropout", "0",
            "--learning-rate", "3e-3", "--warmup-steps", "1", "--save-steps", "3", "--eval-steps", "3",
            "--train-on-inputs", "False", "--threads", "1",
        ] + extra)
    }

    /// Per-token log-probs of a few sample texts, through `hone score`.
    static func score(model: String, adapter: String? = nil, directory: URL) throws -> [[Double]] {
        let input = directory.appendingPathComponent("texts.jsonl").path
        let texts = ["What is the capital of Peru? The capital of Peru is Lima.", "Sort 3, 1, 2."]
        try Data(texts.map { "{\"text\": \(jsonString($0))}" }.joined(separator: "\n").utf8).write(to: URL(fileURLWithPath: input))
        var arguments = ["score", "--model", model, "--input", input, "--threads", "1"]
        if let adapter { arguments += ["--adapter", adapter] }
        let result = try runProcess(Repository.honeExecutable, arguments)
        #expect(result.status == 0, "\(result.stderr)")
        return result.stdout.split(separator: "\n").map { line in
            let record = try! JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
            return (record["logprobs"] as! [Any]).dropFirst().map { ($0 as! NSNumber).doubleValue }
        }
    }

    @Test("train sft writes a PEFT adapter, metrics, a plot and checkpoints; the loss falls")
    func trainWritesEverything() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = directory.appendingPathComponent("run").path
        let result = try Self.train(output)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("50 training, 5 validation"))
        for file in ["adapter_config.json", "adapter_model.safetensors", "metrics.jsonl", "loss.svg", "checkpoint-3/adapter_model.safetensors"] {
            #expect(FileManager.default.fileExists(atPath: output + "/" + file), "\(file) missing")
        }
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: output + "/adapter_config.json"))) as! [String: Any]
        #expect(config["peft_type"] as? String == "LORA")
        #expect(config["task_type"] as? String == "CAUSAL_LM")
        #expect((config["r"] as? NSNumber)?.intValue == 4)
        #expect((config["target_modules"] as? [String])?.count == 7)
        // Hone's record sits beside PEFT's config, which keeps only keys PEFT knows.
        #expect(config["hone_prompt_template"] == nil)
        let record = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: output + "/hone_training.json"))) as! [String: Any]
        #expect(record["prompt_template"] as? String == "alpaca")
        let lines = try String(contentsOfFile: output + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        let records = lines.map { try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        #expect(records.count == 6)
        for key in ["step", "loss", "lr", "grad_norm", "tokens_per_s"] { #expect(records[0][key] != nil, "\(key) missing") }
        #expect(records[2]["eval_loss"] != nil && records[5]["eval_loss"] != nil && records[0]["eval_loss"] == nil)
        let losses = records.map { ($0["loss"] as! NSNumber).doubleValue }
        #expect(losses.last! < losses.first!)
        let svg = try String(contentsOfFile: output + "/loss.svg", encoding: .utf8)
        #expect(svg.hasPrefix("<svg") && svg.contains("polyline"))
    }

    @Test("score with --adapter differs from the base and equals the merged model")
    func adapterAndMerge() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = directory.appendingPathComponent("run").path
        let trained = try Self.train(output)
        #expect(trained.status == 0, "\(trained.stderr)")
        let base = try Self.score(model: Self.model, directory: directory)
        let adapted = try Self.score(model: Self.model, adapter: output, directory: directory)
        #expect(zip(base, adapted).map { maxAbsDifference($0, $1) }.max()! > 1e-3)

        let merged = directory.appendingPathComponent("merged").path
        let merge = try runProcess(Repository.honeExecutable, ["merge", "--base-model", Self.model, "--adapter", output,
                                                               "--output-dir", merged, "--threads", "1"])
        #expect(merge.status == 0, "\(merge.stderr)")
        #expect(merge.stderr.contains("survives rounding"))
        for file in ["config.json", "model.safetensors", "tokenizer.json", "tokenizer.model"] {
            #expect(FileManager.default.fileExists(atPath: merged + "/" + file), "\(file) missing")
        }
        let fromMerged = try Self.score(model: merged, directory: directory)
        // hone-tiny is f32: merged log-probs equal base + adapter to f32 rounding.
        #expect(zip(adapted, fromMerged).map { maxAbsDifference($0, $1) }.max()! < 1e-4)
    }

    @Test("records cut at --cutoff-len and records left without a trained token are named")
    func overlongRecordsAreNamed() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("long.json").path
        let long = String(repeating: "word ", count: 400)
        let records = [["instruction": "Say hi.", "output": "Hi."], ["instruction": long, "output": "Done."],
                       ["instruction": "Say yes.", "output": "Yes."]]
        try JSONSerialization.data(withJSONObject: records).write(to: URL(fileURLWithPath: path))
        let result = try runProcess(Repository.honeExecutable, [
            "train", "sft", "--base-model", Self.model, "--data-path", path, "--output-dir", directory.appendingPathComponent("out").path,
            "--val-set-size", "0", "--max-steps", "1", "--cutoff-len", "64", "--train-on-inputs", "false", "--threads", "1"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("1 cut on the right at --cutoff-len 64 (record 2)"), "\(result.stderr)")
        #expect(result.stderr.contains("1 with no trained token left, ignored by the loss (record 2)"), "\(result.stderr)")
    }

    @Test("bad training data and settings give one clear line and exit status 1")
    func badInput() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let cases: [(String, String, String)] = [
            ("missing.json", #"[{"instruction": "a", "output": "b"}, {"instruction": "c"}]"#, "output"),
            ("empty.json", "[]", "no records"),
            ("invalid.json", #"[{"instruction": "a", "output": "b"},"#, "invalid.json"),
            ("wrongtype.jsonl", "{\"instruction\": \"a\", \"output\": \"b\"}\n{\"instruction\": 3, \"output\": \"b\"}\n", "instruction"),
        ]
        for (name, content, expected) in cases {
            let path = directory.appendingPathComponent(name).path
            try Data(content.utf8).write(to: URL(fileURLWithPath: path))
            let result = try runProcess(Repository.honeExecutable, ["train", "sft", "--base-model", Self.model, "--data-path", path,
                                                                    "--output-dir", directory.appendingPathComponent("out").path,
                                                                    "--val-set-size", "0", "--max-steps", "1"])
            #expect(result.status == 1, "\(name): \(result.stderr)")
            #expect(result.stderr.hasPrefix("hone: error:") && result.stderr.contains(expected), "\(name): \(result.stderr)")
            #expect(result.stderr.split(separator: "\n").count == 1, "\(name): \(result.stderr)")
        }
        let tooLarge = try runProcess(Repository.honeExecutable, ["train", "sft", "--base-model", Self.model, "--data-path", Self.sample,
                                                                  "--output-dir", directory.appendingPathComponent("out").path])
        #expect(tooLarge.status == 1)
        #expect(tooLarge.stderr.contains("--val-set-size 2000"))
        let unknownModule = try Self.train(directory.appendingPathComponent("out2").path, extra: ["--lora-target-modules", "[q_proj,mlp]"])
        #expect(unknownModule.status == 1)
        #expect(unknownModule.stderr.contains("unknown LoRA target module 'mlp'"))
    }
}

@Suite struct PretokenizedDataTests {
    @Test("Pre-tokenized JSONL: labels kept or defaulted, rows cut to the cutoff, bad ids named by line")
    func readsTokenIDs() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("ids.jsonl").path
        try Data("{\"input_ids\": [1, 5, 6, 7]}\n{\"input_ids\": [1, 8, 9], \"labels\": [-100, -100, 9]}\n".utf8)
            .write(to: URL(fileURLWithPath: path))
        let examples = try #require(try PretokenizedData.read(path: path, cutoffLength: 3, vocabularySize: 10))
        #expect(examples == [TrainingExample(inputIDs: [1, 5, 6], labels: [1, 5, 6]),
                             TrainingExample(inputIDs: [1, 8, 9], labels: [-100, -100, 9])])
        #expect(try PretokenizedData.read(path: TrainCommandTests.sample, cutoffLength: 3, vocabularySize: 10) == nil)
        // Ids and labels outside the vocabulary: a label of 12 read past the logits, 10^11 trapped as an Int32.
        for (lines, token, key) in [("{\"input_ids\": [1, 2]}\n{\"input_ids\": [1, 12]}\n", 12, "input_ids"),
                                    ("{\"input_ids\": [1]}\n{\"input_ids\": [1, 99999999999]}\n", 99_999_999_999, "input_ids"),
                                    ("{\"input_ids\": [1, 2]}\n{\"input_ids\": [1, 2], \"labels\": [-100, 12]}\n", 12, "labels"),
                                    ("{\"input_ids\": [1, 2]}\n{\"input_ids\": [1, 2], \"labels\": [-1, 2]}\n", -1, "labels")] {
            try Data(lines.utf8).write(to: URL(fileURLWithPath: path))
            #expect(throws: HoneError.tokenOutOfRange(token: token, vocabularySize: 10, location: "\(path):2 \"\(key)\"")) {
                try PretokenizedData.read(path: path, cutoffLength: 8, vocabularySize: 10)
            }
        }
        try Data("{\"input_ids\": [1, 2], \"labels\": [1]}\n".utf8).write(to: URL(fileURLWithPath: path))
        #expect(throws: HoneError.self) { try PretokenizedData.read(path: path, cutoffLength: 8, vocabularySize: 10) }
    }
}

@Suite struct SingleTurnChatTests {
    @Test("--single-turn chat prompts are the training prompt of each message alone, with no history")
    func singleTurnPrompts() throws {
        let tokenizer = try TokenizerLoader.load(modelPath: TrainCommandTests.model)
        let template = try #require(PromptTemplate.named("alpaca"))
        let session = ChatSession(template: template, tokenizer: tokenizer, contextLimit: 1024, maxNewTokens: 32)
        session.singleTurn = true
        for message in ["What is the capital of Peru?", "And of Chile?"] {
            let ids = try session.prompt(for: message)
            session.answered("Lima.")
            #expect(try ids == template.encode(template.pieces(instruction: message, input: nil), with: tokenizer))
        }
    }

    /// With a chat template (no single-turn prompt of its own) each message is a conversation of its own: the second
    /// prompt holds neither the first message nor its answer (it used to keep the whole history).
    @Test func singleTurnWithAChatTemplate() throws {
        let tokenizer = try TokenizerLoader.load(modelPath: TrainCommandTests.model)
        let template = try #require(PromptTemplate.named("chatml"))
        #expect(template.promptNoInput == nil)
        for system in [nil, "Be brief."] as [String?] {
            let session = ChatSession(template: template, tokenizer: tokenizer, contextLimit: 1024, maxNewTokens: 32, system: system)
            session.singleTurn = true
            _ = try session.prompt(for: "What is the capital of Peru?")
            session.answered("Lima.")
            let second = try session.prompt(for: "And of Chile?")
            let alone = try template.encode(template.pieces(conversation: [.user("And of Chile?")], system: system), with: tokenizer)
            #expect(second == alone, "system \(system ?? "none")")
            #expect(session.messages.count == 1)
        }
    }
}
