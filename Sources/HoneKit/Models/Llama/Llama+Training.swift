import Foundation
import HoneKernels

// The training pass of the Llama family: the same block code as inference (`runLayer`), with a tape per layer,
// and the backward pass of a block for the LoRA parameters only.
extension LlamaModel: TrainableModel {
    var vocabularyProjection: Linear { outputProjection }

    func trainingForward(tokens: [Int32], layout: PassLayout, checkpointing: Bool) throws -> TrainingPass {
        try validate([SequenceInput(tokens: tokens, cache: KVCache(layerCount: 0, rowWidth: 0))])
        let total = layout.total
        let hidden = config.hiddenSize
        let (angles, localAngles) = (rotaryAngles(layout), localRotaryAngles(layout))
        let x = FloatBuffer(count: total * hidden)
        embedding.lookup(tokens, into: x.pointer)
        scaleEmbeddings(x.pointer, count: total * hidden)

        let (tapes, layerInputs) = recordLayers(layers.count, x: x, checkpointing: checkpointing) { index, tape, keep in
            runLayer(index, x: x.pointer, layout: layout, angles: self.angles(forLayer: index, global: angles, local: localAngles),
                     tape: tape, keepResidual: keep, attend: causalAttention(layout, window: layers[index].window))
        }
        let normed = FloatBuffer(count: total * hidden)
        finalNorm.apply(x.pointer, rows: total, into: normed.pointer)
        return TrainingPass(layout: layout, checkpointing: checkpointing, hidden: normed, tapes: tapes,
                            layerInputs: layerInputs, extra: ["final_in": x])
    }

