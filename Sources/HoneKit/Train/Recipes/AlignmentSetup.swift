import Foundation

// MARK: - CUT

/// Everything `hone train cut` needs before the first step: the base model, the CUT instances, a summary.
public struct CUTTrainingSetup {
    public let base: LoadedModel
    public let objective: ContrastiveUnlikelihoodObjective
    public let summary: String

    /// `downsample` nil = off (CUT's -1); otherwise, when there are more Align-P records than
    /// `int(negatives × downsample)`, a seeded random choice of that many is kept, in their original order (CUT uses
    /// Python's `random.sample` with seed 42, which this does not reproduce).
    public init(baseModel: String, dataPath: String, templateName: String, cutoffLength: Int, wrap: CUTPromptWrap,
                settings: CUTSettings, downsample: Double?, validationSize: Int, seed: UInt64) throws {
        guard cutoffLength >= 2 else { throw HoneError.invalidArgument("\(OptionName("cutoff_len")) must be at least 2") }
        // A NaN or infinite weight or threshold made every loss NaN, reported as a diverging run.
        guard settings.threshold > 0, settings.threshold.isFinite else {
            throw HoneError.invalidArgument("\(OptionName("threshold")) must be a positive finite number, not \(settings.threshold)")
        }
        guard settings.weightUnlike >= 0, settings.weightUnlike.isFinite else {
            throw HoneError.invalidArgument("\(OptionName("weight_unlike")) must be a finite number at least 0, not \(settings.weightUnlike)")
        }
        let template = try PromptTemplate.resolve(templateName)
        guard template.supportsJudgment else {
            throw HoneError.invalidArgument("template '\(template.name)' has no judgment prompt (prompt_no_input_judge); CUT needs one, e.g. alpaca_judge")
        }
        var records = try JudgmentData.read(path: dataPath)
        let negatives = records.filter(\.isNegativeForCUT).count
        let positivesBefore = records.count - negatives
        var note = ""
        if let downsample {
            guard downsample.isFinite, downsample >= 0 else {
                throw HoneError.invalidArgument("\(OptionName("downsample")) must be a finite number at least 0, not \(downsample)")
            }
            // At most every Align-P record (a ratio of 1e19 overflowed Int).
            let keep = Int(min(Double(negatives) * downsample, Double(positivesBefore)))
            if keep < positivesBefore {
                var generator = SplitMix64(seed: seed ^ 0xD0_5A)
                let positives = records.indices.filter { !records[$0].isNegativeForCUT }
                let kept = Set(positives.shuffled(using: &generator).prefix(keep))
                records = records.indices.filter { records[$0].isNegativeForCUT || kept.contains($0) }.map { records[$0] }
                note = "; \(OptionName("downsample")) \(downsample) kept \(keep) of \(positivesBefore) Align-P"
            }
        }
        guard !records.isEmpty else {
            throw HoneError.invalidArgument("\(dataPath): no records left after \(OptionName("downsample")) \(downsample ?? -1) (\(negatives) with a judgment, \(positivesBefore) without); use \(OptionName("downsample")) off to keep every record")
        }
        try DataOrder.requireValidationSizeNotNegative(validationSize)
        guard validationSize < records.count else {
            throw HoneError.invalidArgument("\(OptionName("val_set_size")) \(validationSize) leaves no training data: \(records.count) CUT records")
        }
        base = try LoadedModel.open(baseModel)
        let tokenizer = try base.tokenizer()
        let examples = try records.enumerated().map { index, record in
            try CUTExample.make(record, tokenizer: tokenizer, template: template, cutoffLength: cutoffLength, wrap: wrap,
                                place: "\(dataPath): record \(index + 1)")
        }
        let held = Set(try DataOrder.validationSplit(count: examples.count, validationSize: validationSize, seed: seed).validation)
        let training = examples.indices.filter { !held.contains($0) }.map { examples[$0] }
        let validation = examples.indices.filter { held.contains($0) }.map { examples[$0] }
        objective = ContrastiveUnlikelihoodObjective(
            training: training, validation: validation, settings: settings,
            dataDescription: "wrap=\(wrap.rawValue) cutoff=\(cutoffLength) downsample=\(downsample.map { "\($0)" } ?? "off")")
        let pairs = training.filter { $0.misalign != nil }.count
        let cut = examples.filter { $0.like.tokens.count >= cutoffLength }.count
        var summary = "data: \(records.count) records from \(dataPath)\(note) → \(training.count) training (\(pairs) Align-N + Misalign pairs, "
        summary += "\(training.count - pairs) Align-P), \(validation.count) validation; \(cut) cut on the left at \(OptionName("cutoff_len")) \(cutoffLength); "
        summary += "prompt wrap \(wrap.rawValue); λ \(settings.threshold), α \(settings.weightUnlike)"
        self.summary = summary
    }
}

