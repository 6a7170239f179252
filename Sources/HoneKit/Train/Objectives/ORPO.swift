import Foundation

// MARK: - The odds-ratio term

/// ORPO (Hong et al. 2024, "ORPO: Monolithic Preference Optimization without Reference Model", eq. 4–7) as TRL
/// 1.16's ORPOTrainer computes it: reference-free, on length-averaged completion log-probabilities a_c, a_r:
///   log odds = (a_c − a_r) − (log(1 − e^{a_c}) − log(1 − e^{a_r})),   L = NLL − λ·mean(log σ(log odds)).
public enum ORPOLoss {
    /// log(1 − eˣ) for x < 0, branching at −ln 2 to avoid cancellation.
    static func log1mexp(_ x: Double) -> Double { x < -M_LN2 ? log1p(-exp(x)) : log(-expm1(x)) }

    /// One pair's odds-ratio figures: the log odds, log σ(log odds), and the derivatives of log σ(log odds)
    /// with respect to a_c and a_r.
    public static func pair(chosen: Double, rejected: Double) -> (logOdds: Double, ratio: Double, chosen: Double, rejected: Double) {
        let logOdds = (chosen - rejected) - (log1mexp(chosen) - log1mexp(rejected))
        let outer = DPOLoss.sigmoid(-logOdds)
        // d/dx [x − log(1 − eˣ)] = 1 / (1 − eˣ).
        return (logOdds, DPOLoss.logSigmoid(logOdds), outer / -expm1(chosen), -outer / -expm1(rejected))
    }
}

public struct ORPOSettings: Sendable, Equatable {
    /// λ, the weight of the odds-ratio term (TRL's `beta`).
    public var beta = 0.1

    public init(beta: Double = 0.1) { self.beta = beta }

    func validate() throws {
        guard beta >= 0, beta.isFinite else { throw HoneError.invalidArgument("\(OptionName("beta")) must be a non-negative number") }
    }
}

// MARK: - Tokenized pairs (ORPO, CPO)

/// A preference pair tokenized as TRL's ORPOTrainer and CPOTrainer do it: the prompt and prompt + completion are
/// encoded without special tokens; each completion starts after the encoded prompt, one token earlier when the
/// prompt's last token merges with the completion (so each row has its own prompt split); the tokenizer's BOS is
/// put before each prompt that lacks it and EOS after each completion that lacks it; a row longer than
/// `maxLength` has its completion cut (the prompt is kept whole).
public struct PreferencePairRows: Sendable, Equatable {
    public var chosenPrompt: [Int32]
    public var chosen: [Int32]
    public var rejectedPrompt: [Int32]
    public var rejected: [Int32]

    public init(chosenPrompt: [Int32], chosen: [Int32], rejectedPrompt: [Int32], rejected: [Int32]) {
        self.chosenPrompt = chosenPrompt
        self.chosen = chosen
        self.rejectedPrompt = rejectedPrompt
        self.rejected = rejected
    }

    /// nil when a prompt alone fills `maxLength` (TRL keeps such a pair with an empty completion, whose averaged
    /// log-probability is 0/0; Hone drops it).
    public static func tokenize(_ record: PreferenceRecord, tokenizer: Tokenizer, maxLength: Int?) -> PreferencePairRows? {
        let promptIDs = tokenizer.encode(record.prompt, addSpecialTokens: false, parseSpecial: false)
        func split(_ completion: String) -> (prompt: [Int32], completion: [Int32]) {
            let full = tokenizer.encode(record.prompt + completion, addSpecialTokens: false, parseSpecial: false)
            var start = min(promptIDs.count, full.count)
            if Array(full[..<start]) != promptIDs { start = max(0, start - 1) }
            var prompt = Array(full[..<start]), answer = Array(full[start...])
            if let bos = tokenizer.bosTokenID, prompt.first != bos { prompt.insert(bos, at: 0) }
            if let eos = tokenizer.eosTokenID, answer.last != eos { answer.append(eos) }
            if let maxLength, prompt.count + answer.count > maxLength { answer = Array(answer.prefix(max(0, maxLength - prompt.count))) }
            return (prompt, answer)
        }
        let chosen = split(record.chosen), rejected = split(record.rejected)
        guard !chosen.completion.isEmpty, !rejected.completion.isEmpty else { return nil }
        return PreferencePairRows(chosenPrompt: chosen.prompt, chosen: chosen.completion, rejectedPrompt: rejected.prompt,
                                  rejected: rejected.completion)
    }

    public var chosenRow: TargetedRow { PreferenceExample.row(prompt: chosenPrompt, completion: chosen) }
    public var rejectedRow: TargetedRow { PreferenceExample.row(prompt: rejectedPrompt, completion: rejected) }
    /// prompt + chosen scoring every token after the first (ORPO's NLL covers the prompt too); the completion's
    /// tokens are the last `chosen.count` targets.
    public var chosenFullRow: TargetedRow {
        let tokens = chosenPrompt + chosen
        return TargetedRow(tokens: tokens, targets: (1..<max(1, tokens.count)).map { ($0 - 1, tokens[$0]) })
    }
    public var tokenCount: Int { chosenPrompt.count + chosen.count + rejectedPrompt.count + rejected.count }
}

