import Foundation
import HoneKernels

/// Llama 1/2/3, TinyLlama, Mistral (full attention), Qwen2 (q/k/v bias), Qwen3 (an RMSNorm on each head's query
/// and key before the rotation), SmolLM3 (some layers without rotation), Granite (scalar multipliers), for the phi3
/// registry entry Phi-3 (q/k/v and gate/up fused) and for the gemma2 and gemma3 entries Gemma 2 and 3 (norms on
/// each half's output too, a GeGLU MLP, local layers with a sliding window — Gemma 3's with a rope base of their
/// own —, and Gemma 2's soft caps on attention scores and logits), the first Gemma, OLMo 2 and 3 (norms on the halves'
/// outputs only, q/k norms across the heads), EXAONE 4 (the same with per-head q/k norms, windowed layers and global
/// ones without rotation), Mixtral, Qwen2-MoE, Qwen3-MoE, Granite-MoE and OLMoE (a router and
/// experts in place of the MLP): decoder blocks with RMSNorm, grouped-query attention with rotary positions, and a
/// gated MLP.
public final class LlamaModel: AdaptableModel, @unchecked Sendable {
    public let config: ModelConfig
    /// LoRA adapters applied in every forward pass, when attached.
    public var adapters: (any LinearAdapters)?
    let embedding: Embedding
    let layers: [Block]
    let finalNorm: RMSNorm
    let outputProjection: Linear
    let rotary: RotaryFrequencies
    let defaultFrequencies: FloatBuffer
    /// LongRoPE's frequencies for sequences past the original context (the default ones otherwise).
    let longFrequencies: FloatBuffer
    /// Gemma's sliding-window layers rotate with a base of their own (Gemma 2's: the same), unscaled (nil: no such
    /// layers).
    let localFrequencies: FloatBuffer?

    struct Block {
        /// The norms on each half's input; nil in OLMo 2 and 3, whose blocks norm the halves' outputs only.
        let attentionNorm: RMSNorm?
        let attentionInputs: AttentionProjections
        let output: Linear
        /// Qwen3's per-head norms (weights [head_dim]) or OLMo's across the heads (weights [heads × head_dim]),
        /// applied before the rotation.
        let queryNorm, keyNorm: RMSNorm?
        /// False on SmolLM3's NoPE layers.
        let rotates: Bool
        let mlpNorm: RMSNorm?
        let mlp: FeedForward
        /// Gemma's norms on the attention's and the MLP's outputs, before each residual add.
        let postAttentionNorm, postMLPNorm: RMSNorm?
        /// The keys a query of this layer sees, itself included (Gemma's local layers); nil: every earlier key.
        let window: Int?
    }

    /// q, k and v as three matrices (HF's q_proj, k_proj, v_proj) or as one (Phi-3's qkv_proj: q's rows, then k's,
    /// then v's), which LoRA adapts as one module.
    enum AttentionProjections {
        case separate(query: Linear, key: Linear, value: Linear)
        case fused(Linear)
    }

    /// gate and up as two matrices or as one (Phi-3's gate_up_proj: gate's rows, then up's).
    enum MLPProjections {
        case separate(gate: Linear, up: Linear)
        case fused(Linear)
    }

    /// A block's MLP: one gated MLP, or Mixtral's and Qwen3-MoE's experts.
    enum FeedForward {
        case gated(inputs: MLPProjections, down: Linear)
        case experts(MixtureOfExperts)
    }

    /// Tensor names in HF checkpoints and in llama.cpp's GGUF files.
    struct TensorNames: Sendable {
        let embedding, finalNorm, output: String
        let layer: @Sendable (Int, String) -> String

