import Foundation
import HoneKernels

// The training pass of GPT-NeoX: the inference block code (`runLayer`) with a tape per layer, and its backward
// for the LoRA parameters, for parallel and sequential residual blocks.
extension GPTNeoXModel: TrainableModel {
    var vocabularyProjection: Linear { outputProjection }

    func trainingForward(tokens: [Int32], layout: PassLayout, checkpointing: Bool) throws -> TrainingPass {
        try validate([SequenceInput(tokens: tokens, cache: KVCache(layerCount: 0, rowWidth: 0))])
        let x = FloatBuffer(count: layout.total * config.hiddenSize)
        embedding.lookup(tokens, into: x.pointer)
        let angles = rotaryAngles(layout)
        let (tapes, layerInputs) = recordLayers(layers.count, x: x, checkpointing: checkpointing) { index, tape, keep in
            runLayer(index, x: x.pointer, layout: layout, angles: angles, tape: tape, keepResidual: keep,
                     attend: causalAttention(layout))
        }
        let finalTape = LayerTape()
        let output = finish(x, total: layout.total, tape: finalTape)
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
        // dx: ∂L/∂(residual stream), carried from the top of the network down.
        let dx = FloatBuffer(zeros: total * config.hiddenSize)
        let angles = rotaryAngles(layout)
        guard let finalInput = pass.extra["final_in"] else { preconditionFailure("training pass lacks final_in") }
        finalNorm.backwardInput(input: finalInput.pointer, outputGradient: hiddenGradient, rows: total, into: dx.pointer)
        for index in layers.indices.reversed() {
            let tape = pass.tape(forLayer: index) { index, x, tape in
                runLayer(index, x: x, layout: layout, angles: angles, tape: tape, keepResidual: true,
                         attend: causalAttention(layout))
            }
            backwardLayer(index, tape: tape, layout: layout, angles: angles, dx: dx.pointer)
        }
    }

    /// dx: [total, hidden] holds ∂L/∂(block output) on entry and ∂L/∂(block input) on return.
    private func backwardLayer(_ index: Int, tape: LayerTape, layout: PassLayout, angles: RotaryAngles,
                               dx: UnsafeMutablePointer<Float>) {
        let layer = layers[index]
        let total = layout.total
        let count = total * config.hiddenSize
        let ffn = total * config.intermediateSize
        func linear(_ module: String, _ base: Linear, input: UnsafePointer<Float>, dy: UnsafePointer<Float>,
                    into gradient: UnsafeMutablePointer<Float>) {
            backwardAdapted(base, layer: index, module: module, input: input, outputGradient: dy, rows: total,
                            inputGradient: gradient, accumulate: false, tape: tape)
        }
        // MLP branch, from ∂L/∂(block output): mlp_in = LN2(input) (parallel) or LN2(mid) (sequential).
        let dActivated = FloatBuffer(count: ffn)
        linear("dense_4h_to_h", layer.down, input: tape["h"], dy: dx, into: dActivated.pointer)
        hk_gelu_backward(tape["up"], dActivated.pointer, dActivated.pointer, ffn, tanhGELU)
        let dMLPInput = FloatBuffer(count: count)
        linear("dense_h_to_4h", layer.up, input: tape["mlp_in"], dy: dActivated.pointer, into: dMLPInput.pointer)
        // Parallel: both branches read the block output's gradient, so the MLP's norm is added after the attention
        // branch has read dx. Sequential: dx becomes ∂L/∂mid first.
        if !config.parallelResidual {
            layer.mlpNorm.backwardInput(input: tape["mid"], outputGradient: dMLPInput.pointer, rows: total, into: dx)
        }
        // Attention branch: attn_delta = dense(attention(rope(q), rope(k), v)), q/k/v split from qkv(LN1(input)).
        let dAttention = FloatBuffer(count: count)
        linear("dense", layer.output, input: tape["attn_out"], dy: dx, into: dAttention.pointer)
        let dQueries = FloatBuffer(count: count)
        let dKeys = FloatBuffer(count: count)
        let dValues = FloatBuffer(count: count)
        packedCausalAttentionBackward(layout, heads: config.headCount, keyValueHeads: config.headCount,
                                      headDimension: config.headDimension, scale: attentionScale,
                                      queries: tape["q"], keys: tape["k"], values: tape["v"],
                                      outputGradient: dAttention.pointer, queryGradient: dQueries.pointer,
                                      keyGradient: dKeys.pointer, valueGradient: dValues.pointer)
        rotateQueriesAndKeys(queries: dQueries.pointer, keys: dKeys.pointer, rows: total, angles: angles, config: config,
                             inverse: true)
        let dFused = FloatBuffer(count: 3 * count)
        splitQueryKeyValue(dFused.pointer, dQueries.pointer, dKeys.pointer, dValues.pointer, total: total, merge: true)
        let dAttentionInput = FloatBuffer(count: count)
        linear("query_key_value", layer.queryKeyValue, input: tape["attn_in"], dy: dFused.pointer, into: dAttentionInput.pointer)
        if config.parallelResidual {
            layer.mlpNorm.backwardInput(input: tape["input"], outputGradient: dMLPInput.pointer, rows: total, into: dx)
        }
        layer.attentionNorm.backwardInput(input: tape["input"], outputGradient: dAttentionInput.pointer, rows: total, into: dx)
    }
}
