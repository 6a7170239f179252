import Foundation

// MARK: - Alpaca records

/// One supervised fine-tuning record in Alpaca's format: `instruction`, optional `input` ("" when absent or
/// null), `output` (the response the model learns).
public struct AlpacaRecord: Sendable, Equatable, Hashable {
    public var instruction: String
    public var input: String
    public var output: String

    public init(instruction: String, input: String = "", output: String) {
        self.instruction = instruction
        self.input = input
        self.output = output
    }
}

public enum AlpacaData {
    /// Reads Alpaca training data: a JSON array of objects (`alpaca_data.json`) or JSON Lines (one object
    /// per line, blank lines skipped). Each record needs `instruction` and `output` strings; `input` may be
    /// a string, null or absent; other keys are ignored. Errors name the file and the record (1-based
    /// "record N" in an array, "line N" in JSON Lines).
    public static func read(path: String) throws -> [AlpacaRecord] {
        let records: [DataRecord]
        do {
            records = try readDataRecords(path: path)
        } catch HoneError.malformedRecord(let file, 1, let message) {
            // A pretty-printed object spanning several lines is not JSON Lines; say what it is instead.
            if let data = FileManager.default.contents(atPath: path), let whole = try? parseJSON(data), whole is [String: Any] {
                throw HoneError.malformedFile(
                    path: path, message: "expected a JSON array of records or JSON Lines (one object per line), found a single JSON object")
            }
            throw HoneError.malformedRecord(path: file, line: 1, message: message)
        }
        return try records.map { try record(from: $0.object, error: $0.error) }
    }

    private static func record(from value: Any, error: (String) -> HoneError) throws -> AlpacaRecord {
        guard let object = value as? [String: Any] else {
            throw error("expected a JSON object, found \(jsonTypeName(value))")
        }
        func string(_ key: String, optional: Bool) throws -> String {
            guard let field = object[key] else {
                if optional { return "" }
                throw error("missing \"\(key)\"")
            }
            if field is NSNull, optional { return "" }
            guard let text = field as? String else {
                throw error("\"\(key)\" must be a string\(optional ? " or null" : ""), found \(jsonTypeName(field))")
            }
            return text
        }
        return AlpacaRecord(instruction: try string("instruction", optional: false),
                            input: try string("input", optional: true),
                            output: try string("output", optional: false))
    }
}
