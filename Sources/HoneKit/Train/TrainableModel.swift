import Foundation
import HoneKernels

/// A model that can run a training pass over packed token rows (each row a whole sequence from position 0):
/// a forward that keeps what backward needs (or only each layer's input, with gradient checkpointing), and a
/// backward that accumulates the gradients of its LoRA adapters. The base weights are frozen.
protocol TrainableModel: AdaptableModel {
    /// Runs the rows forward; returns the pass, whose `hidden` holds the final hidden states [total, width].
    func trainingForward(tokens: [Int32], layout: PassLayout, checkpointing: Bool) throws -> TrainingPass
    /// hiddenGradient: [total, width] = ∂L/∂hidden. Accumulates ∂L/∂A and ∂L/∂B of every adapter.
    func trainingBackward(_ pass: TrainingPass, hiddenGradient: UnsafeMutablePointer<Float>)
    /// The frozen projection from hidden states to vocabulary logits.
    var vocabularyProjection: Linear { get }
}

/// What one training forward pass leaves for its backward pass.
final class TrainingPass: @unchecked Sendable {
    let layout: PassLayout
    let checkpointing: Bool
    /// Final hidden states: [total, width].
    let hidden: FloatBuffer
    /// One tape per layer without checkpointing; with it, one shared scratch tape refilled per layer.
    let tapes: [LayerTape]
    /// With checkpointing: each layer's input [total, hidden], from which the layer is recomputed.
    let layerInputs: [FloatBuffer]
    /// Anything else an architecture keeps (the input of the final norm, say).
    let extra: [String: FloatBuffer]

    init(layout: PassLayout, checkpointing: Bool, hidden: FloatBuffer, tapes: [LayerTape], layerInputs: [FloatBuffer],
         extra: [String: FloatBuffer]) {
        self.layout = layout
        self.checkpointing = checkpointing
        self.hidden = hidden
        self.tapes = tapes
        self.layerInputs = layerInputs
        self.extra = extra
    }

    /// Bytes of activations held for backward.
    var byteCount: Int {
        tapes.reduce(0) { $0 + $1.byteCount } + layerInputs.reduce(0) { $0 + $1.count * 4 }
            + extra.values.reduce(0) { $0 + $1.count * 4 } + hidden.count * 4
    }
}

// MARK: - Layer tapes, kept or recomputed

/// Runs `layerCount` layers on x in order, `run(index, tape, keepResidual)` each, and returns what backward needs:
/// a tape per layer, or with checkpointing each layer's input (rows × width floats) and one scratch tape.
func recordLayers(_ layerCount: Int, x: FloatBuffer, checkpointing: Bool,
                  run: (Int, LayerTape, Bool) -> Void) -> (tapes: [LayerTape], layerInputs: [FloatBuffer]) {
    var tapes: [LayerTape] = []
    var layerInputs: [FloatBuffer] = []
    let scratch = LayerTape()
    for index in 0..<layerCount {
        if checkpointing {
            let input = FloatBuffer(count: x.count)
            input.pointer.update(from: x.pointer, count: x.count)
            layerInputs.append(input)
            run(index, scratch, false)
        } else {
            let tape = LayerTape()
            tapes.append(tape)
            run(index, tape, true)
        }
    }
    return (checkpointing ? [scratch] : tapes, layerInputs)
}

extension TrainingPass {
    /// Layer `index`'s tape for its backward: the kept one, or, with checkpointing, the scratch tape refilled by
    /// running the layer again (`run(index, x, tape)`, x a copy of its input).
    func tape(forLayer index: Int, run: (Int, UnsafeMutablePointer<Float>, LayerTape) -> Void) -> LayerTape {
        guard checkpointing else { return tapes[index] }
        let input = layerInputs[index]
        let x = FloatBuffer(count: input.count)
        x.pointer.update(from: input.pointer, count: input.count)
        run(index, x.pointer, tapes[0])
        return tapes[0]
    }
}

/// Causal attention of each packed sequence over its own keys, from position 0 (training passes have no cache).
/// Row widths: queries heads × head_dim, keys and values kv_heads × head_dim.
func packedCausalAttention(_ layout: PassLayout, heads: Int, keyValueHeads: Int, headDimension: Int, scale: Float)
    -> (UnsafeMutablePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void {
    let queryWidth = heads * headDimension
    let kvWidth = keyValueHeads * headDimension
    return { q, k, v, out in
        for index in layout.counts.indices {
            let row = layout.offsets[index]
            hk_attention(q + row * queryWidth, k + row * kvWidth, v + row * kvWidth, out + row * queryWidth,
                         Int32(layout.counts[index]), 0, Int32(heads), Int32(keyValueHeads), Int32(headDimension), scale)
        }
    }
}

extension Linear {
    /// dx: [rows, in] (+)= dy: [rows, out] · W, for a frozen weight in any stored dtype (quantized included).
    func backwardInput(_ dy: UnsafePointer<Float>, rows: Int, into dx: UnsafeMutablePointer<Float>, accumulate: Bool) {
        guard rows > 0 else { return }
        hk_linear_backward_input(weight.data, Int32(weight.dtype.ggmlType), dy, dx, Int32(rows), Int32(inFeatures),
                                 Int32(outFeatures), accumulate ? 1 : 0)
    }
}

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
        let gradient = FloatBuffer(count: chunk * width)
        var begin = 0
        while begin < rows.count {
            let count = min(chunk, rows.count - begin)
            for index in 0..<count {
                (gathered.pointer + index * width).update(from: hidden + rows[begin + index] * width, count: width)
            }
            projection.apply(gathered.pointer, rows: count, into: logits.pointer)
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
