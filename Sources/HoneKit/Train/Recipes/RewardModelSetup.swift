import Foundation

// MARK: - Reward model

/// Everything `hone train rm` needs before the first step: the base model, the tokenized comparisons, the score
/// head to start from, the padding token that decides where rewards are read, a summary.
public struct RewardModelTrainingSetup {
    public let base: LoadedModel
    public let objective: RewardModelObjective
    public let summary: String
    /// The padding id the head reads around: recorded with the adapter so `hone reward` reads where training did.
    public let padTokenID: Int32?

    /// `maxLength`: pairs with a row longer than this are dropped (TRL's `max_length` filter); nil keeps all.
    /// The padding token is the tokenizer's pad token, else its EOS (TRL's rule); the score head starts from the
    /// base's own (a sequence-classification base) or from N(0, 0.02²) seeded (transformers' initialisation).
    public init(baseModel: String, dataPath: String, marginScale: RewardMarginScale, maxLength: Int?,
                centerRewardsCoefficient: Double?, validationSize: Int, seed: UInt64) throws {
        if let maxLength, maxLength < 2 { throw HoneError.invalidArgument("\(OptionName("max_length")) must be at least 2") }
        let comparisons = try RewardData.read(path: dataPath, scale: marginScale)
        base = try LoadedModel.open(baseModel)
        let tokenizer = try base.tokenizer()
        let pad = tokenizer.padTokenID ?? tokenizer.eosTokenID
        padTokenID = pad
        var pairs: [RewardPairExample] = []
        var dropped: [String] = []
        for comparison in comparisons {
            let pair = RewardPairExample(chosen: RewardData.tokenize(comparison.chosen, tokenizer: tokenizer),
                                         rejected: RewardData.tokenize(comparison.rejected, tokenizer: tokenizer),
                                         margin: comparison.margin)
            if let maxLength, max(pair.chosen.count, pair.rejected.count) > maxLength {
                dropped.append(comparison.place)
                continue
            }
            pairs.append(pair)
        }
        guard !pairs.isEmpty else {
            throw HoneError.malformedFile(path: dataPath, message: "no pair fits \(OptionName("max_length")) \(maxLength ?? 0) tokens")
        }
        try DataOrder.requireValidationSizeNotNegative(validationSize)
        guard validationSize < pairs.count else {
            throw HoneError.invalidArgument("\(OptionName("val_set_size")) \(validationSize) leaves no training data: \(pairs.count) pairs")
        }
        let held = Set(try DataOrder.validationSplit(count: pairs.count, validationSize: validationSize, seed: seed).validation)
        let training = pairs.indices.filter { !held.contains($0) }.map { pairs[$0] }
        let validation = pairs.indices.filter { held.contains($0) }.map { pairs[$0] }

        let initialScore: [Float]
        if let head = base.scoreHead {
            guard head.labels == 1 else {
                throw HoneError.invalidArgument("\(baseModel) has a score head with \(head.labels) labels; a reward model has 1")
            }
            guard head.bias == nil, head.pooling == .lastNonPadding else {
                throw HoneError.invalidArgument("\(baseModel) has a score head with a bias or \(head.pooling.rawValue) pooling "
                                                + "(OpenAssistant's layout): it scores, but training one is not supported")
            }
            initialScore = head.weight.array
        } else {
            initialScore = RewardModelTrainingSetup.initialScore(width: Self.outputWidth(base), seed: seed)
        }
        objective = try RewardModelObjective(
            training: training, validation: validation,
            settings: RewardModelSettings(centerRewardsCoefficient: centerRewardsCoefficient, padTokenID: pad),
            initialScore: initialScore)
        objective.dataDescription = "margin=\(marginScale.rawValue) max_length=\(maxLength.map(String.init) ?? "-")"

        let margins = training.filter { $0.margin != 0 }.count
        let tokens = training.reduce(0) { $0 + $1.chosen.count + $1.rejected.count }
        var summary = "data: \(comparisons.count) comparisons from \(dataPath) → \(training.count) training, \(validation.count) validation; "
        summary += "\(tokens) training tokens; \(margins) with a margin (\(OptionName("margin")) \(marginScale.rawValue)); "
        summary += "rewards read at the last token that is not \(pad.map { "pad \($0)" } ?? "padding")"
        if !dropped.isEmpty {
            let shown = dropped.prefix(5).joined(separator: ", ") + (dropped.count > 5 ? ", …" : "")
            summary += "\nwarning: \(dropped.count) pairs longer than \(OptionName("max_length")) \(maxLength!) dropped (\(shown))"
        }
        self.summary = summary
    }

    /// Width of the hidden states the base returns (OPT-350m projects them out): measured on one token.
    static func outputWidth(_ base: LoadedModel) -> Int {
        let token = Int32(base.config.bosTokenID ?? 0)
        return (try? base.model.forward([SequenceInput(tokens: [token], cache: base.model.makeCache())]).width) ?? base.config.hiddenSize
    }

    /// transformers' initialisation of a new score head: N(0, initializer_range²) with its default 0.02, drawn
    /// from Hone's seeded generator (Box–Muller).
    public static func initialScore(width: Int, seed: UInt64, standardDeviation: Float = 0.02) -> [Float] {
        var generator = SplitMix64(seed: seed ^ 0x5C0_8E)
        return (0..<width).map { _ in
            let u1 = max(Double(generator.next() >> 11) / Double(1 << 53), .leastNonzeroMagnitude)
            let u2 = Double(generator.next() >> 11) / Double(1 << 53)
            return Float((-2 * log(u1)).squareRoot() * cos(2 * .pi * u2)) * standardDeviation
        }
    }
}
