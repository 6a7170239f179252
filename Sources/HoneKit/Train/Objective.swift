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
    /// Called once the adapters exist, before any checkpoint is restored: an objective with a reference model wires
    /// it here. Returns a note for the run's summary, if any.
    func prepare(adapters: AdapterSet, fromInitAdapter: Bool) -> String?
    /// True when the examples must be visited in their order every epoch (KTO: TRL's sequential sampler, which its
    /// in-batch KL pairing relies on); false for a seeded shuffle.
    var trainsInOrder: Bool { get }
    /// Figures of the last `validationLoss` pass beyond the loss ("eval_accuracy", ...), for metrics.jsonl.
    var validationMetrics: [String: Double] { get }
    /// True when the objective trains a score head (a reward model): only then may an adapter bring one.
    var trainsScoreHead: Bool { get }
}

extension TrainingObjective {
    public var settingsFingerprint: String { "" }
    public func prepare(adapters: AdapterSet, fromInitAdapter: Bool) -> String? { nil }
    public var trainsInOrder: Bool { false }
    public var validationMetrics: [String: Double] { [:] }
    public var trainsScoreHead: Bool { false }
}
