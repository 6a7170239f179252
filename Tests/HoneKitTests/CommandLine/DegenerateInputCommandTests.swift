import Foundation
import Testing
@testable import HoneKit

/// `score`, `tokenize`, `reward` and `perplexity` on inputs at their edges (found by probing them with empty files,
/// directories and texts past the model's context): an empty input wrote an empty output and exited 0, a directory
/// was "no such file", and text past the context was scored without a word.
@Suite struct DegenerateInputCommandTests {
    static let model = Repository.root.appendingPathComponent("models/hone-tiny").path

    @Test func emptyInputsAreRefused() throws {
        let empty = try temporaryFile("empty.jsonl", "\n\n")
        let output = try makeTemporaryDirectory().appendingPathComponent("out.jsonl").path
        for (arguments, message) in [(["score", "--model", Self.model, "--input", empty, "--output", output], "no rows (the file is empty)"),
                                     (["tokenize", "--model", Self.model, "--input", empty, "--output", output], "no texts (the file is empty)")] {
            let result = try runProcess(Repository.honeExecutable, arguments + ["--threads", "1"])
            #expect(result.status == 1 && result.stderr.contains("\(empty): \(message)"), "\(arguments[0]): \(result.stderr)")
            #expect(!FileManager.default.fileExists(atPath: output), "\(arguments[0]) wrote an output")
        }
    }

    @Test func perplexityOfADirectoryOrATinyContext() throws {
        let directory = try makeTemporaryDirectory().path
        let result = try runProcess(Repository.honeExecutable, ["perplexity", "--model", Self.model, "--file", directory, "--threads", "1"])
        #expect(result.status == 1 && result.stderr.contains("\(directory): is a directory, expected a file"), "\(result.stderr)")
        // --ctx 3 was accepted, then refused after the whole file was tokenized.
        let text = try temporaryFile("t.txt", "The cat sat on the mat.")
        let tiny = try runProcess(Repository.honeExecutable, ["perplexity", "--model", Self.model, "--file", text, "--ctx", "3"])
        #expect(tiny.status != 0 && tiny.stderr.contains("--ctx must be at least 4, not 3") && !tiny.stderr.contains(" tokens, "), "\(tiny.stderr)")
    }

    /// hone-tiny's context is 1,024 tokens; llama.cpp warns when n_ctx exceeds the training context.
    @Test func textPastTheContextIsNamed() throws {
        let long = String(repeating: "x ", count: 1500)
        let rows = try temporaryFile("long.jsonl", "{\"text\": \(jsonString(long))}\n{\"text\": \"short\"}\n")
        let output = try makeTemporaryDirectory().appendingPathComponent("out.jsonl").path
        let scored = try runProcess(Repository.honeExecutable, ["score", "--model", Self.model, "--input", rows, "--output", output, "--threads", "1"])
        #expect(scored.status == 0, "\(scored.stderr)")
        #expect(scored.stderr.contains("warning: 1 rows are longer than the model's context of 1024 tokens"), "\(scored.stderr)")
        let text = try temporaryFile("book.txt", String(repeating: "The cat sat on the mat. ", count: 500))
        let perplexity = try runProcess(Repository.honeExecutable, ["perplexity", "--model", Self.model, "--file", text, "--ctx", "2048",
                                                                    "--chunks", "1", "--threads", "1"])
        #expect(perplexity.status == 0, "\(perplexity.stderr)")
        #expect(perplexity.stderr.contains("warning: --ctx 2048 is past the model's context of 1024 tokens"), "\(perplexity.stderr)")
        let within = try runProcess(Repository.honeExecutable, ["perplexity", "--model", Self.model, "--file", text, "--ctx", "64",
                                                                "--chunks", "1", "--threads", "1"])
        #expect(within.status == 0 && !within.stderr.contains("warning"), "\(within.stderr)")
    }

