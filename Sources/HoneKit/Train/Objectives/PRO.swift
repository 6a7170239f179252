import Foundation

// MARK: - The PRO loss of one record

/// One tokenized PRO record: a row per response, best first, with the rewards that rank them.
public struct RankingExample: Sendable {
    public var rows: [TargetedRow]
    public var rewards: [Double]
    /// The response the SFT term trains (PRO's `sft_index`, 0 = the best).
    public var sftIndex: Int

    public init(rows: [TargetedRow], rewards: [Double], sftIndex: Int = 0) {
        self.rows = rows
        self.rewards = rewards
        self.sftIndex = sftIndex
    }

    public var tokenCount: Int { rows.reduce(0) { $0 + $1.tokens.count } }
}

public enum PROLoss {
    /// PRO's default SFT weight; the term is scaled by sftWeight · (n − 1)².
    public static let defaultSFTWeight = 0.05

    /// One record's loss (ScalingAlignment process_manager.py compute_loss, methods.md §2.5) and its derivative with
    /// respect to each response's SUMMED log-probability S_k. With s_k = S_k / |y_k|, τ_kj = r_k − r_j (j > k) and
    /// τ_kk = max_j τ_kj:
    ///   L = Σ_{k<n−1} [log(1e-10 + e^{s_k τ_kk} + Σ_{j>k} e^{s_j τ_kj}) − s_k τ_kk] + w (n − 1)² (−S_sft),
    /// and for n = 1, L = −S_sft (ScalingAlignment's SFT runs).
    public static func record(sums: [Double], tokens: [Int], rewards: [Double], sftIndex: Int,
                              sftWeight: Double = defaultSFTWeight) -> (loss: Double, gradients: [Double], ranking: Double, sft: Double) {
        let n = sums.count
        let scores = zip(sums, tokens).map { $0 / Double(max(1, $1)) }
        var scoreGradients = [Double](repeating: 0, count: n)
        var ranking = 0.0
        for k in 0..<max(0, n - 1) {
            let temperatures = ((k + 1)..<n).map { rewards[k] - rewards[$0] }
            let top = temperatures.max()!
            let own = exp(scores[k] * top)
            let others = ((k + 1)..<n).map { exp(scores[$0] * temperatures[$0 - k - 1]) }
            let total = 1e-10 + own + others.reduce(0, +)
            ranking += log(total) - scores[k] * top
            scoreGradients[k] += top * own / total - top
            for j in (k + 1)..<n { scoreGradients[j] += temperatures[j - k - 1] * others[j - k - 1] / total }
        }
        var gradients = zip(scoreGradients, tokens).map { $0 / Double(max(1, $1)) }
        let sftScale = n > 1 ? sftWeight * Double((n - 1) * (n - 1)) : 1
        let sft = sftScale * -sums[sftIndex]
        gradients[sftIndex] -= sftScale
        return (ranking + sft, gradients, ranking, sft)
    }
}

// MARK: - The objective

/// PRO (methods.md §2.5–2.7): every response of a record is a row of the same pass; the loss is `PROLoss.record`
/// averaged over the records of the step (PRO averages over the batch, accelerate over accumulation).
public final class RankingObjective: TrainingObjective {
    public let name = "pro"
    let training: [RankingExample]
    let validation: [RankingExample]
    public let sftWeight: Double
    let dataDescription: String

    public init(training: [RankingExample], validation: [RankingExample], sftWeight: Double = PROLoss.defaultSFTWeight,
                dataDescription: String = "") {
        self.training = training
        self.validation = validation
        self.sftWeight = sftWeight
        self.dataDescription = dataDescription
    }

    public var trainingCount: Int { training.count }
    public var validationCount: Int { validation.count }
    public func length(ofTrainingExample index: Int) -> Int { training[index].tokenCount }
    public var settingsFingerprint: String { "sft_weight=\(sftWeight) \(dataDescription)" }

    /// Loss, per-row gradients and figures of some records from their rows' log-probs (rows record-major).
    private func evaluate(_ examples: [RankingExample], logprobs: [[Float]], weight: Double)
        -> (loss: Double, coefficients: [[Float]], metrics: [String: Double]) {
        var loss = 0.0
        var coefficients: [[Float]] = []
        var metrics: [String: Double] = [:]
        var row = 0
        for example in examples {
            let slice = logprobs[row..<(row + example.rows.count)]
            let sums = slice.map { $0.reduce(0.0) { $0 + Double($1) } }
            let tokens = example.rows.map(\.targets.count)
            let result = PROLoss.record(sums: sums, tokens: tokens, rewards: example.rewards, sftIndex: example.sftIndex,
                                        sftWeight: sftWeight)
            loss += weight * result.loss
            for (index, gradient) in result.gradients.enumerated() {
                coefficients.append(Array(repeating: Float(weight * gradient), count: tokens[index]))
            }
            let scores = zip(sums, tokens).map { $0 / Double(max(1, $1)) }
            let ordered = zip(scores, scores.dropFirst()).allSatisfy { $0 > $1 }
            metrics["pro/ranking_loss", default: 0] += weight * result.ranking
            metrics["pro/sft_loss", default: 0] += weight * result.sft
            metrics["pro/ordered", default: 0] += weight * (ordered ? 1 : 0)
            row += example.rows.count
        }
        return (loss, coefficients, metrics)
    }

