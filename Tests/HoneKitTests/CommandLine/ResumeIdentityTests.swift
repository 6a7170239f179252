import Foundation
import Testing
@testable import HoneKit

/// Resuming over inputs that changed under the same names (found by probing resume): a checkpoint made with another
/// --cutoff-len, other data, another base or init adapter resumed to "done", `latest` picked an earlier run's
/// checkpoint left in the folder, a resumed metrics.jsonl moved earlier numbers by an ulp, and `generate` kept the
/// answers of a model folder since replaced.
@Suite struct ResumeIdentityTests {
    static let model = Repository.root.appendingPathComponent("models/hone-tiny").path
    static let sample = Repository.root.appendingPathComponent("examples/alpaca-sample.json").path

    static func sft(_ output: String, base: String = model, data: String = sample, _ extra: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        try runProcess(Repository.honeExecutable, [
            "train", "sft", "--base-model", base, "--data-path", data, "--output-dir", output,
            "--batch-size", "4", "--micro-batch-size", "2", "--max-steps", "6", "--save-steps", "3", "--val-set-size", "0",
            "--lora-r", "4", "--learning-rate", "3e-3", "--warmup-steps", "1", "--threads", "1",
        ] + extra)
    }

    static func bytes(_ path: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: path)) }

    @Test func latestPassesOverAnEarlierRunAndMetricsStayVerbatim() throws {
        let directory = try makeTemporaryDirectory()
        // An earlier run with --cutoff-len 128 leaves checkpoint-2 and checkpoint-4 in the folder.
        let folder = directory.appendingPathComponent("run").path
        let earlier = try Self.sft(folder, ["--cutoff-len", "128", "--save-steps", "2"])
        #expect(earlier.status == 0, "\(earlier.stderr)")
        #expect(FileManager.default.fileExists(atPath: folder + "/checkpoint-4"))
        // The new run (--cutoff-len 64) stops after its checkpoint-2 and resumes from `latest`.
        let stopped = try Self.sft(folder, ["--cutoff-len", "64", "--save-steps", "2", "--stop-after-steps", "2"])
        #expect(stopped.status == 0, "\(stopped.stderr)")
        let firstLines = try String(contentsOfFile: folder + "/metrics.jsonl", encoding: .utf8)
        let resumed = try Self.sft(folder, ["--cutoff-len", "64", "--save-steps", "2", "--resume-from-checkpoint", "latest"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(resumed.stderr.contains("resuming from checkpoint-2, this run's newest; checkpoint-4 (an earlier run's"), "\(resumed.stderr)")
        // It ends where an uninterrupted --cutoff-len 64 run ends (it had taken the earlier run's step 4).
        let whole = directory.appendingPathComponent("whole").path
        #expect(try Self.sft(whole, ["--cutoff-len", "64", "--save-steps", "2"]).status == 0)
        #expect(try Self.bytes(folder + "/adapter_model.safetensors") == Self.bytes(whole + "/adapter_model.safetensors"))
        // The steps before the checkpoint are the stopped run's lines, byte for byte.
        let after = try String(contentsOfFile: folder + "/metrics.jsonl", encoding: .utf8)
        #expect(after.hasPrefix(firstLines) && after.split(separator: "\n").count == 6, "\(firstLines)\n---\n\(after)")
    }

    @Test func resumeOverChangedSettingsOrInputsIsRefused() throws {
        let directory = try makeTemporaryDirectory()
        let base = directory.appendingPathComponent("base").path
        try FileManager.default.copyItem(atPath: Self.model, toPath: base)
        let data = directory.appendingPathComponent("data.json").path
        try FileManager.default.copyItem(atPath: Self.sample, toPath: data)
        let folder = directory.appendingPathComponent("run").path
        let stopped = try Self.sft(folder, base: base, data: data, ["--stop-after-steps", "3"])
        #expect(stopped.status == 0, "\(stopped.stderr)")
        let checkpoint = folder + "/checkpoint-3"
        func expectRefused(base: String = base, data: String = data, _ extra: [String], _ why: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
            let result = try Self.sft(folder, base: base, data: data, extra + ["--resume-from-checkpoint", checkpoint])
            #expect(result.status == 1 && result.stderr.contains("the checkpoint was made with other settings"), "\(why): \(result.stderr)",
                    sourceLocation: sourceLocation)
        }
        try expectRefused(["--cutoff-len", "64"], "another --cutoff-len")
        // The message names what differs, not two whole fingerprints.
        let named = try Self.sft(folder, base: base, data: data, ["--cutoff-len", "64", "--resume-from-checkpoint", checkpoint])
        #expect(named.stderr.contains("(cutoff=256 there, 64 in this run)"), "\(named.stderr)")
        try expectRefused(["--train-on-inputs", "false"], "--train-on-inputs false")
        try expectRefused(["--add-eos-token", "true"], "--add-eos-token true")
        try expectRefused(["--init-adapter", checkpoint], "an init adapter")
        // The data edited in place (same records, one answer changed).
        let original = try String(contentsOfFile: data, encoding: .utf8)
        let edited = original.replacingOccurrences(of: "\"output\": \"", with: "\"output\": \"Well: ", options: [], range: original.range(of: "\"output\": \""))
        #expect(edited != original)
        try edited.write(toFile: data, atomically: true, encoding: .utf8)
        try expectRefused([], "edited data")
        try original.write(toFile: data, atomically: true, encoding: .utf8)
        // The base folder replaced by a merged model of the same shape.
        let merged = directory.appendingPathComponent("merged").path
        let merge = try runProcess(Repository.honeExecutable, ["merge", "--base-model", base, "--adapter", checkpoint, "--output-dir", merged, "--threads", "1"])
        #expect(merge.status == 0, "\(merge.stderr)")
        let weights = base + "/model.safetensors"
        let kept = try Self.bytes(weights)
        try FileManager.default.removeItem(atPath: weights)
        try FileManager.default.copyItem(atPath: merged + "/model.safetensors", toPath: weights)
        try expectRefused([], "a replaced base")
        try kept.write(to: URL(fileURLWithPath: weights))
        // Everything as it was: the resume goes through.
        let resumed = try Self.sft(folder, base: base, data: data, ["--resume-from-checkpoint", checkpoint])
        #expect(resumed.status == 0, "\(resumed.stderr)")
    }

    /// Another init adapter is another frozen DPO reference: resuming under it trained against a different model.
    @Test func initAdapterIsPartOfTheIdentity() throws {
        let directory = try makeTemporaryDirectory()
        let first = directory.appendingPathComponent("first").path, second = directory.appendingPathComponent("second").path
        #expect(try Self.sft(first, ["--max-steps", "3"]).status == 0)
        #expect(try Self.sft(second, ["--max-steps", "3", "--learning-rate", "1e-2"]).status == 0)
        let pairs = try temporaryFile("pairs.jsonl", (0..<4).map { "{\"prompt\": \"Q\($0): what is \($0)?\", \"chosen\": \" It is \($0).\", \"rejected\": \" No idea.\"}" }.joined(separator: "\n") + "\n")
        let folder = directory.appendingPathComponent("dpo").path
        let common = ["train", "dpo", "--base-model", Self.model, "--data-path", pairs, "--output-dir", folder, "--batch-size", "2",
                      "--micro-batch-size", "2", "--max-steps", "2", "--save-steps", "1", "--val-set-size", "0", "--threads", "1"]
        #expect(try runProcess(Repository.honeExecutable, common + ["--init-adapter", first, "--stop-after-steps", "1"]).status == 0)
        let other = try runProcess(Repository.honeExecutable, common + ["--init-adapter", second, "--resume-from-checkpoint", folder + "/checkpoint-1"])
        #expect(other.status == 1 && other.stderr.contains("the checkpoint was made with other settings"), "\(other.stderr)")
        let same = try runProcess(Repository.honeExecutable, common + ["--init-adapter", first, "--resume-from-checkpoint", folder + "/checkpoint-1"])
        #expect(same.status == 0, "\(same.stderr)")
    }

    /// The journal named the model by its path: a folder replaced by another model resumed with the old answers.
    @Test func generateJournalKnowsTheModelByContent() throws {
        let directory = try makeTemporaryDirectory()
        let model = directory.appendingPathComponent("model").path
        try FileManager.default.copyItem(atPath: Self.model, toPath: model)
        let instructions = try temporaryFile("instructions.json", "[" + (0..<6).map { "{\"instruction\": \"Say number \($0).\"}" }.joined(separator: ",") + "]")
        let output = directory.appendingPathComponent("answers.json").path
        let common = ["generate", "--model", model, "--instructions", instructions, "--output", output, "--max-new-tokens", "8", "--threads", "1", "--batch-size", "1"]
        let interrupted = try runProcess(Repository.honeExecutable, common + ["--interrupt-after", "3"])
        #expect(interrupted.status != 0 && FileManager.default.fileExists(atPath: output + ".journal"))
        // Same bytes in a new copy (another modification time): still the same model, the answers are kept.
        try FileManager.default.removeItem(atPath: model)
        try FileManager.default.copyItem(atPath: Self.model, toPath: model)
        let again = try runProcess(Repository.honeExecutable, common + ["--interrupt-after", "4"])
        #expect(again.stderr.contains("resuming: 3 of 6 answers"), "\(again.stderr)")
        // Other weights under the same name: nothing of the journal is used.
        let weights = model + "/model.safetensors"
        var bytes = try Self.bytes(weights)
        let header = Int(bytes[0]) | Int(bytes[1]) << 8 | Int(bytes[2]) << 16
        for offset in stride(from: 8 + header, to: bytes.count, by: 4096) { bytes[offset] ^= 0x10 }
        try bytes.write(to: URL(fileURLWithPath: weights))
        let replaced = try runProcess(Repository.honeExecutable, common)
        #expect(replaced.status == 0, "\(replaced.stderr)")
        #expect(!replaced.stderr.contains("resuming"), "\(replaced.stderr)")
    }
}
