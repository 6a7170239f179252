import Foundation
import HoneKernels
import Testing
@testable import HoneKit

@Suite struct CommandLineTests {
    /// A NaN weight: hone score stops naming the line and the token instead of writing null log-probabilities.
    @Test func scoreStopsOnANaN() throws {
        let model = try NonFiniteTrainingTests.poisonedModel("model.layers.1.mlp.down_proj.weight")
        let input = model.appendingPathComponent("rows.jsonl").path
        try "\n{\"tokens\": [1, 5, 7, 9]}\n".write(toFile: input, atomically: true, encoding: .utf8)
        let result = try runProcess(Repository.honeExecutable, ["score", "--model", model.path, "--input", input])
        #expect(result.status == 1)
        #expect(result.stdout.isEmpty)
        #expect(result.stderr == "hone: error: score stopped: \(input):2: token at index 1: the log-probability is nan; the model produces non-finite numbers\n")
    }

    /// A NaN weight: generate and chat stop naming the request and token (they wrote empty answers and exited 0).
    @Test func generateAndChatStopOnANaN() throws {
        let model = try NonFiniteTrainingTests.poisonedModel("model.layers.1.mlp.down_proj.weight")
        let instructions = model.appendingPathComponent("instructions.json").path
        try "[{\"instruction\": \"Say hi\"}]".write(toFile: instructions, atomically: true, encoding: .utf8)
        let output = model.appendingPathComponent("answers.json").path
        let generate = try runProcess(Repository.honeExecutable, ["generate", "--model", model.path, "--instructions", instructions,
                                                                 "--output", output, "--max-new-tokens", "4"])
        let line = "hone: error: generation stopped: request 1, token 1: the logit of token id 0 is nan; the model produces non-finite numbers"
        #expect(generate.status == 1)
        #expect(generate.stderr.split(separator: "\n").last.map(String.init) == line, "\(generate.stderr)")
        #expect(!FileManager.default.fileExists(atPath: output))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Repository.honeExecutable)
        process.arguments = ["chat", "--model", model.path, "--max-new-tokens", "4"]
        let input = Pipe(), error = Pipe()
        process.standardInput = input
        process.standardOutput = Pipe()
        process.standardError = error
        try process.run()
        input.fileHandleForWriting.write(Data("hi\n".utf8))
        try input.fileHandleForWriting.close()
        let chatError = String(decoding: error.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 1)
        #expect(chatError.split(separator: "\n").last.map(String.init) == line, "\(chatError)")
    }

    @Test func scoreWritesTheDocumentedLines() throws {
        let golden = try GoldenFile(name: "llama-gqa")
        let directory = try makeTemporaryDirectory()
        let input = directory.appendingPathComponent("rows.jsonl").path
        let output = directory.appendingPathComponent("scores.jsonl").path
        let lines = golden.rows.map { "{\"tokens\": [\($0.tokens.map(String.init).joined(separator: ", "))]}" }
        try Data((lines.joined(separator: "\n") + "\n").utf8).write(to: URL(fileURLWithPath: input))
        let result = try runProcess(Repository.honeExecutable,
                                    ["score", "--model", golden.modelPath, "--input", input, "--output", output, "--threads", "1"])
        #expect(result.status == 0, "\(result.stderr)")
        let text = try String(contentsOfFile: output, encoding: .utf8)
        let records = text.split(separator: "\n").map { try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        #expect(records.count == golden.rows.count)
        for (record, row) in zip(records, golden.rows) {
            #expect((record["tokens"] as! [NSNumber]).map { Int32($0.intValue) } == row.tokens)
            let logprobs = record["logprobs"] as! [Any]
            #expect(logprobs.count == row.tokens.count)
            #expect(logprobs.first is NSNull)
            let values = logprobs.dropFirst().map { ($0 as! NSNumber).doubleValue }
            #expect(maxAbsDifference(values, row.logprobs) <= 1e-4)
            let sum = (record["sum"] as! NSNumber).doubleValue
            #expect(abs(sum - row.logprobs.reduce(0, +)) <= 1e-3)
            if row.tokens.count > 1 {
                #expect(abs((record["mean"] as! NSNumber).doubleValue - sum / Double(values.count)) <= 1e-6)
            } else {
                #expect(record["mean"] is NSNull)
            }
        }
    }

    @Test func infoDescribesTheModel() throws {
        let result = try runProcess(Repository.honeExecutable, ["info", Repository.fixture("models/qwen2-bias")])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("architecture: qwen2"))
        let loaded = try LoadedModel.open(Repository.fixture("models/qwen2-bias"))
        let parameters = try loaded.weights.tensorNames.reduce(0) { $0 + (try loaded.weights.tensor($1)).elementCount }
        #expect(result.stdout.contains("(\(parameters))"))
        let gguf = try runProcess(Repository.honeExecutable, ["info", Repository.fixture("gguf/llama-gqa-f16.gguf")])
        #expect(gguf.status == 0, "\(gguf.stderr)")
        #expect(gguf.stdout.contains("GGUF v3"))
        #expect(gguf.stdout.contains("F16"))
    }

