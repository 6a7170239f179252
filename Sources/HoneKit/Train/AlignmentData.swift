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

/// A tokenized preference pair: the prompt (with the tokenizer's BOS) and each completion (EOS last).
public struct PreferenceExample: Sendable, Equatable {
    public var prompt: [Int32]
    public var chosen: [Int32]
    public var rejected: [Int32]

    public init(prompt: [Int32], chosen: [Int32], rejected: [Int32]) {
        self.prompt = prompt
        self.chosen = chosen
        self.rejected = rejected
    }

    /// prompt + completion, scoring every completion token (position t − 1 predicts token t).
    static func row(prompt: [Int32], completion: [Int32]) -> TargetedRow {
        let tokens = prompt + completion
        let first = max(1, prompt.count)
        return TargetedRow(tokens: tokens, targets: (first..<max(first, tokens.count)).map { ($0 - 1, tokens[$0]) })
    }

    public var chosenRow: TargetedRow { Self.row(prompt: prompt, completion: chosen) }
    public var rejectedRow: TargetedRow { Self.row(prompt: prompt, completion: rejected) }
    public var tokenCount: Int { 2 * prompt.count + chosen.count + rejected.count }

    /// TRL's tokenization (HEAD, methods.md §4.4): the prompt, prompt + chosen and prompt + rejected are encoded
    /// on their own (BOS as the tokenizer adds it) with the EOS id after each completion; the completion starts
    /// where the encoded prompt stops being a prefix of both (a token merging across the boundary moves it left).
    /// Truncation:
    /// * without `maxPromptLength` (TRL HEAD, `keep_start`): each row is cut to `maxLength` tokens; a pair whose
    ///   prompt alone fills `maxLength` gives nil (TRL drops it).
    /// * with `maxPromptLength` (TRL v0.7.11's rule, `keep_end`): when prompt + the longer completion exceed
    ///   `maxLength`, the prompt keeps its BOS and its last `maxPromptLength − 1` tokens, then completions are cut
    ///   to `maxLength − prompt length`. (v0.7.11 cuts answers to `maxLength − maxPromptLength`, the same when the
    ///   prompt was long; Hone always keeps the BOS, which v0.7.11 can lose.)
    public static func tokenize(_ record: PreferenceRecord, tokenizer: Tokenizer, maxLength: Int?,
                                maxPromptLength: Int?) -> PreferenceExample? {
        let promptIDs = tokenizer.encode(record.prompt, addSpecialTokens: true, parseSpecial: false)
        func full(_ completion: String) -> [Int32] {
            var ids = tokenizer.encode(record.prompt + completion, addSpecialTokens: true, parseSpecial: false)
            if let eos = tokenizer.eosTokenID, ids.last != eos { ids.append(eos) }
            return ids
        }
        let chosenIDs = full(record.chosen), rejectedIDs = full(record.rejected)
        func commonPrefix(_ a: [Int32], _ b: [Int32]) -> Int {
            var count = 0
            while count < min(a.count, b.count), a[count] == b[count] { count += 1 }
            return count
        }
        let promptLength = min(commonPrefix(promptIDs, chosenIDs), commonPrefix(promptIDs, rejectedIDs))
        var example = PreferenceExample(prompt: Array(promptIDs[..<promptLength]), chosen: Array(chosenIDs[promptLength...]),
                                        rejected: Array(rejectedIDs[promptLength...]))
        guard let maxLength else { return example }
        if let maxPromptLength {
            let longer = max(example.chosen.count, example.rejected.count)
            if example.prompt.count + longer > maxLength {
                let hasBOS = tokenizer.bosTokenID != nil && example.prompt.first == tokenizer.bosTokenID
                let keep = max(0, maxPromptLength - (hasBOS ? 1 : 0))
                let body = example.prompt.dropFirst(hasBOS ? 1 : 0)
                example.prompt = (hasBOS ? [example.prompt[0]] : []) + Array(body.suffix(keep))
                let room = max(0, maxLength - example.prompt.count)
                example.chosen = Array(example.chosen.prefix(room))
                example.rejected = Array(example.rejected.prefix(room))
            }
            return example.prompt.count < maxLength ? example : nil
        }
        guard example.prompt.count < maxLength else { return nil }
        let room = maxLength - example.prompt.count
        example.chosen = Array(example.chosen.prefix(room))
        example.rejected = Array(example.rejected.prefix(room))
        return example
    }
}

// MARK: - Judgments (CUT)

public enum JudgmentData {
    /// Reads CUT training data: a JSON array or JSONL of `{instruction, input?, output, judgment, score?}` (what
    /// `hone data judgments` writes, CUT's `data/iter/*.json`). `judgment` must be present: a string, or null for
    /// an acceptable reply.
    public static func read(path: String) throws -> [JudgmentRecord] {
        try readDataRecords(path: path).map { try JudgmentConversion.cutRecord($0) }
    }
}

/// How CUT's training text wraps the prompt (methods.md §1.3b).
public enum CUTPromptWrap: String, CaseIterable, Sendable {
    /// The released code: the formatted prompt is handed to the Alpaca prompter as the instruction, so it is
    /// wrapped a second time in `prompt_no_input`.
    case double
    /// The paper: a single `prompt_no_input` / `prompt_no_input_judge`.
    case single
}

/// One CUT training instance (methods.md §1.2): an Align-P row alone, or an Align-N row (prompt with the
/// judgment) paired with its Misalign row (the same reply, prompt without the judgment). Each row scores its
/// response tokens, EOS included; a pair scores the same number of tokens in both rows, aligned one to one.
public struct CUTExample: Sendable {
    public var like: TargetedRow
    public var misalign: TargetedRow?

