import Foundation
import Testing
@testable import HoneKit

/// `mpirun -np 2 hone ...` against one process: training on every objective ends with the same adapter and
/// losses bit for bit (micro-batch gradients are summed in micro-batch order wherever they ran), a 2-rank
/// checkpoint resumes on 1 rank, and sharded batch commands (generate, score, eval) write byte-identical
/// outputs.
/// Skipped where Open MPI's mpirun is not installed (tools/test installs it).
@Suite("data parallelism over MPI (2 ranks against 1 process)", .serialized)
struct DataParallelCommandTests {
    static let model = Repository.root.appendingPathComponent("models/hone-tiny").path
    static let mpirun = ["/usr/bin/mpirun", "/usr/local/bin/mpirun"].first { FileManager.default.isExecutableFile(atPath: $0) }
    /// One step = 2 micro-batches of 2, so each rank runs one micro-batch per step.
    static let common = ["--base-model", model, "--batch-size", "4", "--micro-batch-size", "2", "--max-steps", "4",
                         "--lora-r", "4", "--lora-dropout", "0", "--learning-rate", "1e-3", "--warmup-steps", "0",
                         "--save-steps", "2", "--threads", "1"]

    /// Runs hone on `ranks` processes (mpirun, as root where CI runs so) or directly for one.
    static func hone(ranks: Int, _ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        guard ranks > 1 else { return try runProcess(Repository.honeExecutable, arguments) }
        return try runProcess("/usr/bin/env", [
            "OMPI_ALLOW_RUN_AS_ROOT=1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1",
            // Containers often forbid the cross-process memory attach Open MPI tries first.
            "OMPI_MCA_btl_vader_single_copy_mechanism=none",
            mpirun!, "-np", "\(ranks)", "--oversubscribe", Repository.honeExecutable,
        ] + arguments)
    }

    static func tensors(_ directory: String) throws -> [String: [Float]] {
        let file = try SafetensorsFile(path: directory + "/adapter_model.safetensors")
        return file.tensors.mapValues { $0.floats() }
    }

    /// Largest |a − b| over all tensors, relative to the largest |a|.
    static func relativeDifference(_ a: [String: [Float]], _ b: [String: [Float]]) -> Double {
        #expect(Set(a.keys) == Set(b.keys))
        var difference = 0.0
        var scale = 0.0
        for (name, values) in a {
            guard let other = b[name], other.count == values.count else { return .infinity }
            for (x, y) in zip(values, other) {
                difference = max(difference, Double(abs(x - y)))
                scale = max(scale, Double(abs(x)))
            }
        }
        return difference / max(scale, 1e-30)
    }

