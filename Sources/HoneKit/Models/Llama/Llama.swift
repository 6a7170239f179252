import Foundation
import HoneKernels

/// Llama 1/2/3, TinyLlama, Mistral (full attention), Qwen2 (q/k/v bias), Qwen3 (an RMSNorm on each head's query
/// and key before the rotation), SmolLM3 (some layers without rotation) and Granite (scalar multipliers): pre-norm
/// decoder blocks with RMSNorm,
/// grouped-query attention with rotary positions, and a SwiGLU MLP.
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

    struct Block {
        let attentionNorm: RMSNorm
        let query, key, value, output: Linear
        /// Qwen3's per-head norms (weights [head_dim]), applied before the rotation.
        let queryNorm, keyNorm: RMSNorm?
        /// False on SmolLM3's NoPE layers.
        let rotates: Bool
        let mlpNorm: RMSNorm
        let gate, up, down: Linear
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
                    "q_norm": "self_attn.q_norm", "k_norm": "self_attn.k_norm",
                ][part]!
                return "model.layers.\(index).\(module)"
            })

        static let gguf = TensorNames(
            embedding: "token_embd.weight", finalNorm: "output_norm.weight", output: "output.weight",
            layer: { index, part in
                let module = [
                    "attn_norm": "attn_norm", "q": "attn_q", "k": "attn_k", "v": "attn_v", "o": "attn_output",
                    "mlp_norm": "ffn_norm", "gate": "ffn_gate", "up": "ffn_up", "down": "ffn_down",
                    "q_norm": "attn_q_norm", "k_norm": "attn_k_norm",
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
        func norm(_ name: String) throws -> RMSNorm {
            try RMSNorm(weight: weights.tensor(name), dimension: hidden, epsilon: config.normEpsilon)
        }
        func headNorm(_ name: String) throws -> RMSNorm {
            try RMSNorm(weight: weights.tensor(name), dimension: headDimension, epsilon: config.normEpsilon)
        }

        let table = try weights.tensor(names.embedding)
        try table.expectShape([config.vocabularySize, hidden])
        embedding = try Embedding(table: table)
        layers = try (0..<config.layerCount).map { index in
            let name = { (part: String) in names.layer(index, part) }
            return Block(
                attentionNorm: try norm(name("attn_norm") + ".weight"),
                query: try linear(name("q"), [heads * headDimension, hidden], bias: config.queryKeyValueBias),
                key: try linear(name("k"), [kvHeads * headDimension, hidden], bias: config.queryKeyValueBias),
                value: try linear(name("v"), [kvHeads * headDimension, hidden], bias: config.queryKeyValueBias),
                output: try linear(name("o"), [hidden, heads * headDimension], bias: config.outputBias),
                queryNorm: config.queryKeyNorm ? try headNorm(name("q_norm") + ".weight") : nil,
                keyNorm: config.queryKeyNorm ? try headNorm(name("k_norm") + ".weight") : nil,
                rotates: !config.layersWithoutRotation.contains(index),
                mlpNorm: try norm(name("mlp_norm") + ".weight"),
                gate: try linear(name("gate"), [config.intermediateSize, hidden], bias: config.mlpBias),
                up: try linear(name("up"), [config.intermediateSize, hidden], bias: config.mlpBias),
                down: try linear(name("down"), [hidden, config.intermediateSize], bias: config.mlpBias))
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

        let x = FloatBuffer(count: total * hidden)
        embedding.lookup(batch.flatMap(\.tokens), into: x.pointer)
        scaleEmbeddings(x.pointer, count: total * hidden)
        let scratch = LayerTape()
        let scale = attentionScale
        precondition(outputRows.map { isRowSelection($0, of: total) } ?? true, "output rows must ascend within the pass")
        for index in layers.indices {
            runLayer(index, x: x.pointer, layout: layout, angles: angles, tape: scratch,
                     outputRows: index == layers.count - 1 ? outputRows : nil) { q, k, v, out in
                attendWithCache(batch: batch, offsets: layout.offsets, layer: index, config: config,
                                queries: q, keys: k, values: v, output: out, scale: scale)
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

    /// Rotary frequencies per sequence (dynamic scaling depends on how far a sequence reaches).
    func rotaryFrequencies(_ layout: PassLayout) -> [FloatBuffer] {
        guard case .dynamic = config.ropeScaling else {
            return Array(repeating: defaultFrequencies, count: layout.counts.count)
        }
        return layout.counts.indices.map { index in
            let reach = Int(layout.positions[layout.offsets[index]]) + layout.counts[index]
            return FloatBuffer(rotary.inverseFrequencies(sequenceLength: reach))
        }
    }

    /// Every row's rotary cos/sin for one pass, shared by all layers.
    func rotaryAngles(_ layout: PassLayout) -> RotaryAngles {
        RotaryAngles(layout: layout, frequencies: rotaryFrequencies(layout), rotaryDimension: config.rotaryDimension)
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
        layer.attentionNorm.apply(x, rows: rows, into: attentionInput)
        // With per-head norms the projections go to "q_pre" / "k_pre" (backward reads them) and are normed into q, k.
        let projectedQueries = layer.queryNorm == nil ? queries : tape.buffer("q_pre", count: rows * queryWidth).pointer
        let projectedKeys = layer.keyNorm == nil ? keys : tape.buffer("k_pre", count: rows * kvWidth).pointer
        linear("q_proj", layer.query, attentionInput, projectedQueries)
        linear("k_proj", layer.key, attentionInput, projectedKeys)
        linear("v_proj", layer.value, attentionInput, values)
        layer.queryNorm?.apply(projectedQueries, rows: rows * config.headCount, into: queries)
        layer.keyNorm?.apply(projectedKeys, rows: rows * config.keyValueHeadCount, into: keys)
        if layer.rotates {
            rotateQueriesAndKeys(queries: queries, keys: keys, rows: layout.total, angles: angles, config: config)
        }
        attend(queries, keys, values, attention)
        if let outputRows {
            compactRows(attention, width: queryWidth, keeping: outputRows)
            compactRows(x, width: hidden, keeping: outputRows)
            rows = outputRows.count
        }
        linear("o_proj", layer.output, attention, delta)
        if config.residualMultiplier != 1 { hk_scale(delta, config.residualMultiplier, rows * hidden) }
        hk_add(x, delta, rows * hidden)
        if keepResidual { tape.buffer("mid", count: rows * hidden).pointer.update(from: x, count: rows * hidden) }

        let mlpInput = tape.buffer("mlp_in", count: rows * hidden).pointer
        let gate = tape.buffer("gate", count: rows * ffn).pointer
        let up = tape.buffer("up", count: rows * ffn).pointer
        let activated = tape.buffer("h", count: rows * ffn).pointer
        layer.mlpNorm.apply(x, rows: rows, into: mlpInput)
        linear("gate_proj", layer.gate, mlpInput, gate)
        linear("up_proj", layer.up, mlpInput, up)
        hk_silu_mul(gate, up, activated, rows * ffn)
        linear("down_proj", layer.down, activated, delta)
        if config.residualMultiplier != 1 { hk_scale(delta, config.residualMultiplier, rows * hidden) }
        hk_add(x, delta, rows * hidden)
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
        switch module {
        case "q_proj": return block.query
        case "k_proj": return block.key
        case "v_proj": return block.value
        case "o_proj": return block.output
        case "gate_proj": return block.gate
        case "up_proj": return block.up
        case "down_proj": return block.down
        default: return nil
        }
    }

    public func projectToVocabulary(_ hidden: UnsafePointer<Float>, rows: Int, into logits: UnsafeMutablePointer<Float>) {
        outputProjection.apply(hidden, rows: rows, into: logits)
    }
}
