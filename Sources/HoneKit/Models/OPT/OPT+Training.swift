import Foundation
import HoneKernels

// The training pass of OPT: the inference block code (`runLayer`) with a tape per layer, and its backward for
// the LoRA parameters, for pre-norm blocks and for OPT-350m's post-norm ones.
extension OPTModel: TrainableModel {
    var vocabularyProjection: Linear { outputProjection }

    func trainingForward(tokens: [Int32], layout: PassLayout, checkpointing: Bool) throws -> TrainingPass {
        try validate([SequenceInput(tokens: tokens, cache: KVCache(layerCount: 0, rowWidth: 0))])
        if let longest = layout.counts.max(), longest > config.maxPositionEmbeddings {
            throw HoneError.contextOverflow(needed: longest, limit: config.maxPositionEmbeddings)
        }
        let total = layout.total
        let x = embed(tokens, layout: layout)
        let (tapes, layerInputs) = recordLayers(layers.count, x: x, checkpointing: checkpointing) { index, tape, keep in
            runLayer(index, x: x.pointer, total: total, tape: tape, keepResidual: keep, attend: causalAttention(layout))
        }
        let finalTape = LayerTape()
        let output = finish(x, total: total, tape: finalTape)
        return TrainingPass(layout: layout, checkpointing: checkpointing, hidden: output, tapes: tapes,
                            layerInputs: layerInputs, extra: finalTape.buffers)
    }

    private func causalAttention(_ layout: PassLayout)
        -> (UnsafeMutablePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void {
        packedCausalAttention(layout, heads: config.headCount, keyValueHeads: config.headCount,
                              headDimension: config.headDimension, scale: attentionScale)
    }

    func trainingBackward(_ pass: TrainingPass, hiddenGradient: UnsafeMutablePointer<Float>) {
        let layout = pass.layout
        let total = layout.total
        let hidden = config.hiddenSize
        let count = total * hidden
        var dx = FloatBuffer(zeros: count)
        var upstream: UnsafePointer<Float> = UnsafePointer(hiddenGradient)
        var projectedBack: FloatBuffer?
        if let projectOut {
            let buffer = FloatBuffer(count: count)
            projectOut.backwardInput(hiddenGradient, rows: total, into: buffer.pointer, accumulate: false)
            projectedBack = buffer
            upstream = UnsafePointer(buffer.pointer)
        }
        if let finalNorm, let finalInput = pass.extra["final_in"] {
            layerNormBackward(finalNorm, input: finalInput.pointer, dy: upstream, into: dx.pointer, rows: total)
        } else {
            dx.pointer.update(from: upstream, count: count)
        }
        withExtendedLifetime(projectedBack) {}  // `upstream` pointed into it until here
        for index in layers.indices.reversed() {
            let tape = pass.tape(forLayer: index) { index, x, tape in
                runLayer(index, x: x, total: total, tape: tape, keepResidual: true, attend: causalAttention(layout))
            }
            dx = backwardLayer(index, tape: tape, layout: layout, dx: dx)
        }
    }

    /// dx += LayerNorm's input gradient.
    private func layerNormBackward(_ norm: LayerNorm, input: UnsafePointer<Float>, dy: UnsafePointer<Float>,
                                   into dx: UnsafeMutablePointer<Float>, rows: Int) {
        norm.backwardInput(input: input, outputGradient: dy, rows: rows, into: dx)
    }

    /// Takes ∂L/∂(block output) and returns ∂L/∂(block input).
    private func backwardLayer(_ index: Int, tape: LayerTape, layout: PassLayout, dx incoming: FloatBuffer) -> FloatBuffer {
        let layer = layers[index]
        let total = layout.total
        let hidden = config.hiddenSize
        let count = total * hidden
        let ffn = config.intermediateSize
        let preNorm = config.layerNormBefore
        func linear(_ module: String, _ base: Linear, input: UnsafePointer<Float>, dy: UnsafePointer<Float>,
                    into gradient: UnsafeMutablePointer<Float>, accumulate: Bool) {
            backwardAdapted(base, layer: index, module: module, input: input, outputGradient: dy, rows: total,
                            inputGradient: gradient, accumulate: accumulate, tape: tape)
        }
        var dx = incoming
        if !preNorm {
            // x_out = LN2(out_sum)
            let dSum = FloatBuffer(zeros: count)
            layerNormBackward(layer.mlpNorm, input: tape["out_sum"], dy: dx.pointer, into: dSum.pointer, rows: total)
            dx = dSum
        }
        // MLP: sum = mlp_in-side residual + fc2(relu(fc1(mlp_in)))
        let dActivated = FloatBuffer(count: total * ffn)
        linear("fc2", layer.down, input: tape["h"], dy: dx.pointer, into: dActivated.pointer, accumulate: false)
        hk_relu_backward(tape["up"], dActivated.pointer, dActivated.pointer, total * ffn)
        let dMLPInput = FloatBuffer(count: count)
        linear("fc1", layer.up, input: tape["mlp_in"], dy: dActivated.pointer, into: dMLPInput.pointer, accumulate: false)
        if preNorm {
            layerNormBackward(layer.mlpNorm, input: tape["mid"], dy: dMLPInput.pointer, into: dx.pointer, rows: total)
        } else {
            // mlp_in = LN1(mid) feeds both the residual and fc1.
            hk_add(dMLPInput.pointer, dx.pointer, count)
            let dMid = FloatBuffer(zeros: count)
            layerNormBackward(layer.attentionNorm, input: tape["mid"], dy: dMLPInput.pointer, into: dMid.pointer, rows: total)
            dx = dMid
        }
        // Attention: mid = input + out_proj(attention(q(a), k(a), v(a))), a = LN1(input) or input.
        let dAttention = FloatBuffer(count: count)
        linear("out_proj", layer.output, input: tape["attn_out"], dy: dx.pointer, into: dAttention.pointer, accumulate: false)
        let dQueries = FloatBuffer(count: count)
        let dKeys = FloatBuffer(count: count)
        let dValues = FloatBuffer(count: count)
        packedCausalAttentionBackward(layout, heads: config.headCount, keyValueHeads: config.headCount,
                                      headDimension: config.headDimension, scale: attentionScale,
                                      queries: tape["q"], keys: tape["k"], values: tape["v"],
                                      outputGradient: dAttention.pointer, queryGradient: dQueries.pointer,
                                      keyGradient: dKeys.pointer, valueGradient: dValues.pointer)
        let dAttentionInput = FloatBuffer(count: count)
        linear("q_proj", layer.query, input: tape["attn_in"], dy: dQueries.pointer, into: dAttentionInput.pointer, accumulate: false)
        linear("k_proj", layer.key, input: tape["attn_in"], dy: dKeys.pointer, into: dAttentionInput.pointer, accumulate: true)
        linear("v_proj", layer.value, input: tape["attn_in"], dy: dValues.pointer, into: dAttentionInput.pointer, accumulate: true)
        if preNorm {
            layerNormBackward(layer.attentionNorm, input: tape["input"], dy: dAttentionInput.pointer, into: dx.pointer, rows: total)
        } else {
            hk_add(dx.pointer, dAttentionInput.pointer, count)
        }
        return dx
    }
}
