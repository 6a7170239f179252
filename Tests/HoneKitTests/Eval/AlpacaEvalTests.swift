import Foundation
import Testing
@testable import HoneKit

@Suite struct AlpacaEvalTests {
    static var instructionsPath: String {
        Repository.shared.appendingPathComponent("data/alpaca_eval/alpaca_eval_instructions.json").path
    }
    static var referencePath: String {
        Repository.shared.appendingPathComponent("data/alpaca_eval/reference_model_outputs/text_davinci_003_model_outputs.json").path
    }
    static var sharedAvailable: Bool { FileManager.default.fileExists(atPath: instructionsPath) }

    @Test(.enabled(if: sharedAvailable, "../shared/data/alpaca_eval is absent"))
    func readsThe805Instructions() throws {
        let records = try AlpacaEval.readInstructions(path: Self.instructionsPath)
        #expect(records.count == 805)
        #expect(records[0].instruction == "What are the names of some famous actors that started their careers on Broadway?")
        #expect(records[0].dataset == "helpful_base")
        #expect(Set(records.map(\.instruction)).count == 805)
        let counts = Dictionary(grouping: records, by: { $0.dataset ?? "" }).mapValues(\.count)
        #expect(counts == ["helpful_base": 129, "koala": 156, "oasst": 188, "selfinstruct": 252, "vicuna": 80])
    }

    /// Our output has the reference file's shape: a list of objects with the same keys, instructions and datasets
    /// in the same order, and it parses back to exactly what was written.
    @Test(.enabled(if: sharedAvailable, "../shared/data/alpaca_eval is absent"))
    func outputHasTheReferenceFormat() throws {
        let records = try AlpacaEval.readInstructions(path: Self.instructionsPath)
        let outputs = records.indices.map { "answer \($0) with \"quotes\", a / slash, ü, \u{FEFF}BOM and\nnewline" }
        let text = AlpacaEval.outputsJSON(records: records, outputs: outputs, generator: "hone-test")
        let ours = try parseJSON(Data(text.utf8)) as! [[String: Any]]
        let reference = try parseJSON(Data(contentsOf: URL(fileURLWithPath: Self.referencePath))) as! [[String: Any]]
        #expect(ours.count == reference.count)
        for (index, (mine, theirs)) in zip(ours, reference).enumerated() {
            #expect(Set(mine.keys) == Set(theirs.keys))
            #expect(mine["instruction"] as? String == theirs["instruction"] as? String)
            #expect(mine["dataset"] as? String == theirs["dataset"] as? String)
            #expect(mine["generator"] as? String == "hone-test")
            #expect(mine["output"] as? String == outputs[index])
        }
        #expect(text.hasPrefix("[\n  {\n    \"instruction\":"))
    }

    @Test func readsJSONLinesAndAlpacaInputs() throws {
        let path = try makeTemporaryDirectory().appendingPathComponent("items.jsonl").path
        try Data("""
        {"instruction": "Add the numbers.", "input": "2, 3", "dataset": "mine", "id": 7}
        {"instruction": "Say hi.", "input": ""}

        """.utf8).write(to: URL(fileURLWithPath: path))
        let records = try AlpacaEval.readInstructions(path: path)
        #expect(records == [InstructionRecord(instruction: "Add the numbers.", input: "2, 3", dataset: "mine"),
                            InstructionRecord(instruction: "Say hi.", input: nil, dataset: nil)])
    }

    @Test(arguments: [
        ("[{\"instruction\": \"a\"}, {\"prompt\": \"b\"}]", "record 2: missing \"instruction\" string"),
        ("[]", "no instructions"),
        ("[{\"instruction\": \"a\"", "not valid JSON (truncated or corrupt)"),
        ("[1]", "record 1: expected a JSON object"),
        // A non-string input was dropped silently.
        ("[{\"instruction\": \"a\", \"input\": 5}]", "record 1: \"input\" is not a string or null"),
    ])
    func badInstructionFiles(text: String, message: String) throws {
        let path = try makeTemporaryDirectory().appendingPathComponent("items.json").path
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        #expect(throws: HoneError.malformedFile(path: path, message: message)) { try AlpacaEval.readInstructions(path: path) }
    }

    @Test func journalResumesAndIgnoresATornLine() throws {
        let path = try makeTemporaryDirectory().appendingPathComponent("out.json.journal").path
        do {
            let journal = try GenerationJournal(path: path, fingerprint: "run-1")
            try journal.record(index: 3, output: "three")
            try journal.record(index: 0, output: "zero\nwith newline")
        }
        // A kill in the middle of a write leaves half a line.
        let handle = FileHandle(forWritingAtPath: path)!
        handle.seekToEndOfFile()
        handle.write(Data("{\"index\":5,\"outp".utf8))
        try handle.close()

        let resumed = try GenerationJournal(path: path, fingerprint: "run-1")
        #expect(resumed.answers == [3: "three", 0: "zero\nwith newline"])
        try resumed.record(index: 5, output: "five")
        let again = try GenerationJournal(path: path, fingerprint: "run-1")
        #expect(again.answers == [3: "three", 0: "zero\nwith newline", 5: "five"])

        // Another run's journal (other model, prompts or settings) is not reused.
        let other = try GenerationJournal(path: path, fingerprint: "run-2")
        #expect(other.answers.isEmpty)
        other.remove()
        #expect(!FileManager.default.fileExists(atPath: path))
    }
}