        static let huggingFace = TensorNames(
            embedding: "model.embed_tokens.weight", finalNorm: "model.norm.weight", output: "lm_head.weight",
            layer: { index, part in
                let module = [
                    "attn_norm": "input_layernorm", "q": "self_attn.q_proj", "k": "self_attn.k_proj",
                    "v": "self_attn.v_proj", "o": "self_attn.o_proj", "mlp_norm": "post_attention_layernorm",
                    "gate": "mlp.gate_proj", "up": "mlp.up_proj", "down": "mlp.down_proj",
                    "q_norm": "self_attn.q_norm", "k_norm": "self_attn.k_norm", "qkv": "self_attn.qkv_proj",
                    "gate_up": "mlp.gate_up_proj", "pre_mlp_norm": "pre_feedforward_layernorm",
                    "attn_post_norm": "post_attention_layernorm", "mlp_post_norm": "post_feedforward_layernorm",
                    "shared_gate": "mlp.shared_expert.gate_proj", "shared_up": "mlp.shared_expert.up_proj",
                    "shared_down": "mlp.shared_expert.down_proj", "shared_expert_gate": "mlp.shared_expert_gate",
                ][part]!
                return "model.layers.\(index).\(module)"
            })

        static let gguf = TensorNames(
            embedding: "token_embd.weight", finalNorm: "output_norm.weight", output: "output.weight",
            layer: { index, part in
                let module = [
                    "attn_norm": "attn_norm", "q": "attn_q", "k": "attn_k", "v": "attn_v", "o": "attn_output",
                    "mlp_norm": "ffn_norm", "gate": "ffn_gate", "up": "ffn_up", "down": "ffn_down",
                    "q_norm": "attn_q_norm", "k_norm": "attn_k_norm", "qkv": "attn_qkv", "gate_up": "ffn_up",
                    "pre_mlp_norm": "ffn_norm", "attn_post_norm": "post_attention_norm", "mlp_post_norm": "post_ffw_norm",
                    "shared_gate": "ffn_gate_shexp", "shared_up": "ffn_up_shexp", "shared_down": "ffn_down_shexp",
                    "shared_expert_gate": "ffn_gate_inp_shexp",
                ][part]!
                return "blk.\(index).\(module)"
            })
    }

