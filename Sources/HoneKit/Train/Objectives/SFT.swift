import Foundation

/// SFT as alpaca-lora trains it: the mean token cross-entropy over every labelled token of an optimizer step
/// (transformers' behaviour since it counts the items of the whole accumulated batch).
public final class SupervisedObjective: TrainingObjective {
    public let name = "sft"
    let training: [TargetedRow]
    let validation: [TargetedRow]

    public init(training: [TargetedRow], validation: [TargetedRow]) {
        self.training = training
        self.validation = validation
    }

    /// How the rows were made (cutoff, train_on_inputs, add_eos_token), for the checkpoint fingerprint.
    public var dataDescription = ""
    public var settingsFingerprint: String { dataDescription }

    public var trainingCount: Int { training.count }
    public var validationCount: Int { validation.count }
    public func length(ofTrainingExample index: Int) -> Int { training[index].tokens.count }

    public func accumulate(microBatch: [Int], step: [Int], engine: TrainingEngine) throws -> MicroBatchResult {
        let stepTargets = step.reduce(0) { $0 + training[$1].targets.count }
        guard stepTargets > 0 else { return MicroBatchResult(loss: 0, tokens: 0) }
        let rows = microBatch.map { training[$0] }
        let coefficient = -1 / Float(stepTargets)
        let logprobs = try engine.accumulateGradients(
            rows, fixedCoefficients: rows.map { Array(repeating: coefficient, count: $0.targets.count) })
        let sum = logprobs.reduce(0.0) { $0 + $1.reduce(0.0) { $0 + Double($1) } }
        return MicroBatchResult(loss: -sum / Double(stepTargets), tokens: rows.reduce(0) { $0 + $1.tokens.count })
    }

    public func validationLoss(engine: TrainingEngine, microBatchSize: Int) throws -> Double {
        var sum = 0.0
        var count = 0
        var start = 0
        while start < validation.count {
            let rows = Array(validation[start..<min(validation.count, start + max(1, microBatchSize))])
            for row in try engine.logProbabilities(rows) {
                sum += row.reduce(0.0) { $0 + Double($1) }
                count += row.count
            }
            start += microBatchSize
        }
        return count > 0 ? -sum / Double(count) : .nan
    }
}

// MARK: - Tokenization for training

/// One tokenized training row: `inputIDs` and `labels` of equal length, HF's convention: `labels[t]` is the
/// token the model should predict at position t from positions < t (the loss pairs logits[t-1] with
/// labels[t], so labels[0] is never used), `ignoredLabel` (-100) where nothing is learnt.
public struct TrainingExample: Sendable, Equatable, Hashable {
    public static let ignoredLabel: Int32 = -100

    public var inputIDs: [Int32]
    public var labels: [Int32]

    public init(inputIDs: [Int32], labels: [Int32]) {
        precondition(inputIDs.count == labels.count, "inputIDs and labels must have the same length")
        self.inputIDs = inputIDs
        self.labels = labels
    }

    /// Positions t ≥ 1 whose label is learnt: the number of terms this row adds to a token-mean loss.
    public var trainedTokenCount: Int { labels.dropFirst().reduce(0) { $0 + ($1 == Self.ignoredLabel ? 0 : 1) } }
}

/// Alpaca-LoRA's `generate_and_tokenize_prompt` (tloen/alpaca-lora finetune.py @ 8bb8579, methods.md §3.2):
///
/// * The training text is the template's prompt for (instruction, input) immediately followed by the output
///   (`prompt_input` when the input is non-empty, else `prompt_no_input`; an empty output adds nothing).
/// * It is tokenized like the HF tokenizer call `tokenizer(text, truncation=True, max_length=cutoff_len)`:
///   the tokenizer's BOS (when it adds one and the template allows it) and the text ids, cut on the right to
///   `cutoffLength` ids in all; a tokenizer that appends EOS itself keeps it as the last id within the limit.
/// * EOS is appended when the last id is not EOS and there are fewer than `cutoffLength` ids: ALWAYS for the
///   full text, whatever `addEOSToken` says. So a row cut at the limit has no EOS.
/// * `trainOnInputs` true: labels = ids. False: the first `promptLength` labels are -100, where
///   `promptLength` is the length of the prompt alone tokenized the same way with EOS appended iff
///   `addEOSToken`, minus 1 iff `addEOSToken`. That is the prompt's own length unless the prompt alone
///   reaches the cut: then it is `cutoffLength - 1` with `addEOSToken` (the row's last id stays trained) and
///   `cutoffLength` without (the whole row is masked).
/// * The BOS is part of the prompt: masked with it (its label is never used anyway, see `TrainingExample`).
///
/// Differences from the Python, all on inputs the reference cannot handle: special-token names written in the
/// data ("</s>") stay text, as methods.md §8 asks (the slow Llama tokenizer would turn them into ids); a
/// tokenizer without an EOS gets none appended and `addEOSToken` then subtracts nothing (Python would append
/// None and fail); if the prompt alone were longer than the full text (a merge across the boundary that
/// shortens it), the Python would make labels longer than the ids — here every label is masked instead.
public func tokenizeForTraining(_ record: AlpacaRecord, tokenizer: Tokenizer, template: PromptTemplate,
                                cutoffLength: Int, trainOnInputs: Bool, addEOSToken: Bool) throws -> TrainingExample {
    precondition(cutoffLength >= 1, "cutoffLength must be at least 1")
    let promptPieces = try template.pieces(instruction: record.instruction, input: record.input)
    var fullPieces = promptPieces
    if !record.output.isEmpty { fullPieces.append(PromptPiece(.content, record.output)) }

    let eos = tokenizer.eosTokenID
    /// finetune.py's `tokenize(prompt, add_eos_token)`.
    func tokenize(_ pieces: [PromptPiece], appendEOS: Bool) -> [Int32] {
        var ids = template.encode(pieces, with: tokenizer)
        let suffix: [Int32] = tokenizer.addsEOS && eos != nil ? [eos!] : []
        if ids.count + suffix.count > cutoffLength { ids = Array(ids.prefix(max(0, cutoffLength - suffix.count))) }
        ids += suffix
        if appendEOS, let eos, ids.last != eos, ids.count < cutoffLength { ids.append(eos) }
        return ids
    }

    let inputIDs = tokenize(fullPieces, appendEOS: true)
    var labels = inputIDs
    if !trainOnInputs {
        let measuresWithEOS = addEOSToken && eos != nil
        var promptLength = tokenize(promptPieces, appendEOS: measuresWithEOS).count
        if measuresWithEOS { promptLength -= 1 }
        let masked = min(promptLength, labels.count)
        labels.replaceSubrange(0..<masked, with: repeatElement(TrainingExample.ignoredLabel, count: masked))
    }
    return TrainingExample(inputIDs: inputIDs, labels: labels)
}

/// `tokenizeForTraining` over many records, in order.
public func tokenizeForTraining(_ records: [AlpacaRecord], tokenizer: Tokenizer, template: PromptTemplate,
                                cutoffLength: Int, trainOnInputs: Bool, addEOSToken: Bool) throws -> [TrainingExample] {
    try records.map {
        try tokenizeForTraining($0, tokenizer: tokenizer, template: template, cutoffLength: cutoffLength,
                            trainOnInputs: trainOnInputs, addEOSToken: addEOSToken)
    }
}