    /// eval: a task with no documents (an empty MMLU subject trapped aggregating its group), a TruthfulQA mc1 item
    /// whose first answer is labelled false (scored as gold silently), and adapter rows whose names collide or leave
    /// the output folder (they overwrote each other's results).
    @Test func evalDataAndRowNames() throws {
        let data = try makeTemporaryDirectory()
        let mmlu = data.appendingPathComponent("mmlu")
        for folder in ["test", "dev"] {
            try FileManager.default.createDirectory(at: mmlu.appendingPathComponent(folder), withIntermediateDirectories: true)
        }
        let emptyTest = mmlu.appendingPathComponent("test/anatomy_test.csv").path
        try "".write(toFile: emptyTest, atomically: true, encoding: .utf8)
        try "What is 1+1?,1,2,3,4,B\n".write(to: mmlu.appendingPathComponent("dev/anatomy_dev.csv"), atomically: true, encoding: .utf8)
        let eval = ["eval", "--model", Self.model, "--data", data.path, "--threads", "1", "--limit", "1"]
        let empty = try runProcess(Repository.honeExecutable, eval + ["--tasks", "mmlu_anatomy"])
        #expect(empty.status == 1 && empty.stderr.contains("\(emptyTest): no documents for mmlu_anatomy"), "\(empty.stderr)")

        let truthful = data.appendingPathComponent("truthfulqa")
        try FileManager.default.createDirectory(at: truthful, withIntermediateDirectories: true)
        try #"[{"question": "Q?", "mc1_targets": {"a": 0, "b": 1}, "mc2_targets": {"a": 1, "b": 0}}]"#
            .write(to: truthful.appendingPathComponent("mc_task.json"), atomically: true, encoding: .utf8)
        let mc1 = try runProcess(Repository.honeExecutable, eval + ["--tasks", "truthfulqa_mc1"])
        #expect(mc1.status == 1 && mc1.stderr.contains("the first answer must be the true one"), "\(mc1.stderr)")
        let mc2 = try runProcess(Repository.honeExecutable, eval + ["--tasks", "truthfulqa_mc2"])
        #expect(mc2.status == 0, "\(mc2.stderr)")

        let adapter = Repository.root.appendingPathComponent("Tests/HoneKitTests/Fixtures/lora/hone-written").path
        let output = try makeTemporaryDirectory().appendingPathComponent("rows").path
        for (names, message) in [(["base=\(adapter)"], "a row named 'base' is already in the table"),
                                 (["a=\(adapter)", "a=\(adapter)"], "a row named 'a' is already in the table"),
                                 (["../escape=\(adapter)"], "the row name '../escape' cannot be a folder name")] {
            let result = try runProcess(Repository.honeExecutable, eval + ["--tasks", "truthfulqa_mc2", "--output-dir", output]
                                        + names.flatMap { ["--adapter", $0] })
            #expect(result.status == 1 && result.stderr.contains(message), "\(names): \(result.stderr)")
        }
    }

