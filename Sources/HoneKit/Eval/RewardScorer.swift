import Foundation

// MARK: - Rewards of token rows

/// The reward of each token row under a sequence-classification model: its score head (or an attached adapter's
/// trained copy of it) applied to the final hidden state at the row's read position (`ScoreHead.readPosition`).
/// Rows are packed into forward passes of up to `tokenBudget` tokens; each row runs from position 0 on its own
/// cache, so a reward never depends on what else is in the batch.
public final class RewardScorer {
    public let model: CausalLanguageModel
    public let head: ScoreHead
    public var tokenBudget: Int
    /// Under mpirun, each rank runs its share of the forward passes and every rank gets every reward. Whole passes
    /// are shared out, so each reward equals a single process's bit for bit.
    public var processGroup = ProcessGroup.single

    public init(model: CausalLanguageModel, head: ScoreHead, tokenBudget: Int = 2048) {
        self.model = model
        self.head = head
        self.tokenBudget = max(1, tokenBudget)
    }

    /// The scorer of a loaded model: its own head, replaced by an attached adapter's trained copy, reading as the
    /// adapter's training recorded (`padTokenID`) when it says. A model without a head is an error naming it.
    public convenience init(loaded: LoadedModel, adapterRecord: PEFTAdapter.TrainingRecord? = nil, tokenBudget: Int = 2048) throws {
        let adapters = (loaded.model as? AdaptableModel)?.adapters as? AdapterSet
        var head: ScoreHead
        if let base = loaded.scoreHead {
            head = try adapters?.scoreHead(over: base) ?? base
        } else if let module = adapters?.savedModule(ScoreHead.moduleName), module.shape.count == 2 {
            // A causal-LM base with a reward adapter (`hone train rm` output): the adapter brings the head.
            head = ScoreHead(weight: module.weight, labels: module.shape[0], width: module.shape[1],
                             padTokenID: loaded.config.padTokenID.map { Int32($0) })
        } else {
            throw HoneError.invalidArgument("\(loaded.path) has no score head (score.weight): not a sequence-classification or reward model, and no reward adapter (modules_to_save score) is attached")
        }
        if let pad = adapterRecord?.padTokenID { head = head.with(padTokenID: Int32(pad)) }
        guard head.labels == 1 else {
            throw HoneError.invalidArgument("\(loaded.path) has \(head.labels) labels; a reward model has 1")
        }
        self.init(model: loaded.model, head: head, tokenBudget: tokenBudget)
    }

    /// One reward per row (rows must not be empty).
    public func rewards(_ rows: [[Int32]], progress: ((Int) -> Void)? = nil) throws -> [Float] {
        if let empty = rows.firstIndex(where: \.isEmpty) {
            throw HoneError.invalidArgument("row \(empty + 1) has no tokens to score")
        }
        let passes = forwardPasses(lengths: rows.map(\.count), tokenBudget: tokenBudget)
        var scored: [Int: Float] = [:]
        for (passIndex, pass) in passes.enumerated() where processGroup.owns(passIndex) {
            let group = Array(rows[pass])
            let hidden = try model.forward(group.map { SequenceInput(tokens: $0, cache: model.makeCache()) })
            guard hidden.width == head.width else {
                throw HoneError.invalidArgument("the score head reads \(head.width) features but the model's hidden states have \(hidden.width)")
            }
            for (index, row) in group.enumerated() {
                let start = hidden.values.pointer + hidden.sequenceOffsets[index] * hidden.width
                scored[pass.lowerBound + index] = head.logits(sequence: start, tokens: row)[0]
            }
            progress?(pass.upperBound)
        }
        scored = try processGroup.merge(scored)
        return rows.indices.map { scored[$0] ?? 0 }
    }
}
