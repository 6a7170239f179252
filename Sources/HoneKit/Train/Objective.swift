import Foundation

/// What one micro-batch contributed to its optimizer step.
public struct MicroBatchResult: Sendable {
    /// This micro-batch's share of the step's loss (the shares of a step add up to the step's loss).
    public var loss: Double
    /// Tokens run through the model (prompt and response), for tokens/s.
    public var tokens: Int
    /// Objective-specific figures, already weighted so that they add up over a step (e.g. rewards/chosen).
    public var metrics: [String: Double] = [:]

    public init(loss: Double, tokens: Int, metrics: [String: Double] = [:]) {
        self.loss = loss
        self.tokens = tokens
        self.metrics = metrics
    }
}

/// A training objective: which rows a batch of examples runs, and how their target log-probabilities make a loss
/// (SFT, CUT, DPO and PRO differ only here).
public protocol TrainingObjective: AnyObject {
    var name: String { get }
    var trainingCount: Int { get }
    var validationCount: Int { get }
    /// Tokens of training example `index` (for length grouping).
    func length(ofTrainingExample index: Int) -> Int
    /// Forward + backward of `microBatch` (training example indices), gradients scaled so that the step made of
    /// `step` (all of its examples) gets the objective's loss.
    func accumulate(microBatch: [Int], step: [Int], engine: TrainingEngine) throws -> MicroBatchResult
    /// The objective's loss over the whole validation set, without gradients.
    func validationLoss(engine: TrainingEngine, microBatchSize: Int) throws -> Double
    /// Objective-specific settings that change the loss (β, λ, ...), for the checkpoint fingerprint: a run resumed
    /// with other settings is refused.
    var settingsFingerprint: String { get }
}

extension TrainingObjective {
    public var settingsFingerprint: String { "" }
}

// MARK: - Supervised fine-tuning

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