    /// Messages that named the wrong thing: a missing output folder was reported on the staging file (`x.gguf.tmp`,
    /// `a.json.journal`), a lone .safetensors was "not a GGUF", a config.json given as a tokenizer "had no model", a
    /// fractional shape or offset "lacked" its field, and a state file that is a directory was "no such file".
    @Test func messagesNameTheRealProblem() throws {
        let missing = try makeTemporaryDirectory().appendingPathComponent("nodir").path
        let convert = try runProcess(Repository.honeExecutable, ["convert", Self.model, missing + "/x.gguf", "--threads", "1"])
        #expect(convert.status == 1 && convert.stderr.contains("\(missing)/x.gguf: cannot create the file: the folder \(missing) does not exist"),
                "\(convert.stderr)")
        let instructions = try temporaryFile("i.json", "[{\"instruction\": \"Hi\"}]")
        let generate = try runProcess(Repository.honeExecutable, ["generate", "--model", Self.model, "--instructions", instructions,
                                                                  "--output", missing + "/a.json", "--max-new-tokens", "2", "--threads", "1"])
        #expect(generate.status == 1 && generate.stderr.contains("the folder \(missing) does not exist"), "\(generate.stderr)")
        let weights = try temporaryFile("zero.safetensors", "")
        let info = try runProcess(Repository.honeExecutable, ["info", weights])
        #expect(info.status == 1 && info.stderr.contains("a weights file alone is not a model; give its folder"), "\(info.stderr)")
        #expect(throws: HoneError.malformedFile(path: Self.model + "/config.json", message: "not a tokenizer.json: it has no \"model\" object")) {
            try TokenizerLoader.load(tokenizerJSON: Self.model + "/config.json", tokenizerConfig: nil)
        }
        let folder = try makeTemporaryDirectory().path
        #expect(throws: HoneError.io(path: folder, message: "is a directory, expected a file")) { try JSONConfig(path: folder) }
        // Special tokens kept only in added_tokens (as a GGUF → HF conversion writes them) are tokens too.
        try #"{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "c": 2}, "merges": []}, "added_tokens": [{"id": 2, "content": "c"}, {"id": 3, "content": "<s>"}, {"id": 4, "content": "</s>"}]}"#
            .write(toFile: folder + "/tokenizer.json", atomically: true, encoding: .utf8)
        #expect(ModelSummary.describeTokenizer(directory: folder) == "tokenizer.json (byte-level BPE, 5 tokens)")
        for (entry, message) in [(#"{"dtype": "F32", "shape": [2.5, 4], "data_offsets": [0, 32]}"#, "\"shape\" must be a list of non-negative integers"),
                                 (#"{"dtype": "F32", "shape": [2, 4], "data_offsets": [0.5, 32]}"#, "\"data_offsets\" must be two integers [begin, end]"),
                                 (#"{"shape": [2, 4], "data_offsets": [0, 32]}"#, "\"dtype\" must be a string")] {
            let header = Data("{\"w\": \(entry)}".utf8)
            var file = Data((0..<8).map { UInt8(truncatingIfNeeded: header.count >> (8 * $0)) })
            file += header + Data(count: 32)
            let path = try makeTemporaryDirectory().appendingPathComponent("model.safetensors").path
            try file.write(to: URL(fileURLWithPath: path))
            #expect(throws: HoneError.malformedFile(path: path, message: "safetensors entry for tensor 'w': \(message)")) {
                try SafetensorsFile(path: path)
            }
        }
    }

    /// merge swaps its output directory whole: a folder holding other files lost them, and the base's own folder
    /// was overwritten. quantize found a directory output only after all the work; convert made a directory of a
    /// GGUF's name.
    @Test func outputsThatWouldDestroySomething() throws {
        let fixtures = Repository.root.appendingPathComponent("Tests/HoneKitTests/Fixtures")
        let base = fixtures.appendingPathComponent("models/llama-gqa").path
        let adapter = fixtures.appendingPathComponent("lora/llama-gqa/adapter").path
        let folder = try makeTemporaryDirectory().appendingPathComponent("mine")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try "keep".write(to: folder.appendingPathComponent("precious.txt"), atomically: true, encoding: .utf8)
        let merge = ["merge", "--base-model", base, "--adapter", adapter, "--threads", "1", "--output-dir"]
        let refused = try runProcess(Repository.honeExecutable, merge + [folder.path])
        #expect(refused.status == 1 && refused.stderr.contains("already holds 'precious.txt', which a merge does not write"), "\(refused.stderr)")
        #expect(FileManager.default.contents(atPath: folder.appendingPathComponent("precious.txt").path) == Data("keep".utf8))
        // Into the base's own folder (a copy: were the check gone, the fixture itself would be overwritten).
        let copy = try makeTemporaryDirectory().appendingPathComponent("base")
        try FileManager.default.copyItem(atPath: base, toPath: copy.path)
        let intoBase = try runProcess(Repository.honeExecutable, ["merge", "--base-model", copy.path, "--adapter", adapter,
                                                                  "--threads", "1", "--output-dir", copy.path])
        #expect(intoBase.status == 1 && intoBase.stderr.contains("is the base model's folder"), "\(intoBase.stderr)")
        #expect(FileManager.default.contents(atPath: copy.appendingPathComponent("model.safetensors").path)
                == FileManager.default.contents(atPath: base + "/model.safetensors"))
        // An earlier merge's output is replaced as before.
        let merged = try makeTemporaryDirectory().appendingPathComponent("merged").path
        for _ in 0..<2 {
            let again = try runProcess(Repository.honeExecutable, merge + [merged])
            #expect(again.status == 0, "\(again.stderr)")
        }
        let directory = try makeTemporaryDirectory().path
        let quantize = try runProcess(Repository.honeExecutable, ["quantize", base, directory, "--type", "q8_0", "--threads", "1"])
        #expect(quantize.status == 1 && quantize.stderr.contains("\(directory): is a directory; the output is a GGUF file")
                && !quantize.stderr.contains("quantize:"), "\(quantize.stderr)")
        // convert GGUF → "x.gguf" made a directory of that name holding safetensors.
        let gguf = fixtures.appendingPathComponent("gguf/llama-gqa-f16.gguf").path
        let second = try makeTemporaryDirectory().appendingPathComponent("copy.gguf").path
        let convert = try runProcess(Repository.honeExecutable, ["convert", gguf, second, "--threads", "1"])
        #expect(convert.status == 1 && convert.stderr.contains("\(second): a GGUF converts to an HF model directory")
                && convert.stderr.contains("hone quantize"), "\(convert.stderr)")
        #expect(!FileManager.default.fileExists(atPath: second))
    }
}
