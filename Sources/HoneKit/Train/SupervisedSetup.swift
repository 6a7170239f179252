import Foundation

/// Everything `hone train sft` needs before the first step: the base model, the tokenized data split into
/// training and validation sets, and a one-line summary of it.
public struct SupervisedTrainingSetup {
    public let base: LoadedModel
    public let objective: SupervisedObjective
    public let summary: String

    public init(baseModel: String, dataPath: String, templateName: String, cutoffLength: Int, trainOnInputs: Bool,
                addEOSToken: Bool, validationSize: Int, seed: UInt64,
                cacheDirectory: String? = TokenizedDataCache.defaultDirectory) throws {
        guard cutoffLength >= 2 else { throw HoneError.invalidArgument("--cutoff-len must be at least 2") }
        let template = try PromptTemplate.resolve(templateName)
        base = try LoadedModel.open(baseModel)
        // Tokenized examples are cached (LZ4) under a key of the data's bytes, the tokenizer, the template and
        // the settings, so a second run over the same data starts at once.
        let cache = cacheDirectory.map { TokenizedDataCache(directory: $0) }
        let key = try TokenizedDataCache.key(dataFile: dataPath, tokenizerSource: baseModel, template: template,
                                             cutoffLength: cutoffLength, trainOnInputs: trainOnInputs, addEOSToken: addEOSToken)
        var cached = false
        let examples: [TrainingExample]
        if let hit = cache?.load(key: key) {
            examples = hit
            cached = true
        } else {
            let records = try AlpacaData.read(path: dataPath)
            guard !records.isEmpty else { throw HoneError.malformedFile(path: dataPath, message: "no training records") }
            let tokenizer = try TokenizerLoader.load(modelPath: baseModel)
            examples = tokenizeForTraining(records, tokenizer: tokenizer, template: template, cutoffLength: cutoffLength,
                                           trainOnInputs: trainOnInputs, addEOSToken: addEOSToken)
            try? cache?.store(examples, key: key)
        }
        guard validationSize >= 0, validationSize < examples.count else {
            throw HoneError.invalidArgument("--val-set-size \(validationSize) leaves no training data: \(dataPath) has \(examples.count) records")
        }
        // alpaca-lora: train_test_split(test_size=N, shuffle=True, seed=42); same structure, Hone's generator.
        let split = try DataOrder.validationSplit(count: examples.count, validationSize: validationSize, seed: seed)
        let rows = examples.map { TargetedRow(tokens: $0.inputIDs, labels: $0.labels) }
        let training = split.train.sorted().map { rows[$0] }
        let validation = split.validation.map { rows[$0] }
        let untrained = training.filter { $0.targets.isEmpty }.count
        objective = SupervisedObjective(training: training, validation: validation)
        let tokens = training.reduce(0) { $0 + $1.tokens.count }
        let targets = training.reduce(0) { $0 + $1.targets.count }
        let truncated = examples.filter { $0.inputIDs.count >= cutoffLength }.count
        var summary = "data: \(examples.count) records from \(dataPath)\(cached ? " (tokenized, from the cache)" : "") → \(training.count) training, \(validation.count) validation; "
        summary += "\(tokens) training tokens, \(targets) trained; \(truncated) cut at --cutoff-len \(cutoffLength)"
        if untrained > 0 { summary += "; \(untrained) with no trained token (ignored by the loss)" }
        self.summary = summary
    }
}
