import Foundation

// MARK: - PRO's eval_hh on HH-RLHF test files

/// One test item: PRO's prompt turns and the reference reply (PRO's `suffix[0]`, the chosen reply).
public struct HHTestItem: Sendable, Equatable {
    /// `["<|prompter|>q1", "<|assistant|>a1", …, "<|assistant|>"]`.
    public var prefix: [String]
    public var reference: String
    /// "line 3" / "record 3" of its file.
    public var place: String
}

/// A test file and its items.
public struct HHTestFile: Sendable {
    /// Shown in tables: the folder of an HH `test.jsonl(.gz)` ("harmless-base"), else the file name without extensions.
    public var name: String
    public var path: String
    public var items: [HHTestItem]

    /// Reads raw HH-RLHF `{chosen, rejected}` dialogues (the prompt is their shared part, the reference the chosen
    /// reply, stripped as PRO's preprocessing stores it; records without a shared prompt are skipped), or PRO test
    /// records `{prefix, suffix}` (`prefix` one list of turns, or one per response; the first suffix is the
    /// reference). `limit` keeps the first items.
    public static func read(path: String, limit: Int? = nil) throws -> HHTestFile {
        let records = try readDataRecords(path: path)
        var items: [HHTestItem] = []
        if records[0].object["prefix"] != nil {
            for record in records {
                guard let suffix = record.object["suffix"] as? [Any], let reference = suffix.first as? String else {
                    throw record.error("\"suffix\" must be a list of strings")
                }
                let prefix: [String]
                if let turns = record.object["prefix"] as? [String] {
                    prefix = turns
                } else if let lists = record.object["prefix"] as? [[String]], let first = lists.first {
                    prefix = first
                } else {
                    throw record.error("\"prefix\" must be a list of turns (or one list per response)")
                }
                guard let last = prefix.last, last == HHRLHF.assistantTag || last == HHRLHF.prompterTag else {
                    throw record.error("\"prefix\" must end with the bare \"\(HHRLHF.assistantTag)\" tag")
                }
                items.append(HHTestItem(prefix: prefix, reference: reference, place: record.place))
            }
        } else {
            let conversion = try HHRLHFConversion.convert(records)
            items = conversion.pairs.map {
                HHTestItem(prefix: $0.proPrefix, reference: strippedPythonWhitespace($0.chosen), place: "line \($0.line)")
            }
        }
        if let limit { items = Array(items.prefix(max(0, limit))) }
        guard !items.isEmpty else { throw HoneError.malformedFile(path: path, message: "no test items") }
        var name = (path as NSString).lastPathComponent
        for suffix in [".gz", ".jsonl", ".json"] where name.hasSuffix(suffix) { name = String(name.dropLast(suffix.count)) }
        if name == "test" { name = ((path as NSString).deletingLastPathComponent as NSString).lastPathComponent }
        return HHTestFile(name: name, path: path, items: items)
    }
}

/// PRO / ScalingAlignment's `eval_hh` (methods.md §2.8): prompts from the turns ("\n\nHuman: " / "\n\nAssistant: ",
/// right-stripped), left-truncated to 384 tokens by two encode–decode round trips as its pipeline does, greedy
/// answers of up to 128 new tokens, the prompt text removed and the answer cut at the first "Human:", "human:",
/// "Assistant:" or "assistant:"; each answer scored by a reward model (the turns with the answer appended to the last,
/// each followed by the reward model's EOS text, left-truncated to 1024 tokens; sigmoid of the logit) and by
/// character-level BLEU against the reference (NLTK's sentence_bleu on stripped strings). Means per file and pooled
/// over every sample ("global").
public enum HHEvaluation {
    public static let stopMarkers = ["Human:", "human:", "Assistant:", "assistant:"]

    public struct Settings: Sendable {
        public var maxPromptTokens = 384
        public var maxNewTokens = 128
        public var rewardMaxTokens = 1024
        public var batchSize = 8
        public init() {}
    }

    // MARK: Prompts and answers

    /// The truncated prompt (tokens for generation and its text), as PRO's pipeline makes it: encode with the
    /// tokenizer's special tokens keeping the last `maxTokens` (special tokens included), decode skipping special
    /// tokens, and once more from that text.
    public static func prompt(_ prefix: [String], tokenizer: Tokenizer, maxTokens: Int) -> (tokens: [Int32], text: String) {
        func truncated(_ text: String) -> [Int32] {
            let head: [Int32] = tokenizer.addsBOS ? tokenizer.bosTokenID.map { [$0] } ?? [] : []
            let tail: [Int32] = tokenizer.addsEOS ? tokenizer.eosTokenID.map { [$0] } ?? [] : []
            let body = tokenizer.encode(text, addSpecialTokens: false, parseSpecial: false)
            return head + body.suffix(max(0, maxTokens - head.count - tail.count)) + tail
        }
        let first = tokenizer.decode(truncated(RankingData.promptText(prefix)), skipSpecialTokens: true)
        let tokens = truncated(first)
        return (tokens, tokenizer.decode(tokens, skipSpecialTokens: true))
    }

    /// PRO's answer from the decoded prompt + generation: every occurrence of the right-stripped prompt text removed,
    /// stripped, then cut (and right-stripped) at the first stop marker in the order listed.
    public static func answer(decoded: String, promptText: String) -> String {
        let promptPart = rightStrippedPythonWhitespace(promptText)
        var text = promptPart.isEmpty ? decoded : decoded.replacingOccurrences(of: promptPart, with: "")
        text = strippedPythonWhitespace(text)
        for stop in stopMarkers {
            if let range = text.range(of: stop) { text = rightStrippedPythonWhitespace(String(text[..<range.lowerBound])) }
        }
        return text
    }