    public init(config: ModelConfig, weights: WeightStore) throws {
        let names = weights.isGGUF ? TensorNames.gguf : TensorNames.huggingFace
        var config = config
        if weights.isGGUF, weights.contains("rope_freqs.weight") {
            let factors = try weights.tensor("rope_freqs.weight")
            try factors.expectShape([config.rotaryDimension / 2])  // one divisor per rotated pair
            config.ropeFrequencyFactors = factors.floats()
        }
        self.config = config
        let hidden = config.hiddenSize
        let (heads, kvHeads, headDimension) = (config.headCount, config.keyValueHeadCount, config.headDimension)

        func linear(_ name: String, _ shape: [Int], bias: Bool) throws -> Linear {
            try weights.linear(name, shape: shape, bias: bias)
        }
        // Gemma's HF checkpoints store each norm's weight less one (its norm multiplies by 1 + w).
        func norm(_ name: String) throws -> RMSNorm {
            try RMSNorm(weight: weights.tensor(name), dimension: hidden, epsilon: config.normEpsilon,
                        offset: config.normWeightOffset)
        }
        // Per head, or across the heads of q (or k) for OLMo.
        func headNorm(_ name: String, heads: Int) throws -> RMSNorm {
            try RMSNorm(weight: weights.tensor(name), dimension: config.queryKeyNormAcrossHeads ? heads * headDimension : headDimension,
                        epsilon: config.normEpsilon, offset: config.normWeightOffset)
        }

        let table = try weights.tensor(names.embedding)
        try table.expectShape([config.vocabularySize, hidden])
        embedding = try Embedding(table: table)
        layers = try (0..<config.layerCount).map { index in
            let name = { (part: String) in names.layer(index, part) }
            let (queryRows, keyValueRows, ffn) = (heads * headDimension, kvHeads * headDimension, config.intermediateSize)
            return Block(
                attentionNorm: config.inputNorms ? try norm(name("attn_norm") + ".weight") : nil,
                attentionInputs: config.fusedProjections
                    ? .fused(try linear(name("qkv"), [queryRows + 2 * keyValueRows, hidden], bias: config.queryKeyValueBias))
                    : .separate(query: try linear(name("q"), [queryRows, hidden], bias: config.queryKeyValueBias),
                                key: try linear(name("k"), [keyValueRows, hidden], bias: config.queryKeyValueBias),
                                value: try linear(name("v"), [keyValueRows, hidden], bias: config.queryKeyValueBias)),
                output: try linear(name("o"), [hidden, queryRows], bias: config.outputBias),
                queryNorm: config.queryKeyNorm ? try headNorm(name("q_norm") + ".weight", heads: heads) : nil,
                keyNorm: config.queryKeyNorm ? try headNorm(name("k_norm") + ".weight", heads: kvHeads) : nil,
                rotates: !config.layersWithoutRotation.contains(index),
                // In Gemma's checkpoints post_attention_layernorm is the attention's output norm, and the MLP's
                // input norm is pre_feedforward_layernorm.
                mlpNorm: !config.inputNorms ? nil : try norm(name(config.sandwichNorms ? "pre_mlp_norm" : "mlp_norm") + ".weight"),
                mlp: config.isMixtureOfExperts
                    ? .experts(try ExpertNames.load(layer: index, config: config, weights: weights))
                    : .gated(inputs: config.fusedProjections
                                ? .fused(try linear(name("gate_up"), [2 * ffn, hidden], bias: config.mlpBias))
                                : .separate(gate: try linear(name("gate"), [ffn, hidden], bias: config.mlpBias),
                                            up: try linear(name("up"), [ffn, hidden], bias: config.mlpBias)),
                             down: try linear(name("down"), [hidden, ffn], bias: config.mlpBias)),
                postAttentionNorm: config.sandwichNorms ? try norm(name("attn_post_norm") + ".weight") : nil,
                postMLPNorm: config.sandwichNorms ? try norm(name("mlp_post_norm") + ".weight") : nil,
                window: config.slidingWindowLayers.contains(index) ? config.slidingWindow : nil)
        }
        // Granite divides the logits by logits_scaling: the same as dividing the final norm's output, which every
        // path to the vocabulary (inference, scoring, the training loss and its gradient) goes through.
        let normAtTheTop = try norm(names.finalNorm)
        finalNorm = config.logitsScaling == 1 ? normAtTheTop : normAtTheTop.scaled(by: 1 / config.logitsScaling)
        if config.tieWordEmbeddings || !weights.contains(names.output) {
            outputProjection = try Linear(weight: table, bias: nil)
        } else {
            outputProjection = try linear(String(names.output.dropLast(".weight".count)), [config.vocabularySize, hidden], bias: false)
        }
        rotary = RotaryFrequencies(config: config)
        defaultFrequencies = FloatBuffer(rotary.inverseFrequencies(sequenceLength: 0))
        if case .longRoPE(_, _, let original, _) = config.ropeScaling {
            longFrequencies = FloatBuffer(rotary.inverseFrequencies(sequenceLength: original + 1))
        } else {
            longFrequencies = defaultFrequencies
        }
        if config.slidingWindowLayers.isEmpty || !config.localLayersOwnRope {
            localFrequencies = nil
        } else {
            var local = config
            (local.ropeTheta, local.ropeScaling, local.ropeFrequencyFactors) = (config.localRopeTheta, .none, nil)
            localFrequencies = FloatBuffer(RotaryFrequencies(config: local).inverseFrequencies(sequenceLength: 0))
        }
    }

    public func forward(_ batch: [SequenceInput]) throws -> HiddenStates {
        try forward(batch, keeping: nil)
    }

    public func forward(_ batch: [SequenceInput], outputRows: [Int]) throws -> HiddenStates {
        try forward(batch, keeping: outputRows)
    }

