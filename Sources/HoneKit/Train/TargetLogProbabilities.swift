import Foundation
import HoneKernels

// MARK: - Log-probabilities of target tokens and their backward

/// Log-probabilities of chosen target tokens from final hidden states, and the gradient back to those states,
/// computed in chunks of rows so that logits never exist for every row at once (vocab × rows floats).
struct TargetLogProbabilities {
    let model: TrainableModel
    /// Rows of logits at once: about 64 MiB of them (1024 rows at most). Each chunk converts the (f16/bf16 or
    /// quantized) vocabulary projection again, so larger chunks waste less of that work.
    var chunk: Int

    init(model: TrainableModel) {
        self.model = model
        chunk = max(64, min(1024, (16 << 20) / max(1, model.config.vocabularySize)))
    }

    /// logp of targets[i] at hidden row rows[i].
    func forward(hidden: UnsafePointer<Float>, width: Int, rows: [Int], targets: [Int32]) -> [Float] {
        run(hidden: hidden, width: width, rows: rows, targets: targets, coefficients: nil, hiddenGradient: nil)
    }

    /// Given coefficients[i] = ∂L/∂logp_i, adds ∂L/∂hidden into `hiddenGradient` rows; returns the log-probs.
    func backward(hidden: UnsafePointer<Float>, width: Int, rows: [Int], targets: [Int32], coefficients: [Float],
                  hiddenGradient: UnsafeMutablePointer<Float>) -> [Float] {
        run(hidden: hidden, width: width, rows: rows, targets: targets, coefficients: coefficients,
            hiddenGradient: hiddenGradient)
    }

    private func run(hidden: UnsafePointer<Float>, width: Int, rows: [Int], targets: [Int32], coefficients: [Float]?,
                     hiddenGradient: UnsafeMutablePointer<Float>?) -> [Float] {
        let vocabulary = model.config.vocabularySize
        let projection = model.vocabularyProjection
        var logprobs = [Float](repeating: 0, count: rows.count)
        let gathered = FloatBuffer(count: chunk * width)
        let logits = FloatBuffer(count: chunk * vocabulary)
        let slopes = FloatBuffer(count: model.config.finalLogitSoftcap != nil && hiddenGradient != nil ? chunk * vocabulary : 0)
        let gradient = FloatBuffer(count: chunk * width)
        var begin = 0
        while begin < rows.count {
            let count = min(chunk, rows.count - begin)
            for index in 0..<count {
                (gathered.pointer + index * width).update(from: hidden + rows[begin + index] * width, count: width)
            }
            projection.apply(gathered.pointer, rows: count, into: logits.pointer)
            // Gemma 2's final soft cap c·tanh(z/c): its slope 1 − tanh² is kept for the gradient.
            let cap = model.config.finalLogitSoftcap
            if let cap {
                softcapLogits(logits.pointer, count: count * vocabulary, cap: cap)
                if hiddenGradient != nil {
                    for index in 0..<(count * vocabulary) {
                        let ratio = logits.pointer[index] / cap
                        slopes.pointer[index] = 1 - ratio * ratio
                    }
                }
            }
            targets.withUnsafeBufferPointer { targetPointer in
                logprobs.withUnsafeMutableBufferPointer { out in
                    let chunkTargets = targetPointer.baseAddress! + begin
                    if let coefficients {
                        coefficients.withUnsafeBufferPointer { coefficientPointer in
                            hk_log_softmax_gather_backward(logits.pointer, chunkTargets, coefficientPointer.baseAddress! + begin,
                                                           out.baseAddress! + begin, Int32(count), Int32(vocabulary))
                        }
                    } else {
                        hk_log_softmax_gather(logits.pointer, chunkTargets, out.baseAddress! + begin, Int32(count),
                                              Int32(vocabulary))
                    }
                }
            }
            if let hiddenGradient {
                if cap != nil {
                    for index in 0..<(count * vocabulary) { logits.pointer[index] *= slopes.pointer[index] }
                }
                projection.backwardInput(logits.pointer, rows: count, into: gradient.pointer, accumulate: false)
                for index in 0..<count {
                    hk_add(hiddenGradient + rows[begin + index] * width, gradient.pointer + index * width, width)
                }
            }
            begin += count
        }
        return logprobs
    }
}
