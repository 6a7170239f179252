import Foundation

// MARK: - DPO settings and the per-pair loss

/// DPO's loss variants as TRL names them (methods.md §4.2).
public enum DPOLossType: String, CaseIterable, Sendable {
    /// −log σ(β h); with label smoothing ε > 0, TRL v0.7.11's conservative DPO: −(1−ε) log σ(β h) − ε log σ(−β h).
    case sigmoid
    /// (h̄ − 1/(2β))², h̄ from per-token averaged log-probabilities.
    case ipo
    /// relu(1 − β h).
    case hinge
    /// Robust DPO: [−(1−ε) log σ(β h) + ε log σ(−β h)] / (1 − 2ε).
    case robust
}

public struct DPOSettings: Sendable, Equatable {
    public var lossType: DPOLossType = .sigmoid
    public var beta = 0.1
    public var labelSmoothing = 0.0
    /// Compute every reference log-probability once before the first step instead of in each micro-batch.
    public var precomputeReferenceLogProbabilities = false

    public init(lossType: DPOLossType = .sigmoid, beta: Double = 0.1, labelSmoothing: Double = 0,
                precomputeReferenceLogProbabilities: Bool = false) {
        self.lossType = lossType
        self.beta = beta
        self.labelSmoothing = labelSmoothing
        self.precomputeReferenceLogProbabilities = precomputeReferenceLogProbabilities
    }

    func validate() throws {
        guard beta > 0, beta.isFinite else { throw HoneError.invalidArgument("\(OptionName("beta")) must be positive") }
        guard labelSmoothing >= 0, labelSmoothing < 0.5 else {
            throw HoneError.invalidArgument("\(OptionName("label_smoothing")) must lie in [0, 0.5)")
        }
    }
}

/// The summed log-probabilities of one pair's completions under the policy and the reference.
public struct DPOPairLogProbabilities: Sendable {
    public var chosen: Double
    public var rejected: Double
    public var referenceChosen: Double
    public var referenceRejected: Double
    /// Completion tokens (IPO's per-token average).
    public var chosenTokens: Int
    public var rejectedTokens: Int

    public init(chosen: Double, rejected: Double, referenceChosen: Double, referenceRejected: Double,
                chosenTokens: Int, rejectedTokens: Int) {
        self.chosen = chosen
        self.rejected = rejected
        self.referenceChosen = referenceChosen
        self.referenceRejected = referenceRejected
        self.chosenTokens = chosenTokens
        self.rejectedTokens = rejectedTokens
    }
}

public enum DPOLoss {
    /// One pair's loss and its derivatives with respect to the summed policy log-probabilities of the chosen and
    /// the rejected completion (each completion token's log-prob gets that derivative).
    public static func pair(_ pair: DPOPairLogProbabilities, settings: DPOSettings) -> (loss: Double, chosen: Double, rejected: Double) {
        let beta = settings.beta, epsilon = settings.labelSmoothing
        let h = (pair.chosen - pair.referenceChosen) - (pair.rejected - pair.referenceRejected)
        let x = beta * h
        switch settings.lossType {
        case .sigmoid:
            let loss = -(1 - epsilon) * logSigmoid(x) - epsilon * logSigmoid(-x)
            let dh = beta * (-(1 - epsilon) * sigmoid(-x) + epsilon * sigmoid(x))
            return (loss, dh, -dh)
        case .robust:
            let loss = (-(1 - epsilon) * logSigmoid(x) + epsilon * logSigmoid(-x)) / (1 - 2 * epsilon)
            let dh = beta * (-(1 - epsilon) * sigmoid(-x) - epsilon * sigmoid(x)) / (1 - 2 * epsilon)
            return (loss, dh, -dh)
        case .hinge:
            let margin = 1 - x
            // torch's relu has a zero derivative at 0.
            return (max(0, margin), margin > 0 ? -beta : 0, margin > 0 ? beta : 0)
        case .ipo:
            let chosenTokens = Double(max(1, pair.chosenTokens)), rejectedTokens = Double(max(1, pair.rejectedTokens))
            let average = (pair.chosen - pair.referenceChosen) / chosenTokens - (pair.rejected - pair.referenceRejected) / rejectedTokens
            let difference = average - 1 / (2 * beta)
            return (difference * difference, 2 * difference / chosenTokens, -2 * difference / rejectedTokens)
        }
    }