    /// `outputRows` nil: every row; otherwise the last layer runs its output projection and MLP on those rows only.
    private func forward(_ batch: [SequenceInput], keeping outputRows: [Int]?) throws -> HiddenStates {
        try validate(batch)
        let layout = PassLayout(counts: batch.map(\.tokens.count), starts: batch.map(\.cache.length))
        let total = layout.total
        let hidden = config.hiddenSize
        for sequence in batch { sequence.cache.reserve(sequence.cache.length + sequence.tokens.count) }
        let angles = rotaryAngles(layout)
        let localAngles = localRotaryAngles(layout)

        let x = FloatBuffer(count: total * hidden)
        embedding.lookup(batch.flatMap(\.tokens), into: x.pointer)
        scaleEmbeddings(x.pointer, count: total * hidden)
        let scratch = LayerTape()
        let scale = attentionScale
        precondition(outputRows.map { isRowSelection($0, of: total) } ?? true, "output rows must ascend within the pass")
        for index in layers.indices {
            let window = layers[index].window
            runLayer(index, x: x.pointer, layout: layout, angles: self.angles(forLayer: index, global: angles, local: localAngles),
                     tape: scratch, outputRows: index == layers.count - 1 ? outputRows : nil) { q, k, v, out in
                attendWithCache(batch: batch, offsets: layout.offsets, layer: index, config: config,
                                queries: q, keys: k, values: v, output: out, scale: scale, window: window,
                                softcap: config.attentionLogitSoftcap)
            }
        }
        for sequence in batch { sequence.cache.length += sequence.tokens.count }
        let rows = outputRows?.count ?? total
        let normed = FloatBuffer(count: rows * hidden)
        finalNorm.apply(x.pointer, rows: rows, into: normed.pointer)
        return HiddenStates(values: normed, rows: rows, width: hidden, sequenceOffsets: outputRows == nil ? layout.offsets : [])
    }

    var attentionScale: Float { config.attentionMultiplier ?? 1 / Float(config.headDimension).squareRoot() }

    /// Granite's embedding multiplier.
    func scaleEmbeddings(_ x: UnsafeMutablePointer<Float>, count: Int) {
        if config.embeddingMultiplier != 1 { hk_scale(x, config.embeddingMultiplier, count) }
    }

    /// Rotary frequencies per sequence (dynamic scaling and LongRoPE depend on how far a sequence reaches: as in
    /// transformers, the furthest position of the pass plus one).
    func rotaryFrequencies(_ layout: PassLayout) -> [FloatBuffer] {
        func reach(_ index: Int) -> Int { Int(layout.positions[layout.offsets[index]]) + layout.counts[index] }
        switch config.ropeScaling {
        case .dynamic:
            return layout.counts.indices.map { FloatBuffer(rotary.inverseFrequencies(sequenceLength: reach($0))) }
        case .longRoPE(_, _, let original, _):
            return layout.counts.indices.map { reach($0) > original ? longFrequencies : defaultFrequencies }
        default:
            return Array(repeating: defaultFrequencies, count: layout.counts.count)
        }
    }

    /// Every row's rotary cos/sin for one pass, shared by all layers (but Gemma 3's local ones).
    func rotaryAngles(_ layout: PassLayout) -> RotaryAngles {
        RotaryAngles(layout: layout, frequencies: rotaryFrequencies(layout), rotaryDimension: config.rotaryDimension,
                     scale: rotary.angleScale)
    }

    /// The local layers' cos/sin (their own base, no scaling); nil when the model has no local layers.
    func localRotaryAngles(_ layout: PassLayout) -> RotaryAngles? {
        localFrequencies.map { frequencies in
            RotaryAngles(layout: layout, frequencies: Array(repeating: frequencies, count: layout.counts.count),
                         rotaryDimension: config.rotaryDimension)
        }
    }

    /// The angles layer `index` rotates by.
    func angles(forLayer index: Int, global: RotaryAngles, local: RotaryAngles?) -> RotaryAngles {
        layers[index].window == nil ? global : local ?? global
    }

