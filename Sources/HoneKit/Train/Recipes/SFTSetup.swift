import Foundation

/// Everything `hone train sft` needs before the first step: the base model, the tokenized data split into
/// training and validation sets, and a one-line summary of it.
public struct SupervisedTrainingSetup {
    public let base: LoadedModel
    public let objective: SupervisedObjective
    public let summary: String
    /// The prompt template the data was formatted with (what the adapter records).
    public let template: PromptTemplate

    public init(baseModel: String, dataPath: String, templateName: String, cutoffLength: Int, trainOnInputs: Bool,
                addEOSToken: Bool, validationSize: Int, seed: UInt64,
                cacheDirectory: String? = TokenizedDataCache.defaultDirectory) throws {
        guard cutoffLength >= 2 else { throw HoneError.invalidArgument("\(OptionName("cutoff_len")) must be at least 2") }
        base = try LoadedModel.open(baseModel)
        let template = try base.promptTemplate(templateName)
        self.template = template
        // Tokenized examples are cached (LZ4) under a key of the data's bytes, the tokenizer, the template and
        // the settings, so a second run over the same data starts at once.
        let cache = cacheDirectory.map { TokenizedDataCache(directory: $0) }
        var cached = false
        let examples: [TrainingExample]
        var isPretokenized = false
        if let pretokenized = try PretokenizedData.read(path: dataPath, cutoffLength: cutoffLength,
                                                        vocabularySize: base.config.vocabularySize) {
            examples = pretokenized
            isPretokenized = true
        } else if let key = try? TokenizedDataCache.key(dataFile: dataPath, tokenizerSource: baseModel, template: template,
                                                         cutoffLength: cutoffLength, trainOnInputs: trainOnInputs,
                                                         addEOSToken: addEOSToken),
                  let hit = cache?.load(key: key) {
            examples = hit
            cached = true
        } else {
            let records = try AlpacaData.read(path: dataPath)
            guard !records.isEmpty else { throw HoneError.malformedFile(path: dataPath, message: "no training records") }
            let tokenizer = try base.tokenizer()
            examples = try tokenizeForTraining(records, tokenizer: tokenizer, template: template, cutoffLength: cutoffLength,
                                           trainOnInputs: trainOnInputs, addEOSToken: addEOSToken)
            if let key = try? TokenizedDataCache.key(dataFile: dataPath, tokenizerSource: baseModel, template: template,
                                                     cutoffLength: cutoffLength, trainOnInputs: trainOnInputs,
                                                     addEOSToken: addEOSToken) {
                try? cache?.store(examples, key: key)
            }
        }
        try DataOrder.requireValidationSizeNotNegative(validationSize)
        guard validationSize < examples.count else {
            throw HoneError.invalidArgument("\(OptionName("val_set_size")) \(validationSize) leaves no training data: \(dataPath) has \(examples.count) records")
        }
        // alpaca-lora: train_test_split(test_size=N, shuffle=True, seed=42); same structure, Hone's generator.
        let split = try DataOrder.validationSplit(count: examples.count, validationSize: validationSize, seed: seed)
        let rows = examples.map { TargetedRow(tokens: $0.inputIDs, labels: $0.labels) }
        let training = split.train.sorted().map { rows[$0] }
        // A validation row with no trained token has no loss to add: held out alone it made the validation loss
        // 0/0, which stopped the run as if training had diverged. It is left out (and named) instead.
        let unscored = split.validation.filter { rows[$0].targets.isEmpty }
        let validation = split.validation.filter { !rows[$0].targets.isEmpty }.map { rows[$0] }
        let untrained = split.train.sorted().filter { rows[$0].targets.isEmpty }
        guard untrained.count < training.count else {
            let why = isPretokenized ? "every label is -100"
                : trainOnInputs ? "every row is empty" : "with \(OptionName("train_on_inputs")) false, each prompt fills \(OptionName("cutoff_len")) \(cutoffLength)"
            throw HoneError.malformedFile(path: dataPath, message: "no training record has a trained token (\(why))")
        }
        objective = SupervisedObjective(training: training, validation: validation)
        objective.dataDescription = isPretokenized ? "pretokenized cutoff=\(cutoffLength)"
            : "cutoff=\(cutoffLength) train_on_inputs=\(trainOnInputs) add_eos_token=\(addEOSToken)"
        let tokens = training.reduce(0) { $0 + $1.tokens.count }
        let targets = training.reduce(0) { $0 + $1.targets.count }
        let truncated = examples.indices.filter { examples[$0].inputIDs.count >= cutoffLength }
        /// "records 3, 17, …" (1-based, as in the data file).
        func named(_ indices: [Int]) -> String {
            let shown = indices.prefix(5).map { String($0 + 1) }.joined(separator: ", ")
            return (indices.count == 1 ? "record " : "records ") + shown + (indices.count > 5 ? ", …" : "")
        }
        var summary = "data: \(examples.count) records from \(dataPath)\(cached ? " (tokenized, from the cache)" : "") → \(training.count) training, \(validation.count) validation; "
        summary += "\(tokens) training tokens, \(targets) trained"
        if !truncated.isEmpty { summary += "\nwarning: \(truncated.count) cut on the right at \(OptionName("cutoff_len")) \(cutoffLength) (\(named(truncated)))" }
        // Positions past the model's context were never trained (RoPE extrapolates poorly); TRL and alpaca-lora cut
        // rows silently, so a --cutoff-len above the context is named here.
        let context = base.config.maxPositionEmbeddings
        let pastContext = examples.indices.filter { examples[$0].inputIDs.count > context }
        if !pastContext.isEmpty {
            summary += "\nwarning: \(pastContext.count) longer than the model's context of \(context) tokens, trained at positions it never saw (\(named(pastContext))); \(OptionName("cutoff_len")) \(context) keeps them within it"
        }
        if !untrained.isEmpty {
            summary += "\nwarning: \(untrained.count) with no trained token left, ignored by the loss (\(named(untrained)))"
        }
        if !unscored.isEmpty {
            summary += "\nwarning: \(unscored.count) held out for validation with no trained token left, not validated on (\(named(unscored.sorted())))"
        }
        self.summary = summary
    }
}

