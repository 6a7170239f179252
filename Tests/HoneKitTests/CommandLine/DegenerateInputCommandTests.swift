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
}
