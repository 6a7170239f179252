import Foundation
import Testing
@testable import HoneKit

/// Faults injected into the binary's writes, fsyncs and renames (libHoneFaultInjection.so, LD_PRELOAD): after each,
/// the error is one line naming the file, nothing half-written is left where an output belongs, the previous
/// checkpoint or output is intact, and a rerun ends byte-identical to a run that never failed.
@Suite("fault injection: full disks and killed processes lose nothing", .serialized)
struct FaultInjectionCommandTests {
    static let model = Repository.root.appendingPathComponent("models/hone-tiny").path
    static let sample = Repository.root.appendingPathComponent("examples/alpaca-sample.json").path
    static let shim = URL(fileURLWithPath: Repository.honeExecutable).deletingLastPathComponent()
        .appendingPathComponent("libHoneFaultInjection.so").path

    struct Fault {
        var operation: String
        var at: Int
        var match: String
        var action = "fail"
        /// The errno a failing call sets (ENOSPC when nil; the shim knows EIO and EDQUOT too).
        var code: String? = nil
    }

    /// Runs hone, with `fault` injected when given.
    static func hone(_ arguments: [String], fault: Fault? = nil) throws -> (status: Int32, stdout: String, stderr: String) {
        guard let fault else { return try runProcess(Repository.honeExecutable, arguments) }
        return try runProcess("/usr/bin/env", [
            "LD_PRELOAD=\(shim)", "HONE_FAULT_OP=\(fault.operation)", "HONE_FAULT_AT=\(fault.at)",
            "HONE_FAULT_MATCH=\(fault.match)", "HONE_FAULT_ACTION=\(fault.action)",
            "HONE_FAULT_ERRNO=\(fault.code ?? "ENOSPC")", Repository.honeExecutable,
        ] + arguments)
    }

    /// The one error line of a failed run: names `file`, says why.
    static func expectOneLineError(_ result: (status: Int32, stdout: String, stderr: String), naming file: String,
                                   reason: String = "No space left on device (ENOSPC)") {
        #expect(result.status == 1, "status \(result.status): \(result.stderr)")
        let errors = result.stderr.split(separator: "\n").filter { $0.hasPrefix("hone: error") }
        #expect(errors.count == 1, "\(result.stderr)")
        #expect(errors.first?.contains(file) == true && errors.first?.contains(reason) == true, "\(result.stderr)")
        #expect(!result.stderr.contains("Fatal error") && !result.stderr.contains("Stack dump"), "\(result.stderr)")
    }

    /// Every regular file under `directory`, relative path → bytes.
    static func snapshot(_ directory: String) -> [String: Data] {
        var files: [String: Data] = [:]
        guard let enumerator = FileManager.default.enumerator(atPath: directory) else { return files }
        for case let relative as String in enumerator {
            let path = (directory as NSString).appendingPathComponent(relative)
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue {
                files[relative] = FileManager.default.contents(atPath: path)
            }
        }
        return files
    }

    static func leftovers(_ directory: String) -> [String] {
        snapshot(directory).keys.filter { $0.hasSuffix(".tmp") || $0.contains(".tmp/") }.sorted()
    }