// MARK: - DPO

public struct DPOTrainingSetup {
    public let base: LoadedModel
    public let objective: DirectPreferenceObjective
    public let summary: String
    /// Pairs longer than the model's context, if any.
    public let warning: String?

    public init(baseModel: String, dataPath: String, maxLength: Int?, maxPromptLength: Int?, settings: DPOSettings,
                validationSize: Int, seed: UInt64) throws {
        if let maxLength, maxLength < 2 { throw HoneError.invalidArgument("\(OptionName("max_length")) must be at least 2") }
        if let maxPromptLength {
            guard maxPromptLength >= 1 else { throw HoneError.invalidArgument("\(OptionName("max_prompt_length")) must be positive") }
            if let maxLength, maxPromptLength >= maxLength {
                throw HoneError.invalidArgument("\(OptionName("max_prompt_length")) (\(maxPromptLength)) must be below \(OptionName("max_length")) (\(maxLength))")
            }
        }
        try settings.validate()
        let (records, dropped) = try PreferenceData.read(path: dataPath)
        base = try LoadedModel.open(baseModel)
        let tokenizer = try base.tokenizer()
        var examples: [PreferenceExample] = []
        var tooLong: [String] = []
        for record in records {
            if let example = PreferenceExample.tokenize(record, tokenizer: tokenizer, maxLength: maxLength, maxPromptLength: maxPromptLength),
               !example.chosen.isEmpty, !example.rejected.isEmpty {
                examples.append(example)
            } else {
                tooLong.append(record.place)
            }
        }
        guard !examples.isEmpty else {
            throw HoneError.invalidArgument("\(dataPath): every pair's prompt fills \(OptionName("max_length")) \(maxLength ?? 0); raise it or set \(OptionName("max_prompt_length"))")
        }
        try DataOrder.requireValidationSizeNotNegative(validationSize)
        guard validationSize < examples.count else {
            throw HoneError.invalidArgument("\(OptionName("val_set_size")) \(validationSize) leaves no training data: \(examples.count) usable pairs")
        }
        let held = Set(try DataOrder.validationSplit(count: examples.count, validationSize: validationSize, seed: seed).validation)
        objective = try DirectPreferenceObjective(
            training: examples.indices.filter { !held.contains($0) }.map { examples[$0] },
            validation: examples.indices.filter { held.contains($0) }.map { examples[$0] }, settings: settings)
        objective.dataDescription = "max_length=\(maxLength.map(String.init) ?? "-") max_prompt_length=\(maxPromptLength.map(String.init) ?? "-")"
        let tokens = examples.reduce(0) { $0 + $1.tokenCount }
        var summary = "data: \(records.count + dropped.count) records from \(dataPath) → \(objective.trainingCount) training pairs, "
        summary += "\(objective.validationCount) validation; \(tokens) tokens; loss \(settings.lossType.rawValue), β \(settings.beta)"
        if settings.labelSmoothing > 0 { summary += ", label smoothing \(settings.labelSmoothing)" }
        if !dropped.isEmpty {
            summary += "; \(dropped.count) dropped without a shared \"\\n\\nAssistant:\" prompt (\(dropped.prefix(5).joined(separator: ", "))\(dropped.count > 5 ? ", …" : ""))"
        }
        if !tooLong.isEmpty {
            summary += "; \(tooLong.count) dropped because the prompt fills \(OptionName("max_length")) (\(tooLong.prefix(5).joined(separator: ", "))\(tooLong.count > 5 ? ", …" : ""))"
        }
        self.summary = summary
        // Without --max-length nothing is cut, so a pair can run past the positions the model was trained on.
        warning = pairsPastContext(examples.map { $0.prompt.count + max($0.chosen.count, $0.rejected.count) }, model: base)
    }
}

