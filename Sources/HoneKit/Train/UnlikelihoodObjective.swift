import Foundation

// MARK: - CUT settings and the micro-batch loss

public struct CUTSettings: Sendable, Equatable {
    /// λ: a Misalign token is "unlikely" when p(y_t | x, j, y_<t) / p(y_t | x, y_<t) > λ.
    public var threshold = 1.1
    /// α: weight of the unlikelihood term log(1 − p).
    public var weightUnlike = 1.0

    public init(threshold: Double = 1.1, weightUnlike: Double = 1.0) {
        self.threshold = threshold
        self.weightUnlike = weightUnlike
    }
}

/// The loss of one CUT micro-batch (modeling_llama_unlikelihood.py, methods.md §1.6) from the target log-probs of
/// its rows, and its derivatives with respect to each of them.
public enum CUTLoss {
    public struct Result: Sendable {
        public var loss: Double
        /// ∂loss/∂logp, shaped like the input.
        public var likeGradients: [[Double]]
        public var misalignGradients: [[Double]]
        public var likelihood: Double
        public var unlikelihood: Double
        /// Misalign tokens in U, and all Misalign tokens.
        public var unlikelyTokens: Int
        public var misalignTokens: Int
    }

    /// `like`: the target log-probs of the first-half rows (Align-P and Align-N rows); `misalign[i]` pairs with
    /// `like[pairOf[i]]` token for token.
    /// * L_like = −mean over every like token of log p.
    /// * For each Misalign token: r = p_A / p_B (no gradient); U = {r > λ}; L_unlike = −(1/N) Σ [t∉U] log p_B +
    ///   α [t∈U] log(1 − p_B), 1 − p_B raised to 1e-5 when it is 0; N counts every Misalign token.
    /// * L = (L_like + L_unlike) / 2 when the micro-batch has a Misalign row, else L_like.
    /// For tokens outside U the log-prob is used as it is (the reference takes log of the softmax, where a
    /// probability that underflows to 0 would become log 1e-5).
    public static func microBatch(like: [[Float]], misalign: [[Float]], pairOf: [Int], settings: CUTSettings) -> Result {
        let likeCount = like.reduce(0) { $0 + $1.count }
        let misalignCount = misalign.reduce(0) { $0 + $1.count }
        let half = misalign.isEmpty ? 1.0 : 0.5
        var likeSum = 0.0
        var likeGradients = like.map { [Double](repeating: 0, count: $0.count) }
        if likeCount > 0 {
            for (row, values) in like.enumerated() {
                for (slot, value) in values.enumerated() {
                    likeSum += Double(value)
                    likeGradients[row][slot] = -half / Double(likeCount)
                }
            }
        }
        let likelihood = likeCount > 0 ? -likeSum / Double(likeCount) : 0
        var unlikeSum = 0.0
        var unlikely = 0
        var misalignGradients = misalign.map { [Double](repeating: 0, count: $0.count) }
        let alpha = settings.weightUnlike
        for (row, values) in misalign.enumerated() {
            let partner = like[pairOf[row]]
            precondition(partner.count == values.count, "a Misalign row must align with its Align-N row")
            for (slot, value) in values.enumerated() {
                let ratio = exp(Double(partner[slot]) - Double(value))
                if ratio > settings.threshold {
                    unlikely += 1
                    let probability = exp(Double(value))
                    var complement = 1 - probability
                    if complement == 0 { complement = 1e-5 }
                    unlikeSum += -alpha * log(complement)
                    misalignGradients[row][slot] = half * alpha * probability / complement / Double(misalignCount)
                } else {
                    unlikeSum += -Double(value)
                    misalignGradients[row][slot] = -half / Double(misalignCount)
                }
            }
        }
        let unlikelihood = misalignCount > 0 ? unlikeSum / Double(misalignCount) : 0
        let loss = misalign.isEmpty ? likelihood : half * (likelihood + unlikelihood)
        return Result(loss: loss, likeGradients: likeGradients, misalignGradients: misalignGradients, likelihood: likelihood,
                      unlikelihood: unlikelihood, unlikelyTokens: unlikely, misalignTokens: misalignCount)
    }
}

