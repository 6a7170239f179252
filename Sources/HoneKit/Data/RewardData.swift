import Foundation

// MARK: - Reward-model comparisons

/// One comparison for reward-model training: the full chosen and rejected texts and the margin of the loss.
public struct RewardComparison: Sendable, Equatable {
    public var chosen: String
    public var rejected: String
    public var margin: Double
    /// "line 3" / "record 3", for messages.
    public var place: String
}

public enum RewardData {
    /// Reads comparisons for `hone train rm`, one per record:
    /// * `{prompt, chosen, rejected}`: the texts are prompt + chosen and prompt + rejected (TRL's RewardTrainer joins
    ///   them with nothing between);
    /// * `{chosen, rejected}` without a prompt: whole texts, e.g. raw HH-RLHF dialogues;
    /// * optional `margin` (a number, used as it is, as TRL does) or `rating` (Llama 2's four strengths: "significantly
    ///   better", "better", "slightly better", "negligibly better" / "unsure"), mapped by `scale`; a record with
    ///   neither has margin 0. A record with both is an error: which one is meant is unclear.
    public static func read(path: String, scale: RewardMarginScale) throws -> [RewardComparison] {
        var comparisons: [RewardComparison] = []
        for record in try readDataRecords(path: path) {
            for key in ["prompt", "chosen", "rejected"] where record.object[key] is [Any] {
                throw record.error("\"\(key)\" is a list of messages; conversational records are not supported, give strings")
            }
            let prompt = try record.optionalString("prompt") ?? ""
            let chosen = try record.string("chosen")
            let rejected = try record.string("rejected")
            let explicit = try record.optionalNumber("margin")
            var margin = explicit ?? 0
            if let value = record.object["rating"], !(value is NSNull) {
                guard explicit == nil else { throw record.error("has both \"margin\" and \"rating\"; give one") }
                guard let label = value as? String, let index = RewardMarginScale.ratingIndex(label) else {
                    throw record.error("\"rating\" must be one of \(RewardMarginScale.ratings.map { "\"\($0)\"" }.joined(separator: ", ")) or \"unsure\"")
                }
                margin = scale.margin(forRating: index)
            }
            guard margin.isFinite else { throw record.error("\"margin\" must be a finite number") }
            comparisons.append(RewardComparison(chosen: prompt + chosen, rejected: prompt + rejected, margin: margin,
                                                place: record.place))
        }
        return comparisons
    }

    /// TRL's tokenization of a reward-model text: EOS appended unless the text already ends with the EOS text,
    /// then encoded as the tokenizer does by default (BOS as its config says). Hone appends the EOS id after
    /// encoding the text, which is what encoding the EOS text as a special token gives.
    public static func tokenize(_ text: String, tokenizer: Tokenizer) -> [Int32] {
        var body = text
        if let eos = tokenizer.eosTokenID {
            let eosText = tokenizer.decode([eos], skipSpecialTokens: false)
            if !eosText.isEmpty, body.hasSuffix(eosText) { body = String(body.dropLast(eosText.count)) }
        }
        var ids = tokenizer.encode(body, addSpecialTokens: true, parseSpecial: false)
        if let eos = tokenizer.eosTokenID {
            if tokenizer.addsEOS, ids.last == eos { return ids }
            ids.append(eos)
        }
        return ids
    }
}
