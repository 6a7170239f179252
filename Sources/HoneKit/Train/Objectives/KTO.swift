import Foundation

// MARK: - KTO settings and the loss

/// KTO (Ethayarajh et al. 2024, "KTO: Model Alignment as Prospect Theoretic Optimization", eq. 7–8) as TRL 1.16's
/// KTOTrainer computes it (loss type "kto").
public struct KTOSettings: Sendable, Equatable {
    public var beta = 0.1
    /// λ_D and λ_U: weights of the desirable and the undesirable losses.
    public var desirableWeight = 1.0
    public var undesirableWeight = 1.0

    public init(beta: Double = 0.1, desirableWeight: Double = 1, undesirableWeight: Double = 1) {
        self.beta = beta
        self.desirableWeight = desirableWeight
        self.undesirableWeight = undesirableWeight
    }

    func validate() throws {
        guard beta > 0, beta.isFinite else { throw HoneError.invalidArgument("\(OptionName("beta")) must be positive") }
        guard desirableWeight >= 0, desirableWeight.isFinite else {
            throw HoneError.invalidArgument("\(OptionName("desirable_weight")) must be a non-negative number")
        }
        guard undesirableWeight >= 0, undesirableWeight.isFinite else {
            throw HoneError.invalidArgument("\(OptionName("undesirable_weight")) must be a non-negative number")
        }
        // Both at 0 make every loss 0: a run that trains nothing.
        guard desirableWeight > 0 || undesirableWeight > 0 else {
            throw HoneError.invalidArgument("\(OptionName("desirable_weight")) and \(OptionName("undesirable_weight")) cannot both be 0 (the loss would be 0)")
        }
    }
}

public enum KTOLoss {
    /// The KL estimate of a micro-batch: the mean over its mismatched rows of policy − reference summed
    /// log-probability, clamped at 0. TRL computes it without gradients, so it enters the loss as a constant.
    public static func klEstimate(policy: [Double], reference: [Double]) -> Double {
        guard !policy.isEmpty else { return 0 }
        let mean = zip(policy, reference).reduce(0.0) { $0 + ($1.0 - $1.1) } / Double(policy.count)
        return max(0, mean)
    }

    /// One completion's weighted loss and its derivative with respect to its summed policy log-probability:
    /// desirable λ_D·(1 − σ(β(r − z))), undesirable λ_U·(1 − σ(β(z − r))), r = policy − reference, z the KL estimate.
    public static func example(policy: Double, reference: Double, desirable: Bool, kl: Double,
                               settings: KTOSettings) -> (loss: Double, derivative: Double) {
        let beta = settings.beta
        let ratio = policy - reference
        if desirable {
            let s = DPOLoss.sigmoid(beta * (ratio - kl))
            return (settings.desirableWeight * (1 - s), -settings.desirableWeight * beta * s * (1 - s))
        }
        let s = DPOLoss.sigmoid(beta * (kl - ratio))
        return (settings.undesirableWeight * (1 - s), settings.undesirableWeight * beta * s * (1 - s))
    }

    /// TRL's advice when the classes are unbalanced (KTO paper eq. 8: λ_D·n_D / (λ_U·n_U) should lie in [1, 4/3]):
    /// nil when the counts are equal or either weight lies in its range, else the message with both ranges. The
    /// bounds are rounded to two decimals and use 1.33 for 4/3, as TRL prints them.
    public static func weightAdvice(desirable: Int, undesirable: Int, settings: KTOSettings) -> String? {
        guard desirable != undesirable else { return nil }
        // With one class empty no weight brings the ratio into range: say so instead of advising a weight.
        guard desirable > 0, undesirable > 0 else {
            return "\(desirable) desirable and \(undesirable) undesirable completions: with no \(desirable == 0 ? "desirable" : "undesirable") "
                + "example only one half of KTO's loss trains (the paper balances both classes)"
        }
        // A zero weight silences its class, whatever the other weight is.
        if settings.desirableWeight == 0 || settings.undesirableWeight == 0 {
            return "\(OptionName(settings.desirableWeight == 0 ? "desirable_weight" : "undesirable_weight")) 0: the "
                + "\(settings.desirableWeight == 0 ? "desirable" : "undesirable") completions do not train"
        }
        let nD = Double(desirable), nU = Double(undesirable)
        func round2(_ x: Double) -> Double { (x * 100).rounded() / 100 }
        let desirableLow = round2(nU * settings.undesirableWeight / nD), desirableHigh = round2(nU * settings.undesirableWeight / nD * 1.33)
        let undesirableLow = round2(nD * settings.desirableWeight / nU / 1.33), undesirableHigh = round2(nD * settings.desirableWeight / nU)
        let desirableOK = desirableLow <= settings.desirableWeight && settings.desirableWeight <= desirableHigh
        let undesirableOK = undesirableLow <= settings.undesirableWeight && settings.undesirableWeight <= undesirableHigh
        guard !desirableOK, !undesirableOK else { return nil }
        return "\(desirable) desirable and \(undesirable) undesirable completions: the weighted ratio λ_D·n_D / (λ_U·n_U) leaves [1, 4/3]; "
            + "set EITHER \(OptionName("desirable_weight")) in [\(desirableLow), \(desirableHigh)] OR "
            + "\(OptionName("undesirable_weight")) in [\(undesirableLow), \(undesirableHigh)] (not both)"
    }
}

