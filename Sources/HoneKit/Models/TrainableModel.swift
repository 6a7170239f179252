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
func packedCausalAttention(_ layout: PassLayout, heads: Int, keyValueHeads: Int, headDimension: Int, scale: Float,
                           window: Int? = nil, softcap: Float? = nil)
    -> (UnsafeMutablePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void {
    let queryWidth = heads * headDimension
    let kvWidth = keyValueHeads * headDimension
    return { q, k, v, out in
        let sequences = layout.counts.indices.flatMap { index in
            let row = layout.offsets[index]
            let whole = hk_attention_sequence(q: q + row * queryWidth, k: k + row * kvWidth, v: v + row * kvWidth,
                                              out: out + row * queryWidth, n_q: Int32(layout.counts[index]), q_start: 0)
            return windowed(whole, window: window, queryWidth: queryWidth, keyWidth: kvWidth)
        }
        attendBatch(sequences, heads: heads, keyValueHeads: keyValueHeads, headDimension: headDimension, scale: scale,
                    softcap: softcap)
    }
}

/// Backward of `packedCausalAttention`: dq, dk, dv (same layouts as q, k, v) for d_out: [total, heads × head_dim].
func packedCausalAttentionBackward(_ layout: PassLayout, heads: Int, keyValueHeads: Int, headDimension: Int, scale: Float,
                                   window: Int? = nil, softcap: Float? = nil,
                                   queries: UnsafePointer<Float>, keys: UnsafePointer<Float>, values: UnsafePointer<Float>,
                                   outputGradient: UnsafePointer<Float>, queryGradient: UnsafeMutablePointer<Float>,
                                   keyGradient: UnsafeMutablePointer<Float>, valueGradient: UnsafeMutablePointer<Float>) {
    let queryWidth = heads * headDimension
    let kvWidth = keyValueHeads * headDimension
    for sequence in layout.counts.indices {
        let row = layout.offsets[sequence]
        hk_attention_backward(queries + row * queryWidth, keys + row * kvWidth, values + row * kvWidth,
                              outputGradient + row * queryWidth, queryGradient + row * queryWidth,
                              keyGradient + row * kvWidth, valueGradient + row * kvWidth, Int32(layout.counts[sequence]),
                              Int32(heads), Int32(keyValueHeads), Int32(headDimension), scale, Int32(window ?? 0),
                              softcap ?? 0)
    }
}

extension LayerNorm {
    /// dx: [rows, dim] += the input gradient of this norm for dy: [rows, dim], x the norm's input.
    func backwardInput(input x: UnsafePointer<Float>, outputGradient dy: UnsafePointer<Float>, rows: Int,
                       into dx: UnsafeMutablePointer<Float>) {
        hk_layernorm_backward(x, weight?.pointer, dy, dx, Int32(rows), Int32(dimension), epsilon)
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
