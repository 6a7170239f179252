import Foundation

// MARK: - The score head of sequence-classification models

/// Which final hidden state(s) a score head reads.
public enum ScorePooling: String, Sendable {
    /// transformers' `…ForSequenceClassification`: the rightmost token that is not `pad_token_id`.
    case lastNonPadding = "last_non_pad"
    /// The last token of the row, whatever it is (OpenAssistant's "last": the last attended position).
    case last
    /// The mean over every token of the row (OpenAssistant's "mean").
    case mean
}

/// The head of transformers' `…ForSequenceClassification` models (Llama, Qwen2, Mistral, OPT, GPT-NeoX): a linear
/// layer without bias, `score.weight` [labels, width], applied to the final hidden state of one position per
/// sequence: the last token that is not the padding token (`config.pad_token_id`), or the last token when the
/// config has none. A reward model is one with a single label; its reward is that label's logit.
public struct ScoreHead: @unchecked Sendable {
    /// The tensor name in HF checkpoints (every architecture's sequence-classification class uses it).
    public static let tensorName = "score.weight"
    /// The PEFT `modules_to_save` name of the head.
    public static let moduleName = "score"

    /// [labels, width], f32.
    public let weight: FloatBuffer
    public let labels: Int
    public let width: Int
    /// The token whose positions are skipped when finding where to read (HF's `pad_token_id`).
    public let padTokenID: Int32?
    /// [labels] added to the logits: OpenAssistant's `out_proj` has one; transformers' `score` never does.
    public let bias: [Float]?
    public let pooling: ScorePooling

    public init(weight: FloatBuffer, labels: Int, width: Int, padTokenID: Int32?, bias: [Float]? = nil,
                pooling: ScorePooling = .lastNonPadding) {
        precondition(weight.count == labels * width, "score weight must hold labels × width floats")
        precondition(bias == nil || bias!.count == labels, "score bias must hold one float per label")
        self.weight = weight
        self.labels = labels
        self.width = width
        self.padTokenID = padTokenID
        self.bias = bias
        self.pooling = pooling
    }

    /// The head stored in `weights` under the config's `scoreModule` ("score", or "out_proj" for OpenAssistant's
    /// reward models), with its bias when stored; nil when there is none (a causal LM).
    static func load(from weights: WeightStore, config: ModelConfig) throws -> ScoreHead? {
        let name = config.scoreModule + ".weight"
        guard !weights.isGGUF, weights.contains(name) else { return nil }
        let tensor = try weights.tensor(name)
        guard tensor.shape.count == 2, tensor.shape[0] >= 1 else {
            throw HoneError.tensorShape(name: name, expected: [1, -1], actual: tensor.shape, path: tensor.source)
        }
        let biasName = config.scoreModule + ".bias"
        var bias: [Float]?
        if weights.contains(biasName) {
            let stored = try weights.tensor(biasName)
            try stored.expectShape([tensor.shape[0]])
            bias = stored.floats()
        }
        return ScoreHead(weight: FloatBuffer(tensor.floats()), labels: tensor.shape[0], width: tensor.shape[1],
                         padTokenID: config.padTokenID.map { Int32($0) }, bias: bias, pooling: config.scorePooling)
    }

    /// The position of `tokens` whose hidden state the head reads: transformers takes the rightmost token that is
    /// not `pad_token_id` (`argmax(index × mask)`, so 0 when every token is padding), or the last one without a pad id.
    /// A sequence that ends with the pad token itself (an EOS used as padding) is therefore read before it.
    public func readPosition(_ tokens: [Int32]) -> Int {
        guard pooling == .lastNonPadding, let padTokenID else { return max(0, tokens.count - 1) }
        return tokens.lastIndex { $0 != padTokenID } ?? 0
    }

    /// logits: [labels] for one hidden row of `width` floats.
    public func logits(_ hidden: UnsafePointer<Float>) -> [Float] {
        (0..<labels).map { label in
            let row = weight.pointer + label * width
            var sum: Float = 0
            for index in 0..<width { sum += row[index] * hidden[index] }
            return sum + (bias?[label] ?? 0)
        }
    }

    /// logits: [labels] for one sequence whose final hidden states are `hidden`: [tokens.count, width], read at
    /// `readPosition` or, with mean pooling, averaged over every token first.
    public func logits(sequence hidden: UnsafePointer<Float>, tokens: [Int32]) -> [Float] {
        guard pooling == .mean, tokens.count > 1 else { return logits(hidden + readPosition(tokens) * width) }
        var mean = [Float](repeating: 0, count: width)
        for row in 0..<tokens.count {
            for index in 0..<width { mean[index] += hidden[row * width + index] }
        }
        for index in 0..<width { mean[index] /= Float(tokens.count) }
        return logits(mean)
    }

    /// The same head with another weight (a trained copy) and the same reading rule.
    public func with(weight: FloatBuffer) -> ScoreHead {
        ScoreHead(weight: weight, labels: labels, width: width, padTokenID: padTokenID, bias: bias, pooling: pooling)
    }

    /// The same head with another padding token (what a reward-model trainer recorded).
    public func with(padTokenID: Int32?) -> ScoreHead {
        ScoreHead(weight: weight, labels: labels, width: width, padTokenID: padTokenID, bias: bias, pooling: pooling)
    }
}
