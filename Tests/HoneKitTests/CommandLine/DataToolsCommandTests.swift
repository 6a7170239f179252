import Foundation
import Testing
@testable import HoneKit

// The tests of these suites that run the built `hone` binary.

extension DataToolsBadInputTests {
    @Test func commandLineErrorsAreOneLine() throws {
        let good = try temporaryFile("j.json", "[{\"instruction\": \"i\", \"input\": \"\", \"output\": \"o\", \"judgment\": null}]")
        let output = try makeTemporaryDirectory().appendingPathComponent("out.json").path
        let unknown = try runProcess(Repository.honeExecutable, ["data", "judgments", "--input", good, "--schema", "ultrafeedback", "--output", output])
        #expect(unknown.status == 1)
        #expect(unknown.stderr == "hone: error: unknown schema 'ultrafeedback' (known: shepherd, cut)\n")
        let bad = try temporaryFile("bad.jsonl", "{\"chosen\": \"x\", \"rejected\": \"y\"}\nnot json\n")
        let hh = try runProcess(Repository.honeExecutable, ["data", "hh-rlhf", "--input", bad, "--output-dir", output + ".d"])
        #expect(hh.status == 1)
        #expect(hh.stderr == "hone: error: \(bad):2: not valid JSON\n")
        let empty = try temporaryFile("e.jsonl", "")
        let diversity = try runProcess(Repository.honeExecutable, ["data", "diversity", "--model", Repository.root.appendingPathComponent("models/hone-tiny").path, empty])
        #expect(diversity.status == 1)
        #expect(diversity.stderr == "hone: error: \(empty): no records (the file is empty)\n")
        // DPO pairs given to rerank: every record skipped used to write an empty file and exit 0.
        let pairs = try temporaryFile("pairs.jsonl", "{\"prompt\": \"a\", \"chosen\": \"b\", \"rejected\": \"c\"}\n")
        let rewardModel = try makeTemporaryDirectory().appendingPathComponent("rm")
        try FileManager.default.copyItem(atPath: Repository.fixture("reward/models/llama-seqcls"), toPath: rewardModel.path)
        try FileManager.default.copyItem(atPath: Repository.fixture("tokenizers/spm-bpe/tokenizer.json"),
                                         toPath: rewardModel.appendingPathComponent("tokenizer.json").path)
        let rerank = try runProcess(Repository.honeExecutable, ["data", "rerank", "--input", pairs, "--reward-model",
                                                                rewardModel.path, "--output", output + ".r"])
        #expect(rerank.status == 1)
        // Named for what they are (it said "1 without a shared prompt", as if their prompt were missing).
        #expect(rerank.stderr.hasPrefix("hone: error: \(pairs):1: a record with \"prompt\" (a DPO pair) is not rerank's input"), "\(rerank.stderr)")
        #expect(!FileManager.default.fileExists(atPath: output + ".r"))
        // Raw HH dialogues that share no prompt: every record skipped is still an error.
        let unshared = try temporaryFile("unshared.jsonl", "{\"chosen\": \"\\n\\nHuman: a\\n\\nAssistant: b\", \"rejected\": \"\\n\\nHuman: c\\n\\nAssistant: d\"}\n")
        let skipped = try runProcess(Repository.honeExecutable, ["data", "rerank", "--input", unshared, "--reward-model",
                                                                 rewardModel.path, "--output", output + ".r"])
        #expect(skipped.status == 1 && skipped.stderr.hasPrefix("hone: error: \(unshared): no record to rerank: 1 without a shared prompt"), "\(skipped.stderr)")
    }
}

extension HHRLHFFileTests {
    @Test func commandWritesBothFiles() throws {
        guard let path = sharedData("hh_rlhf/helpful-base/test.jsonl.gz") else { return }
        let directory = try makeTemporaryDirectory().appendingPathComponent("out").path
        let result = try runProcess(Repository.honeExecutable, ["data", "hh-rlhf", "--input", path, "--output-dir", directory])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.isEmpty)
        #expect(result.stderr.contains("pairs out"))
        for name in ["dpo.jsonl", "pro.jsonl"] {
            let records = try readJSONLines(path: directory + "/" + name)
            #expect(records.count == 2354)
        }
        let dpoOnly = try runProcess(Repository.honeExecutable, ["data", "hh-rlhf", "--input", path, "--output-dir", directory + "2", "--format", "dpo"])
        #expect(dpoOnly.status == 0)
        #expect(!FileManager.default.fileExists(atPath: directory + "2/pro.jsonl"))
    }
}

extension SubsetSampleTests {
    @Test func commandWritesTheSubset() throws {
        let output = try makeTemporaryDirectory().appendingPathComponent("s.jsonl").path
        let result = try runProcess(Repository.honeExecutable, ["data", "sample", "--input", Repository.fixture("data/ranking4.jsonl"),
                                                                "--output", output, "--prompts", "10", "--responses", "3"])
        #expect(result.status == 0, "\(result.stderr)")
        let budget = result.stderr.split(separator: "\n").first { $0.contains("responses in all (N x K)") }
        #expect(budget?.split(separator: " ").contains("30") == true)
        #expect(try readJSONLines(path: output).count == 10)
    }
}

extension PromptDiversityTests {
    @Test func commandPrintsATablePerFileAndGlobal() throws {
        let model = Repository.root.appendingPathComponent("models/hone-tiny").path
        let input = Repository.fixture("data/ranking4.jsonl")
        let result = try runProcess(Repository.honeExecutable, ["data", "diversity", "--model", model, "--input", input, input])
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n")
        #expect(lines.count == 4)                                   // header, two files, Global
        #expect(lines.last!.hasPrefix("Global"))
        // The same file twice: pooled U is the file's U, T and N double, so D_global = √2 · D_file / 2.
        #expect(lines[1].hasSuffix("1.3811"))
        #expect(lines[3].hasSuffix(String(format: "%.4f", 1.3811107592263887 / 2.0.squareRoot())))
    }
}
