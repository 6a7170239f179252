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
