import Foundation

// MARK: - `hone reward`: rewards of a file of texts or pairs

/// Rewards of the records of a JSON / JSONL file under a reward model. A record is one of
/// * `{"prompt", "response"}`: the text prompt + response;
/// * `{"text"}`: the text as written;
/// * `{"tokens": [ids]}`: token ids as they are (nothing added);
/// * `{"prompt" (optional), "chosen", "rejected"}`: a pair, both texts scored; pairs give an accuracy.
/// Texts are tokenized as reward-model training does (`RewardData.tokenize`: BOS as the tokenizer says, EOS
/// appended) unless `addEOS` is false.
public struct RewardFileResult: Sendable {
    public enum Item: Sendable {
        case single(Double)
        case pair(chosen: Double, rejected: Double)
    }
    public var items: [Item]
    /// Texts longer than the model's context (`context` tokens): scored in full, past the trained positions.
    public var textsPastContext = 0
    public var context = 0

    public var pairCount: Int { items.filter { if case .pair = $0 { return true } else { return false } }.count }

    /// The share of pairs whose chosen text gets the higher reward (strictly, as TRL counts it); nil without pairs.
    public var accuracy: Double? {
        var pairs = 0, right = 0
        for case .pair(let chosen, let rejected) in items {
            pairs += 1
            if chosen > rejected { right += 1 }
        }
        return pairs == 0 ? nil : Double(right) / Double(pairs)
    }

    /// The mean over every scored text.
    public var meanReward: Double {
        var sum = 0.0, count = 0
        for item in items {
            switch item {
            case .single(let reward): sum += reward; count += 1
            case .pair(let chosen, let rejected): sum += chosen + rejected; count += 2
            }
        }
        return count == 0 ? 0 : sum / Double(count)
    }

    /// One JSON line per record: {"reward": r} or {"chosen_reward", "rejected_reward", "margin"}.
    public var jsonLines: String {
        items.map { item in
            switch item {
            case .single(let reward):
                return "{\"reward\": \(jsonNumber(reward))}\n"
            case .pair(let chosen, let rejected):
                return "{\"chosen_reward\": \(jsonNumber(chosen)), \"rejected_reward\": \(jsonNumber(rejected)), \"margin\": \(jsonNumber(chosen - rejected))}\n"
            }
        }.joined()
    }

    public var summary: String {
        var text = "rewards: \(items.count) records (\(pairCount) pairs), mean reward \(String(format: "%.4f", meanReward))"
        if let accuracy { text += String(format: ", pair accuracy %.4f", accuracy) }
        if textsPastContext > 0 {
            text += "\nwarning: \(textsPastContext) texts are longer than the model's context of \(context) tokens (scored in full)"
        }
        return text
    }
}

public enum RewardFile {
    /// Scores every record of `path`; `progress` receives the number of texts scored so far out of the total.
    public static func score(path: String, scorer: RewardScorer, tokenizer: () throws -> Tokenizer, addEOS: Bool = true,
                             progress: ((Int, Int) -> Void)? = nil) throws -> RewardFileResult {
        var rows: [[Int32]] = []
        var layout: [(isPair: Bool, first: Int)] = []
        var places: [String] = []
        var loaded: Tokenizer?
        let vocabulary = scorer.model.config.vocabularySize
        func encode(_ text: String) throws -> [Int32] {
            if loaded == nil { loaded = try tokenizer() }
            if addEOS { return RewardData.tokenize(text, tokenizer: loaded!) }
            return loaded!.encode(text, addSpecialTokens: true, parseSpecial: false)
        }
        for record in try readDataRecords(path: path) {
            let object = record.object
            if object["chosen"] != nil || object["rejected"] != nil {
                let prompt = try record.optionalString("prompt") ?? ""
                layout.append((true, rows.count))
                rows.append(try encode(prompt + record.string("chosen")))
                rows.append(try encode(prompt + record.string("rejected")))
            } else if object["response"] != nil {
                layout.append((false, rows.count))
                rows.append(try encode((try record.optionalString("prompt") ?? "") + record.string("response")))
            } else if object["text"] != nil {
                layout.append((false, rows.count))
                rows.append(try encode(try record.string("text")))
            } else if let list = object["tokens"] as? [Any] {
                let ids = try list.map { item -> Int32 in
                    guard let id = jsonInteger(item), id >= 0, id < vocabulary else {
                        throw record.error("\"tokens\" must hold token ids below \(vocabulary)")
                    }
                    return Int32(id)
                }
                guard !ids.isEmpty else { throw record.error("\"tokens\" is empty") }
                layout.append((false, rows.count))
                rows.append(ids)
            } else {
                throw record.error("expected {\"prompt\", \"response\"}, {\"text\"}, {\"tokens\"} or {\"chosen\", \"rejected\"}")
            }
            if rows.last?.isEmpty == true { throw record.error("the text has no tokens") }
            places.append(record.place)
        }
        let rewards = try scorer.rewards(rows) { done in progress?(done, rows.count) }
        // A NaN reward (a poisoned weight, an overflowing model) is not a score: stop, naming the record.
        if let bad = rewards.firstIndex(where: { !$0.isFinite }), let record = layout.lastIndex(where: { $0.first <= bad }) {
            throw HoneError.nonFinite(message: "reward stopped: \(path): \(places[record]): the reward is \(rewards[bad]); "
                + "the model produces non-finite numbers")
        }
        let items = layout.map { entry -> RewardFileResult.Item in
            entry.isPair ? .pair(chosen: Double(rewards[entry.first]), rejected: Double(rewards[entry.first + 1]))
                         : .single(Double(rewards[entry.first]))
        }
        var result = RewardFileResult(items: items)
        result.context = scorer.model.config.maxPositionEmbeddings
        result.textsPastContext = rows.filter { $0.count > result.context }.count
        return result
    }
}