/// Training data that is already token ids: JSON Lines (or a JSON array) whose records hold `input_ids` (and
/// optionally `labels`, HF's convention with -100 for untrained positions; all trained when absent). No tokenizer or
/// template is involved; rows longer than the cutoff are cut on the right.
public enum PretokenizedData {
    /// The examples, or nil when the file is not pre-tokenized data (its first record names no `input_ids`).
    public static func read(path: String, cutoffLength: Int, vocabularySize: Int) throws -> [TrainingExample]? {
        // FileHandle opens a directory, and its read then traps: name it as every other reader does.
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            throw HoneError.io(path: path, message: "is a directory, expected a file")
        }
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        let head = (try? handle.read(upToCount: 4096)) ?? Data()
        try? handle.close()
        guard let text = String(data: head, encoding: .utf8) ?? String(data: head.dropLast(3), encoding: .utf8),
              let opening = text.first(where: { !$0.isWhitespace && $0 != "\u{FEFF}" }), opening == "{" || opening == "[",
              let ids = text.range(of: "\"input_ids\"") else { return nil }
        // The first record must be the one naming input_ids (an Alpaca record whose text mentions it is not).
        let firstRecordEnd = text.range(of: "}")?.lowerBound ?? text.endIndex
        guard ids.lowerBound < firstRecordEnd || text.range(of: "\"instruction\"") == nil else { return nil }
        var examples: [TrainingExample] = []
        for record in try readDataRecords(path: path) {
            let location: String
            switch record.location {
            case .line(let line): location = "\(path):\(line)"
            case .arrayIndex(let index): location = "\(path): record \(index)"
            }
            // Token ids index the embedding, labels the logits: each is checked against the vocabulary before it is
            // used (a label of 5000 in a 2,048-token vocabulary read past the logits; 10^11 trapped as an Int32).
            func ids(_ key: String, allowing ignored: Int? = nil) throws -> [Int32]? {
                guard let value = record.object[key] else { return nil }
                guard let list = value as? [Any] else { throw record.error("\"\(key)\" must be a list of token ids") }
                return try list.map { item in
                    guard let id = jsonInteger(item) else { throw record.error("\"\(key)\" must hold integers") }
                    guard id == ignored || (id >= 0 && id < vocabularySize) else {
                        throw HoneError.tokenOutOfRange(token: id, vocabularySize: vocabularySize, location: "\(location) \"\(key)\"")
                    }
                    return Int32(id)
                }
            }
            guard var inputIDs = try ids("input_ids") else { throw record.error("missing \"input_ids\"") }
            // An empty row has no position to run (held out for validation, it crashed that pass).
            guard !inputIDs.isEmpty else { throw record.error("\"input_ids\" is empty") }
            var labels = try ids("labels", allowing: Int(TrainingExample.ignoredLabel)) ?? inputIDs
            guard labels.count == inputIDs.count else { throw record.error("\"labels\" and \"input_ids\" differ in length") }
            inputIDs = Array(inputIDs.prefix(cutoffLength))
            labels = Array(labels.prefix(cutoffLength))
            examples.append(TrainingExample(inputIDs: inputIDs, labels: labels))
        }
        guard !examples.isEmpty else { throw HoneError.malformedFile(path: path, message: "no records") }
        return examples
    }
}
