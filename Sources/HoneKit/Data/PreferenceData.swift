import Foundation

// MARK: - Preference pairs (DPO)

/// One preference pair as TRL's DPOTrainer takes it (methods.md §4.1): a prompt and two completions that follow it
/// directly (no separator is added; HH completions start with the space after "Assistant:").
public struct PreferenceRecord: Sendable, Equatable {
    public var prompt: String
    public var chosen: String
    public var rejected: String
    /// "line 3" / "record 3", for messages.
    public var place: String

    public init(prompt: String, chosen: String, rejected: String, place: String = "") {
        self.prompt = prompt
        self.chosen = chosen
        self.rejected = rejected
        self.place = place
    }
}

public enum PreferenceData {
    /// Reads DPO pairs: `{prompt, chosen, rejected}` records (what `hone data hh-rlhf` writes, TRL's format), or raw
    /// HH-RLHF `{chosen, rejected}` dialogues, whose prompt is their longest common prefix backed off to the last
    /// whole "\n\nAssistant:" in it (`HHRLHF.sharedPrompt`, as the data tool does). Raw pairs without such a
    /// prompt are dropped and returned in `dropped` (their places); anything malformed is an error naming the record.
    public static func read(path: String) throws -> (records: [PreferenceRecord], dropped: [String]) {
        var records: [PreferenceRecord] = []
        var dropped: [String] = []
        for record in try readDataRecords(path: path) {
            for key in ["prompt", "chosen", "rejected"] where record.object[key] is [Any] {
                throw record.error("\"\(key)\" is a list of messages; conversational records are not supported, give strings")
            }
            let chosen = try record.string("chosen")
            let rejected = try record.string("rejected")
            if record.object["prompt"] != nil {
                records.append(PreferenceRecord(prompt: try record.string("prompt"), chosen: chosen, rejected: rejected,
                                                place: record.place))
                continue
            }
            guard let prompt = HHRLHF.sharedPrompt(chosen: chosen, rejected: rejected) else {
                dropped.append(record.place)
                continue
            }
            records.append(PreferenceRecord(prompt: prompt, chosen: String(chosen.utf8.dropFirst(prompt.utf8.count))!,
                                            rejected: String(rejected.utf8.dropFirst(prompt.utf8.count))!, place: record.place))
        }
        if records.isEmpty {
            throw HoneError.malformedFile(path: path, message: "no usable pairs: \(dropped.count) records without a prompt and no shared \"\\n\\nAssistant:\" prefix")
        }
        return (records, dropped)
    }
}
