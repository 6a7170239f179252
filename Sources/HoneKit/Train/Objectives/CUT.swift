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

// MARK: - Tokenized instances

/// How CUT's training text wraps the prompt (methods.md §1.3b).
public enum CUTPromptWrap: String, CaseIterable, Sendable {
    /// The released code: the formatted prompt is handed to the Alpaca prompter as the instruction, so it is
    /// wrapped a second time in `prompt_no_input`.
    case double
    /// The paper: a single `prompt_no_input` / `prompt_no_input_judge`.
    case single
}

/// One CUT training instance (methods.md §1.2): an Align-P row alone, or an Align-N row (prompt with the
/// judgment) paired with its Misalign row (the same reply, prompt without the judgment). Each row scores its
/// response tokens, EOS included; a pair scores the same number of tokens in both rows, aligned one to one.
public struct CUTExample: Sendable {
    public var like: TargetedRow
    public var misalign: TargetedRow?

    public var tokenCount: Int { like.tokens.count + (misalign?.tokens.count ?? 0) }

    /// CUT's `tokenize` + `generate_and_tokenize_prompt` (finetune_unlikelihood.py, methods.md §1.4): the full
    /// text (BOS as the tokenizer adds it) is cut from the LEFT to `cutoffLength` ids so the response stays whole,
    /// then EOS is appended unless it is already last; the prompt alone is tokenized and cut the same way (no EOS),
    /// and its length, less the difference in cut tokens, is masked (train_on_inputs False).
    static func row(promptPieces: [PromptPiece], output: String, tokenizer: Tokenizer, template: PromptTemplate,
                    cutoffLength: Int) -> TargetedRow {
        var fullPieces = promptPieces
        if !output.isEmpty { fullPieces.append(PromptPiece(.content, output)) }
        func tokenize(_ pieces: [PromptPiece], appendEOS: Bool) -> (ids: [Int32], overflow: Int) {
            var ids = template.encode(pieces, with: tokenizer)
            let overflow = max(0, ids.count - cutoffLength)
            ids = Array(ids.suffix(cutoffLength))
            if appendEOS, let eos = tokenizer.eosTokenID, ids.last != eos { ids.append(eos) }
            return (ids, overflow)
        }
        let full = tokenize(fullPieces, appendEOS: true)
        let user = tokenize(promptPieces, appendEOS: false)
        let promptLength = user.ids.count - (full.overflow - user.overflow)
        var labels = full.ids
        if promptLength > 0 {
            labels.replaceSubrange(0..<min(promptLength, labels.count),
                                   with: repeatElement(TrainingExample.ignoredLabel, count: min(promptLength, labels.count)))
        }
        return TargetedRow(tokens: full.ids, labels: labels)
    }

    /// The instance CUT builds from one record. `place` names the record in errors.
    public static func make(_ record: JudgmentRecord, tokenizer: Tokenizer, template: PromptTemplate, cutoffLength: Int,
                            wrap: CUTPromptWrap, place: String) throws -> CUTExample {
        func prompt(judgment: String?) throws -> [PromptPiece] {
            let inner = try template.pieces(instruction: record.instruction, input: record.input, judgment: judgment)
            switch wrap {
            case .single: return inner
            case .double: return try template.pieces(instruction: PromptTemplate.join(inner), input: nil, judgment: nil)
            }
        }
        let negative = record.isNegativeForCUT
        let like = row(promptPieces: try prompt(judgment: negative ? record.judgment : nil), output: record.output,
                       tokenizer: tokenizer, template: template, cutoffLength: cutoffLength)
        guard negative else { return CUTExample(like: like, misalign: nil) }
        let misalign = row(promptPieces: try prompt(judgment: nil), output: record.output, tokenizer: tokenizer,
                           template: template, cutoffLength: cutoffLength)
        guard like.targets.count == misalign.targets.count else {
            throw HoneError.invalidArgument("\(place): the response tokenizes to \(like.targets.count) tokens after the judgment prompt "
                + "but \(misalign.targets.count) after the plain prompt; CUT needs them aligned one to one")
        }
        return CUTExample(like: like, misalign: misalign)
    }
}