    /// The reward model's input: the turns with the answer appended to the last, each followed by the EOS text,
    /// encoded with special tokens parsed (the role tags and EOS are special in OpenAssistant's reward models) and
    /// left-truncated to `maxTokens` (the tokenizer's leading special tokens kept).
    public static func rewardTokens(_ prefix: [String], answer: String, tokenizer: Tokenizer, maxTokens: Int) -> [Int32] {
        var turns = prefix
        turns[turns.count - 1] += answer
        let eos = tokenizer.eosTokenID.map { tokenizer.decode([$0], skipSpecialTokens: false) } ?? ""
        let ids = tokenizer.encode(turns.map { $0 + eos }.joined(), addSpecialTokens: true, parseSpecial: true)
        guard ids.count > maxTokens else { return ids }
        let keep = tokenizer.addsBOS && ids.first == tokenizer.bosTokenID ? 1 : 0
        return Array(ids.prefix(keep)) + ids.suffix(maxTokens - keep)
    }

    // MARK: Running

    /// One scored sample.
    public struct Sample: Sendable {
        public var file: String
        public var place: String
        public var answer: String
        /// sigmoid(reward logit).
        public var reward: Double
        public var bleu: Double
    }

    public struct Report: Sendable {
        public var samples: [Sample]
        public var files: [String]

        /// (samples, mean reward, mean BLEU) of one file, or of all when nil (PRO's "Global": pooled over samples).
        public func means(file: String?) -> (count: Int, reward: Double, bleu: Double) {
            let chosen = samples.filter { file == nil || $0.file == file }
            let count = Double(max(1, chosen.count))
            return (chosen.count, chosen.reduce(0) { $0 + $1.reward } / count, chosen.reduce(0) { $0 + $1.bleu } / count)
        }

        /// The table: samples, reward ×100, BLEU ×100 per file and pooled.
        public var table: String {
            let width = max(6, (files.map(\.count).max() ?? 0))
            func row(_ name: String, _ values: (count: Int, reward: Double, bleu: Double)) -> String {
                name.padding(toLength: width, withPad: " ", startingAt: 0)
                    + String(format: "  %7d  %10.2f  %8.2f", values.count, 100 * values.reward, 100 * values.bleu)
            }
            var lines = ["file".padding(toLength: width, withPad: " ", startingAt: 0) + "  samples  reward×100  BLEU×100"]
            lines += files.map { row($0, means(file: $0)) }
            lines.append(row("global", means(file: nil)))
            return lines.joined(separator: "\n") + "\n"
        }

        /// JSON: per file and global means (raw, 0–1, as PRO's scoring prints them) and every sample.
        public var json: String {
            func summary(_ values: (count: Int, reward: Double, bleu: Double)) -> String {
                "{\"samples\": \(values.count), \"reward\": \(jsonNumber(values.reward)), \"bleu\": \(jsonNumber(values.bleu))}"
            }
            var text = "{\n  \"files\": {\n"
            text += files.map { "    \(jsonString($0)): \(summary(means(file: $0)))" }.joined(separator: ",\n")
            text += "\n  },\n  \"global\": \(summary(means(file: nil))),\n  \"samples\": [\n"
            text += samples.map {
                "    {\"file\": \(jsonString($0.file)), \"place\": \(jsonString($0.place)), \"answer\": \(jsonString($0.answer)), \"reward\": \(jsonNumber($0.reward)), \"bleu\": \(jsonNumber($0.bleu))}"
            }.joined(separator: ",\n")
            return text + "\n  ]\n}\n"
        }
    }

    /// Generates the answers of every item (skipping those already in `journal`, keyed by position over all files in
    /// order), then scores them. `onAnswer(done, total)` reports progress.
    public static func run(files: [HHTestFile], policy: LoadedModel, rewardScorer: RewardScorer, rewardTokenizer: Tokenizer,
                           settings: Settings, journal: GenerationJournal?,
                           onAnswer: ((Int, Int) -> Void)? = nil) throws -> Report {
        let tokenizer = try policy.tokenizer()
        let items = files.flatMap { file in file.items.map { (file: file.name, item: $0) } }
        let prompts = items.map { prompt($0.item.prefix, tokenizer: tokenizer, maxTokens: settings.maxPromptTokens) }
        var answers = journal?.answers ?? [:]
        let remaining = items.indices.filter { answers[$0] == nil }
        var done = items.count - remaining.count
        onAnswer?(done, items.count)
        let generator = try policy.makeGenerator()
        let requests = remaining.map {
            GenerationRequest(promptTokens: prompts[$0].tokens, maxNewTokens: settings.maxNewTokens)
        }
        try generator.generate(requests, batchSize: settings.batchSize, onFinish: { local, result in
            let index = remaining[local]
            let decoded = tokenizer.decode(prompts[index].tokens + result.tokens, skipSpecialTokens: true)
            let text = answer(decoded: decoded, promptText: prompts[index].text)
            answers[index] = text
            try journal?.record(index: index, output: text)
            done += 1
            onAnswer?(done, items.count)
        })
        let rows = items.indices.map {
            rewardTokens(items[$0].item.prefix, answer: answers[$0]!, tokenizer: rewardTokenizer, maxTokens: settings.rewardMaxTokens)
        }
        let logits = try rewardScorer.rewards(rows)
        let samples = items.indices.map { index in
            Sample(file: items[index].file, place: items[index].item.place, answer: answers[index]!,
                   reward: 1 / (1 + exp(-Double(logits[index]))),
                   bleu: BLEU.characterBLEU(hypothesis: answers[index]!, reference: items[index].item.reference))
        }
        return Report(samples: samples, files: files.map(\.name))
    }
}
