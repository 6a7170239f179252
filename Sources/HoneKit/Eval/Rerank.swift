import Foundation

// MARK: - Re-ranking responses by a reward model (PRO's training data)

/// Orders the responses of ranking records by a reward model, as PRO's preprocessing scores its HH data: each
/// response's reward is the model's raw logit on the turns with the response appended to the last, each followed by
/// its EOS text (`HHEvaluation.rewardTokens`, left-truncated to `maxTokens`). Output records are PRO's
/// `{prefix, suffix, reward, meta?, sft_index: 0}` with responses best first (stable for ties).
/// Inputs: PRO records `{prefix, suffix, …}` (prefix one list of turns or one per response) or raw HH-RLHF
/// `{chosen, rejected}` dialogues.
public enum Rerank {
    public struct Result {
        public var lines: [String]
        public var records = 0
        public var responses = 0
        /// Records whose order changed.
        public var reordered = 0
        /// Raw HH records without a shared prompt, skipped.
        public var skipped: [String] = []
    }

    public static func run(path: String, scorer: RewardScorer, tokenizer: Tokenizer, maxTokens: Int = 1024,
                           progress: ((Int, Int) -> Void)? = nil) throws -> Result {
        var result = Result(lines: [])
        var entries: [(prefixes: [[String]], suffixes: [String], meta: Any?)] = []
        let records = try readDataRecords(path: path)
        if records[0].object["suffix"] != nil {
            for record in records {
                guard let suffixes = record.object["suffix"] as? [String], !suffixes.isEmpty else {
                    throw record.error("\"suffix\" must be a non-empty list of strings")
                }
                var prefixes: [[String]]
                if let shared = record.object["prefix"] as? [String] {
                    prefixes = Array(repeating: shared, count: suffixes.count)
                } else if let each = record.object["prefix"] as? [[String]], each.count >= suffixes.count {
                    prefixes = Array(each.prefix(suffixes.count))
                } else {
                    throw record.error("\"prefix\" must be a list of turns or one list per response")
                }
                for turns in prefixes where turns.last != HHRLHF.assistantTag && turns.last != HHRLHF.prompterTag {
                    throw record.error("each prefix must end with the bare \"\(HHRLHF.assistantTag)\" tag")
                }
                entries.append((prefixes, suffixes, record.object["meta"]))
            }
        } else if records[0].object["prompt"] != nil {
            // DPO pairs with their prompt apart were each reported as "without a shared prompt".
            throw records[0].error("a record with \"prompt\" (a DPO pair) is not rerank's input: it takes PRO ranking records {prefix, suffix} or raw HH-RLHF {chosen, rejected} dialogues")
        } else {
            let conversion = try HHRLHFConversion.convert(records)
            result.skipped = conversion.dropped.values.flatMap { $0 }.sorted().map { "line \($0)" }
            for pair in conversion.pairs {
                entries.append(([pair.proPrefix, pair.proPrefix],
                                [strippedPythonWhitespace(pair.chosen), strippedPythonWhitespace(pair.rejected)],
                                ["path": path, "line_num": pair.line, "task": "dialogue"] as [String: Any]))
            }
        }
        let rows = entries.flatMap { entry in
            zip(entry.prefixes, entry.suffixes).map {
                HHEvaluation.rewardTokens($0.0, answer: $0.1, tokenizer: tokenizer, maxTokens: maxTokens)
            }
        }
        let rewards = try scorer.rewards(rows) { progress?($0, rows.count) }
        var offset = 0
        for entry in entries {
            let scores = rewards[offset..<offset + entry.suffixes.count].map(Double.init)
            offset += entry.suffixes.count
            let order = scores.indices.sorted { scores[$0] != scores[$1] ? scores[$0] > scores[$1] : $0 < $1 }
            if order != Array(scores.indices) { result.reordered += 1 }
            var fields: [(key: String, value: String)] = [
                ("prefix", "[" + order.map { jsonStringArray(entry.prefixes[$0]) }.joined(separator: ", ") + "]"),
                ("suffix", jsonStringArray(order.map { entry.suffixes[$0] })),
                ("reward", "[" + order.map { jsonNumber(scores[$0]) }.joined(separator: ", ") + "]"),
            ]
            if let meta = entry.meta { fields.append(("meta", try jsonValueText(meta))) }
            fields.append(("sft_index", "0"))
            result.lines.append(jsonObjectLine(fields))
            result.responses += entry.suffixes.count
        }
        result.records = entries.count
        return result
    }
}
