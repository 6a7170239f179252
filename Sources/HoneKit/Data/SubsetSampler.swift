import Foundation

// MARK: - Matched-budget subsets (ScalingAlignment split.py + sample.py; methods.md §2.2–2.3)

/// N prompts × K responses from a ranking file, the way ScalingAlignment makes its subsets:
/// 1. **Responses** (split.py): while a record has more than K responses, one pass over all records (in file
///    order) keeps a `random.sample` of L−1 of its L responses and `prefix[:L−1]`, re-sorted by reward,
///    highest first (stable for ties, like numpy's argsort on short arrays), and drops `sft_index`. From
///    ranking-4 to K = 2 that is the 4→3 pass and then the 3→2 pass, drawn from one generator seeded with the
///    seed, exactly as split.py does with seed 42.
/// 2. **Prompts** (sample.py): a fresh generator seeded with the seed shuffles the records (`random.shuffle`),
///    and the first N are kept, in shuffled order. The permutation depends only on the seed and the number of
///    records, so every K gets the same prompt set.
/// DPO records (`{prompt, chosen, rejected}`) have two responses and can only be subset by prompts (K = 2).
public struct SubsetSample {
    public var recordsIn = 0
    public var responsesIn: ClosedRange<Int> = 0...0
    public var recordsReduced = 0
    public var prompts = 0
    public var responsesPerPrompt = 0
    /// The chosen records, each rendered as one JSON line (no newline).
    public var lines: [String] = []
    /// Indices (0-based, file order) of the chosen records, in output order.
    public var sourceIndices: [Int] = []
    /// The chosen records as parsed, after the response reduction (for summaries and diversity).
    public var records: [DataRecord] = []

    public var responsesTotal: Int { prompts * responsesPerPrompt }

    public static func make(_ source: [DataRecord], prompts: Int, responses: Int, seed: UInt64) throws -> SubsetSample {
        guard prompts >= 1 else { throw HoneError.invalidArgument("\(OptionName("prompts")) must be at least 1") }
        guard responses >= 2 else { throw HoneError.invalidArgument("\(OptionName("responses")) must be at least 2 (a ranking needs two)") }
        guard prompts <= source.count, let path = source.first?.path else {
            throw HoneError.invalidArgument("\(OptionName("prompts")) \(prompts) asks for more prompts than \(source.first?.path ?? "the input") has (\(source.count))")
        }
        var rankings = try source.map { try Ranking($0) }
        var result = SubsetSample()
        result.recordsIn = source.count
        let counts = rankings.map(\.count)
        result.responsesIn = counts.min()!...counts.max()!
        for (ranking, record) in zip(rankings, source) where ranking.count < responses {
            throw record.error("has \(ranking.count) responses, fewer than \(OptionName("responses")) \(responses)")
        }

        var responseGenerator = PythonRandom(seed: seed)
        var reduced = Set<Int>()
        for level in stride(from: result.responsesIn.upperBound, to: responses, by: -1) {
            for index in rankings.indices where rankings[index].count == level {
                guard rankings[index].isRanking else {
                    throw source[index].error("a DPO pair has 2 responses; \(OptionName("responses")) must be 2 for DPO data")
                }
                rankings[index].keepRandom(level - 1, generator: &responseGenerator)
                reduced.insert(index)
            }
        }
        result.recordsReduced = reduced.count

        var order = Array(source.indices)
        var promptGenerator = PythonRandom(seed: seed)
        promptGenerator.shuffle(&order)
        result.sourceIndices = Array(order.prefix(prompts))
        result.prompts = prompts
        result.responsesPerPrompt = responses
        for index in result.sourceIndices {
            let object = rankings[index].object
            result.lines.append(try rankingLine(object))
            result.records.append(DataRecord(path: path, location: source[index].location, object: object))
        }
        return result
    }

    public func jsonl() -> String { lines.map { $0 + "\n" }.joined() }