    /// log σ(x) without overflow.
    static func logSigmoid(_ x: Double) -> Double { x >= 0 ? -log1p(exp(-x)) : x - log1p(exp(x)) }
    static func sigmoid(_ x: Double) -> Double { x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x)) }
}

// MARK: - The objective

/// DPO as TRL's DPOTrainer computes it with a PEFT policy (methods.md §4): each pair runs as two rows,
/// prompt + chosen and prompt + rejected, in one pass ([chosen…; rejected…]); a completion's log-probability is the
/// sum over its tokens; the reference is the same model with the adapter switched off (or, continuing from an
/// adapter, the base plus a frozen copy of it). The step's loss is the mean over its pairs.
public final class DirectPreferenceObjective: TrainingObjective {
    public let name = "dpo"
    public let settings: DPOSettings
    let training: [PreferenceExample]
    let validation: [PreferenceExample]
    /// The frozen reference adapters; nil: the base alone (the trained adapter switched off).
    public var reference: AdapterSet?
    private var precomputedTraining: [(chosen: Double, rejected: Double)]?
    private var precomputedValidation: [(chosen: Double, rejected: Double)]?
    /// Pairs per reference pass when precomputing.
    var precomputeChunk = 8
    /// How the pairs were tokenized (for the checkpoint fingerprint).
    public var dataDescription = ""

    public init(training: [PreferenceExample], validation: [PreferenceExample], settings: DPOSettings) throws {
        try settings.validate()
        self.training = training
        self.validation = validation
        self.settings = settings
    }

    public var trainingCount: Int { training.count }
    public var validationCount: Int { validation.count }
    public func length(ofTrainingExample index: Int) -> Int { training[index].tokenCount }

    /// Continuing from an adapter, the reference is the base plus a frozen copy of where it started (TRL's "ref"
    /// adapter); otherwise the base with the trained adapter switched off.
    public func prepare(adapters: AdapterSet, fromInitAdapter: Bool) -> String? {
        reference = fromInitAdapter ? adapters.copy() : nil
        return "reference: " + (fromInitAdapter ? "base + frozen \(OptionName("init_adapter"))" : "base (adapter off)")
    }

    public var settingsFingerprint: String {
        "dpo_loss=\(settings.lossType.rawValue) beta=\(settings.beta) label_smoothing=\(settings.labelSmoothing) reference=\(reference == nil ? "base" : "init-adapter") \(dataDescription)"
    }

    private static func sums(_ logprobs: [[Float]]) -> [Double] {
        logprobs.map { $0.reduce(0.0) { $0 + Double($1) } }
    }

    /// Reference sums of `pairs` in one pass: [chosen…; rejected…].
    private func referenceSums(_ pairs: [PreferenceExample], engine: TrainingEngine) throws -> [(chosen: Double, rejected: Double)] {
        let sums = Self.sums(try engine.logProbabilities(pairs.map(\.chosenRow) + pairs.map(\.rejectedRow), reference: reference))
        return pairs.indices.map { (sums[$0], sums[pairs.count + $0]) }
    }

    private func precompute(_ pairs: [PreferenceExample], engine: TrainingEngine) throws -> [(chosen: Double, rejected: Double)] {
        var result: [(chosen: Double, rejected: Double)] = []
        for start in stride(from: 0, to: pairs.count, by: precomputeChunk) {
            result += try referenceSums(Array(pairs[start..<min(pairs.count, start + precomputeChunk)]), engine: engine)
        }
        return result
    }

    private func trainingReference(_ indices: [Int], engine: TrainingEngine) throws -> [(chosen: Double, rejected: Double)] {
        guard settings.precomputeReferenceLogProbabilities else { return try referenceSums(indices.map { training[$0] }, engine: engine) }
        if precomputedTraining == nil { precomputedTraining = try precompute(training, engine: engine) }
        return indices.map { precomputedTraining![$0] }
    }

