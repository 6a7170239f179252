import Foundation

// MARK: - Settings and margins

/// Llama 2's preference strengths (four levels) and the two margin tables of its reward-model ablation
/// (methods.md §6): the margin m(r) subtracted inside the ranking loss.
public enum RewardMarginScale: String, CaseIterable, Sendable {
    /// No margin from ratings: the plain binary ranking loss.
    case none
    /// 1, 2/3, 1/3, 0.
    case small
    /// 3, 2, 1, 0.
    case large

    /// The four ratings, strongest first, as Llama 2's annotation names them.
    public static let ratings = ["significantly better", "better", "slightly better", "negligibly better"]

    /// The margin for a rating (an index into `ratings`: 0 = significantly better … 3 = negligibly better / unsure).
    public func margin(forRating index: Int) -> Double {
        switch self {
        case .none: return 0
        case .small: return [1, 2.0 / 3, 1.0 / 3, 0][index]
        case .large: return [3, 2, 1, 0][index]
        }
    }

    /// The rating index of a label: "significantly better", "better", "slightly better", "negligibly better" or
    /// "unsure" (case and surrounding space ignored, "negligibly better / unsure" too); nil for anything else.
    public static func ratingIndex(_ label: String) -> Int? {
        let text = strippedPythonWhitespace(label).lowercased()
        if let index = ratings.firstIndex(of: text) { return index }
        if ["unsure", "negligibly better / unsure", "negligibly better/unsure"].contains(text) { return 3 }
        return nil
    }
}

public struct RewardModelSettings: Sendable, Equatable {
    /// TRL's `center_rewards_coefficient`: adds c · mean((r_chosen + r_rejected)²), pulling rewards towards zero mean.
    public var centerRewardsCoefficient: Double?
    /// The padding token: a row's reward is read at its last token that is not this one (`ScoreHead`).
    public var padTokenID: Int32?

    public init(centerRewardsCoefficient: Double? = nil, padTokenID: Int32? = nil) {
        self.centerRewardsCoefficient = centerRewardsCoefficient
        self.padTokenID = padTokenID
    }
}

/// One tokenized comparison: the full chosen and rejected texts (prompt included, EOS last) and the margin m.
public struct RewardPairExample: Sendable, Equatable {
    public var chosen: [Int32]
    public var rejected: [Int32]
    public var margin: Double

    public init(chosen: [Int32], rejected: [Int32], margin: Double = 0) {
        self.chosen = chosen
        self.rejected = rejected
        self.margin = margin
    }
}

public enum RewardModelLoss {
    /// One pair's loss −log σ(r_c − r_r − m) + c·(r_c + r_r)² and its derivatives with respect to r_c and r_r.
    public static func pair(chosen: Double, rejected: Double, margin: Double, center: Double?)
        -> (loss: Double, chosen: Double, rejected: Double) {
        let difference = chosen - rejected - margin
        var loss = -DPOLoss.logSigmoid(difference)
        let slope = -DPOLoss.sigmoid(-difference)
        var (dChosen, dRejected) = (slope, -slope)
        if let center {
            let sum = chosen + rejected
            loss += center * sum * sum
            dChosen += 2 * center * sum
            dRejected += 2 * center * sum
        }
        return (loss, dChosen, dRejected)
    }
}

// MARK: - The objective

/// A Llama-2-style reward model as TRL's RewardTrainer trains one with a PEFT adapter (methods.md §6): the base with
/// LoRA adapters and a fully trained score head (PEFT's `modules_to_save = ["score"]`) gives each text a scalar
/// reward, read at its last non-padding token; each pair runs as two rows ([chosen…; rejected…] in one pass) and
/// its loss is −log σ(r_c − r_r − m), plus c·(r_c + r_r)² with a centering coefficient. The step's loss is the mean
/// over its pairs.
public final class RewardModelObjective: TrainingObjective {
    public let name = "rm"
    public var trainsScoreHead: Bool { true }
    public let settings: RewardModelSettings
    let training: [RewardPairExample]
    let validation: [RewardPairExample]
    /// The score weight [1, width] a new adapter starts from (the base's head, or a seeded initialisation).
    let initialScore: [Float]
    /// How the pairs were made (for the checkpoint fingerprint).
    public var dataDescription = ""
    /// The figures of the last validation pass (accuracy, margin, rewards), for metrics.jsonl.
    public private(set) var validationMetrics: [String: Double] = [:]