    static func losses(_ output: String) throws -> [Double] {
        try String(contentsOfFile: output + "/metrics.jsonl", encoding: .utf8).split(separator: "\n").map {
            ((try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any])["loss"] as! NSNumber).doubleValue
        }
    }

    static func write(_ text: String, _ name: String, in directory: URL) throws -> String {
        let path = directory.appendingPathComponent(name).path
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// Each objective's command and data.
    static func objectives(in directory: URL) throws -> [(command: String, data: String, extra: [String])] {
        let sample = Repository.root.appendingPathComponent("examples/alpaca-sample.json").path
        return [
            ("sft", sample, ["--max-steps", "3", "--val-set-size", "4", "--eval-steps", "2", "--cutoff-len", "96"]),
            ("cut", try write(AlignmentCommandTests.judgments, "judgments.json", in: directory), []),
            ("dpo", try write(AlignmentCommandTests.pairs, "pairs.jsonl", in: directory), []),
            ("pro", try write(AlignmentCommandTests.rankings, "rankings.jsonl", in: directory), ["--cutoff-len", "64"]),
            // KTO on pairs: each micro-batch (its KL estimate included) runs whole on one rank, as in one process.
            ("kto", try write(AlignmentCommandTests.pairs, "kto-pairs.jsonl", in: directory), []),
            ("orpo", try write(AlignmentCommandTests.pairs, "orpo-pairs.jsonl", in: directory), []),
            ("cpo", try write(AlignmentCommandTests.pairs, "cpo-pairs.jsonl", in: directory), []),
            ("simpo", try write(AlignmentCommandTests.pairs, "simpo-pairs.jsonl", in: directory), []),
            // The reward model's fully trained score head is summed across ranks with the LoRA gradients.
            ("rm", try write(AlignmentCommandTests.pairs, "rm-pairs.jsonl", in: directory), []),
        ]
    }

    @Test("every objective: 2 ranks give one process's adapter and losses")
    func everyObjective() throws {
        guard Self.mpirun != nil else {
            print("skipped: Open MPI's mpirun is not installed (Debian: openmpi-bin libopenmpi-dev)")
            return
        }
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        for objective in try Self.objectives(in: directory) {
            var outputs: [String] = []
            for ranks in [1, 2] {
                let output = directory.appendingPathComponent("\(objective.command)-\(ranks)").path
                let result = try Self.hone(ranks: ranks, ["train", objective.command, "--data-path", objective.data,
                                                          "--output-dir", output] + Self.common + objective.extra)
                #expect(result.status == 0, "\(objective.command) on \(ranks) ranks: \(result.stderr)")
                outputs.append(output)
            }
            let difference = Self.relativeDifference(try Self.tensors(outputs[0]), try Self.tensors(outputs[1]))
            #expect(difference == 0, "\(objective.command): adapters differ by \(difference) relative")
            let single = try Self.losses(outputs[0])
            let split = try Self.losses(outputs[1])
            #expect(single.count == split.count && !single.isEmpty)
            #expect(single == split, "\(objective.command): losses \(single) vs \(split)")
            // Rank 0 alone writes: one metrics line per step, no stray rank files.
            #expect(FileManager.default.fileExists(atPath: outputs[1] + "/checkpoint-2/adapter_model.safetensors"))
        }
    }

    @Test("a 2-rank checkpoint resumes on 1 rank and ends where an uninterrupted run ends")
    func resumeOnFewerRanks() throws {
        guard Self.mpirun != nil else {
            print("skipped: Open MPI's mpirun is not installed")
            return
        }
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let data = try Self.write(AlignmentCommandTests.pairs, "pairs.jsonl", in: directory)
        let whole = directory.appendingPathComponent("whole").path
        let split = directory.appendingPathComponent("split").path
        let uninterrupted = try Self.hone(ranks: 1, ["train", "dpo", "--data-path", data, "--output-dir", whole] + Self.common)
        #expect(uninterrupted.status == 0, "\(uninterrupted.stderr)")
        let first = try Self.hone(ranks: 2, ["train", "dpo", "--data-path", data, "--output-dir", split, "--stop-after-steps", "2"] + Self.common)
        #expect(first.status == 0, "\(first.stderr)")
        #expect(FileManager.default.fileExists(atPath: split + "/checkpoint-2/optimizer.safetensors.lz4"))
        #expect(!FileManager.default.fileExists(atPath: split + "/adapter_model.safetensors"))
        let resumed = try Self.hone(ranks: 1, ["train", "dpo", "--data-path", data, "--output-dir", split,
                                               "--resume-from-checkpoint", "latest"] + Self.common)
        #expect(resumed.status == 0, "\(resumed.stderr)")
        let difference = Self.relativeDifference(try Self.tensors(whole), try Self.tensors(split))
        #expect(difference == 0, "resumed adapter differs by \(difference) relative")
        #expect(try Self.losses(split).count == 4)
        // And a 1-rank checkpoint resumes on 2 ranks.
        let other = directory.appendingPathComponent("other").path
        let start = try Self.hone(ranks: 1, ["train", "dpo", "--data-path", data, "--output-dir", other, "--stop-after-steps", "2"] + Self.common)
        #expect(start.status == 0, "\(start.stderr)")
        let finish = try Self.hone(ranks: 2, ["train", "dpo", "--data-path", data, "--output-dir", other,
                                              "--resume-from-checkpoint", "latest"] + Self.common)
        #expect(finish.status == 0, "\(finish.stderr)")
        #expect(Self.relativeDifference(try Self.tensors(whole), try Self.tensors(other)) == 0)
    }

    @Test("generate, score and reward on 2 ranks write one process's output, byte for byte")
    func shardedBatchCommands() throws {
        guard Self.mpirun != nil else {
            print("skipped: Open MPI's mpirun is not installed")
            return
        }
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let instructions = (0..<7).map { "{\"instruction\": \"Write a word about the number \($0).\"}" }.joined(separator: "\n")
        let input = try Self.write(instructions, "instructions.jsonl", in: directory)
        var outputs: [Data] = []
        for ranks in [1, 2] {
            let output = directory.appendingPathComponent("answers-\(ranks).json").path
            let result = try Self.hone(ranks: ranks, ["generate", "--model", Self.model, "--instructions", input, "--output", output,
                                                      "--max-new-tokens", "12", "--batch-size", "3", "--threads", "1"])
            #expect(result.status == 0, "\(result.stderr)")
            outputs.append((try? Data(contentsOf: URL(fileURLWithPath: output))) ?? Data())
            let leftovers = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.contains(".journal") }
            #expect(leftovers.isEmpty, "journals left: \(leftovers)")
        }
        #expect(!outputs[0].isEmpty && outputs[0] == outputs[1])

        // Interrupted on 2 ranks (each journals its own answers), resumed as one process: the same output.
        let resumedOutput = directory.appendingPathComponent("answers-resumed.json").path
        let generateArguments = ["generate", "--model", Self.model, "--instructions", input, "--output", resumedOutput,
                                 "--max-new-tokens", "12", "--batch-size", "3", "--threads", "1"]
        let interrupted = try Self.hone(ranks: 2, generateArguments + ["--interrupt-after", "2"])
        #expect(interrupted.status != 0)
        let journals = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.contains(".journal") }
        #expect(!journals.isEmpty)
        let resumed = try Self.hone(ranks: 1, generateArguments)
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(resumed.stderr.contains("resuming: "), "\(resumed.stderr)")
        #expect((try? Data(contentsOf: URL(fileURLWithPath: resumedOutput))) == outputs[0])
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.contains(".journal") }.isEmpty)

        let texts = (0..<5).map { "{\"text\": \"Row \($0) is a short text with \($0 * 3) words in it, more or less.\"}" }.joined(separator: "\n")
        let rows = try Self.write(texts, "rows.jsonl", in: directory)
        let single = try Self.hone(ranks: 1, ["score", "--model", Self.model, "--input", rows, "--threads", "1"])
        let split = try Self.hone(ranks: 2, ["score", "--model", Self.model, "--input", rows, "--threads", "1"])
        #expect(single.status == 0 && split.status == 0, "\(single.stderr)\(split.stderr)")
        #expect(!single.stdout.isEmpty && single.stdout == split.stdout)

        // Rewards: a reward adapter trained here, then `hone reward` on 1 and 2 ranks.
        let pairs = try Self.write(AlignmentCommandTests.pairs, "pairs.jsonl", in: directory)
        let rm = directory.appendingPathComponent("rm").path
        let trained = try Self.hone(ranks: 1, ["train", "rm", "--data-path", pairs, "--output-dir", rm] + Self.common)
        #expect(trained.status == 0, "\(trained.stderr)")
        let rewards = (1...2).map { ranks in
            try? Self.hone(ranks: ranks, ["reward", "--model", Self.model, "--adapter", rm, "--input", pairs,
                                          "--batch-tokens", "64", "--threads", "1"])
        }
        #expect(rewards[0]?.status == 0 && rewards[1]?.status == 0, "\(rewards[0]?.stderr ?? "")\(rewards[1]?.stderr ?? "")")
        #expect(!(rewards[0]?.stdout.isEmpty ?? true) && rewards[0]?.stdout == rewards[1]?.stdout)
    }

    @Test("eval on 2 ranks prints one process's table and writes its results and samples, byte for byte")
    func shardedEval() throws {
        guard Self.mpirun != nil else {
            print("skipped: Open MPI's mpirun is not installed")
            return
        }
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        var outputs: [(table: String, files: [String: Data])] = []
        for ranks in [1, 2] {
            let output = directory.appendingPathComponent("eval-\(ranks)").path
            let result = try Self.hone(ranks: ranks, [
                "eval", "--model", Repository.fixture("eval/tiny-llama"), "--tasks", "arc_easy,truthfulqa_mc2,mmlu_stem",
                "--data", Repository.fixture("eval/data"), "--output-dir", output, "--batch-tokens", "256", "--threads", "1"])
            #expect(result.status == 0, "\(result.stderr)")
            var files: [String: Data] = [:]
            for name in (FileManager.default.enumerator(atPath: output)?.allObjects as? [String]) ?? [] {
                if let data = FileManager.default.contents(atPath: output + "/" + name), !name.hasSuffix("results.json") {
                    files[name] = data
                }
            }
            outputs.append((result.stdout, files))
        }
        #expect(!outputs[0].table.isEmpty && outputs[0].table == outputs[1].table)
        #expect(!outputs[0].files.isEmpty && outputs[0].files == outputs[1].files)
    }

    @Test("a rank that fails stops the whole job with one line naming the rank")
    func failingRankStopsTheJob() throws {
        guard Self.mpirun != nil else {
            print("skipped: Open MPI's mpirun is not installed")
            return
        }
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let result = try Self.hone(ranks: 2, ["train", "dpo", "--data-path", directory.appendingPathComponent("missing.jsonl").path,
                                              "--output-dir", directory.appendingPathComponent("out").path] + Self.common)
        #expect(result.status != 0)
        #expect(result.stderr.contains("hone: error (rank "), "\(result.stderr)")
        #expect(result.stderr.contains("missing.jsonl"), "\(result.stderr)")
    }
}