// MARK: - PRO

public struct PROTrainingSetup {
    public let base: LoadedModel
    public let objective: RankingObjective
    public let summary: String

    public init(baseModel: String, dataPath: String, rankingLength: Int?, blockSize: Int, maxPromptLength: Int,
                sftWeight: Double, validationSize: Int, seed: UInt64) throws {
        if let rankingLength, rankingLength < 1 { throw HoneError.invalidArgument("\(OptionName("ranking_len")) must be at least 1") }
        guard sftWeight >= 0, sftWeight.isFinite else {
            throw HoneError.invalidArgument("\(OptionName("sft_weight")) must be a finite number at least 0, not \(sftWeight)")
        }
        guard blockSize >= 4 else { throw HoneError.invalidArgument("\(OptionName("cutoff_len")) must be at least 4") }
        guard maxPromptLength >= 1, maxPromptLength < blockSize else {
            throw HoneError.invalidArgument("\(OptionName("max_prompt_length")) (\(maxPromptLength)) must lie in 1..<\(OptionName("cutoff_len")) (\(blockSize))")
        }
        let records = try RankingData.read(path: dataPath, rankingLength: rankingLength)
        guard !records.isEmpty else { throw HoneError.malformedFile(path: dataPath, message: "no records") }
        base = try LoadedModel.open(baseModel)
        let tokenizer = try base.tokenizer()
        var examples: [RankingExample] = []
        var unscored: [String] = []
        for record in records {
            let rows = zip(record.prefixes, record.suffixes).map {
                RankingData.row(turns: $0, suffix: $1, tokenizer: tokenizer, blockSize: blockSize, maxPromptLength: maxPromptLength)
            }
            if rows.contains(where: { $0 == nil }) {
                unscored.append(record.place)
                continue
            }
            examples.append(RankingExample(rows: rows.map { $0! }, rewards: record.rewards, sftIndex: record.sftIndex))
        }
        guard !examples.isEmpty else {
            throw HoneError.invalidArgument("\(dataPath): no record has a response token left within \(OptionName("cutoff_len")) \(blockSize)")
        }
        try DataOrder.requireValidationSizeNotNegative(validationSize)
        guard validationSize < examples.count else {
            throw HoneError.invalidArgument("\(OptionName("val_set_size")) \(validationSize) leaves no training data: \(examples.count) usable records")
        }
        let held = Set(try DataOrder.validationSplit(count: examples.count, validationSize: validationSize, seed: seed).validation)
        let n = records[0].suffixes.count
        objective = RankingObjective(training: examples.indices.filter { !held.contains($0) }.map { examples[$0] },
                                     validation: examples.indices.filter { held.contains($0) }.map { examples[$0] },
                                     sftWeight: sftWeight,
                                     dataDescription: "ranking_len=\(n) block=\(blockSize) prompt=\(maxPromptLength)")
        let tokens = examples.reduce(0) { $0 + $1.tokenCount }
        var summary = "data: \(records.count) records from \(dataPath) → \(objective.trainingCount) training, \(objective.validationCount) validation; "
        summary += "ranking length \(n), \(tokens) tokens; "
        // With one response PRO's loss is the SFT term alone, at weight 1 (the (n−1)² scaling would make it 0).
        summary += n > 1 ? "SFT weight \(sftWeight) × (n−1)² = \(sftWeight * Double((n - 1) * (n - 1)))" : "the SFT term alone (one response per record)"
        if !unscored.isEmpty {
            summary += "; \(unscored.count) dropped with no response token within \(OptionName("cutoff_len")) (\(unscored.prefix(5).joined(separator: ", ")))"
        }
        self.summary = summary
    }
}

/// "N pairs are longer than the model's context …" when some of `lengths` (each pair's longest row) exceed it.
func pairsPastContext(_ lengths: [Int], model: LoadedModel) -> String? {
    let context = model.config.maxPositionEmbeddings
    let past = lengths.filter { $0 > context }.count
    guard past > 0 else { return nil }
    return "\(past) pairs are longer than the model's context of \(context) tokens and train at positions it never saw; "
        + "\(OptionName("max_length")) \(context) keeps them within it"
}
