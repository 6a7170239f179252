import Foundation

/// Everything `hone train sft` needs before the first step: the base model, the tokenized data split into
/// training and validation sets, and a one-line summary of it.
public struct SupervisedTrainingSetup {
    public let base: LoadedModel
    public let objective: SupervisedObjective
    public let summary: String

    public init(baseModel: String, dataPath: String, templateName: String, cutoffLength: Int, trainOnInputs: Bool,
                addEOSToken: Bool, validationSize: Int, seed: UInt64) throws {
        guard cutoffLength >= 2 else { throw HoneError.invalidArgument("--cutoff-len must be at least 2") }
        let records = try AlpacaData.read(path: dataPath)
        guard !records.isEmpty else { throw HoneError.malformedFile(path: dataPath, message: "no training records") }
        guard validationSize >= 0, validationSize < records.count else {
            throw HoneError.invalidArgument("--val-set-size \(validationSize) leaves no training data: \(dataPath) has \(records.count) records")
        }
        let template = try PromptTemplate.resolve(templateName)
        base = try LoadedModel.open(baseModel)
        let tokenizer = try TokenizerLoader.load(modelPath: baseModel)
        let examples = tokenizeForTraining(records, tokenizer: tokenizer, template: template, cutoffLength: cutoffLength,
                                           trainOnInputs: trainOnInputs, addEOSToken: addEOSToken)
        // A seeded split (alpaca-lora uses datasets' train_test_split(seed=42), whose numpy permutation we do not
        // reproduce): the same seed always holds out the same records.
        var generator = SplitMix64(seed: seed ^ 0x5A17)
        let order = Array(examples.indices).shuffled(using: &generator)
        let validationIndices = Set(order.prefix(validationSize))
        var training: [TargetedRow] = []
        var validation: [TargetedRow] = []
        for (index, example) in examples.enumerated() {
            let row = TargetedRow(tokens: example.inputIDs, labels: example.labels)
            if validationIndices.contains(index) { validation.append(row) } else { training.append(row) }
        }
        let untrained = training.filter { $0.targets.isEmpty }.count
        objective = SupervisedObjective(training: training, validation: validation)
        let tokens = training.reduce(0) { $0 + $1.tokens.count }
        let targets = training.reduce(0) { $0 + $1.targets.count }
        let truncated = examples.filter { $0.inputIDs.count >= cutoffLength }.count
        var summary = "data: \(records.count) records from \(dataPath) → \(training.count) training, \(validation.count) validation; "
        summary += "\(tokens) training tokens, \(targets) trained; \(truncated) cut at --cutoff-len \(cutoffLength)"
        if untrained > 0 { summary += "; \(untrained) with no trained token (ignored by the loss)" }
        self.summary = summary
    }
}
