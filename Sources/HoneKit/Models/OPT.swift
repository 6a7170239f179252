import Foundation
import HoneKernels

/// Meta's OPT (the PRO experiments used OPT-1.3B): learned positions offset by 2, LayerNorm, ReLU MLP, biases,
/// pre- or post-norm blocks (`do_layer_norm_before`), and projections in and out of the hidden size when
/// `word_embed_proj_dim` differs from it (OPT-350m).
public final class OPTModel: CausalLanguageModel, @unchecked Sendable {
    public let config: ModelConfig
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
        let (offsets, total) = batchOffsets(batch)
        let hidden = config.hiddenSize
        let projection = config.wordEmbedProjectionDimension
        let ffn = config.intermediateSize
        for sequence in batch { sequence.cache.reserve(sequence.cache.length + sequence.tokens.count) }

        let x = FloatBuffer(count: total * hidden)
        let normed = FloatBuffer(count: total * hidden)
        let queries = FloatBuffer(count: total * hidden)
        let keys = FloatBuffer(count: total * hidden)
        let values = FloatBuffer(count: total * hidden)
        let attention = FloatBuffer(count: total * hidden)
        let up = FloatBuffer(count: total * ffn)
        let delta = FloatBuffer(count: total * hidden)

        let tokens = batch.flatMap(\.tokens)
        if let projectIn {
            let small = FloatBuffer(count: total * projection)
            embedding.lookup(tokens, into: small.pointer)
            projectIn.apply(small.pointer, rows: total, into: x.pointer)
        } else {
            embedding.lookup(tokens, into: x.pointer)
        }
        var positionIDs: [Int32] = []
        for sequence in batch {
            for step in 0..<sequence.tokens.count {
                positionIDs.append(Int32(sequence.cache.length + step + OPTModel.positionOffset))
            }
        }
        positions.lookup(positionIDs, into: delta.pointer)
        hk_add(x.pointer, delta.pointer, total * hidden)

        let scale = 1 / Float(config.headDimension).squareRoot()
        for (layerIndex, layer) in layers.enumerated() {
            // Attention: pre-norm normalises the block input; post-norm normalises the residual sum after it.
            let attentionInput = config.layerNormBefore ? normed.pointer : x.pointer
            if config.layerNormBefore { layer.attentionNorm.apply(x.pointer, rows: total, into: normed.pointer) }
            layer.query.apply(attentionInput, rows: total, into: queries.pointer)
            layer.key.apply(attentionInput, rows: total, into: keys.pointer)
            layer.value.apply(attentionInput, rows: total, into: values.pointer)
            attendWithCache(batch: batch, offsets: offsets, layer: layerIndex, config: config,
                            queries: queries.pointer, keys: keys.pointer, values: values.pointer,
                            output: attention.pointer, scale: scale)
            layer.output.apply(attention.pointer, rows: total, into: delta.pointer)
            hk_add(x.pointer, delta.pointer, total * hidden)
            if !config.layerNormBefore {
                layer.attentionNorm.apply(x.pointer, rows: total, into: normed.pointer)
                x.pointer.update(from: normed.pointer, count: total * hidden)
            }

            let mlpInput = config.layerNormBefore ? normed.pointer : x.pointer
            if config.layerNormBefore { layer.mlpNorm.apply(x.pointer, rows: total, into: normed.pointer) }
            layer.up.apply(mlpInput, rows: total, into: up.pointer)
            hk_relu(up.pointer, total * ffn)
            layer.down.apply(up.pointer, rows: total, into: delta.pointer)
            hk_add(x.pointer, delta.pointer, total * hidden)
            if !config.layerNormBefore {
                layer.mlpNorm.apply(x.pointer, rows: total, into: normed.pointer)
                x.pointer.update(from: normed.pointer, count: total * hidden)
            }
        }
        for sequence in batch { sequence.cache.length += sequence.tokens.count }

        var output = x
        if let finalNorm {
            finalNorm.apply(x.pointer, rows: total, into: normed.pointer)
            output = normed
        }
        if let projectOut {
            let projected = FloatBuffer(count: total * projection)
            projectOut.apply(output.pointer, rows: total, into: projected.pointer)
            return HiddenStates(values: projected, rows: total, width: projection, sequenceOffsets: offsets)
        }
        return HiddenStates(values: output, rows: total, width: hidden, sequenceOffsets: offsets)
    }

    public func projectToVocabulary(_ hidden: UnsafePointer<Float>, rows: Int, into logits: UnsafeMutablePointer<Float>) {
        outputProjection.apply(hidden, rows: rows, into: logits)
    }
}
