import Foundation

// MARK: - KTO

/// Everything `hone train kto` needs before the first step: the base model, the objective, a summary, and TRL's
/// advice when the weighted class ratio leaves [1, 4/3].
public struct KTOTrainingSetup {
    public let base: LoadedModel
    public let objective: KahnemanTverskyObjective
    public let summary: String
    public let warning: String?

    public init(baseModel: String, dataPath: String, maxLength: Int?, settings: KTOSettings, microBatchSize: Int,
                validationSize: Int, seed: UInt64) throws {
        if let maxLength, maxLength < 2 { throw HoneError.invalidArgument("\(OptionName("max_length")) must be at least 2") }
        // TRL refuses a per-device batch of 1: the mismatched row would be the example itself.
        guard microBatchSize >= 2 else {
            throw HoneError.invalidArgument("kto needs \(OptionName("micro_batch_size")) of at least 2: the KL estimate pairs each prompt with another example's completion in the micro-batch")
        }
        try settings.validate()
        let (records, pairs, dropped) = try UnpairedPreferenceData.read(path: dataPath)
        base = try LoadedModel.open(baseModel)
        let tokenizer = try base.tokenizer()
        var examples: [UnpairedExample] = []
        var tooLong: [String] = []
        for record in records {
            if let example = UnpairedExample.tokenize(record, tokenizer: tokenizer, maxLength: maxLength) {
                examples.append(example)
            } else {
                tooLong.append(record.place)
            }
        }
        guard !examples.isEmpty else {
            throw HoneError.invalidArgument("\(dataPath): every prompt fills \(OptionName("max_length")) \(maxLength ?? 0); raise it")
        }
        try DataOrder.requireValidationSizeNotNegative(validationSize)
        guard validationSize < examples.count else {
            throw HoneError.invalidArgument("\(OptionName("val_set_size")) \(validationSize) leaves no training data: \(examples.count) usable completions")
        }
        let held = Set(try DataOrder.validationSplit(count: examples.count, validationSize: validationSize, seed: seed).validation)
        let training = examples.indices.filter { !held.contains($0) }.map { examples[$0] }
        objective = try KahnemanTverskyObjective(training: training, validation: examples.indices.filter { held.contains($0) }.map { examples[$0] },
                                                 settings: settings, maxLength: maxLength)
        objective.dataDescription = "max_length=\(maxLength.map(String.init) ?? "-")"
        let desirable = training.filter(\.desirable).count
        var summary = "data: "
        summary += pairs.map { "\($0) pairs from \(dataPath) split into \(records.count) completions" } ?? "\(records.count) completions from \(dataPath)"
        summary += " → \(training.count) training (\(desirable) desirable, \(training.count - desirable) undesirable), \(objective.validationCount) validation; "
        summary += "β \(settings.beta), λ_D \(settings.desirableWeight), λ_U \(settings.undesirableWeight); KL from mismatched pairs within each micro-batch of \(microBatchSize)"
        if !dropped.isEmpty { summary += "; \(dropped.count) pairs dropped without a shared \"\\n\\nAssistant:\" prompt" }
        if !tooLong.isEmpty {
            summary += "; \(tooLong.count) dropped because the prompt fills \(OptionName("max_length")) (\(tooLong.prefix(5).joined(separator: ", "))\(tooLong.count > 5 ? ", …" : ""))"
        }
        self.summary = summary
        warning = KTOLoss.weightAdvice(desirable: desirable, undesirable: training.count - desirable, settings: settings)
    }
}

// MARK: - ORPO, CPO, SimPO

/// Pairs tokenized as TRL's ORPO and CPO trainers do (`PreferencePairRows`), split into training and validation.
public struct ReferenceFreePairs {
    public let base: LoadedModel
    public let training: [PreferencePairRows]
    public let validation: [PreferencePairRows]
    public let summary: String
    /// Pairs longer than the model's context, if any.
    public let warning: String?

    public init(baseModel: String, dataPath: String, maxLength: Int?, validationSize: Int, seed: UInt64) throws {
        if let maxLength, maxLength < 2 { throw HoneError.invalidArgument("\(OptionName("max_length")) must be at least 2") }
        let (records, dropped) = try PreferenceData.read(path: dataPath)
        base = try LoadedModel.open(baseModel)
        let tokenizer = try base.tokenizer()
        var pairs: [PreferencePairRows] = []
        var tooLong: [String] = []
        for record in records {
            if let pair = PreferencePairRows.tokenize(record, tokenizer: tokenizer, maxLength: maxLength) {
                pairs.append(pair)
            } else {
                tooLong.append(record.place)
            }
        }
        guard !pairs.isEmpty else {
            throw HoneError.invalidArgument("\(dataPath): every pair's prompt fills \(OptionName("max_length")) \(maxLength ?? 0); raise it")
        }
        try DataOrder.requireValidationSizeNotNegative(validationSize)
        guard validationSize < pairs.count else {
            throw HoneError.invalidArgument("\(OptionName("val_set_size")) \(validationSize) leaves no training data: \(pairs.count) usable pairs")
        }
        let held = Set(try DataOrder.validationSplit(count: pairs.count, validationSize: validationSize, seed: seed).validation)
        training = pairs.indices.filter { !held.contains($0) }.map { pairs[$0] }
        validation = pairs.indices.filter { held.contains($0) }.map { pairs[$0] }
        let tokens = pairs.reduce(0) { $0 + $1.tokenCount }
        var summary = "data: \(records.count + dropped.count) records from \(dataPath) → \(training.count) training pairs, \(validation.count) validation; \(tokens) tokens"
        if !dropped.isEmpty {
            summary += "; \(dropped.count) dropped without a shared \"\\n\\nAssistant:\" prompt (\(dropped.prefix(5).joined(separator: ", "))\(dropped.count > 5 ? ", …" : ""))"
        }
        if !tooLong.isEmpty {
            summary += "; \(tooLong.count) dropped because the prompt fills \(OptionName("max_length")) (\(tooLong.prefix(5).joined(separator: ", "))\(tooLong.count > 5 ? ", …" : ""))"
        }
        self.summary = summary
        warning = pairsPastContext(pairs.map { max($0.chosenPrompt.count + $0.chosen.count, $0.rejectedPrompt.count + $0.rejected.count) },
                                   model: base)
    }

}
