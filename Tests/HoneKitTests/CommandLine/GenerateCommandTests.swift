import Foundation
import Testing
@testable import HoneKit

@Suite struct GenerateCommandTests {
    static var model: String { Repository.root.appendingPathComponent("models/hone-tiny").path }

    func writeInstructions(_ directory: URL) throws -> String {
        let path = directory.appendingPathComponent("instructions.json").path
        let items = (0..<14).map { "{\"instruction\": \"Question number \($0): what is \($0) plus \($0)?\", \"dataset\": \"test\(($0 % 3))\"}" }
        try Data(("[" + items.joined(separator: ",\n") + "]").utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// A run interrupted after some answers and run again ends with the same file as an uninterrupted run, and
    /// batch size does not change greedy answers.
    @Test func interruptedAndResumedEqualsUninterrupted() throws {
        let directory = try makeTemporaryDirectory()
        let instructions = try writeInstructions(directory)
        let whole = directory.appendingPathComponent("whole.json").path
        let resumed = directory.appendingPathComponent("resumed.json").path
        let common = ["generate", "--model", Self.model, "--instructions", instructions, "--max-new-tokens", "24", "--threads", "1"]
        let first = try runProcess(Repository.honeExecutable, common + ["--output", whole, "--batch-size", "5"])
        #expect(first.status == 0, "\(first.stderr)")

        let interrupted = try runProcess(Repository.honeExecutable, common + ["--output", resumed, "--batch-size", "2", "--interrupt-after", "6"])
        #expect(interrupted.status != 0)
        #expect(!FileManager.default.fileExists(atPath: resumed), "no output before the run completes")
        #expect(FileManager.default.fileExists(atPath: resumed + ".journal"))

        let second = try runProcess(Repository.honeExecutable, common + ["--output", resumed, "--batch-size", "3"])
        #expect(second.status == 0, "\(second.stderr)")
        #expect(second.stderr.contains("resuming: 6 of 14 answers"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: whole)) == Data(contentsOf: URL(fileURLWithPath: resumed)))
        #expect(!FileManager.default.fileExists(atPath: resumed + ".journal"), "the journal is removed at the end")

        let records = try parseJSON(Data(contentsOf: URL(fileURLWithPath: whole))) as! [[String: Any]]
        #expect(records.count == 14)
        #expect(records[4]["instruction"] as? String == "Question number 4: what is 4 plus 4?")
        #expect(records[4]["dataset"] as? String == "test1")
        #expect(records[4]["generator"] as? String == "hone-tiny")
    }

    /// Chat over piped stdin: one message per line, one answer line each, /reset and /exit.
    @Test func chatOverPipedStdin() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Repository.honeExecutable)
        process.arguments = ["chat", "--model", Self.model, "--max-new-tokens", "8", "--show-speed", "--threads", "1"]
        let input = Pipe()
        let output = Pipe()
        let errors = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        input.fileHandleForWriting.write(Data("Hello there\n/reset\nName a color.\n/exit\nnever read\n".utf8))
        try input.fileHandleForWriting.close()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let speed = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        #expect(speed.components(separatedBy: "tokens/s]").count - 1 == 2, "two answers, then /exit: \(speed)")
        #expect(!text.contains("never read"))
    }

    /// Runs `hone chat` with `input` piped to it.
    func chat(_ arguments: [String], input text: String) throws -> (status: Int32, stdout: String, stderr: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Repository.honeExecutable)
        process.arguments = ["chat", "--model", Self.model, "--max-new-tokens", "4", "--threads", "1"] + arguments
        let input = Pipe(), output = Pipe(), errors = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        input.fileHandleForWriting.write(Data(text.utf8))
        try input.fileHandleForWriting.close()
        let stdout = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let stderr = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, stdout, stderr)
    }

    /// One message past the context ended the whole piped session (the lines after it went unanswered), and
    /// --system was dropped silently with --single-turn.
    @Test func chatSkipsAMessageThatCannotFitAndRefusesASystemItCannotUse() throws {
        let long = String(repeating: "word ", count: 3000)
        let result = try chat(["--show-speed"], input: "\(long)\nhi again\n")
        #expect(result.status == 1, "\(result.stderr)")
        #expect(result.stderr.contains("hone: error: line 1: the sequence needs") && result.stderr.contains("the message was skipped"), "\(result.stderr)")
        #expect(result.stderr.components(separatedBy: "tokens/s]").count - 1 == 1, "the second line is answered: \(result.stderr)")
        let system = try chat(["--single-turn", "--system", "You are a pirate."], input: "hi\n")
        #expect(system.status == 1 && system.stderr.contains("--system does not apply with --single-turn"), "\(system.stderr)")
    }
}