    /// One decoder block on x: [total, hidden], in place: x += attention(norm(x)); x += mlp(norm(x)).
    /// `attend(q, k, v, out)` runs attention on rotated queries and keys. The tape receives what backward reads;
    /// with `keepResidual` it also keeps the block input ("input") and the residual between the halves ("mid").
    /// With `outputRows`, every row gets its keys and values (later tokens attend to them) but only those rows go
    /// on through the output projection and the MLP; they end as x's first `outputRows.count` rows.
    func runLayer(_ index: Int, x: UnsafeMutablePointer<Float>, layout: PassLayout, angles: RotaryAngles,
                  tape: LayerTape, keepResidual: Bool = false, outputRows: [Int]? = nil,
                  attend: (UnsafeMutablePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void) {
        precondition(outputRows == nil || !keepResidual, "training keeps every row")
        let layer = layers[index]
        var rows = layout.total  // becomes outputRows.count after attention
        let hidden = config.hiddenSize
        let queryWidth = config.headCount * config.headDimension
        let kvWidth = config.keyValueHeadCount * config.headDimension
        let ffn = config.intermediateSize
        func linear(_ module: String, _ base: Linear, _ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>) {
            applyAdapted(base, layer: index, module: module, input, rows: rows, into: output, tape: tape)
        }
        if keepResidual { tape.buffer("input", count: rows * hidden).pointer.update(from: x, count: rows * hidden) }

        let attentionInput = tape.buffer("attn_in", count: rows * hidden).pointer
        let queries = tape.buffer("q", count: rows * queryWidth).pointer
        let keys = tape.buffer("k", count: rows * kvWidth).pointer
        let values = tape.buffer("v", count: rows * kvWidth).pointer
        let attention = tape.buffer("attn_out", count: rows * queryWidth).pointer
        let delta = tape.buffer("delta", count: rows * hidden).pointer
        if let norm = layer.attentionNorm {
            norm.apply(x, rows: rows, into: attentionInput)
        } else {
            attentionInput.update(from: x, count: rows * hidden)  // x changes in place below; backward reads this
        }
        // With q/k norms the projections go to "q_pre" / "k_pre" (backward reads them) and are normed into q, k.
        let projectedQueries = layer.queryNorm == nil ? queries : tape.buffer("q_pre", count: rows * queryWidth).pointer
        let projectedKeys = layer.keyNorm == nil ? keys : tape.buffer("k_pre", count: rows * kvWidth).pointer
        switch layer.attentionInputs {
        case .separate(let query, let key, let value):
            linear("q_proj", query, attentionInput, projectedQueries)
            linear("k_proj", key, attentionInput, projectedKeys)
            linear("v_proj", value, attentionInput, values)
        case .fused(let queryKeyValue):
            let fused = tape.buffer("qkv", count: rows * (queryWidth + 2 * kvWidth)).pointer
            linear("qkv_proj", queryKeyValue, attentionInput, fused)
            splitColumns(fused, rows: rows, into: [(projectedQueries, queryWidth), (projectedKeys, kvWidth), (values, kvWidth)])
        }
        layer.queryNorm.map { $0.apply(projectedQueries, rows: rows * queryWidth / $0.dimension, into: queries) }
        layer.keyNorm.map { $0.apply(projectedKeys, rows: rows * kvWidth / $0.dimension, into: keys) }
        if layer.rotates {
            rotateQueriesAndKeys(queries: queries, keys: keys, rows: layout.total, angles: angles, config: config)
        }
        attend(queries, keys, values, attention)
        if let outputRows {
            compactRows(attention, width: queryWidth, keeping: outputRows)
            compactRows(x, width: hidden, keeping: outputRows)
            rows = outputRows.count
        }
        if let postNorm = layer.postAttentionNorm {
            let projected = tape.buffer("o_out", count: rows * hidden).pointer  // the post norm's input, for backward
            linear("o_proj", layer.output, attention, projected)
            postNorm.apply(projected, rows: rows, into: delta)
        } else {
            linear("o_proj", layer.output, attention, delta)
        }
        if config.residualMultiplier != 1 { hk_scale(delta, config.residualMultiplier, rows * hidden) }
        hk_add(x, delta, rows * hidden)
        if keepResidual { tape.buffer("mid", count: rows * hidden).pointer.update(from: x, count: rows * hidden) }

        let mlpInput = tape.buffer("mlp_in", count: rows * hidden).pointer
        if let norm = layer.mlpNorm {
            norm.apply(x, rows: rows, into: mlpInput)
        } else {
            mlpInput.update(from: x, count: rows * hidden)
        }
        // The MLP's output goes to delta, or through Gemma's post norm ("down_out" is that norm's input).
        let mlpOutput = layer.postMLPNorm == nil ? delta : tape.buffer("down_out", count: rows * hidden).pointer
        switch layer.mlp {
        case .gated(let inputs, let down):
            let gate = tape.buffer("gate", count: rows * ffn).pointer
            let up = tape.buffer("up", count: rows * ffn).pointer
            let activated = tape.buffer("h", count: rows * ffn).pointer
            switch inputs {
            case .separate(let gateProjection, let upProjection):
                linear("gate_proj", gateProjection, mlpInput, gate)
                linear("up_proj", upProjection, mlpInput, up)
            case .fused(let gateUp):
                let fused = tape.buffer("gate_up", count: rows * 2 * ffn).pointer
                linear("gate_up_proj", gateUp, mlpInput, fused)
                splitColumns(fused, rows: rows, into: [(gate, ffn), (up, ffn)])
            }
            if config.gatedGELU {
                geluTanhMultiply(gate: gate, up: up, into: activated, count: rows * ffn)
            } else {
                hk_silu_mul(gate, up, activated, rows * ffn)
            }
            linear("down_proj", down, activated, mlpOutput)
        case .experts(let experts):
            let probabilities = tape.buffer("router_p", count: rows * experts.experts.count).pointer
            experts.apply(mlpInput, rows: rows, probabilities: probabilities, into: mlpOutput)
        }
        layer.postMLPNorm?.apply(mlpOutput, rows: rows, into: delta)
        if config.residualMultiplier != 1 { hk_scale(delta, config.residualMultiplier, rows * hidden) }
        hk_add(x, delta, rows * hidden)
    }

    /// GeGLU: out = gelu_tanh(gate) · up (Gemma's gelu_pytorch_tanh).
    func geluTanhMultiply(gate: UnsafePointer<Float>, up: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>,
                          count: Int) {
        hk_gelu(gate, out, count, 1)
        for index in 0..<count { out[index] *= up[index] }
    }

    public var storedRowOrders: [String: [Int]] {
        guard config.ropeInterleaved else { return [:] }
        func order(heads: Int) -> [Int] {
            let rows = heads * config.headDimension
            return (0..<rows).map(RotaryPermutation.ggufRowSource(rows: rows, heads: heads))
        }
        return ["q_proj": order(heads: config.headCount), "k_proj": order(heads: config.keyValueHeadCount)]
    }

    public func baseLinear(layer: Int, module: String) -> Linear? {
        guard layers.indices.contains(layer) else { return nil }
        let block = layers[layer]
        switch (module, block.attentionInputs, block.mlp) {
        case ("q_proj", .separate(let query, _, _), _): return query
        case ("k_proj", .separate(_, let key, _), _): return key
        case ("v_proj", .separate(_, _, let value), _): return value
        case ("qkv_proj", .fused(let queryKeyValue), _): return queryKeyValue
        case ("o_proj", _, _): return block.output
        case ("gate_proj", _, .gated(.separate(let gate, _), _)): return gate
        case ("up_proj", _, .gated(.separate(_, let up), _)): return up
        case ("gate_up_proj", _, .gated(.fused(let gateUp), _)): return gateUp
        case ("down_proj", _, .gated(_, let down)): return down
        default: return nil  // the experts are frozen
        }
    }

    public func projectToVocabulary(_ hidden: UnsafePointer<Float>, rows: Int, into logits: UnsafeMutablePointer<Float>) {
        outputProjection.apply(hidden, rows: rows, into: logits)
        if let cap = config.finalLogitSoftcap { softcapLogits(logits, count: rows * config.vocabularySize, cap: cap) }
    }
}

/// Gemma 2's final soft cap, in place: z ← c·tanh(z/c).
func softcapLogits(_ logits: UnsafeMutablePointer<Float>, count: Int, cap: Float) {
    for index in 0..<count { logits[index] = cap * tanhf(logits[index] / cap) }
}