// MARK: - The objective

/// CUT (methods.md §1): each micro-batch runs its Align-P / Align-N rows and the Misalign rows of its pairs in one
/// pass with the adapter training (no frozen reference); the micro-batch loss is `CUTLoss.microBatch`. As with the
/// reference's HF Trainer, a step's loss is the mean of its micro-batches' losses (each weighted by its share of the
/// step's instances, which is 1 / accumulation steps when they are full).
public final class ContrastiveUnlikelihoodObjective: TrainingObjective {
    public let name = "cut"
    public let settings: CUTSettings
    let training: [CUTExample]
    let validation: [CUTExample]
    /// Recorded in the fingerprint (how the rows were built).
    let dataDescription: String

    public init(training: [CUTExample], validation: [CUTExample], settings: CUTSettings, dataDescription: String = "") {
        self.training = training
        self.validation = validation
        self.settings = settings
        self.dataDescription = dataDescription
    }

    public var trainingCount: Int { training.count }
    public var validationCount: Int { validation.count }
    public func length(ofTrainingExample index: Int) -> Int { training[index].tokenCount }
    public var settingsFingerprint: String {
        "threshold=\(settings.threshold) weight_unlike=\(settings.weightUnlike) \(dataDescription)"
    }

    /// Rows of some instances: like rows first, then the Misalign rows, with each Misalign row's like row.
    private static func layout(_ examples: [CUTExample]) -> (rows: [TargetedRow], likeCount: Int, pairOf: [Int]) {
        var rows = examples.map(\.like)
        var pairOf: [Int] = []
        for (index, example) in examples.enumerated() {
            if let misalign = example.misalign {
                rows.append(misalign)
                pairOf.append(index)
            }
        }
        return (rows, examples.count, pairOf)
    }

    public func accumulate(microBatch: [Int], step: [Int], engine: TrainingEngine) throws -> MicroBatchResult {
        let examples = microBatch.map { training[$0] }
        let (rows, likeCount, pairOf) = Self.layout(examples)
        let weight = Double(microBatch.count) / Double(step.count)
        var result: CUTLoss.Result?
        try engine.accumulateGradients(rows) { logprobs in
            let computed = CUTLoss.microBatch(like: Array(logprobs[..<likeCount]), misalign: Array(logprobs[likeCount...]),
                                              pairOf: pairOf, settings: self.settings)
            result = computed
            return (computed.likeGradients + computed.misalignGradients).map { $0.map { Float(weight * $0) } }
        }
        guard let result else { return MicroBatchResult(loss: 0, tokens: 0) }
        var metrics = ["cut/likelihood": weight * result.likelihood, "cut/unlikelihood": weight * result.unlikelihood]
        if result.misalignTokens > 0 {
            metrics["cut/unlikely_fraction"] = weight * Double(result.unlikelyTokens) / Double(result.misalignTokens)
        }
        return MicroBatchResult(loss: weight * result.loss, tokens: rows.reduce(0) { $0 + $1.tokens.count }, metrics: metrics)
    }

    /// The CUT loss of `examples` in micro-batches, without gradients (the adapter in inference mode).
    public func loss(of examples: [CUTExample], engine: TrainingEngine, microBatchSize: Int) throws -> Double {
        var total = 0.0
        let size = max(1, microBatchSize)
        for start in stride(from: 0, to: examples.count, by: size) {
            let chunk = Array(examples[start..<min(examples.count, start + size)])
            let (rows, likeCount, pairOf) = Self.layout(chunk)
            let logprobs = try engine.logProbabilities(rows)
            let result = CUTLoss.microBatch(like: Array(logprobs[..<likeCount]), misalign: Array(logprobs[likeCount...]),
                                            pairOf: pairOf, settings: settings)
            total += result.loss * Double(chunk.count)
        }
        return total / Double(max(1, examples.count))
    }

    public func validationLoss(engine: TrainingEngine, microBatchSize: Int) throws -> Double {
        validation.isEmpty ? .nan : try loss(of: validation, engine: engine, microBatchSize: microBatchSize)
    }
}