    public func accumulate(microBatch: [Int], step: [Int], engine: TrainingEngine) throws -> MicroBatchResult {
        let pairs = microBatch.map { training[$0] }
        let references = try trainingReference(microBatch, engine: engine)
        let rows = pairs.map(\.chosenRow) + pairs.map(\.rejectedRow)
        let weight = 1 / Double(step.count)
        var loss = 0.0
        var metrics: [String: Double] = [:]
        try engine.accumulateGradients(rows) { logprobs in
            let sums = Self.sums(logprobs)
            var coefficients = [[Float]](repeating: [], count: rows.count)
            for index in pairs.indices {
                let values = DPOPairLogProbabilities(
                    chosen: sums[index], rejected: sums[pairs.count + index], referenceChosen: references[index].chosen,
                    referenceRejected: references[index].rejected, chosenTokens: rows[index].targets.count,
                    rejectedTokens: rows[pairs.count + index].targets.count)
                let result = DPOLoss.pair(values, settings: settings)
                loss += weight * result.loss
                coefficients[index] = Array(repeating: Float(weight * result.chosen), count: rows[index].targets.count)
                coefficients[pairs.count + index] = Array(repeating: Float(weight * result.rejected),
                                                          count: rows[pairs.count + index].targets.count)
                Self.addMetrics(values, beta: settings.beta, weight: weight, to: &metrics)
            }
            return coefficients
        }
        return MicroBatchResult(loss: loss, tokens: rows.reduce(0) { $0 + $1.tokens.count }, metrics: metrics)
    }

    /// TRL's logged figures (methods.md §4.2), each pair weighted so that a step's sums are its means.
    static func addMetrics(_ pair: DPOPairLogProbabilities, beta: Double, weight: Double, to metrics: inout [String: Double]) {
        let chosenReward = beta * (pair.chosen - pair.referenceChosen)
        let rejectedReward = beta * (pair.rejected - pair.referenceRejected)
        metrics["rewards/chosen", default: 0] += weight * chosenReward
        metrics["rewards/rejected", default: 0] += weight * rejectedReward
        metrics["rewards/accuracies", default: 0] += weight * (chosenReward > rejectedReward ? 1 : 0)
        metrics["rewards/margins", default: 0] += weight * (chosenReward - rejectedReward)
        metrics["logps/chosen", default: 0] += weight * pair.chosen
        metrics["logps/rejected", default: 0] += weight * pair.rejected
    }

    /// Policy and reference log-probabilities of pairs without gradients (evaluation, tests).
    public func evaluate(_ pairs: [PreferenceExample], references: [(chosen: Double, rejected: Double)]? = nil,
                         engine: TrainingEngine, microBatchSize: Int) throws -> [DPOPairLogProbabilities] {
        var result: [DPOPairLogProbabilities] = []
        let size = max(1, microBatchSize)
        for start in stride(from: 0, to: pairs.count, by: size) {
            let chunk = Array(pairs[start..<min(pairs.count, start + size)])
            let rows = chunk.map(\.chosenRow) + chunk.map(\.rejectedRow)
            let sums = Self.sums(try engine.logProbabilities(rows))
            let chunkReferences = try references.map { Array($0[start..<start + chunk.count]) } ?? referenceSums(chunk, engine: engine)
            for index in chunk.indices {
                result.append(DPOPairLogProbabilities(
                    chosen: sums[index], rejected: sums[chunk.count + index], referenceChosen: chunkReferences[index].chosen,
                    referenceRejected: chunkReferences[index].rejected, chosenTokens: rows[index].targets.count,
                    rejectedTokens: rows[chunk.count + index].targets.count))
            }
        }
        return result
    }

    /// The training pairs' log-probabilities as the model stands (tests: reward accuracy on the training pairs).
    public func evaluateTraining(engine: TrainingEngine, microBatchSize: Int) throws -> [DPOPairLogProbabilities] {
        try evaluate(training, engine: engine, microBatchSize: microBatchSize)
    }

    public func validationLoss(engine: TrainingEngine, microBatchSize: Int) throws -> Double {
        guard !validation.isEmpty else { return .nan }
        if settings.precomputeReferenceLogProbabilities, precomputedValidation == nil {
            precomputedValidation = try precompute(validation, engine: engine)
        }
        let pairs = try evaluate(validation, references: precomputedValidation, engine: engine, microBatchSize: microBatchSize)
        return pairs.reduce(0.0) { $0 + DPOLoss.pair($1, settings: settings).loss } / Double(pairs.count)
    }
}

// MARK: - Tokenized pairs

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