    public func summary(input: String, output: String, seed: UInt64, diversity: BigramStatistics?) -> String {
        var table = SummaryTable(title: "sample: \(input)")
        table.add("records in", recordsIn)
        table.add("responses per record in", responsesIn.lowerBound == responsesIn.upperBound
                  ? String(responsesIn.lowerBound) : "\(responsesIn.lowerBound)–\(responsesIn.upperBound)")
        table.add("records cut to K responses", recordsReduced, note: "random.sample, re-sorted by reward")
        table.add("prompts out (N)", prompts, note: output)
        table.add("responses per prompt (K)", responsesPerPrompt)
        table.add("responses in all (N x K)", responsesTotal, note: "the annotation budget")
        table.add("seed", String(seed), note: "same prompts for every K")
        if let diversity {
            table.add("bigrams T / unique U", "\(diversity.totalBigrams) / \(diversity.uniqueBigrams)")
            table.add("prompt diversity D", diversity.totalBigrams == 0 ? "-" : String(format: "%.4f", diversity.diversity))
        }
        return table.render()
    }
}

/// One record as a JSON line, keys sorted; rewards always written as floats ("1.0", not "1"), as PRO's files have
/// them, whatever JSONSerialization would make of a whole-number double.
func rankingLine(_ object: [String: Any]) throws -> String {
    let fields = try object.keys.sorted().map { key -> String in
        if key == "reward", let rewards = object[key] as? [Any], case let values = rewards.compactMap(jsonDouble),
           values.count == rewards.count, values.allSatisfy(\.isFinite) {
            return "\(jsonString(key)):[" + values.map { "\($0)" }.joined(separator: ",") + "]"
        }
        return "\(jsonString(key)):" + (try jsonValueText(object[key]!))
    }
    return "{" + fields.joined(separator: ",") + "}"
}

/// A record seen as a ranking: PRO's `{prefix, suffix, reward}` or a DPO pair.
struct Ranking {
    var object: [String: Any]
    let isRanking: Bool
    var count: Int

    init(_ record: DataRecord) throws {
        object = record.object
        if record.object["suffix"] != nil {
            guard let suffix = record.object["suffix"] as? [Any], suffix.allSatisfy({ $0 is String }) else {
                throw record.error("\"suffix\" is not a list of strings")
            }
            guard let prefix = record.object["prefix"] as? [Any] else { throw record.error("missing \"prefix\" list") }
            guard let reward = record.object["reward"] as? [Any], reward.allSatisfy({ jsonDouble($0) != nil }) else {
                throw record.error("missing \"reward\" list of numbers")
            }
            guard prefix.count == suffix.count, reward.count == suffix.count else {
                throw record.error("\"prefix\", \"suffix\" and \"reward\" differ in length (\(prefix.count), \(suffix.count), \(reward.count))")
            }
            isRanking = true
            count = suffix.count
        } else if record.object["chosen"] != nil || record.object["rejected"] != nil {
            _ = try record.string("chosen")
            _ = try record.string("rejected")
            isRanking = false
            count = 2
        } else {
            throw record.error("expected a PRO ranking record (\"prefix\", \"suffix\", \"reward\") or a DPO pair (\"chosen\", \"rejected\")")
        }
    }

    /// split.py's step for one record: keep a random `keep` of the responses, the first `keep` prefixes, and
    /// order by reward, highest first.
    mutating func keepRandom(_ keep: Int, generator: inout PythonRandom) {
        let prefix = object["prefix"] as! [Any], suffix = object["suffix"] as! [Any], reward = object["reward"] as! [Any]
        let chosen = generator.sample(Array(0..<count), count: keep)
        // Stable: equal rewards keep their sampled order (numpy's argsort is an insertion sort at this size).
        let ordered = chosen.enumerated().sorted { a, b in
            let ra = jsonDouble(reward[a.element])!, rb = jsonDouble(reward[b.element])!
            return ra != rb ? ra > rb : a.offset < b.offset
        }.map(\.element)
        object["prefix"] = Array(prefix.prefix(keep))
        object["suffix"] = ordered.map { suffix[$0] }
        object["reward"] = ordered.map { jsonDouble(reward[$0])! }
        object.removeValue(forKey: "sft_index")
        count = keep
    }
}
