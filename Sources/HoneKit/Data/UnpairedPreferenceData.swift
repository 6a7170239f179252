import Foundation

// MARK: - Unpaired preference records (KTO)

/// One completion with a thumbs-up or thumbs-down, as TRL's KTOTrainer takes it: `{prompt, completion, label}`.
public struct UnpairedPreferenceRecord: Sendable, Equatable {
    public var prompt: String
    public var completion: String
    /// true: desirable; false: undesirable.
    public var label: Bool
    /// "line 3" / "record 3" (for a split pair, the pair's place and which half), for messages.
    public var place: String

    public init(prompt: String, completion: String, label: Bool, place: String = "") {
        self.prompt = prompt
        self.completion = completion
        self.label = label
        self.place = place
    }
}

public enum UnpairedPreferenceData {
    /// TRL unpairs paired data with a batched `datasets.map`, whose default batch is 1000 pairs: each block of up
    /// to 1000 pairs becomes its chosen completions (label true), then its rejected ones (label false).
    public static let unpairBlock = 1000

    /// Reads KTO data: `{prompt, completion, label}` records, or DPO pairs (`{prompt, chosen, rejected}` or raw
    /// HH-RLHF dialogues, read as `hone train dpo` reads them) split into desirable and undesirable completions in
    /// TRL's order. Which of the two a file holds is decided by its first record. Anything malformed is an error
    /// naming the record and the field.
    public static func read(path: String) throws -> (records: [UnpairedPreferenceRecord], pairs: Int?, dropped: [String]) {
        let records = try readDataRecords(path: path)
        if let first = records.first, first.object["chosen"] != nil || first.object["rejected"] != nil {
            let (pairs, dropped) = try PreferenceData.read(path: path)
            return (unpair(pairs), pairs.count, dropped)
        }
        var result: [UnpairedPreferenceRecord] = []
        for record in records {
            for key in ["prompt", "completion"] where record.object[key] is [Any] {
                throw record.error("\"\(key)\" is a list of messages; conversational records are not supported, give strings")
            }
            guard let value = record.object["label"] else {
                throw record.error("missing \"label\" (true for a desirable completion, false for an undesirable one)")
            }
            guard let label = jsonBool(value) else {
                throw record.error("\"label\" must be true or false, found \(jsonTypeName(value))")
            }
            result.append(UnpairedPreferenceRecord(prompt: try record.string("prompt"), completion: try record.string("completion"),
                                                   label: label, place: record.place))
        }
        return (result, nil, [])
    }

    /// TRL's `unpair_preference_dataset`: per block of `unpairBlock` pairs, the chosen completions then the rejected.
    public static func unpair(_ pairs: [PreferenceRecord]) -> [UnpairedPreferenceRecord] {
        var result: [UnpairedPreferenceRecord] = []
        for start in stride(from: 0, to: pairs.count, by: unpairBlock) {
            let block = pairs[start..<min(pairs.count, start + unpairBlock)]
            result += block.map { UnpairedPreferenceRecord(prompt: $0.prompt, completion: $0.chosen, label: true, place: "\($0.place) chosen") }
            result += block.map { UnpairedPreferenceRecord(prompt: $0.prompt, completion: $0.rejected, label: false, place: "\($0.place) rejected") }
        }
        return result
    }

    /// A JSON boolean (Swift Bool or an NSNumber holding one), nil for anything else, numbers included.
    static func jsonBool(_ value: Any) -> Bool? {
        if let flag = value as? Bool, type(of: value) == Bool.self { return flag }
        if type(of: value) is NSNumber.Type, let number = value as? NSNumber, String(cString: number.objCType) == "c" {
            return number.boolValue
        }
        return nil
    }
}