    /// llama.cpp's short flags (`-m` model, `-t` threads) work where its users type them: llama-bench,
    /// llama-cli, llama-perplexity, llama-tokenize.
    @Test func llamaCppShortFlags() throws {
        let model = Repository.fixture("gguf/llama-gqa-f16.gguf")
        let bench = try runProcess(Repository.honeExecutable, ["bench", "-m", model, "-t", "1", "-p", "4", "-n", "2", "-r", "1"])
        #expect(bench.status == 0, "\(bench.stderr)")
        #expect(bench.stdout.contains("tg2"))
        // llama-bench's -d: both measurements after that many tokens of context, named as llama-bench names them.
        let deep = try runProcess(Repository.honeExecutable, ["bench", "-m", model, "-t", "1", "-p", "4", "-n", "2", "-r", "1", "-d", "6"])
        #expect(deep.status == 0, "\(deep.stderr)")
        #expect(deep.stdout.contains("pp4 @ d6:") && deep.stdout.contains("tg2 @ d6:"), "\(deep.stdout)")
        let tiny = Repository.root.appendingPathComponent("models/hone-tiny").path
        let short = try runProcess(Repository.honeExecutable, ["tokenize", "-m", tiny, "-t", "1", "--text", "hello"])
        let long = try runProcess(Repository.honeExecutable, ["tokenize", "--model", tiny, "--threads", "1", "--text", "hello"])
        #expect(short.status == 0, "\(short.stderr)")
        #expect(short.stdout.contains("[1,") && short.stdout == long.stdout)
        let info = try runProcess(Repository.honeExecutable, ["info", "-m", model])
        let positional = try runProcess(Repository.honeExecutable, ["info", model])
        #expect(info.status == 0, "\(info.stderr)")
        #expect(info.stdout.contains("llama") && info.stdout == positional.stdout)
        let twice = try runProcess(Repository.honeExecutable, ["info", model, "--model", model])
        #expect(twice.status != 0 && twice.stderr.contains("give the model once"))
        let threads = try runProcess(Repository.honeExecutable, ["bench", "-m", model, "-t", "0"])
        #expect(threads.status != 0)
        #expect(threads.stderr.contains("--threads must be between 1 and 512, not 0"))
    }

