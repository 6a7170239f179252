import Foundation

// MARK: - CPO / SimPO settings and the per-pair loss

/// The loss types of TRL 1.16's CPOTrainer. CPO: Xu et al. 2024, "Contrastive Preference Optimization" (eq. 3);
/// SimPO: Meng et al. 2024, "SimPO: Simple Preference Optimization with a Reference-Free Reward" (eq. 6).
public enum CPOLossType: String, CaseIterable, Sendable {
    /// −(1−ε) log σ(β h) − ε log σ(−β h), h = log p(chosen) − log p(rejected), summed log-probs.
    case sigmoid
    /// relu(1 − β h), summed log-probs.
    case hinge
    /// (h − 1/(2β))², length-averaged log-probs.
    case ipo
    /// The sigmoid loss on h − γ/β with length-averaged log-probs (SimPO).
    case simpo

    /// TRL averages the completion log-probabilities over their tokens for ipo and simpo, sums them otherwise.
    public var averagesLogProbabilities: Bool { self == .ipo || self == .simpo }
}

public struct CPOSettings: Sendable, Equatable {
    public var lossType: CPOLossType = .sigmoid
    public var beta = 0.1
    public var labelSmoothing = 0.0
    /// Weight of the NLL (behaviour-cloning) term on the chosen completions; 0 turns it off (pure SimPO).
    public var cpoAlpha = 1.0
    /// SimPO's target reward margin γ.
    public var simpoGamma = 0.5

    public init(lossType: CPOLossType = .sigmoid, beta: Double = 0.1, labelSmoothing: Double = 0, cpoAlpha: Double = 1,
                simpoGamma: Double = 0.5) {
        self.lossType = lossType
        self.beta = beta
        self.labelSmoothing = labelSmoothing
        self.cpoAlpha = cpoAlpha
        self.simpoGamma = simpoGamma
    }

    func validate() throws {
        guard beta > 0, beta.isFinite else { throw HoneError.invalidArgument("\(OptionName("beta")) must be positive") }
        guard labelSmoothing >= 0, labelSmoothing < 0.5 else {
            throw HoneError.invalidArgument("\(OptionName("label_smoothing")) must lie in [0, 0.5)")
        }
        guard cpoAlpha >= 0, cpoAlpha.isFinite else { throw HoneError.invalidArgument("\(OptionName("cpo_alpha")) must be a non-negative number") }
        guard simpoGamma.isFinite else { throw HoneError.invalidArgument("\(OptionName("simpo_gamma")) must be a number") }
    }
}

public enum CPOLoss {
    /// One pair's preference loss and its derivatives with respect to the chosen and rejected log-probabilities
    /// (summed or averaged as the loss type says).
    public static func pair(chosen: Double, rejected: Double, settings: CPOSettings) -> (loss: Double, chosen: Double, rejected: Double) {
        let beta = settings.beta, epsilon = settings.labelSmoothing
        var h = chosen - rejected
        switch settings.lossType {
        case .sigmoid, .simpo:
            if settings.lossType == .simpo { h -= settings.simpoGamma / beta }
            let x = beta * h
            let loss = -(1 - epsilon) * DPOLoss.logSigmoid(x) - epsilon * DPOLoss.logSigmoid(-x)
            let dh = beta * (-(1 - epsilon) * DPOLoss.sigmoid(-x) + epsilon * DPOLoss.sigmoid(x))
            return (loss, dh, -dh)
        case .hinge:
            let margin = 1 - beta * h
            return (max(0, margin), margin > 0 ? -beta : 0, margin > 0 ? beta : 0)
        case .ipo:
            let difference = h - 1 / (2 * beta)
            return (difference * difference, 2 * difference, -2 * difference)
        }
    }
}

// MARK: - The objective

/// CPO and SimPO as TRL's CPOTrainer computes them: each pair runs as two rows in one pass, [prompt + chosen…;
/// prompt + rejected…] (tokenized as ORPO's, `PreferencePairRows`); a completion's log-probability is summed over
/// its tokens, or averaged for ipo and simpo. A micro-batch's loss is the mean of the pairs' losses plus α × the
/// token mean of −log p over its chosen completions (the NLL covers completion tokens only); the step's loss is the
/// mean over its micro-batches. No reference model.
public final class ContrastivePreferenceObjective: TrainingObjective {
    public let name: String
    public let settings: CPOSettings
    let training: [PreferencePairRows]
    let validation: [PreferencePairRows]
    public var dataDescription = ""

    public init(name: String = "cpo", training: [PreferencePairRows], validation: [PreferencePairRows], settings: CPOSettings) throws {
        try settings.validate()
        self.name = name
        self.training = training
        self.validation = validation
        self.settings = settings
    }

    public var trainingCount: Int { training.count }
    public var validationCount: Int { validation.count }
    public func length(ofTrainingExample index: Int) -> Int { training[index].tokenCount }
    public func prepare(adapters: AdapterSet, fromInitAdapter: Bool) -> String? { "reference-free" }
    public var settingsFingerprint: String {
        "cpo_loss=\(settings.lossType.rawValue) beta=\(settings.beta) label_smoothing=\(settings.labelSmoothing) cpo_alpha=\(settings.cpoAlpha) simpo_gamma=\(settings.simpoGamma) \(dataDescription)"
    }

