import Foundation
import HoneKernels

/// Meta's OPT (the PRO experiments used OPT-1.3B): learned positions offset by 2, LayerNorm, ReLU MLP, biases,
/// pre- or post-norm blocks (`do_layer_norm_before`), and projections in and out of the hidden size when
/// `word_embed_proj_dim` differs from it (OPT-350m).
public final class OPTModel: AdaptableModel, @unchecked Sendable {
    public let config: ModelConfig
    /// LoRA adapters applied in every forward pass, when attached.
    public var adapters: (any LinearAdapters)?
    let embedding: Embedding
    let positions: Embedding
    let projectIn: Linear?
    let projectOut: Linear?
    let layers: [Block]
    let finalNorm: LayerNorm?
    let outputProjection: Linear

    /// OPT's learned position table has two extra rows at the front (a fairseq legacy).
    static let positionOffset = 2

    struct Block {
        let attentionNorm: LayerNorm
        let query, key, value, output: Linear
        let mlpNorm: LayerNorm
        let up, down: Linear
    }

    public init(config: ModelConfig, weights: WeightStore) throws {
        self.config = config
        // facebook/opt-* checkpoints name tensors "decoder.…"; ones saved by recent transformers "model.decoder.…".
        let prefix = weights.contains("model.decoder.embed_tokens.weight") ? "model.decoder." : "decoder."
        let hidden = config.hiddenSize
        let projection = config.wordEmbedProjectionDimension
        let epsilon = config.normEpsilon
        let affine = config.layerNormElementwiseAffine

        func linear(_ name: String, _ shape: [Int], bias: Bool) throws -> Linear {
            try weights.linear(prefix + name, shape: shape, bias: bias)
        }
        func norm(_ name: String) throws -> LayerNorm {
            try LayerNorm(weight: affine ? weights.tensor(prefix + name + ".weight") : nil,
                          bias: affine ? weights.tensor(prefix + name + ".bias") : nil,
                          dimension: hidden, epsilon: epsilon)
        }

        let table = try weights.tensor(prefix + "embed_tokens.weight")
        try table.expectShape([config.vocabularySize, projection])
        embedding = try Embedding(table: table)
        let positionTable = try weights.tensor(prefix + "embed_positions.weight")
        try positionTable.expectShape([config.maxPositionEmbeddings + OPTModel.positionOffset, hidden])
        positions = try Embedding(table: positionTable)
        if projection != hidden {
            projectIn = try linear("project_in", [hidden, projection], bias: false)
            projectOut = try linear("project_out", [projection, hidden], bias: false)
        } else {
            projectIn = nil
            projectOut = nil
        }
        let bias = config.enableBias
        layers = try (0..<config.layerCount).map { index in
            let name = "layers.\(index)."
            return Block(
                attentionNorm: try norm(name + "self_attn_layer_norm"),
                query: try linear(name + "self_attn.q_proj", [hidden, hidden], bias: bias),
                key: try linear(name + "self_attn.k_proj", [hidden, hidden], bias: bias),
                value: try linear(name + "self_attn.v_proj", [hidden, hidden], bias: bias),
                output: try linear(name + "self_attn.out_proj", [hidden, hidden], bias: bias),
                mlpNorm: try norm(name + "final_layer_norm"),
                up: try linear(name + "fc1", [config.intermediateSize, hidden], bias: bias),
                down: try linear(name + "fc2", [hidden, config.intermediateSize], bias: bias))
        }
        finalNorm = config.layerNormBefore && !config.removeFinalLayerNorm ? try norm("final_layer_norm") : nil
        // The LM head is tied to the token embeddings in every released OPT.
        if !config.tieWordEmbeddings, weights.contains("lm_head.weight") {
            let head = try weights.tensor("lm_head.weight")
            try head.expectShape([config.vocabularySize, projection])
            outputProjection = try Linear(weight: head, bias: nil)
        } else {
            outputProjection = try Linear(weight: table, bias: nil)
        }
    }

    public func forward(_ batch: [SequenceInput]) throws -> HiddenStates {
        try validate(batch)
        for sequence in batch where sequence.cache.length + sequence.tokens.count > config.maxPositionEmbeddings {
            throw HoneError.contextOverflow(needed: sequence.cache.length + sequence.tokens.count,
                                            limit: config.maxPositionEmbeddings)
        }
        let layout = PassLayout(counts: batch.map(\.tokens.count), starts: batch.map(\.cache.length))
        for sequence in batch { sequence.cache.reserve(sequence.cache.length + sequence.tokens.count) }
        let x = embed(batch.flatMap(\.tokens), layout: layout)
        let scratch = LayerTape()
        let scale = attentionScale
        for index in layers.indices {
            runLayer(index, x: x.pointer, total: layout.total, tape: scratch) { q, k, v, out in
                attendWithCache(batch: batch, offsets: layout.offsets, layer: index, config: config,
                                queries: q, keys: k, values: v, output: out, scale: scale)
            }
        }
        for sequence in batch { sequence.cache.length += sequence.tokens.count }
        let output = finish(x, total: layout.total, tape: nil)
        return HiddenStates(values: output, rows: layout.total, width: output.count / max(1, layout.total),
                            sequenceOffsets: layout.offsets)
    }

