import Foundation

// MARK: - Rankings (PRO)

/// One PRO training record (methods.md §2.1): responses best first, each with its prompt turns and reward.
public struct RankingRecord: Sendable, Equatable {
    /// Per response: the prompt turns (`<|prompter|>…`, `<|assistant|>…`, ending with the bare assistant tag).
    public var prefixes: [[String]]
    public var suffixes: [String]
    public var rewards: [Double]
    public var sftIndex: Int
    public var place: String
}

public enum RankingData {
    /// Reads PRO records `{prefix, suffix, reward, sft_index?}` (what `hone data hh-rlhf` and `hone data sample`
    /// write). `prefix` is one list of turns per response (PRO's layout) or a single list shared by all. Only the
    /// first `rankingLength` responses are used (nil: every record's own count, which must then agree); their
    /// rewards must not increase, since PRO reads the order as the ranking.
    public static func read(path: String, rankingLength: Int?) throws -> [RankingRecord] {
        var records: [RankingRecord] = []
        var length = rankingLength
        for record in try readDataRecords(path: path) {
            guard let suffixes = record.object["suffix"] as? [Any], suffixes.allSatisfy({ $0 is String }) else {
                throw record.error(record.object["suffix"] == nil ? "missing \"suffix\"" : "\"suffix\" is not a list of strings")
            }
            guard let rewardValues = record.object["reward"] as? [Any] else {
                throw record.error(record.object["reward"] == nil ? "missing \"reward\"" : "\"reward\" is not a list of numbers")
            }
            let rewards = try rewardValues.map { value -> Double in
                guard let number = jsonDouble(value), number.isFinite else {
                    throw record.error("\"reward\" is not a list of numbers")
                }
                return number
            }
            guard rewards.count == suffixes.count else {
                throw record.error("\(suffixes.count) suffixes but \(rewards.count) rewards")
            }
            var prefixes: [[String]]
            if let shared = record.object["prefix"] as? [Any], shared.allSatisfy({ $0 is String }) {
                prefixes = Array(repeating: shared as! [String], count: suffixes.count)
            } else if let each = record.object["prefix"] as? [Any], each.allSatisfy({ ($0 as? [Any])?.allSatisfy({ $0 is String }) == true }) {
                prefixes = each.map { $0 as! [String] }
                guard prefixes.count >= suffixes.count else {
                    throw record.error("\(prefixes.count) prefixes for \(suffixes.count) suffixes")
                }
            } else {
                throw record.error(record.object["prefix"] == nil ? "missing \"prefix\"" : "\"prefix\" is not a list of turns (or one list per response)")
            }
            guard !suffixes.isEmpty else {
                throw record.error("\"suffix\" is empty; a record needs at least one response")
            }
            let count = length ?? suffixes.count
            if length == nil { length = count }
            guard suffixes.count >= count else {
                throw record.error(rankingLength == nil
                    ? "\(suffixes.count) responses, but earlier records have \(count); give \(OptionName("ranking_len"))"
                    : "\(suffixes.count) responses, fewer than \(OptionName("ranking_len")) \(count)")
            }
            let used = Array(rewards.prefix(count))
            for index in used.indices.dropFirst() where used[index] > used[index - 1] {
                throw record.error("rewards \(used.map { jsonNumber($0) }.joined(separator: ", ")) are not in descending order (PRO ranks responses best first)")
            }
            var sftIndex = 0
            if let value = record.object["sft_index"], !(value is NSNull) {
                guard let index = jsonInteger(value), index >= 0, index < count else {
                    throw record.error("\"sft_index\" must be an integer in 0..<\(count)")
                }
                sftIndex = index
            }
            records.append(RankingRecord(prefixes: Array(prefixes.prefix(count)), suffixes: (suffixes as! [String]).prefix(count).map { $0 },
                                         rewards: used, sftIndex: sftIndex, place: record.place))
        }
        return records
    }

    /// PRO's prompt text (methods.md §2.4): the turns joined, role tags replaced by "\n\nHuman: " / "\n\nAssistant: ",
    /// trailing whitespace removed.
    public static func promptText(_ turns: [String]) -> String {
        let joined = turns.joined()
            .replacingOccurrences(of: HHRLHF.prompterTag, with: "\n\nHuman: ")
            .replacingOccurrences(of: HHRLHF.assistantTag, with: "\n\nAssistant: ")
        return rightStrippedPythonWhitespace(joined)
    }
}
