import Foundation

// MARK: - The score head of sequence-classification models

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

    public init(weight: FloatBuffer, labels: Int, width: Int, padTokenID: Int32?) {
        precondition(weight.count == labels * width, "score weight must hold labels × width floats")
        self.weight = weight
        self.labels = labels
        self.width = width
        self.padTokenID = padTokenID
    }

    /// The head stored in `weights`, or nil when there is none (a causal LM).
    static func load(from weights: WeightStore, config: ModelConfig) throws -> ScoreHead? {
        guard !weights.isGGUF, weights.contains(tensorName) else { return nil }
        let tensor = try weights.tensor(tensorName)
        guard tensor.shape.count == 2, tensor.shape[0] >= 1 else {
            throw HoneError.tensorShape(name: tensorName, expected: [1, -1], actual: tensor.shape, path: tensor.source)
        }
        return ScoreHead(weight: FloatBuffer(try tensor.floats()), labels: tensor.shape[0], width: tensor.shape[1],
                         padTokenID: config.padTokenID.map { Int32($0) })
    }

    /// The position of `tokens` whose hidden state the head reads: transformers takes the rightmost token that is
    /// not `pad_token_id` (`argmax(index × mask)`, so 0 when every token is padding), or the last one without a pad id.
    /// A sequence that ends with the pad token itself (an EOS used as padding) is therefore read before it.
    public func readPosition(_ tokens: [Int32]) -> Int {
        guard let padTokenID else { return max(0, tokens.count - 1) }
        return tokens.lastIndex { $0 != padTokenID } ?? 0
    }

    /// logits: [labels] for one hidden row of `width` floats.
    public func logits(_ hidden: UnsafePointer<Float>) -> [Float] {
        (0..<labels).map { label in
            let row = weight.pointer + label * width
            var sum: Float = 0
            for index in 0..<width { sum += row[index] * hidden[index] }
            return sum
        }
    }

    /// The same head with another weight (a trained copy) and the same reading rule.
    public func with(weight: FloatBuffer) -> ScoreHead {
        ScoreHead(weight: weight, labels: labels, width: width, padTokenID: padTokenID)
    }

    /// The same head with another padding token (what a reward-model trainer recorded).
    public func with(padTokenID: Int32?) -> ScoreHead {
        ScoreHead(weight: weight, labels: labels, width: width, padTokenID: padTokenID)
    }
}