    private func completionLogProbability(_ logprobs: [Float]) -> Double {
        let sum = logprobs.reduce(0.0) { $0 + Double($1) }
        return settings.lossType.averagesLogProbabilities ? sum / Double(max(1, logprobs.count)) : sum
    }

    /// Loss, metrics and ∂L/∂logp of one micro-batch of pairs; `weight` = pairs.count / step.count.
    func microBatch(_ pairs: [PreferencePairRows], logprobs: [[Float]], weight: Double, stepCount: Int)
        -> (loss: Double, coefficients: [[Float]], metrics: [String: Double]) {
        let n = pairs.count
        let pairWeight = 1 / Double(stepCount)
        var loss = 0.0
        var metrics: [String: Double] = [:]
        var coefficients = logprobs.map { Array(repeating: Float(0), count: $0.count) }
        // TRL skips the NLL (and logs 0) when α is 0.
        if settings.cpoAlpha != 0 {
            let tokens = (0..<n).reduce(0) { $0 + logprobs[$1].count }
            let nll = -(0..<n).reduce(0.0) { $0 + logprobs[$1].reduce(0.0) { $0 + Double($1) } } / Double(max(1, tokens))
            loss += weight * settings.cpoAlpha * nll
            metrics["nll_loss"] = weight * nll
            for index in 0..<n {
                coefficients[index] = Array(repeating: Float(-weight * settings.cpoAlpha / Double(max(1, tokens))), count: logprobs[index].count)
            }
        } else {
            metrics["nll_loss"] = 0
        }
        for index in 0..<n {
            let chosen = completionLogProbability(logprobs[index]), rejected = completionLogProbability(logprobs[n + index])
            let result = CPOLoss.pair(chosen: chosen, rejected: rejected, settings: settings)
            loss += pairWeight * result.loss
            let chosenScale = settings.lossType.averagesLogProbabilities ? 1 / Double(logprobs[index].count) : 1
            let rejectedScale = settings.lossType.averagesLogProbabilities ? 1 / Double(logprobs[n + index].count) : 1
            coefficients[index] = coefficients[index].map { $0 + Float(pairWeight * result.chosen * chosenScale) }
            coefficients[n + index] = coefficients[n + index].map { $0 + Float(pairWeight * result.rejected * rejectedScale) }
            let chosenReward = settings.beta * chosen, rejectedReward = settings.beta * rejected
            metrics["rewards/chosen", default: 0] += pairWeight * chosenReward
            metrics["rewards/rejected", default: 0] += pairWeight * rejectedReward
            metrics["rewards/accuracies", default: 0] += pairWeight * (chosenReward > rejectedReward ? 1 : 0)
            metrics["rewards/margins", default: 0] += pairWeight * (chosenReward - rejectedReward)
            metrics["logps/chosen", default: 0] += pairWeight * chosen
            metrics["logps/rejected", default: 0] += pairWeight * rejected
        }
        return (loss, coefficients, metrics)
    }

    private static func rows(_ pairs: [PreferencePairRows]) -> [TargetedRow] { pairs.map(\.chosenRow) + pairs.map(\.rejectedRow) }

    public func accumulate(microBatch: [Int], step: [Int], engine: TrainingEngine) throws -> MicroBatchResult {
        let pairs = microBatch.map { training[$0] }
        let rows = Self.rows(pairs)
        var result: (loss: Double, coefficients: [[Float]], metrics: [String: Double]) = (0, [], [:])
        try engine.accumulateGradients(rows) { logprobs in
            result = self.microBatch(pairs, logprobs: logprobs, weight: Double(pairs.count) / Double(step.count), stepCount: step.count)
            return result.coefficients
        }
        return MicroBatchResult(loss: result.loss, tokens: rows.reduce(0) { $0 + $1.tokens.count }, metrics: result.metrics)
    }

    /// Completion log-probabilities (summed or averaged as the loss type says) of `pairs` as the model stands.
    public func evaluate(_ pairs: [PreferencePairRows], engine: TrainingEngine) throws -> [(chosen: Double, rejected: Double)] {
        let logprobs = try engine.logProbabilities(Self.rows(pairs))
        return pairs.indices.map { (completionLogProbability(logprobs[$0]), completionLogProbability(logprobs[pairs.count + $0])) }
    }

    public func evaluateTraining(engine: TrainingEngine) throws -> [(chosen: Double, rejected: Double)] {
        try evaluate(training, engine: engine)
    }

    public func validationLoss(engine: TrainingEngine, microBatchSize: Int) throws -> Double {
        guard !validation.isEmpty else { return .nan }
        var total = 0.0
        let size = max(1, microBatchSize)
        for start in stride(from: 0, to: validation.count, by: size) {
            let chunk = Array(validation[start..<min(validation.count, start + size)])
            let logprobs = try engine.logProbabilities(Self.rows(chunk))
            total += microBatch(chunk, logprobs: logprobs, weight: Double(chunk.count) / Double(validation.count),
                                stepCount: validation.count).loss
        }
        return total
    }
}
