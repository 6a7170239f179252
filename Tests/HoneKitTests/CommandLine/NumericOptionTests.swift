import Foundation
import Testing

/// Option values at the edges of their types (found by probing every option with 0, -1, 2^31, 2^63 − 1, 1e308, "",
/// …): each used to crash (a trap converting or multiplying, a division by zero, a terabyte allocation, memory
/// corruption) or to produce nothing. Each must now end with one line naming the option and a non-zero exit, before
/// any work.
@Suite struct NumericOptionTests {
    static let model = Repository.root.appendingPathComponent("models/hone-tiny").path
    static let alpaca = Repository.root.appendingPathComponent("examples/alpaca-sample.json").path

    static func cutData() throws -> String {
        let records = (0..<4).map { index in
            "{\"instruction\": \"Say \(index)\", \"input\": \"\", \"output\": \"It is \(index).\", \"judgment\": \"Fine.\", \"score\": \(index % 2 == 0 ? 9 : 2)}"
        }
        return try temporaryFile("cut.json", "[" + records.joined(separator: ",") + "]")
    }

    static func train(_ extra: [String]) throws -> [String] {
        ["train", "sft", "--base-model", model, "--data-path", alpaca, "--output-dir",
         try makeTemporaryDirectory().appendingPathComponent("out").path, "--val-set-size", "0"]
            + (extra.contains { $0.hasPrefix("--max-steps") } ? [] : ["--max-steps", "1"]) + extra
    }

    static func cases() throws -> [(arguments: [String], message: String)] {
        let text = try temporaryFile("text.txt", String(repeating: "The cat sat on the mat. ", count: 40))
        let instructions = try temporaryFile("ins.json", "[{\"instruction\": \"Say hi\"}]")
        let output = try makeTemporaryDirectory().appendingPathComponent("o.jsonl").path
        let pairs = try temporaryFile("pairs.jsonl", "{\"prompt\": \"a\", \"chosen\": \"b\", \"rejected\": \"c\"}\n")
        let morePairs = try temporaryFile("pairs2.jsonl", "{\"prompt\": \"d\", \"chosen\": \"e\", \"rejected\": \"f\"}\n")
        return [
            (["tokenize", "--model", model, "--text", "hi", "--threads", "2147483648"], "--threads must be between 1 and 512"),
            (["perplexity", "--model", model, "--file", text, "--ctx", "0"], "--ctx must be at least 4, not 0"),
            (["perplexity", "--model", model, "--file", text, "--ctx", "16", "--chunks", "0"], "--chunks must be at least 1"),
            (["bench", "--model", model, "-p", "8", "-n", "2", "-r", "1", "-b", "9223372036854775807"], "--batch must be at most 256"),
            (["bench", "--model", model, "-p", "9223372036854775807", "-n", "0", "-r", "1"], "past the model's context of 1024 tokens"),
            (["bench", "--model", model, "-p", "0", "-n", "8", "-r", "1", "-d", "1020"], "--depth 1020 + --gen-tokens 8 is past the model's context of 1024 tokens"),
            (["bench", "--model", model, "-p", "0", "-n", "8", "-r", "1", "--depth=-3"], "token counts and --depth must be non-negative"),
            (["bench", "--model", model, "-p", "0", "-n", "8", "-r", "1", "-d", "9223372036854775807"], "--depth 9223372036854775807 is past the model's context of 1024 tokens"),
            (["generate", "--model", model, "--instructions", instructions, "--output", output, "--temperature", "inf"], "temperature must be a finite number"),
            (["generate", "--model", model, "--instructions", instructions, "--output", output, "--repetition-penalty", "inf"], "repetition penalty must be a finite number"),
            (["serve", "--model", model, "--port", "0", "--parallel", "1099511627776"], "--parallel must be between 1 and 256"),
            (["serve", "--model", model, "--port", "0", "--queue-size", "9223372036854775807"], "--queue-size must be between 0 and 1000000"),
            (["serve", "--model", model, "--port", "0", "--timeout", "1e300"], "--timeout must be a positive number of seconds, at most 1000000"),
            (["generate", "--model", model, "--instructions", instructions, "--output", ""], "--output must name a file"),
            (["score", "--model", model, "--input", pairs, "--batch-tokens", "0"], "--batch-tokens must be at least 1"),
            (try train(["--max-steps=-5"]), "--max-steps must be positive (or -1 for none), not -5"),
            (try train(["--batch-size", "9223372036854775807"]), "--batch-size must be at most 2147483647"),
            (try train(["--num-epochs", "9223372036854775807"]), "--num-epochs must be at most 2147483647"),
            (try train(["--lora-r", "9223372036854775807"]), "the LoRA rank (lora_r) must be between 1 and 352"),
            (try train(["--lora-r", "2147483648"]), "the LoRA rank (lora_r) must be between 1 and 352"),
            (try train(["--lora-dropout", "nan"]), "lora_dropout must be between 0 and 1"),
            (try train(["--warmup-steps=-9223372036854775808"]), "--warmup-steps must be at least 0"),
            (try train(["--learning-rate", "inf"]), "--learning-rate must be a positive finite number"),
            (try train(["--weight-decay", "nan"]), "--weight-decay must be a finite number at least 0"),
            (try train(["--max-grad-norm", "nan"]), "--max-grad-norm must be a number"),
            (["data", "mix", "--source", "\(pairs):all", "--source", "\(morePairs):x1e308", "--output", output],
             "its share x1e+308 asks for 1e+308"),
        ]
    }

    @Test func refusedWithOneLine() throws {
        for (arguments, message) in try Self.cases() {
            let result = try runProcess(Repository.honeExecutable, arguments)
            let shown = arguments.joined(separator: " ")
            #expect(result.status != 0, "\(shown)")
            #expect(!result.stderr.contains("Fatal error") && !result.stderr.contains("crashed"), "\(shown): \(result.stderr)")
            #expect(result.stderr.contains(message), "\(shown): \(result.stderr)")
        }
    }

    /// A CUT downsampling ratio past Int's range keeps every Align-P record (making it an Int trapped).
    @Test func hugeDownsampleKeepsEverything() throws {
        let result = try runProcess(Repository.honeExecutable, [
            "train", "cut", "--base-model", Self.model, "--data-path", try Self.cutData(), "--output-dir",
            try makeTemporaryDirectory().appendingPathComponent("cut").path, "--max-steps", "1", "--downsample", "1e19"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("2 Align-P"), "\(result.stderr)")
    }

    /// transformers' max_steps: -1 (and 0) mean none, so the epochs decide.
    @Test func maxStepsMinusOneMeansNone() throws {
        let arguments = try Self.train(["--max-steps=-1", "--num-epochs", "1", "--batch-size", "64", "--micro-batch-size", "32"])
        let result = try runProcess(Repository.honeExecutable, arguments)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("1 steps of 2 × 32 examples"), "\(result.stderr)")
    }
}