    public init(training: [RewardPairExample], validation: [RewardPairExample], settings: RewardModelSettings,
                initialScore: [Float]) throws {
        if let center = settings.centerRewardsCoefficient, !(center >= 0 && center.isFinite) {
            throw HoneError.invalidArgument("\(OptionName("center_rewards_coefficient")) must be a non-negative number")
        }
        guard !initialScore.isEmpty else { throw HoneError.invalidArgument("the score head has no features") }
        self.training = training
        self.validation = validation
        self.settings = settings
        self.initialScore = initialScore
    }

    public var trainingCount: Int { training.count }
    public var validationCount: Int { validation.count }
    public func length(ofTrainingExample index: Int) -> Int { training[index].chosen.count + training[index].rejected.count }

    public var settingsFingerprint: String {
        "rm center=\(settings.centerRewardsCoefficient.map { "\($0)" } ?? "-") pad=\(settings.padTokenID.map { "\($0)" } ?? "-") \(dataDescription)"
    }

    /// Gives the adapters their trained score head: a copy of the initial one, unless the adapter (from
    /// `init_adapter`) already brings its own.
    public func prepare(adapters: AdapterSet, fromInitAdapter: Bool) -> String? {
        if let existing = adapters.savedModule(ScoreHead.moduleName) {
            return "score head: from \(OptionName("init_adapter")) [\(existing.shape.map(String.init).joined(separator: ", "))]"
        }
        adapters.savedModules.append(SavedModule(name: ScoreHead.moduleName, shape: [1, initialScore.count],
                                                 weight: FloatBuffer(initialScore)))
        return "score head: [1, \(initialScore.count)] trained in full (modules_to_save)"
    }

    func head(_ engine: TrainingEngine) throws -> SavedModule {
        guard let head = engine.adapters.savedModule(ScoreHead.moduleName) else {
            throw HoneError.invalidArgument("the adapter has no score head to train (modules_to_save score)")
        }
        guard head.shape == [1, initialScore.count] else {
            throw HoneError.invalidArgument("the adapter's score head is [\(head.shape.map(String.init).joined(separator: ", "))], the model needs [1, \(initialScore.count)]")
        }
        return head
    }

    public func accumulate(microBatch: [Int], step: [Int], engine: TrainingEngine) throws -> MicroBatchResult {
        let pairs = microBatch.map { training[$0] }
        let rows = pairs.map(\.chosen) + pairs.map(\.rejected)
        let weight = 1 / Double(step.count)
        var loss = 0.0
        var metrics: [String: Double] = [:]
        try engine.accumulateRewardGradients(rows, head: try head(engine), padTokenID: settings.padTokenID) { rewards in
            var gradients = [Double](repeating: 0, count: rows.count)
            for (index, pair) in pairs.enumerated() {
                let (chosen, rejected) = (rewards[index], rewards[pairs.count + index])
                let result = RewardModelLoss.pair(chosen: chosen, rejected: rejected, margin: pair.margin,
                                                  center: settings.centerRewardsCoefficient)
                loss += weight * result.loss
                gradients[index] = weight * result.chosen
                gradients[pairs.count + index] = weight * result.rejected
                Self.addMetrics(chosen: chosen, rejected: rejected, weight: weight, to: &metrics)
            }
            return gradients
        }
        return MicroBatchResult(loss: loss, tokens: rows.reduce(0) { $0 + $1.count }, metrics: metrics)
    }

    /// TRL's logged figures (accuracy with a strict >, margin, mean_reward over both rows) and the mean chosen and
    /// rejected rewards, each pair weighted so that a step's sums are its means.
    static func addMetrics(chosen: Double, rejected: Double, weight: Double, to metrics: inout [String: Double]) {
        metrics["accuracy", default: 0] += weight * (chosen > rejected ? 1 : 0)
        metrics["margin", default: 0] += weight * (chosen - rejected)
        metrics["mean_reward", default: 0] += weight * (chosen + rejected) / 2
        metrics["rewards/chosen", default: 0] += weight * chosen
        metrics["rewards/rejected", default: 0] += weight * rejected
    }

