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
        try readDataRecords(path: path, noun: "instructions", namingFoundType: false).map { record in
            guard let instruction = record.object["instruction"] as? String else {
                throw record.error("missing \"instruction\" string")
            }
            // A non-string input (a number, a list) was dropped without a word; null or absent means none.
            let input = try record.optionalString("input")
            return InstructionRecord(instruction: instruction, input: input?.isEmpty == true ? nil : input,
                                     dataset: record.object["dataset"] as? String)
        }
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
