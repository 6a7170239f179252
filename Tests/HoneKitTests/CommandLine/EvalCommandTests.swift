import Foundation
import Testing
@testable import HoneKit

/// `hone eval` end to end on the tiny fixture model and an adapter: the Markdown table, results.json in lm-eval's
/// shape (values equal to lm-eval's own on the same files) and the samples files.
@Suite struct EvalCommandTests {
    static func lmEvalResults(_ fixture: String) throws -> [String: [String: Any]] {
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Repository.fixture("eval/\(fixture).json")))) as! [String: Any]
        return (object["runs"] as! [[String: Any]])[0]["results"] as! [String: [String: Any]]
    }

    /// A NaN weight gives NaN log-likelihoods: the run stops naming the document, and writes no results.
    @Test func aPoisonedWeightStopsTheEvaluation() throws {
        let model = try NonFiniteTrainingTests.poisonedModel("model.layers.1.mlp.down_proj.weight")
        let output = try makeTemporaryDirectory().path
        let result = try runProcess(Repository.honeExecutable, [
            "eval", "--model", model.path, "--tasks", "arc_easy", "--data", Repository.fixture("eval/data"),
            "--output-dir", output, "--threads", "1"])
        #expect(result.status == 1)
        #expect(result.stdout.isEmpty)
        #expect(result.stderr.contains("hone: error: evaluation stopped: "), "\(result.stderr)")
        #expect(result.stderr.contains(": choice 0 has a non-finite log-likelihood"), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: output + "/base/results.json"))
    }

    @Test func tableResultsAndSamplesForBaseAndAdapter() throws {
        let output = try makeTemporaryDirectory().path
        let result = try runProcess(Repository.honeExecutable, [
            "eval", "--model", Repository.fixture("eval/tiny-llama"), "--adapter", "lora=" + Repository.fixture("eval/tiny-llama-adapter"),
            "--tasks", "arc_easy,truthfulqa_mc2,mmlu_stem", "--data", Repository.fixture("eval/data"),
            "--output-dir", output, "--threads", "1"])
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first == "| model | arc_easy acc | arc_easy acc_norm | truthfulqa_mc2 (mc2) | mmlu_stem acc |")
        #expect(lines.count == 4)
        #expect(lines[2].hasPrefix("| base | "))
        #expect(lines[3].hasPrefix("| lora | "))
        #expect(result.stderr.contains("docs/s"))
        for (row, fixture) in [("base", "tiny-llama"), ("lora", "tiny-llama-adapter")] {
            let expected = try Self.lmEvalResults(fixture)
            let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(output)/\(row)/results.json"))) as! [String: Any]
            let results = json["results"] as! [String: [String: Any]]
            for task in ["arc_easy", "truthfulqa_mc2", "mmlu_stem", "mmlu_abstract_algebra"] {
                for key in ["acc,none", "acc_stderr,none"] {
                    // One document: lm-eval writes "N/A" for the stderr.
                    if let text = expected[task]?[key] as? String {
                        #expect(results[task]?[key] as? String == text, "\(row) \(task) \(key)")
                        continue
                    }
                    let mine = try #require(results[task]?[key] as? NSNumber, "\(row) \(task) \(key)")
                    let theirs = try #require(expected[task]?[key] as? NSNumber, "\(fixture) \(task) \(key)")
                    #expect(abs(mine.doubleValue - theirs.doubleValue) <= 1e-6, "\(row) \(task) \(key)")
                }
            }
            #expect((json["n-samples"] as! [String: [String: Int]])["arc_easy"]?["effective"] == 7)
            let samples = try String(contentsOfFile: "\(output)/\(row)/samples_arc_easy.jsonl", encoding: .utf8)
            let records = samples.split(separator: "\n").map { try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
            #expect(records.count == 7)
            #expect((records[0]["filtered_resps"] as! [[Any]]).count == 4)
            #expect(((records[0]["arguments"] as! [String: [String: String]])["gen_args_0"]?["arg_1"])?.hasPrefix(" ") == true)
        }
    }

    /// lm-eval's `--limit 0.3` is a fraction of each task (rounded up); it was refused as not an integer.
    @Test func limitAsAFraction() throws {
        let output = try makeTemporaryDirectory().path
        let arguments = ["eval", "--model", Repository.fixture("eval/tiny-llama"), "--tasks", "arc_easy", "--data", Repository.fixture("eval/data"),
                         "--output-dir", output, "--threads", "1"]
        let result = try runProcess(Repository.honeExecutable, arguments + ["--limit", "0.3"])
        #expect(result.status == 0, "\(result.stderr)")
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "\(output)/base/results.json"))) as! [String: Any]
        #expect((json["n-samples"] as? [String: [String: Int]])?["arc_easy"]?["effective"] == 3, "ceil(7 × 0.3)")
        #expect((json["config"] as? [String: Any])?["limit"] as? Double == 0.3)
        for bad in ["0", "1.5", "-0.2", "many"] {
            let refused = try runProcess(Repository.honeExecutable, arguments + ["--limit=\(bad)"])
            #expect(refused.status == 1 && refused.stderr.contains("--limit must be a count of at least 1 or a fraction between 0 and 1, not \(bad)"),
                    "\(refused.stderr)")
        }
    }

    @Test func badTaskOrDataIsOneLine() throws {
        let unknown = try runProcess(Repository.honeExecutable, [
            "eval", "--model", Repository.fixture("eval/tiny-llama"), "--tasks", "arc_easy,nope", "--data", Repository.fixture("eval/data")])
        #expect(unknown.status != 0)
        #expect(unknown.stderr.hasPrefix("hone: error: unknown task 'nope' in --tasks"))
        #expect(unknown.stderr.split(separator: "\n").count == 1)
        let missing = try runProcess(Repository.honeExecutable, [
            "eval", "--model", Repository.fixture("eval/tiny-llama"), "--tasks", "piqa", "--data", "/nonexistent"])
        #expect(missing.status != 0)
        #expect(missing.stderr == "hone: error: /nonexistent/piqa/valid.jsonl: no such file or directory\n")
        // A bad adapter is reported before any row runs (it came after the whole base row), with no progress shown.
        let badAdapter = try runProcess(Repository.honeExecutable, [
            "eval", "--model", Repository.fixture("eval/tiny-llama"), "--adapter", "x=/nonexistent-adapter", "--tasks", "arc_easy",
            "--data", Repository.fixture("eval/data"), "--threads", "1"])
        #expect(badAdapter.status == 1)
        #expect(badAdapter.stderr == "hone: error: /nonexistent-adapter/adapter_config.json: no such file or directory\n", "\(badAdapter.stderr)")
        let help = try runProcess(Repository.honeExecutable, ["eval", "--help"])
        #expect(help.stdout.contains("Example"))
        let tasksHelp = try runProcess(Repository.honeExecutable, ["eval", "tasks", "--help"])
        #expect(tasksHelp.stdout.contains("Example"))
        #expect(tasksHelp.stdout.contains("--num-fewshot"))
        #expect(tasksHelp.stdout.contains("--threads"))
    }
}