    public var tokenCount: Int { like.tokens.count + (misalign?.tokens.count ?? 0) }

    /// CUT's `tokenize` + `generate_and_tokenize_prompt` (finetune_unlikelihood.py, methods.md §1.4): the full
    /// text (BOS as the tokenizer adds it) is cut from the LEFT to `cutoffLength` ids so the response stays whole,
    /// then EOS is appended unless it is already last; the prompt alone is tokenized and cut the same way (no EOS),
    /// and its length, less the difference in cut tokens, is masked (train_on_inputs False).
    static func row(promptPieces: [PromptPiece], output: String, tokenizer: Tokenizer, template: PromptTemplate,
                    cutoffLength: Int) -> TargetedRow {
        var fullPieces = promptPieces
        if !output.isEmpty { fullPieces.append(PromptPiece(.content, output)) }
        func tokenize(_ pieces: [PromptPiece], appendEOS: Bool) -> (ids: [Int32], overflow: Int) {
            var ids = template.encode(pieces, with: tokenizer)
            let overflow = max(0, ids.count - cutoffLength)
            ids = Array(ids.suffix(cutoffLength))
            if appendEOS, let eos = tokenizer.eosTokenID, ids.last != eos { ids.append(eos) }
            return (ids, overflow)
        }
        let full = tokenize(fullPieces, appendEOS: true)
        let user = tokenize(promptPieces, appendEOS: false)
        let promptLength = user.ids.count - (full.overflow - user.overflow)
        var labels = full.ids
        if promptLength > 0 {
            labels.replaceSubrange(0..<min(promptLength, labels.count),
                                   with: repeatElement(TrainingExample.ignoredLabel, count: min(promptLength, labels.count)))
        }
        return TargetedRow(tokens: full.ids, labels: labels)
    }

    /// The instance CUT builds from one record. `place` names the record in errors.
    public static func make(_ record: JudgmentRecord, tokenizer: Tokenizer, template: PromptTemplate, cutoffLength: Int,
                            wrap: CUTPromptWrap, place: String) throws -> CUTExample {
        func prompt(judgment: String?) -> [PromptPiece] {
            let inner = template.pieces(instruction: record.instruction, input: record.input, judgment: judgment)
            switch wrap {
            case .single: return inner
            case .double: return template.pieces(instruction: PromptTemplate.join(inner), input: nil, judgment: nil)
            }
        }
        let negative = record.isNegativeForCUT
        let like = row(promptPieces: prompt(judgment: negative ? record.judgment : nil), output: record.output,
                       tokenizer: tokenizer, template: template, cutoffLength: cutoffLength)
        guard negative else { return CUTExample(like: like, misalign: nil) }
        let misalign = row(promptPieces: prompt(judgment: nil), output: record.output, tokenizer: tokenizer,
                           template: template, cutoffLength: cutoffLength)
        guard like.targets.count == misalign.targets.count else {
            throw HoneError.invalidArgument("\(place): the response tokenizes to \(like.targets.count) tokens after the judgment prompt "
                + "but \(misalign.targets.count) after the plain prompt; CUT needs them aligned one to one")
        }
        return CUTExample(like: like, misalign: misalign)
    }
}

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
            let count = length ?? suffixes.count
            if length == nil { length = count }
            guard suffixes.count >= count else {
                throw record.error(rankingLength == nil
                    ? "\(suffixes.count) responses, but earlier records have \(count); give --ranking-len"
                    : "\(suffixes.count) responses, fewer than --ranking-len \(count)")
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

    /// One PRO row (ScalingAlignment data_manager.py, methods.md §2.6): the prompt, when longer than
    /// `maxPromptLength` ids (BOS included), keeps its BOS and last ids and goes back to text (the decode/encode
    /// round trip); the row is `prompt + " " + suffix` with BOS, then EOS (Hone's EOS policy: every response ends
    /// with a scored EOS, where the reference scores one only for rows shorter than the longest of the batch), cut on
    /// the right to `blockSize`. Scored: every token after the prompt's ids. Nil when no token is left to score.
    public static func row(turns: [String], suffix: String, tokenizer: Tokenizer, blockSize: Int, maxPromptLength: Int) -> TargetedRow? {
        var prompt = promptText(turns)
        var promptIDs = tokenizer.encode(prompt, addSpecialTokens: true, parseSpecial: false)
        if promptIDs.count > maxPromptLength {
            let hasBOS = tokenizer.bosTokenID != nil && promptIDs.first == tokenizer.bosTokenID
            let body = promptIDs.dropFirst(hasBOS ? 1 : 0)
            prompt = tokenizer.decode(Array(body.suffix(max(0, maxPromptLength - (hasBOS ? 1 : 0)))), skipSpecialTokens: true)
            promptIDs = tokenizer.encode(prompt, addSpecialTokens: true, parseSpecial: false)
        }
        var tokens = tokenizer.encode(prompt + " " + suffix, addSpecialTokens: true, parseSpecial: false)
        if let eos = tokenizer.eosTokenID, tokens.last != eos { tokens.append(eos) }
        tokens = Array(tokens.prefix(blockSize))
        let first = max(1, promptIDs.count)
        guard first < tokens.count else { return nil }
        return TargetedRow(tokens: tokens, targets: (first..<tokens.count).map { ($0 - 1, tokens[$0]) })
    }
}

// MARK: - Validation split

/// The same seeded hold-out as `hone train sft`: the same seed always holds out the same records.
func seededValidationSplit(count: Int, validationSize: Int, seed: UInt64) -> Set<Int> {
    var generator = SplitMix64(seed: seed ^ 0x5A17)
    return Set(Array(0..<count).shuffled(using: &generator).prefix(validationSize))
}