    private func causalAttention(_ layout: PassLayout, window: Int?)
        -> (UnsafeMutablePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void {
        packedCausalAttention(layout, heads: config.headCount, keyValueHeads: config.keyValueHeadCount,
                              headDimension: config.headDimension, scale: attentionScale, window: window,
                              softcap: config.attentionLogitSoftcap)
    }

    func trainingBackward(_ pass: TrainingPass, hiddenGradient: UnsafeMutablePointer<Float>) {
        let layout = pass.layout
        let total = layout.total
        let hidden = config.hiddenSize
        let (globalAngles, localAngles) = (rotaryAngles(layout), localRotaryAngles(layout))
        // dx: ∂L/∂(residual stream), carried from the top of the network down.
        let dx = FloatBuffer(zeros: total * hidden)
        guard let finalInput = pass.extra["final_in"] else { preconditionFailure("training pass lacks final_in") }
        hk_rmsnorm_backward(finalInput.pointer, finalNorm.weight.pointer, hiddenGradient, dx.pointer, Int32(total),
                            Int32(hidden), finalNorm.epsilon)
        for index in layers.indices.reversed() {
            let angles = self.angles(forLayer: index, global: globalAngles, local: localAngles)
            let tape = pass.tape(forLayer: index) { index, x, tape in
                runLayer(index, x: x, layout: layout, angles: angles, tape: tape, keepResidual: true,
                         attend: causalAttention(layout, window: layers[index].window))
            }
            backwardLayer(index, tape: tape, layout: layout, angles: angles, dx: dx.pointer)
        }
    }

    /// dx: [total, hidden] holds ∂L/∂(block output) on entry and ∂L/∂(block input) on return.
    private func backwardLayer(_ index: Int, tape: LayerTape, layout: PassLayout, angles: RotaryAngles,
                               dx: UnsafeMutablePointer<Float>) {
        let layer = layers[index]
        let total = layout.total
        let hidden = config.hiddenSize
        let queryWidth = config.headCount * config.headDimension
        let kvWidth = config.keyValueHeadCount * config.headDimension
        let ffn = config.intermediateSize
        func linear(_ module: String, _ base: Linear, input: UnsafePointer<Float>, dy: UnsafePointer<Float>,
                    into gradient: UnsafeMutablePointer<Float>, accumulate: Bool) {
            backwardAdapted(base, layer: index, module: module, input: input, outputGradient: dy, rows: total,
                            inputGradient: gradient, accumulate: accumulate, tape: tape)
        }

        // Granite scales each half's output by residual_multiplier before the add: its gradient is r · dx (as dx
        // stands when the half is reached).
        let scaledGradient = FloatBuffer(count: config.residualMultiplier != 1 ? total * hidden : 0)
        let residualGradient = { () -> UnsafePointer<Float> in
            guard self.config.residualMultiplier != 1 else { return UnsafePointer(dx) }
            scaledGradient.pointer.update(from: dx, count: total * hidden)
            hk_scale(scaledGradient.pointer, self.config.residualMultiplier, total * hidden)
            return UnsafePointer(scaledGradient.pointer)
        }

        // A half's input norm (frozen) adds its input gradient to the residual stream's; OLMo's halves take the
        // stream itself.
        func throughInputNorm(_ norm: RMSNorm?, input: UnsafePointer<Float>, _ gradient: UnsafePointer<Float>) {
            guard let norm else { return hk_add(dx, gradient, total * hidden) }
            hk_rmsnorm_backward(input, norm.weight.pointer, gradient, dx, Int32(total), Int32(hidden), norm.epsilon)
        }

        // Gemma's post norms (frozen) sit between a half's projection and the residual add: the projection's
        // output gradient is the norm's input gradient.
        func throughPostNorm(_ norm: RMSNorm?, input: String, _ gradient: UnsafePointer<Float>) -> (UnsafePointer<Float>, FloatBuffer?) {
            guard let norm else { return (gradient, nil) }
            let projected = FloatBuffer(zeros: total * hidden)
            hk_rmsnorm_backward(tape[input], norm.weight.pointer, gradient, projected.pointer, Int32(total), Int32(hidden),
                                norm.epsilon)
            return (UnsafePointer(projected.pointer), projected)
        }

        // MLP half: x_out = mid + down(act(gate(n2)) · up(n2)), n2 = norm(mid), act SiLU or Gemma's gelu_tanh; a
        // fused gate_up takes the two gradients side by side, as its output held the two halves. A sparse MLP
        // (frozen experts) passes its input gradient through the chosen experts and the router.
        let dNormed = FloatBuffer(count: total * hidden)
        let (dDown, dDownOwner) = throughPostNorm(layer.postMLPNorm, input: "down_out", residualGradient())
        switch layer.mlp {
        case .gated(let inputs, let down):
            let dActivated = FloatBuffer(count: total * ffn)
            linear("down_proj", down, input: tape["h"], dy: dDown, into: dActivated.pointer, accumulate: false)
            let dGate = FloatBuffer(count: total * ffn)
            let dUp = FloatBuffer(count: total * ffn)
            if config.gatedGELU {
                geluTanhMultiplyBackward(gate: tape["gate"], up: tape["up"], outputGradient: dActivated.pointer,
                                         gateGradient: dGate.pointer, upGradient: dUp.pointer, count: total * ffn)
            } else {
                hk_silu_mul_backward(tape["gate"], tape["up"], dActivated.pointer, dGate.pointer, dUp.pointer, total * ffn)
            }
            switch inputs {
            case .separate(let gate, let up):
                linear("gate_proj", gate, input: tape["mlp_in"], dy: dGate.pointer, into: dNormed.pointer, accumulate: false)
                linear("up_proj", up, input: tape["mlp_in"], dy: dUp.pointer, into: dNormed.pointer, accumulate: true)
            case .fused(let gateUp):
                let dFused = FloatBuffer(count: total * 2 * ffn)
                joinColumns([(dGate.pointer, ffn), (dUp.pointer, ffn)], rows: total, into: dFused.pointer)
                linear("gate_up_proj", gateUp, input: tape["mlp_in"], dy: dFused.pointer, into: dNormed.pointer, accumulate: false)
            }
        case .experts(let experts):
            experts.backward(input: tape["mlp_in"], probabilities: tape["router_p"], rows: total, outputGradient: dDown,
                             into: dNormed.pointer)
        }
        withExtendedLifetime(dDownOwner) {}
        throughInputNorm(layer.mlpNorm, input: tape["mid"], dNormed.pointer)

        // Attention half: mid = input + o(attention(rope(q(n1)), rope(k(n1)), v(n1))), n1 = norm(input).
        let dAttention = FloatBuffer(count: total * queryWidth)
        let (dOutput, dOutputOwner) = throughPostNorm(layer.postAttentionNorm, input: "o_out", residualGradient())
        linear("o_proj", layer.output, input: tape["attn_out"], dy: dOutput, into: dAttention.pointer, accumulate: false)
        withExtendedLifetime(dOutputOwner) {}
        let dQueries = FloatBuffer(count: total * queryWidth)
        let dKeys = FloatBuffer(count: total * kvWidth)
        let dValues = FloatBuffer(count: total * kvWidth)
        packedCausalAttentionBackward(layout, heads: config.headCount, keyValueHeads: config.keyValueHeadCount,
                                      headDimension: config.headDimension, scale: attentionScale, window: layer.window,
                                      softcap: config.attentionLogitSoftcap,
                                      queries: tape["q"], keys: tape["k"], values: tape["v"],
                                      outputGradient: dAttention.pointer, queryGradient: dQueries.pointer,
                                      keyGradient: dKeys.pointer, valueGradient: dValues.pointer)
        if layer.rotates {
            rotateQueriesAndKeys(queries: dQueries.pointer, keys: dKeys.pointer, rows: total, angles: angles, config: config,
                                 inverse: true)
        }
        // Through the q/k norms (frozen; Qwen3's per head, OLMo's across the heads): the gradients of the
        // projections' outputs.
        var queryGradient = dQueries, keyGradient = dKeys
        if let norm = layer.queryNorm {
            queryGradient = FloatBuffer(zeros: total * queryWidth)
            hk_rmsnorm_backward(tape["q_pre"], norm.weight.pointer, dQueries.pointer, queryGradient.pointer,
                                Int32(total * queryWidth / norm.dimension), Int32(norm.dimension), norm.epsilon)
        }
        if let norm = layer.keyNorm {
            keyGradient = FloatBuffer(zeros: total * kvWidth)
            hk_rmsnorm_backward(tape["k_pre"], norm.weight.pointer, dKeys.pointer, keyGradient.pointer,
                                Int32(total * kvWidth / norm.dimension), Int32(norm.dimension), norm.epsilon)
        }
        switch layer.attentionInputs {
        case .separate(let query, let key, let value):
            linear("q_proj", query, input: tape["attn_in"], dy: queryGradient.pointer, into: dNormed.pointer, accumulate: false)
            linear("k_proj", key, input: tape["attn_in"], dy: keyGradient.pointer, into: dNormed.pointer, accumulate: true)
            linear("v_proj", value, input: tape["attn_in"], dy: dValues.pointer, into: dNormed.pointer, accumulate: true)
        case .fused(let queryKeyValue):
            let dFused = FloatBuffer(count: total * (queryWidth + 2 * kvWidth))
            joinColumns([(queryGradient.pointer, queryWidth), (keyGradient.pointer, kvWidth), (dValues.pointer, kvWidth)],
                        rows: total, into: dFused.pointer)
            linear("qkv_proj", queryKeyValue, input: tape["attn_in"], dy: dFused.pointer, into: dNormed.pointer, accumulate: false)
        }
        throughInputNorm(layer.attentionNorm, input: tape["input"], dNormed.pointer)
    }

    /// Backward of out = gelu_tanh(gate) · up: d gate = gelu'(gate) · (d out · up), d up = d out · gelu_tanh(gate).
    private func geluTanhMultiplyBackward(gate: UnsafePointer<Float>, up: UnsafePointer<Float>,
                                          outputGradient: UnsafePointer<Float>, gateGradient: UnsafeMutablePointer<Float>,
                                          upGradient: UnsafeMutablePointer<Float>, count: Int) {
        hk_gelu(gate, upGradient, count, 1)
        for index in 0..<count {
            upGradient[index] *= outputGradient[index]
            gateGradient[index] = outputGradient[index] * up[index]
        }
        hk_gelu_backward(gate, gateGradient, gateGradient, count, 1)
    }
}