    /// HONE_ISA caps the kernels' instruction set, `hone bench` says which level ran, the numbers do not change
    /// beyond rounding between levels, and a level that does not exist is one line and exit status 1.
    @Test func instructionSetLimitFromTheEnvironment() throws {
        let model = Repository.fixture("gguf/llama-gqa-f16.gguf")
        let bench = ["bench", "-m", model, "-t", "1", "-p", "4", "-n", "2", "-r", "1", "--json"]
        let scalar = try runProcess(Repository.honeExecutable, bench, environment: ["HONE_ISA": "scalar"])
        #expect(scalar.status == 0, "\(scalar.stderr)")
        #expect(scalar.stdout.contains("\"kernels\":\"scalar\""), "\(scalar.stdout)")
        let best = try runProcess(Repository.honeExecutable, bench)
        #expect(best.status == 0, "\(best.stderr)")
        let detected = ["scalar", "avx2", "avx512"][Int(hk_isa_detect())]
        #expect(best.stdout.contains("\"kernels\":\"\(detected)"), "\(best.stdout)")

        // The integer kernels of a Q4_0 model at each level: the same 8-bit activations and exact integer dots,
        // so the log-probs differ only by the order of float sums.
        let rows = Scratch.path("isa-rows.jsonl")
        try Data("{\"tokens\": [1, 5, 9, 23, 17, 7, 2, 11, 30, 4]}\n".utf8).write(to: rows)
        let score = ["score", "--model", Repository.fixture("gguf/llama-gqa-q4_0.gguf"), "-t", "1", "--input", rows.path]
        let sums = try ["scalar", "avx2", "avx512"].map { level -> Double in
            let result = try runProcess(Repository.honeExecutable, score, environment: ["HONE_ISA": level])
            #expect(result.status == 0, "\(result.stderr)")
            let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
            return try #require(object?["sum"] as? Double, "\(result.stdout)")
        }
        for sum in sums.dropFirst() { #expect(abs(sum - sums[0]) < 1e-3, "\(sums)") }

        let bad = try runProcess(Repository.honeExecutable, bench, environment: ["HONE_ISA": "sse9"])
        #expect(bad.status == 1)
        #expect(bad.stderr == "hone: error: HONE_ISA must be scalar, avx2 or avx512, not 'sse9'\n", "\(bad.stderr)")
    }

    @Test func helpOnEveryCommand() throws {
        let commands = ["info", "tokenize", "score", "generate", "chat", "perplexity", "bench", "merge", "quantize", "convert"]
            .map { [$0] }
            + ["hh-rlhf", "judgments", "sample", "diversity"].map { ["data", $0] }
            + ["sft", "cut", "dpo", "pro"].map { ["train", $0] }
        for command in commands {
            let result = try runProcess(Repository.honeExecutable, command + ["--help"])
            #expect(result.status == 0)
            #expect(result.stdout.contains("--threads"))
            #expect(result.stdout.contains("Example"), "\(command)")
        }
        // The group lists its subcommands and has an example of its own.
        let group = try runProcess(Repository.honeExecutable, ["data", "--help"])
        #expect(group.status == 0)
        #expect(group.stdout.contains("Example"))
        #expect(["hh-rlhf", "judgments", "sample", "diversity"].allSatisfy { group.stdout.contains($0) })
    }
}

@Suite struct MappingTests {
    /// Weights are views into the file mapping, not copies: every large tensor's bytes lie inside the mapped range.
    @Test func weightsAreViewsIntoTheMapping() throws {
        let store = try SafetensorsStore(directory: Repository.fixture("models/llama-gqa"))
        let file = store.files[0].file
        for name in store.tensorNames {
            let tensor = try store.tensor(name)
            #expect(tensor.data >= file.bytes && tensor.data + tensor.byteCount <= file.bytes + file.size)
        }
        let gguf = try GGUFFile(path: Repository.fixture("gguf/llama-gqa-f16.gguf"))
        for info in gguf.tensorInfos {
            let tensor = try gguf.tensorView(info)
            #expect(tensor.data >= gguf.file.bytes && tensor.data + tensor.byteCount <= gguf.file.bytes + gguf.file.size)
        }
    }

    @Test func shardedDirectoryListsEveryTensorOnce() throws {
        let sharded = try SafetensorsStore(directory: Repository.fixture("models/llama-gqa-sharded"))
        let single = try SafetensorsStore(directory: Repository.fixture("models/llama-gqa"))
        #expect(sharded.files.count >= 2)
        #expect(sharded.tensorNames == single.tensorNames)
    }

    @Test func safetensorsRoundTrip() throws {
        let path = try makeTemporaryDirectory().appendingPathComponent("t.safetensors").path
        let values: [Float] = [1, -2, 3.5, 0, 7, 8]
        let bytes = values.withUnsafeBytes { Data($0) }
        try SafetensorsWriter.write([SafetensorsEntry(name: "w", dtype: "F32", shape: [2, 3], bytes: bytes)],
                                    metadata: ["format": "pt"], to: path)
        let file = try SafetensorsFile(path: path)
        #expect(file.metadata["format"] == "pt")
        #expect(file.tensors["w"]?.shape == [2, 3])
        #expect(file.tensors["w"]?.floats() == values)
    }
}
