import Foundation
import Testing
@testable import HoneKit

/// `eval hh`'s pipeline against PRO's own steps run with transformers' tokenizer (tools/oracle/make_hh_eval_fixtures.py),
/// and the whole command on the tiny model.
@Suite("PRO's eval_hh pipeline")
struct HHEvaluationTests {
    static func items() throws -> [[String: Any]] {
        let root = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Repository.fixture("hh_eval/pipeline.json")))) as! [String: Any]
        return root["items"] as! [[String: Any]]
    }
    static let model = Repository.root.appendingPathComponent("models/hone-tiny").path
    static func ids(_ value: Any?) -> [Int32] { (value as! [NSNumber]).map { Int32($0.intValue) } }

    @Test("Truncated prompts, answers cut at the stop markers and reward-model inputs equal PRO's")
    func pipeline() throws {
        let tokenizer = try LoadedModel.open(Self.model).tokenizer()
        for item in try Self.items() {
            let prefix = item["prefix"] as! [String]
            let prompts = item["prompts"] as! [String: [String: Any]]
            for (limit, expected) in prompts {
                let prompt = HHEvaluation.prompt(prefix, tokenizer: tokenizer, maxTokens: Int(limit)!)
                #expect(prompt.tokens == Self.ids(expected["ids"]), "\(item["line"]!) @\(limit): prompt ids")
                #expect(prompt.text == expected["text"] as! String, "\(item["line"]!) @\(limit): prompt text")
            }
            let prompt = HHEvaluation.prompt(prefix, tokenizer: tokenizer, maxTokens: 384)
            let continuation = tokenizer.encode(item["continuation"] as! String, addSpecialTokens: false, parseSpecial: false)
            let answer = HHEvaluation.answer(decoded: tokenizer.decode(prompt.tokens + continuation, skipSpecialTokens: true),
                                             promptText: prompt.text)
            #expect(answer == item["answer"] as! String, "\(item["line"]!): answer")
            for (limit, expected) in item["reward_ids"] as! [String: Any] {
                #expect(HHEvaluation.rewardTokens(prefix, answer: answer, tokenizer: tokenizer, maxTokens: Int(limit)!) == Self.ids(expected),
                        "\(item["line"]!) @\(limit): reward ids")
            }
        }
    }

    @Test("Raw HH test files give PRO's prefixes and references", .enabled(if: FileManager.default.fileExists(atPath: Repository.shared.path + "/data/hh_rlhf")))
    func readsRawFiles() throws {
        let expected = try Self.items()
        for name in ["harmless-base", "helpful-base"] {
            let file = try HHTestFile.read(path: Repository.shared.path + "/data/hh_rlhf/\(name)/test.jsonl.gz", limit: 6)
            #expect(file.name == name)
            let theirs = expected.filter { $0["file"] as! String == name }
            #expect(file.items.map(\.prefix) == theirs.map { $0["prefix"] as! [String] })
            #expect(file.items.map(\.reference) == theirs.map { $0["reference"] as! String })
        }
    }

    @Test("The answer cleanup: prompt removed, stripped, cut at each stop marker in turn")
    func answerCleanup() {
        #expect(HHEvaluation.answer(decoded: "P: hi\n\nAssistant: Fine. Human: more", promptText: "P: hi\n\nAssistant: ") == "Fine.")
        #expect(HHEvaluation.answer(decoded: "abc  assistant: x Human: y", promptText: "") == "abc")
    }

    @Test("eval hh runs end to end, resumes from its journal, and writes the table and JSON")
    func command() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let data = directory.appendingPathComponent("test.jsonl").path
        try """
        {"chosen": "\\n\\nHuman: What is 2 + 2?\\n\\nAssistant: It is 4.", "rejected": "\\n\\nHuman: What is 2 + 2?\\n\\nAssistant: Five."}
        {"prefix": ["<|prompter|>Name a fruit.", "<|assistant|>"], "suffix": ["An apple.", "A carrot."]}
        """.write(toFile: data, atomically: true, encoding: .utf8)
        // A mixed file is read by its first record's kind: raw dialogues here, so the second line is an error.
        let output = directory.appendingPathComponent("hh.json").path
        let bad = try runProcess(Repository.honeExecutable, ["eval", "hh", "--model", Self.model, "--reward-model", Self.model,
                                                            "--data", data, "--output", output])
        #expect(bad.status == 1 && bad.stderr.split(separator: "\n").count == 1, "\(bad.stderr)")
        try """
        {"chosen": "\\n\\nHuman: What is 2 + 2?\\n\\nAssistant: It is 4.", "rejected": "\\n\\nHuman: What is 2 + 2?\\n\\nAssistant: Five."}
        {"chosen": "\\n\\nHuman: Name a fruit.\\n\\nAssistant: An apple.", "rejected": "\\n\\nHuman: Name a fruit.\\n\\nAssistant: A carrot."}
        """.write(toFile: data, atomically: true, encoding: .utf8)
        // A reward model sharing the tiny model's tokenizer: the tiny model with a reward adapter trained for a step.
        let rm = directory.appendingPathComponent("rm").path
        let pairs = directory.appendingPathComponent("pairs.jsonl").path
        try "{\"chosen\": \"a good reply\", \"rejected\": \"bad\"}\n{\"chosen\": \"another good reply\", \"rejected\": \"no\"}\n"
            .write(toFile: pairs, atomically: true, encoding: .utf8)
        #expect(try runProcess(Repository.honeExecutable, ["train", "rm", "--base-model", Self.model, "--data-path", pairs, "--output-dir", rm,
                                                          "--max-steps", "1", "--batch-size", "2", "--micro-batch-size", "2",
                                                          "--val-set-size", "0", "--save-steps", "0"]).status == 0)
        let arguments = ["eval", "hh", "--model", Self.model, "--reward-model", Self.model, "--reward-adapter", rm, "--data", data,
                         "--output", output, "--max-new-tokens", "8", "--threads", "1"]
        let result = try runProcess(Repository.honeExecutable, arguments)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("global") && result.stdout.contains("reward×100"))
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: output))) as! [String: Any]
        let samples = json["samples"] as! [[String: Any]]
        #expect(samples.count == 2 && (json["global"] as! [String: Any])["samples"] as? Int == 2)
        #expect(samples.allSatisfy { let r = $0["reward"] as! Double; return r > 0 && r < 1 })
        #expect(!FileManager.default.fileExists(atPath: output + ".journal"))
        // A journal with one answer already in it: the rerun keeps that answer.
        let identity = ([Self.model, "-", data]).map { URL(fileURLWithPath: $0).standardized.path }.joined(separator: "|")
        let journal = try GenerationJournal(path: output + ".journal", fingerprint: "\(identity)|-1|8|384")
        try journal.record(index: 0, output: "It is 4.")
        let resumed = try runProcess(Repository.honeExecutable, arguments)
        #expect(resumed.status == 0 && resumed.stderr.contains("resuming: 1"), "\(resumed.stderr)")
        let again = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: output))) as! [String: Any]
        let first = (again["samples"] as! [[String: Any]])[0]
        #expect(first["answer"] as? String == "It is 4." && first["bleu"] as? Double == 1)
    }
}