    public func accumulate(microBatch: [Int], step: [Int], engine: TrainingEngine) throws -> MicroBatchResult {
        let examples = microBatch.map { training[$0] }
        let rows = examples.flatMap(\.rows)
        let weight = 1 / Double(step.count)
        var outcome: (loss: Double, coefficients: [[Float]], metrics: [String: Double])?
        try engine.accumulateGradients(rows) { logprobs in
            let computed = self.evaluate(examples, logprobs: logprobs, weight: weight)
            outcome = computed
            return computed.coefficients
        }
        return MicroBatchResult(loss: outcome?.loss ?? 0, tokens: rows.reduce(0) { $0 + $1.tokens.count },
                                metrics: outcome?.metrics ?? [:])
    }

    /// Per-token mean log-probability (PRO's score s_k) of every response of `examples`, without gradients.
    public func scores(of examples: [RankingExample]? = nil, engine: TrainingEngine, microBatchSize: Int) throws -> [[Double]] {
        let examples = examples ?? training
        var result: [[Double]] = []
        let size = max(1, microBatchSize)
        for start in stride(from: 0, to: examples.count, by: size) {
            let chunk = Array(examples[start..<min(examples.count, start + size)])
            let logprobs = try engine.logProbabilities(chunk.flatMap(\.rows))
            var row = 0
            for example in chunk {
                result.append(logprobs[row..<(row + example.rows.count)].map { values in
                    values.reduce(0.0) { $0 + Double($1) } / Double(max(1, values.count))
                })
                row += example.rows.count
            }
        }
        return result
    }

    public func validationLoss(engine: TrainingEngine, microBatchSize: Int) throws -> Double {
        guard !validation.isEmpty else { return .nan }
        var total = 0.0
        let size = max(1, microBatchSize)
        for start in stride(from: 0, to: validation.count, by: size) {
            let chunk = Array(validation[start..<min(validation.count, start + size)])
            let logprobs = try engine.logProbabilities(chunk.flatMap(\.rows))
            total += evaluate(chunk, logprobs: logprobs, weight: 1).loss
        }
        return total / Double(validation.count)
    }
}

// MARK: - Tokenized rows

extension RankingData {
    /// One PRO row (ScalingAlignment data_manager.py, methods.md §2.6): the prompt, when longer than
    /// `maxPromptLength` ids (BOS included), keeps its BOS and last ids and goes back to text (the decode/encode
    /// round trip); the row is `prompt + " " + suffix` with BOS, then EOS (Hone's EOS policy: every response ends
    /// with a scored EOS, where the reference scores one only for rows shorter than the longest of the batch), cut on
    /// the right to `blockSize`. Scored: every token after the prompt's ids. Nil when no token is left to score.
    public static func row(turns: [String], suffix: String, tokenizer: Tokenizer, blockSize: Int, maxPromptLength: Int) -> TargetedRow? {
        var prompt = promptText(turns)
        var promptIDs = tokenizer.encode(prompt, addSpecialTokens: true, parseSpecial: false)
        if promptIDs.count > maxPromptLength {
            let hasBOS = tokenizer.bosTokenID != nil && promptIDs.first == tokenizer.bosTokenID
            let body = promptIDs.dropFirst(hasBOS ? 1 : 0)
            prompt = tokenizer.decode(Array(body.suffix(max(0, maxPromptLength - (hasBOS ? 1 : 0)))), skipSpecialTokens: true)
            promptIDs = tokenizer.encode(prompt, addSpecialTokens: true, parseSpecial: false)
        }
        var tokens = tokenizer.encode(prompt + " " + suffix, addSpecialTokens: true, parseSpecial: false)
        if let eos = tokenizer.eosTokenID, tokens.last != eos { tokens.append(eos) }
        tokens = Array(tokens.prefix(blockSize))
        let first = max(1, promptIDs.count)
        guard first < tokens.count else { return nil }
        return TargetedRow(tokens: tokens, targets: (first..<tokens.count).map { ($0 - 1, tokens[$0]) })
    }
}