// MARK: - Tokenized completions

/// A tokenized prompt and completion with its label: the prompt with the tokenizer's BOS, the completion with EOS
/// last (TRL's KTO tokenization, the same rule as DPO's: the completion starts where the encoded prompt stops
/// being a prefix of the encoded prompt + completion).
public struct UnpairedExample: Sendable, Equatable {
    public var prompt: [Int32]
    public var completion: [Int32]
    public var desirable: Bool

    public init(prompt: [Int32], completion: [Int32], desirable: Bool) {
        self.prompt = prompt
        self.completion = completion
        self.desirable = desirable
    }

    /// nil when the prompt alone fills `maxLength` (TRL drops such examples).
    public static func tokenize(_ record: UnpairedPreferenceRecord, tokenizer: Tokenizer, maxLength: Int?) -> UnpairedExample? {
        let promptIDs = tokenizer.encode(record.prompt, addSpecialTokens: true, parseSpecial: false)
        var full = tokenizer.encode(record.prompt + record.completion, addSpecialTokens: true, parseSpecial: false)
        if let eos = tokenizer.eosTokenID, full.last != eos { full.append(eos) }
        var shared = 0
        while shared < min(promptIDs.count, full.count), promptIDs[shared] == full[shared] { shared += 1 }
        if let maxLength, shared >= maxLength { return nil }
        return UnpairedExample(prompt: Array(full[..<shared]), completion: Array(full[shared...]), desirable: record.label)
    }

    /// prompt + completion cut to `maxLength` tokens from the end (TRL's collator keeps the start), scoring the
    /// completion tokens that remain.
    static func row(prompt: [Int32], completion: [Int32], maxLength: Int?) -> TargetedRow {
        let kept = maxLength.map { Array(completion.prefix(max(0, $0 - prompt.count))) } ?? completion
        return PreferenceExample.row(prompt: prompt, completion: kept)
    }
}

// MARK: - The objective

/// KTO as TRL's KTOTrainer computes it with a PEFT policy. Within each micro-batch (TRL's per-device batch) the
/// completions are rotated by one to make mismatched rows, (x₁, y_n), (x₂, y₁), …, (x_n, y_{n−1}); their policy and
/// reference log-probabilities, without gradients, give the KL estimate z. A completion's log-probability is the sum
/// over its tokens; the micro-batch's loss is the mean of the per-completion losses. Examples are visited in data
/// order every epoch (TRL's sequential sampler), so the micro-batches are TRL's batches.
public final class KahnemanTverskyObjective: TrainingObjective {
    public let name = "kto"
    public let settings: KTOSettings
    let training: [UnpairedExample]
    let validation: [UnpairedExample]
    let maxLength: Int?
    /// The frozen reference adapters; nil: the base alone (the trained adapter switched off).
    public var reference: AdapterSet?
    public var dataDescription = ""

    public init(training: [UnpairedExample], validation: [UnpairedExample], settings: KTOSettings, maxLength: Int?) throws {
        try settings.validate()
        self.training = training
        self.validation = validation
        self.settings = settings
        self.maxLength = maxLength
    }

    public var trainingCount: Int { training.count }
    public var validationCount: Int { validation.count }
    public var trainsInOrder: Bool { true }
    public func length(ofTrainingExample index: Int) -> Int { training[index].prompt.count + training[index].completion.count }

    public func prepare(adapters: AdapterSet, fromInitAdapter: Bool) -> String? {
        reference = fromInitAdapter ? adapters.copy() : nil
        return "reference: " + (fromInitAdapter ? "base + frozen \(OptionName("init_adapter"))" : "base (adapter off)")
    }

    public var settingsFingerprint: String {
        "kto beta=\(settings.beta) desirable_weight=\(settings.desirableWeight) undesirable_weight=\(settings.undesirableWeight) reference=\(reference == nil ? "base" : "init-adapter") \(dataDescription)"
    }

    private static func sums(_ logprobs: [[Float]]) -> [Double] {
        logprobs.map { $0.reduce(0.0) { $0 + Double($1) } }
    }