    var attentionScale: Float { 1 / Float(config.headDimension).squareRoot() }

    /// Token embeddings (projected in when narrower) plus learned positions: [total, hidden].
    func embed(_ tokens: [Int32], layout: PassLayout) -> FloatBuffer {
        let hidden = config.hiddenSize
        let total = layout.total
        let x = FloatBuffer(count: total * hidden)
        if let projectIn {
            let small = FloatBuffer(count: total * config.wordEmbedProjectionDimension)
            embedding.lookup(tokens, into: small.pointer)
            projectIn.apply(small.pointer, rows: total, into: x.pointer)
        } else {
            embedding.lookup(tokens, into: x.pointer)
        }
        let positionRows = FloatBuffer(count: total * hidden)
        positions.lookup(layout.positions.map { $0 + Int32(OPTModel.positionOffset) }, into: positionRows.pointer)
        hk_add(x.pointer, positionRows.pointer, total * hidden)
        return x
    }

    /// The final norm (when the model has one) and the projection out (when narrower): the hidden states the
    /// vocabulary projection reads. With a tape, keeps the norm's input and the projection's input.
    func finish(_ x: FloatBuffer, total: Int, tape: LayerTape?) -> FloatBuffer {
        let hidden = config.hiddenSize
        var output = x
        if let finalNorm {
            tape?.buffer("final_in", count: total * hidden).pointer.update(from: x.pointer, count: total * hidden)
            let normed = FloatBuffer(count: total * hidden)
            finalNorm.apply(x.pointer, rows: total, into: normed.pointer)
            output = normed
        }
        if let projectOut {
            tape?.buffer("project_out_in", count: total * hidden).pointer.update(from: output.pointer, count: total * hidden)
            let projected = FloatBuffer(count: total * config.wordEmbedProjectionDimension)
            projectOut.apply(output.pointer, rows: total, into: projected.pointer)
            output = projected
        }
        return output
    }

    /// One decoder block on x: [total, hidden], in place. Pre-norm: x += attn(LN(x)); x += mlp(LN(x)).
    /// Post-norm (OPT-350m): x = LN(x + attn(x)); x = LN(x + mlp(x)). With `keepResidual` the tape also keeps the
    /// block input and the residual sums that backward needs.
    func runLayer(_ index: Int, x: UnsafeMutablePointer<Float>, total: Int, tape: LayerTape, keepResidual: Bool = false,
                  attend: (UnsafeMutablePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void) {
        let layer = layers[index]
        let hidden = config.hiddenSize
        let ffn = config.intermediateSize
        let count = total * hidden
        func linear(_ module: String, _ base: Linear, _ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>) {
            applyAdapted(base, layer: index, module: module, input, rows: total, into: output, tape: tape)
        }
        func keep(_ name: String) {
            if keepResidual { tape.buffer(name, count: count).pointer.update(from: x, count: count) }
        }
        let preNorm = config.layerNormBefore
        keep("input")
        let queries = tape.buffer("q", count: count).pointer
        let keys = tape.buffer("k", count: count).pointer
        let values = tape.buffer("v", count: count).pointer
        let attention = tape.buffer("attn_out", count: count).pointer
        let delta = tape.buffer("delta", count: count).pointer
        let attentionInput = tape.buffer("attn_in", count: count).pointer
        if preNorm {
            layer.attentionNorm.apply(x, rows: total, into: attentionInput)
        } else {
            attentionInput.update(from: x, count: count)
        }
        linear("q_proj", layer.query, attentionInput, queries)
        linear("k_proj", layer.key, attentionInput, keys)
        linear("v_proj", layer.value, attentionInput, values)
        attend(queries, keys, values, attention)
        linear("out_proj", layer.output, attention, delta)
        hk_add(x, delta, count)
        keep("mid")
        let mlpInput = tape.buffer("mlp_in", count: count).pointer
        if preNorm {
            layer.mlpNorm.apply(x, rows: total, into: mlpInput)
        } else {
            layer.attentionNorm.apply(x, rows: total, into: mlpInput)
            x.update(from: mlpInput, count: count)
        }
        let up = tape.buffer("up", count: total * ffn).pointer
        let activated = tape.buffer("h", count: total * ffn).pointer
        linear("fc1", layer.up, mlpInput, up)
        activated.update(from: up, count: total * ffn)
        hk_relu(activated, total * ffn)
        linear("fc2", layer.down, activated, delta)
        hk_add(x, delta, count)
        if !preNorm {
            keep("out_sum")
            let normed = tape.buffer("out_normed", count: count).pointer
            layer.mlpNorm.apply(x, rows: total, into: normed)
            x.update(from: normed, count: count)
        }
    }

    public func baseLinear(layer: Int, module: String) -> Linear? {
        guard layers.indices.contains(layer) else { return nil }
        let block = layers[layer]
        switch module {
        case "q_proj": return block.query
        case "k_proj": return block.key
        case "v_proj": return block.value
        case "out_proj": return block.output
        case "fc1": return block.up
        case "fc2": return block.down
        default: return nil
        }
    }

    public func projectToVocabulary(_ hidden: UnsafePointer<Float>, rows: Int, into logits: UnsafeMutablePointer<Float>) {
        outputProjection.apply(hidden, rows: rows, into: logits)
    }
}