    @Test("training: a full disk or a kill while writing checkpoint 4 keeps checkpoint 2; the rerun resumes exactly")
    func trainingCheckpoints() throws {
        guard FileManager.default.fileExists(atPath: Self.shim) else {
            Issue.record("the fault-injection library was not built at \(Self.shim)")
            return
        }
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        func train(_ output: String, fault: Fault? = nil, resume: Bool = false) throws -> (status: Int32, stdout: String, stderr: String) {
            try Self.hone(["train", "sft", "--base-model", Self.model, "--data-path", Self.sample, "--output-dir", output,
                           "--batch-size", "4", "--micro-batch-size", "2", "--max-steps", "6", "--val-set-size", "0",
                           "--lora-r", "4", "--lora-dropout", "0", "--save-steps", "2", "--threads", "1"]
                          + (resume ? ["--resume-from-checkpoint", "latest"] : []), fault: fault)
        }
        let clean = directory.appendingPathComponent("clean").path
        #expect(try train(clean).status == 0)
        let expected = Self.snapshot(clean)
        #expect(expected["adapter_model.safetensors"] != nil)

        // The checkpoint holds several files; break each of the first writes, fsyncs and renames in turn.
        let faults = (1...4).map { Fault(operation: "write", at: $0, match: "checkpoint-4") }
            + (1...3).map { Fault(operation: "fsync", at: $0, match: "checkpoint-4") }
            + (1...3).map { Fault(operation: "rename", at: $0, match: "checkpoint-4") }
            + [Fault(operation: "write", at: 2, match: "checkpoint-4", action: "die"),
               Fault(operation: "rename", at: 3, match: "checkpoint-4", action: "die")]
        for (index, fault) in faults.enumerated() {
            let output = directory.appendingPathComponent("run-\(index)").path
            let failed = try train(output, fault: fault)
            if fault.action == "die" {
                #expect(failed.status == 137, "\(fault): \(failed.stderr)")
            } else {
                Self.expectOneLineError(failed, naming: "checkpoint-4", reason: "(ENOSPC)")
            }
            // Checkpoint 2 is whole and exactly what the clean run wrote; no checkpoint-4 and no final adapter.
            let after = Self.snapshot(output)
            for (name, bytes) in expected where name.hasPrefix("checkpoint-2/") {
                #expect(after[name] == bytes, "\(fault): \(name) differs or is missing")
            }
            #expect(!after.keys.contains { $0.hasPrefix("checkpoint-4/") }, "\(fault): a partial checkpoint-4")
            #expect(after["adapter_model.safetensors"] == nil)
            let resumed = try train(output, resume: true)
            #expect(resumed.status == 0, "\(fault): \(resumed.stderr)")
            let final = Self.snapshot(output)
            for name in ["adapter_model.safetensors", "adapter_config.json", "checkpoint-6/adapter_model.safetensors",
                         "checkpoint-6/optimizer.safetensors.lz4"] where expected[name] != nil {
                #expect(final[name] == expected[name], "\(fault): \(name) differs from the uninterrupted run's")
            }
            #expect(Self.leftovers(output).isEmpty || Self.leftovers(output).allSatisfy { $0.hasPrefix("checkpoint-4.tmp") },
                    "\(Self.leftovers(output))")
        }
    }

    @Test("merge, quantize and convert: a fault leaves no output (or the previous one) and the rerun is byte-identical")
    func modelOutputs() throws {
        guard FileManager.default.fileExists(atPath: Self.shim) else {
            Issue.record("the fault-injection library was not built at \(Self.shim)")
            return
        }
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let adapter = directory.appendingPathComponent("adapter").path
        let trained = try Self.hone(["train", "sft", "--base-model", Self.model, "--data-path", Self.sample, "--output-dir", adapter,
                                     "--batch-size", "4", "--micro-batch-size", "2", "--max-steps", "1", "--val-set-size", "0",
                                     "--lora-r", "4", "--save-steps", "0", "--warmup-steps", "0", "--threads", "1"])
        #expect(trained.status == 0, "\(trained.stderr)")
        let gguf = directory.appendingPathComponent("model.gguf").path
        // `replaces`: the command overwrites an existing output (convert refuses to, so it starts from none).
        let jobs: [(name: String, output: String, replaces: Bool, arguments: [String])] = [
            ("merge", directory.appendingPathComponent("merged").path, true,
             ["merge", "--base-model", Self.model, "--adapter", adapter, "--output-dir", directory.appendingPathComponent("merged").path, "--threads", "1"]),
            ("quantize", gguf, true, ["quantize", Self.model, gguf, "--type", "q8_0", "--threads", "1"]),
            ("convert", directory.appendingPathComponent("back").path, false,
             ["convert", gguf, directory.appendingPathComponent("back").path, "--threads", "1"]),
        ]
        for job in jobs {
            let clean = try Self.hone(job.arguments)
            #expect(clean.status == 0, "\(job.name): \(clean.stderr)")
            let isDirectory = (try? FileManager.default.attributesOfItem(atPath: job.output)[.type] as? FileAttributeType) == .typeDirectory
            func contents() -> [String: Data] {
                isDirectory ? Self.snapshot(job.output) : FileManager.default.contents(atPath: job.output).map { ["": $0] } ?? [:]
            }
            let expected = contents()
            let match = (job.output as NSString).lastPathComponent
            for fault in [Fault(operation: "write", at: 1, match: match), Fault(operation: "write", at: 3, match: match),
                          Fault(operation: "fsync", at: 1, match: match), Fault(operation: "rename", at: 1, match: match),
                          Fault(operation: "write", at: 2, match: match, action: "die")] {
                // The previous output stays in place through a failed rewrite; where there was none, none appears.
                if !job.replaces { try FileManager.default.removeItem(atPath: job.output) }
                let failed = try Self.hone(job.arguments, fault: fault)
                if fault.action == "die" {
                    #expect(failed.status == 137, "\(job.name) \(fault): \(failed.stderr)")
                } else {
                    Self.expectOneLineError(failed, naming: match, reason: "(ENOSPC)")
                }
                #expect(contents() == (job.replaces ? expected : [:]), "\(job.name) \(fault): the output changed or is partial")
                // A killed process leaves its staging file behind (the rerun replaces it); a failure cleans up.
                let parent = (job.output as NSString).deletingLastPathComponent
                if fault.action != "die" {
                    #expect(Self.leftovers(parent).isEmpty, "\(job.name) \(fault): left \(Self.leftovers(parent))")
                }
                let rerun = try Self.hone(job.arguments)
                #expect(rerun.status == 0, "\(job.name) \(fault): \(rerun.stderr)")
                #expect(contents() == expected, "\(job.name) \(fault): the rerun's output differs")
            }
        }
    }

    @Test("generate: a full disk while journaling keeps the answers before it; the rerun resumes to the same output")
    func generationJournal() throws {
        guard FileManager.default.fileExists(atPath: Self.shim) else {
            Issue.record("the fault-injection library was not built at \(Self.shim)")
            return
        }
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let instructions = (0..<6).map { "{\"instruction\": \"Say something about \($0).\"}" }.joined(separator: "\n")
        let input = directory.appendingPathComponent("instructions.jsonl").path
        try Data(instructions.utf8).write(to: URL(fileURLWithPath: input))
        func generate(_ output: String, fault: Fault? = nil) throws -> (status: Int32, stdout: String, stderr: String) {
            try Self.hone(["generate", "--model", Self.model, "--instructions", input, "--output", output,
                           "--max-new-tokens", "8", "--batch-size", "2", "--threads", "1"], fault: fault)
        }
        let clean = directory.appendingPathComponent("clean.json").path
        #expect(try generate(clean).status == 0)
        let expected = FileManager.default.contents(atPath: clean)
        for fault in [Fault(operation: "write", at: 4, match: "out.json.journal"),
                      Fault(operation: "write", at: 3, match: "out.json.journal", action: "die"),
                      Fault(operation: "write", at: 1, match: "out.json.tmp"),
                      Fault(operation: "rename", at: 1, match: "out.json")] {
            let output = directory.appendingPathComponent("out.json").path
            try? FileManager.default.removeItem(atPath: output)
            let failed = try generate(output, fault: fault)
            if fault.action == "die" {
                #expect(failed.status == 137, "\(fault): \(failed.stderr)")
            } else {
                Self.expectOneLineError(failed, naming: "out.json", reason: "(ENOSPC)")
            }
            #expect(!FileManager.default.fileExists(atPath: output), "\(fault): an output appeared")
            #expect(FileManager.default.fileExists(atPath: output + ".journal"), "\(fault): the journal is gone")
            let resumed = try generate(output)
            #expect(resumed.status == 0 && resumed.stderr.contains("resuming: "), "\(fault): \(resumed.stderr)")
            #expect(FileManager.default.contents(atPath: output) == expected, "\(fault): the resumed output differs")
        }
    }

    @Test("eval: a fault while writing results.json or a samples file keeps the previous results; the rerun is byte-identical")
    func evalOutputs() throws {
        guard FileManager.default.fileExists(atPath: Self.shim) else {
            Issue.record("the fault-injection library was not built at \(Self.shim)")
            return
        }
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        func eval(_ output: String, limit: Int? = nil, fault: Fault? = nil) throws -> (status: Int32, stdout: String, stderr: String) {
            try Self.hone(["eval", "--model", Repository.fixture("eval/tiny-llama"), "--tasks", "arc_easy,truthfulqa_mc2",
                           "--data", Repository.fixture("eval/data"), "--output-dir", output, "--threads", "1"]
                          + (limit.map { ["--limit", String($0)] } ?? []), fault: fault)
        }
        let clean = directory.appendingPathComponent("clean").path
        let cleanRun = try eval(clean)
        #expect(cleanRun.status == 0, "\(cleanRun.stderr)")
        let expected = Self.snapshot(clean)
        #expect(expected.keys.sorted() == ["base/results.json", "base/samples_arc_easy.jsonl", "base/samples_truthfulqa_mc2.jsonl"])
        // What an earlier, shorter run left in the folder: a failed rerun must not damage its results.json.
        let earlierFolder = directory.appendingPathComponent("earlier").path
        #expect(try eval(earlierFolder, limit: 1).status == 0)
        let earlier = Self.snapshot(earlierFolder)
        #expect(earlier["base/results.json"] != nil && earlier["base/results.json"] != expected["base/results.json"])

        let faults = [
            Fault(operation: "write", at: 1, match: "samples_arc_easy.jsonl"),
            Fault(operation: "fsync", at: 1, match: "samples_truthfulqa_mc2.jsonl"),
            Fault(operation: "rename", at: 1, match: "samples_truthfulqa_mc2.jsonl"),
            Fault(operation: "write", at: 1, match: "results.json"),
            Fault(operation: "write", at: 1, match: "results.json", code: "EIO"),
            Fault(operation: "fsync", at: 1, match: "results.json"),
            Fault(operation: "rename", at: 1, match: "results.json"),
            Fault(operation: "write", at: 1, match: "samples_truthfulqa_mc2.jsonl", action: "die"),
            Fault(operation: "rename", at: 1, match: "results.json", action: "die"),
        ]
        for (index, fault) in faults.enumerated() {
            for startsWithEarlier in [false, true] {
                let output = directory.appendingPathComponent("run-\(index)-\(startsWithEarlier)").path
                if startsWithEarlier { try FileManager.default.copyItem(atPath: earlierFolder, toPath: output) }
                let failed = try eval(output, fault: fault)
                if fault.action == "die" {
                    #expect(failed.status == 137, "\(fault): \(failed.stderr)")
                } else {
                    Self.expectOneLineError(failed, naming: fault.match,
                                            reason: fault.code == "EIO" ? "Input/output error (EIO)" : "No space left on device (ENOSPC)")
                    #expect(Self.leftovers(output).isEmpty, "\(fault): left \(Self.leftovers(output))")
                }
                // results.json is written last: it is the earlier run's (or absent), never the new one beside
                // missing samples; every other file is whole, the earlier run's or the new one.
                let after = Self.snapshot(output)
                #expect(after["base/results.json"] == (startsWithEarlier ? earlier["base/results.json"] : nil),
                        "\(fault) (earlier run: \(startsWithEarlier)): results.json changed")
                for (name, bytes) in after where !name.hasSuffix(".tmp") {
                    #expect(bytes == expected[name] || bytes == earlier[name], "\(fault): \(name) is partial")
                }
                let rerun = try eval(output)
                #expect(rerun.status == 0, "\(fault): \(rerun.stderr)")
                #expect(Self.snapshot(output) == expected, "\(fault): the rerun's outputs differ from an uninterrupted run's")
            }
        }
    }
}