// MARK: - The objective

/// ORPO as TRL's ORPOTrainer computes it for a decoder-only model: each pair runs as two rows in one pass,
/// [prompt + chosen…; prompt + rejected…]. The NLL is the token mean of −log p over every token of the micro-batch's
/// chosen rows after the first (prompt and completion alike, as TRL's decoder-only ORPO does); a_c and a_r are the
/// completion log-probabilities averaged over the completion's tokens. A micro-batch's loss is NLL − λ·mean over
/// its pairs of log σ(log odds); the step's loss is the mean over its micro-batches. No reference model.
public final class OddsRatioObjective: TrainingObjective {
    public let name = "orpo"
    public let settings: ORPOSettings
    let training: [PreferencePairRows]
    let validation: [PreferencePairRows]
    public var dataDescription = ""

    public init(training: [PreferencePairRows], validation: [PreferencePairRows], settings: ORPOSettings) throws {
        try settings.validate()
        self.training = training
        self.validation = validation
        self.settings = settings
    }

    public var trainingCount: Int { training.count }
    public var validationCount: Int { validation.count }
    public func length(ofTrainingExample index: Int) -> Int { training[index].tokenCount }
    public func prepare(adapters: AdapterSet, fromInitAdapter: Bool) -> String? { "reference-free" }
    public var settingsFingerprint: String { "orpo beta=\(settings.beta) \(dataDescription)" }

    static func mean(_ values: ArraySlice<Float>) -> Double { values.reduce(0.0) { $0 + Double($1) } / Double(max(1, values.count)) }

    /// Loss, metrics and ∂L/∂logp of one micro-batch of pairs from its rows' log-probabilities; `weight` is the
    /// micro-batch's share of the step, pairs.count / step.count.
    func microBatch(_ pairs: [PreferencePairRows], logprobs: [[Float]], weight: Double, stepCount: Int)
        -> (loss: Double, coefficients: [[Float]], metrics: [String: Double]) {
        let n = pairs.count
        let nllTokens = (0..<n).reduce(0) { $0 + logprobs[$1].count }
        let nll = -(0..<n).reduce(0.0) { $0 + logprobs[$1].reduce(0.0) { $0 + Double($1) } } / Double(max(1, nllTokens))
        let pairWeight = 1 / Double(stepCount)
        var loss = weight * nll
        var metrics: [String: Double] = ["nll_loss": weight * nll]
        var coefficients = logprobs.map { Array(repeating: Float(0), count: $0.count) }
        for index in 0..<n {
            let chosenLogprobs = logprobs[index], rejectedLogprobs = logprobs[n + index]
            let chosenCount = pairs[index].chosen.count
            let chosen = Self.mean(chosenLogprobs.suffix(chosenCount)), rejected = Self.mean(rejectedLogprobs[...])
            let odds = ORPOLoss.pair(chosen: chosen, rejected: rejected)
            loss -= pairWeight * settings.beta * odds.ratio
            let nllCoefficient = Float(-weight / Double(max(1, nllTokens)))
            let chosenCoefficient = Float(-pairWeight * settings.beta * odds.chosen / Double(chosenCount))
            let first = chosenLogprobs.count - chosenCount
            coefficients[index] = (0..<chosenLogprobs.count).map { $0 >= first ? nllCoefficient + chosenCoefficient : nllCoefficient }
            coefficients[n + index] = Array(repeating: Float(-pairWeight * settings.beta * odds.rejected / Double(rejectedLogprobs.count)),
                                            count: rejectedLogprobs.count)
            let chosenReward = settings.beta * chosen, rejectedReward = settings.beta * rejected
            metrics["rewards/chosen", default: 0] += pairWeight * chosenReward
            metrics["rewards/rejected", default: 0] += pairWeight * rejectedReward
            metrics["rewards/accuracies", default: 0] += pairWeight * (chosenReward > rejectedReward ? 1 : 0)
            metrics["rewards/margins", default: 0] += pairWeight * (chosenReward - rejectedReward)
            metrics["logps/chosen", default: 0] += pairWeight * chosen
            metrics["logps/rejected", default: 0] += pairWeight * rejected
            metrics["log_odds_ratio", default: 0] += pairWeight * odds.ratio
            metrics["log_odds_chosen", default: 0] += pairWeight * odds.logOdds
        }
        return (loss, coefficients, metrics)
    }

    private static func rows(_ pairs: [PreferencePairRows]) -> [TargetedRow] { pairs.map(\.chosenFullRow) + pairs.map(\.rejectedRow) }

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

    /// Averaged completion log-probabilities (a_c, a_r) of `pairs` as the model stands (tests).
    public func evaluate(_ pairs: [PreferencePairRows], engine: TrainingEngine) throws -> [(chosen: Double, rejected: Double)] {
        let logprobs = try engine.logProbabilities(pairs.map(\.chosenRow) + pairs.map(\.rejectedRow))
        return pairs.indices.map { (Self.mean(logprobs[$0][...]), Self.mean(logprobs[pairs.count + $0][...])) }
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
