import Foundation
import HoneKernels

/// Perplexity by llama.cpp's method (`llama-perplexity`): the text is tokenized once (with BOS), cut into
/// non-overlapping chunks of `contextLength` tokens, the first token of each chunk is replaced by BOS, and only
/// the second half of each chunk is scored (positions contextLength/2 … contextLength−2 predicting the next
/// token), so every scored token sees at least half a context. Figures match llama.cpp's on the same file.
public struct PerplexityResult: Sendable {
    public let chunks: Int
    public let scoredTokens: Int
    /// exp(mean negative log-likelihood)
    public let perplexity: Double
    /// llama.cpp's uncertainty estimate of the perplexity.
    public let uncertainty: Double
    /// Perplexity after each chunk, as llama.cpp prints it.
    public let running: [Double]
}

public enum Perplexity {
    public static func evaluate(model: CausalLanguageModel, tokens: [Int32], contextLength: Int, bos: Int32?,
                                chunksPerPass: Int = 4, maxChunks: Int? = nil,
                                progress: ((Int, Int) -> Void)? = nil) throws -> PerplexityResult {
        guard contextLength >= 4 else { throw HoneError.invalidArgument("\(OptionName("ctx")) must be at least 4") }
        var chunkCount = tokens.count / contextLength
        if let maxChunks { chunkCount = min(chunkCount, maxChunks) }
        guard chunkCount >= 1 else {
            throw HoneError.invalidArgument("the text has \(tokens.count) tokens; perplexity needs at least \(OptionName("ctx")) (\(contextLength))")
        }
        let first = contextLength / 2
        let vocabulary = model.config.vocabularySize
        var nll = 0.0
        var nllSquared = 0.0
        var count = 0
        var running: [Double] = []
        let rows = contextLength - 1 - first
        let logits = FloatBuffer(count: rows * vocabulary)
        var logprobs = [Float](repeating: 0, count: rows)
        var chunk = 0
        while chunk < chunkCount {
            let group = min(chunksPerPass, chunkCount - chunk)
            let batch = (0..<group).map { offset -> SequenceInput in
                let start = (chunk + offset) * contextLength
                var piece = Array(tokens[start..<(start + contextLength)])
                if let bos { piece[0] = bos }
                return SequenceInput(tokens: piece, cache: model.makeCache())
            }
            let hidden = try model.forward(batch)
            for offset in 0..<group {
                let start = (chunk + offset) * contextLength
                let base = hidden.sequenceOffsets[offset] + first
                model.projectToVocabulary(hidden.values.pointer + base * hidden.width, rows: rows, into: logits.pointer)
                let targets = (0..<rows).map { tokens[start + first + $0 + 1] }
                targets.withUnsafeBufferPointer { target in
                    logprobs.withUnsafeMutableBufferPointer { output in
                        hk_log_softmax_gather(logits.pointer, target.baseAddress!, output.baseAddress!, Int32(rows), Int32(vocabulary))
                    }
                }
                // A NaN or infinite log-probability comes only from non-finite logits (a poisoned weight, a config
                // that overflows): stop instead of printing "nan" as a result.
                if let bad = logprobs.firstIndex(where: { !$0.isFinite }) {
                    throw HoneError.nonFinite(message: "perplexity stopped: chunk \(chunk + offset + 1), position \(first + bad + 1): "
                        + "the log-probability is \(logprobs[bad]); the model produces non-finite numbers")
                }
                for value in logprobs {
                    nll -= Double(value)
                    nllSquared += Double(value) * Double(value)
                }
                count += rows
                running.append(exp(nll / Double(count)))
            }
            chunk += group
            progress?(chunk, chunkCount)
        }
        let mean = nll / Double(count)
        let variance = nllSquared / Double(count) - mean * mean
        let uncertainty = count > 1 && variance > 0 ? (variance / Double(count - 1)).squareRoot() : 0
        let perplexity = exp(mean)
        return PerplexityResult(chunks: chunkCount, scoredTokens: count, perplexity: perplexity,
                                uncertainty: perplexity * uncertainty, running: running)
    }
}