    func rows(_ examples: [UnpairedExample]) -> (rows: [TargetedRow], mismatched: [TargetedRow]) {
        let n = examples.count
        let rows = examples.map { UnpairedExample.row(prompt: $0.prompt, completion: $0.completion, maxLength: maxLength) }
        let mismatched = examples.indices.map {
            UnpairedExample.row(prompt: examples[$0].prompt, completion: examples[($0 + n - 1) % n].completion, maxLength: maxLength)
        }
        return (rows, mismatched)
    }

    /// Everything a micro-batch needs before the policy pass with gradients: the reference sums of its rows and the
    /// KL estimate.
    private func referenceAndKL(_ examples: [UnpairedExample], engine: TrainingEngine) throws -> (rows: [TargetedRow], reference: [Double], kl: Double) {
        let (rows, mismatched) = rows(examples)
        let policyMismatched = Self.sums(try engine.logProbabilities(mismatched))
        let referenceSums = Self.sums(try engine.logProbabilities(rows + mismatched, reference: reference))
        let kl = KTOLoss.klEstimate(policy: policyMismatched, reference: Array(referenceSums[rows.count...]))
        return (rows, Array(referenceSums[..<rows.count]), kl)
    }

    public func accumulate(microBatch: [Int], step: [Int], engine: TrainingEngine) throws -> MicroBatchResult {
        let examples = microBatch.map { training[$0] }
        let (rows, references, kl) = try referenceAndKL(examples, engine: engine)
        let weight = 1 / Double(step.count)
        let stepDesirable = step.filter { training[$0].desirable }.count
        let stepUndesirable = step.count - stepDesirable
        var loss = 0.0
        var metrics: [String: Double] = ["kl": kl * Double(microBatch.count) / Double(step.count)]
        try engine.accumulateGradients(rows) { logprobs in
            let sums = Self.sums(logprobs)
            return examples.indices.map { index in
                let example = examples[index]
                let result = KTOLoss.example(policy: sums[index], reference: references[index], desirable: example.desirable,
                                             kl: kl, settings: settings)
                loss += weight * result.loss
                Self.addMetrics(policy: sums[index], reference: references[index], desirable: example.desirable,
                                beta: settings.beta, desirableCount: stepDesirable, undesirableCount: stepUndesirable, to: &metrics)
                return Array(repeating: Float(weight * result.derivative), count: rows[index].targets.count)
            }
        }
        return MicroBatchResult(loss: loss, tokens: rows.reduce(0) { $0 + $1.tokens.count }, metrics: metrics)
    }

    /// TRL's logged figures: rewards/chosen and logps/chosen are means over the step's desirable completions,
    /// …/rejected over the undesirable ones, rewards/margins their difference when the step has both, kl the
    /// micro-batches' estimates (no rewards/accuracies: TRL's KTO has no pairs to compare).
    static func addMetrics(policy: Double, reference: Double, desirable: Bool, beta: Double, desirableCount: Int,
                           undesirableCount: Int, to metrics: inout [String: Double]) {
        let reward = beta * (policy - reference)
        let suffix = desirable ? "chosen" : "rejected"
        let count = Double(desirable ? desirableCount : undesirableCount)
        metrics["rewards/\(suffix)", default: 0] += reward / count
        metrics["logps/\(suffix)", default: 0] += policy / count
        if desirableCount > 0, undesirableCount > 0 {
            metrics["rewards/margins", default: 0] += (desirable ? 1 : -1) * reward / count
        }
    }

    /// Summed policy and reference log-probabilities of `examples` (tests: the preferred completions gain).
    public func evaluate(_ examples: [UnpairedExample], engine: TrainingEngine, microBatchSize: Int) throws -> [(policy: Double, reference: Double, kl: Double)] {
        var result: [(policy: Double, reference: Double, kl: Double)] = []
        let size = max(2, microBatchSize)
        for start in stride(from: 0, to: examples.count, by: size) {
            let chunk = Array(examples[start..<min(examples.count, start + size)])
            let (rows, references, kl) = try referenceAndKL(chunk, engine: engine)
            let sums = Self.sums(try engine.logProbabilities(rows))
            for index in chunk.indices { result.append((sums[index], references[index], kl)) }
        }
        return result
    }

    public func evaluateTraining(engine: TrainingEngine, microBatchSize: Int) throws -> [(policy: Double, reference: Double, kl: Double)] {
        try evaluate(training, engine: engine, microBatchSize: microBatchSize)
    }

    public var trainingLabels: [Bool] { training.map(\.desirable) }

    public func validationLoss(engine: TrainingEngine, microBatchSize: Int) throws -> Double {
        guard !validation.isEmpty else { return .nan }
        let values = try evaluate(validation, engine: engine, microBatchSize: microBatchSize)
        return zip(validation, values).reduce(0.0) {
            $0 + KTOLoss.example(policy: $1.1.policy, reference: $1.1.reference, desirable: $1.0.desirable, kl: $1.1.kl, settings: settings).loss
        } / Double(validation.count)
    }
}
