import Foundation

/// An instruction to answer: AlpacaEval's `instruction` and `dataset`, Alpaca's optional `input`.
public struct InstructionRecord: Sendable, Equatable {
    public var instruction: String
    public var input: String?
    public var dataset: String?

    public init(instruction: String, input: String? = nil, dataset: String? = nil) {
        self.instruction = instruction
        self.input = input
        self.dataset = dataset
    }
}

public enum AlpacaEval {
    /// Reads a JSON list (AlpacaEval's `alpaca_eval.json` style) or JSON Lines of records with `instruction`,
    /// optional `input` and `dataset`; other fields are ignored. Errors name the record.
    public static func readInstructions(path: String) throws -> [InstructionRecord] {
        guard let data = FileManager.default.contents(atPath: path) else {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
                throw HoneError.io(path: path, message: isDirectory.boolValue ? "is a directory, expected a file" : "cannot read file")
            }
            throw HoneError.fileNotFound(path: path)
        }
        let firstByte = data.first { ![0x20, 0x09, 0x0A, 0x0D, 0xEF, 0xBB, 0xBF].contains($0) }
        var objects: [(position: Int, object: Any)] = []
        if firstByte == UInt8(ascii: "[") {
            let parsed: Any
            do {
                parsed = try parseJSON(data)
            } catch {
                guard String(validating: data, as: UTF8.self) != nil else {
                    throw HoneError.malformedFile(path: path, message: "not valid UTF-8 text")
                }
                throw HoneError.malformedFile(path: path, message: "not valid JSON (truncated or corrupt)")
            }
            objects = ((parsed as? [Any]) ?? []).enumerated().map { ($0.offset + 1, $0.element) }
        } else {
            objects = try readJSONLines(path: path).map { ($0.line, $0.object) }
        }
        let isList = firstByte == UInt8(ascii: "[")
        let records = try objects.map { position, object -> InstructionRecord in
            let place = isList ? "record \(position)" : "line \(position)"
            guard let record = object as? [String: Any] else {
                throw HoneError.malformedFile(path: path, message: "\(place): expected a JSON object")
            }
            guard let instruction = record["instruction"] as? String else {
                throw HoneError.malformedFile(path: path, message: "\(place): missing \"instruction\" string")
            }
            let input = record["input"] as? String
            return InstructionRecord(instruction: instruction, input: input?.isEmpty == true ? nil : input,
                                     dataset: record["dataset"] as? String)
        }
        if records.isEmpty { throw HoneError.malformedFile(path: path, message: "no instructions") }
        return records
    }

    /// The file `alpaca_eval --model_outputs` reads: a JSON list of {"instruction", "output", "generator",
    /// "dataset"} in input order, laid out like AlpacaEval's own model_outputs.json (indent 2, keys indent 4).
    public static func outputsJSON(records: [InstructionRecord], outputs: [String], generator: String) -> String {
        var text = "[\n"
        for (index, (record, output)) in zip(records, outputs).enumerated() {
            let fields = [("instruction", record.instruction), ("output", output), ("generator", generator),
                          ("dataset", record.dataset ?? "")]
            text += "  {\n" + fields.map { "    \(jsonString($0.0)):\(jsonString($0.1))" }.joined(separator: ",\n") + "\n  }"
            text += index + 1 < records.count ? ",\n" : "\n"
        }
        return text + "]\n"
    }
}

/// Finished answers of a long generation run, one JSON line each, appended as they complete, so a rerun after an
/// interruption skips what is done. Lives beside the output (`OUTPUT.journal`) and is removed once the output is
/// written. A torn last line (killed mid-write) is ignored.
public final class GenerationJournal {
    public let path: String
    /// A digest of what the answers depend on (model, prompts, settings): a journal of another run is not reused.
    public let fingerprint: String
    public private(set) var answers: [Int: String] = [:]
    private var handle: FileHandle?

    public init(path: String, fingerprint: String) throws {
        self.path = path
        self.fingerprint = fingerprint
        if let data = FileManager.default.contents(atPath: path) {
            var lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true)
            let header = lines.isEmpty ? nil : (try? parseJSON(Data(lines.removeFirst()))) as? [String: Any]
            if header?["fingerprint"] as? String == fingerprint {
                for line in lines {
                    guard let entry = (try? parseJSON(Data(line))) as? [String: Any],
                          let index = entry["index"].flatMap(jsonInteger), let output = entry["output"] as? String
                    else { continue }
                    answers[index] = output
                }
            } else {
                answers = [:]
                try? FileManager.default.removeItem(atPath: path)
            }
        }
        if !FileManager.default.fileExists(atPath: path) {
            guard FileManager.default.createFile(atPath: path, contents: Data("{\"fingerprint\":\(jsonString(fingerprint))}\n".utf8)) else {
                throw HoneError.io(path: path, message: "cannot create the journal")
            }
        }
        guard let handle = FileHandle(forWritingAtPath: path) else {
            throw HoneError.io(path: path, message: "cannot open the journal for writing")
        }
        // A run killed mid-write leaves a torn last line: end it so the next entry starts on a line of its own.
        if let data = FileManager.default.contents(atPath: path), data.last != UInt8(ascii: "\n") {
            handle.seekToEndOfFile()
            handle.write(Data("\n".utf8))
        }
        handle.seekToEndOfFile()
        self.handle = handle
    }

    public func record(index: Int, output: String) {
        answers[index] = output
        handle?.write(Data("{\"index\":\(index),\"output\":\(jsonString(output))}\n".utf8))
    }

    /// Closes and deletes the journal (after the output file is safely in place).
    public func remove() {
        try? handle?.close()
        handle = nil
        try? FileManager.default.removeItem(atPath: path)
    }

    deinit { try? handle?.close() }
}