    /// (chosen, rejected) rewards of pairs without gradients, `microBatchSize` pairs per pass.
    public func evaluate(_ pairs: [RewardPairExample], engine: TrainingEngine, microBatchSize: Int) throws
        -> [(chosen: Double, rejected: Double)] {
        let head = try head(engine)
        var result: [(chosen: Double, rejected: Double)] = []
        let size = max(1, microBatchSize)
        for start in stride(from: 0, to: pairs.count, by: size) {
            let chunk = Array(pairs[start..<min(pairs.count, start + size)])
            let rewards = try engine.rewards(chunk.map(\.chosen) + chunk.map(\.rejected), head: head, padTokenID: settings.padTokenID)
            for index in chunk.indices { result.append((rewards[index], rewards[chunk.count + index])) }
        }
        return result
    }

    /// The training pairs' rewards as the model stands (tests: accuracy on the training pairs).
    public func evaluateTraining(engine: TrainingEngine, microBatchSize: Int) throws -> [(chosen: Double, rejected: Double)] {
        try evaluate(training, engine: engine, microBatchSize: microBatchSize)
    }

    public func validationLoss(engine: TrainingEngine, microBatchSize: Int) throws -> Double {
        guard !validation.isEmpty else { return .nan }
        let rewards = try evaluate(validation, engine: engine, microBatchSize: microBatchSize)
        let weight = 1 / Double(validation.count)
        var loss = 0.0
        var metrics: [String: Double] = [:]
        for (pair, reward) in zip(validation, rewards) {
            loss += weight * RewardModelLoss.pair(chosen: reward.chosen, rejected: reward.rejected, margin: pair.margin,
                                                  center: settings.centerRewardsCoefficient).loss
            Self.addMetrics(chosen: reward.chosen, rejected: reward.rejected, weight: weight, to: &metrics)
        }
        validationMetrics = Dictionary(uniqueKeysWithValues: metrics.map { ("eval_" + $0.key, $0.value) })
        return loss
    }
}

// MARK: - Reward passes

extension TrainingEngine {
    /// Rewards of token rows without gradients: the score head `head` at each row's read position.
    func rewards(_ rows: [[Int32]], head: SavedModule, padTokenID: Int32?) throws -> [Double] {
        let wasTraining = adapters.isTraining
        adapters.isTraining = false
        defer { adapters.isTraining = wasTraining }
        let score = ScoreHead(weight: head.weight, labels: 1, width: head.weight.count, padTokenID: padTokenID)
        return try RewardScorer(model: model, head: score, tokenBudget: Int.max).rewards(rows).map(Double.init)
    }

    /// Forward and backward of a reward pass with the adapter training: `gradients` receives each row's reward and
    /// returns ∂L/∂reward for each. Accumulates the LoRA gradients and the score head's gradient
    /// (∂L/∂w = Σ ∂L/∂r_i · h_i); returns the rewards.
    @discardableResult
    func accumulateRewardGradients(_ rows: [[Int32]], head: SavedModule, padTokenID: Int32?,
                                   gradients: ([Double]) throws -> [Double]) throws -> [Double] {
        adapters.isTraining = true
        defer { adapters.isTraining = false }
        head.allocateGradient()
        let score = ScoreHead(weight: head.weight, labels: 1, width: head.weight.count, padTokenID: padTokenID)
        let layout = PassLayout(counts: rows.map(\.count), starts: Array(repeating: 0, count: rows.count))
        let pass = try model.trainingForward(tokens: rows.flatMap { $0 }, layout: layout, checkpointing: gradientCheckpointing)
        let width = pass.hidden.count / max(1, layout.total)
        guard width == score.width else {
            throw HoneError.invalidArgument("the score head reads \(score.width) features but the model's hidden states have \(width)")
        }
        let readRows = rows.indices.map { layout.offsets[$0] + score.readPosition(rows[$0]) }
        let rewards = readRows.map { Double(score.logits(pass.hidden.pointer + $0 * width)[0]) }
        let coefficients = try gradients(rewards)
        precondition(coefficients.count == rows.count, "one gradient per row")
        let hiddenGradient = FloatBuffer(zeros: pass.hidden.count)
        for (row, coefficient) in zip(readRows, coefficients) where coefficient != 0 {
            // ∂L/∂h_row += g·w and ∂L/∂w += g·h_row (rows may share nothing, so plain adds suffice).
            let g = Float(coefficient)
            let (hidden, dHidden, w, dW) = (pass.hidden.pointer + row * width, hiddenGradient.pointer + row * width,
                                            head.weight.pointer, head.gradient!.pointer)
            for index in 0..<width {
                dHidden[index] += g * w[index]
                dW[index] += g * hidden[index]
            }
        }
        model.trainingBackward(pass, hiddenGradient: hiddenGradient.pointer)
        return rewards
    }
}
