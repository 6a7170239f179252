import Foundation
import HoneKernels

/// EleutherAI's GPT-NeoX / Pythia: LayerNorm (with bias) before attention and MLP, one fused Q/K/V projection
/// whose output rows are laid out per head as [heads, 3, head_dim], rotary positions on the first
/// `rotaryDimension` features of each head (HF rotate-half pairs), a GELU MLP, biases everywhere, and either the
/// parallel residual x + attn(LN1(x)) + mlp(LN2(x)) or the usual two steps. The output projection (`embed_out`)
/// is not tied to the input embeddings; sequence-classification checkpoints have `score` (or OpenAssistant's
/// `out_proj`) instead.
public final class GPTNeoXModel: AdaptableModel, @unchecked Sendable {
    public let config: ModelConfig
    /// LoRA adapters applied in every forward pass, when attached.
    public var adapters: (any LinearAdapters)?
    let embedding: Embedding
    let layers: [Block]
    let finalNorm: LayerNorm
    let outputProjection: Linear
    let frequencies: FloatBuffer
    /// GELU's tanh form ("gelu_new", "gelu_fast") instead of the exact erf one.
    let tanhGELU: Int32

    struct Block {
        let attentionNorm: LayerNorm
        let queryKeyValue, output: Linear
        let mlpNorm: LayerNorm
        let up, down: Linear
    }

    public init(config: ModelConfig, weights: WeightStore) throws {
        self.config = config
        // GPTNeoXForCausalLM / …ForSequenceClassification save the trunk under "gpt_neox."; a bare GPTNeoXModel without.
        let prefix = weights.contains("gpt_neox.embed_in.weight") ? "gpt_neox." : ""
        let hidden = config.hiddenSize
        let epsilon = config.normEpsilon
        func linear(_ name: String, _ shape: [Int], bias: Bool) throws -> Linear {
            try weights.linear(prefix + name, shape: shape, bias: bias)
        }
        func norm(_ name: String) throws -> LayerNorm {
            try LayerNorm(weight: weights.tensor(prefix + name + ".weight"), bias: weights.tensor(prefix + name + ".bias"),
                          dimension: hidden, epsilon: epsilon)
        }
        let table = try weights.tensor(prefix + "embed_in.weight")
        try table.expectShape([config.vocabularySize, hidden])
        embedding = try Embedding(table: table)
        let attentionBias = config.queryKeyValueBias
        layers = try (0..<config.layerCount).map { index in
            let name = "layers.\(index)."
            return Block(
                attentionNorm: try norm(name + "input_layernorm"),
                queryKeyValue: try linear(name + "attention.query_key_value", [3 * hidden, hidden], bias: attentionBias),
                output: try linear(name + "attention.dense", [hidden, hidden], bias: attentionBias),
                mlpNorm: try norm(name + "post_attention_layernorm"),
                up: try linear(name + "mlp.dense_h_to_4h", [config.intermediateSize, hidden], bias: true),
                down: try linear(name + "mlp.dense_4h_to_h", [hidden, config.intermediateSize], bias: true))
        }
        finalNorm = try norm("final_layer_norm")
        // A sequence-classification checkpoint has no embed_out; its vocabulary projection is never used for
        // rewards, so the input table stands in (as it does when the config ties them).
        if config.tieWordEmbeddings || (!weights.contains("embed_out.weight") && weights.contains(config.scoreModule + ".weight")) {
            outputProjection = try Linear(weight: table, bias: nil)
        } else {
            outputProjection = try weights.linear("embed_out", shape: [config.vocabularySize, hidden], bias: false)
        }
        frequencies = FloatBuffer(RotaryFrequencies(config: config).inverseFrequencies(sequenceLength: 0))
        tanhGELU = GPTNeoXConfig.activations[config.hiddenActivation] == true ? 1 : 0
    }

    public func forward(_ batch: [SequenceInput]) throws -> HiddenStates {
        try validate(batch)
        let layout = PassLayout(counts: batch.map(\.tokens.count), starts: batch.map(\.cache.length))
        for sequence in batch { sequence.cache.reserve(sequence.cache.length + sequence.tokens.count) }
        let x = FloatBuffer(count: layout.total * config.hiddenSize)
        embedding.lookup(batch.flatMap(\.tokens), into: x.pointer)
        let scratch = LayerTape()
        let scale = attentionScale
        let angles = rotaryAngles(layout)
        for index in layers.indices {
            runLayer(index, x: x.pointer, layout: layout, angles: angles, tape: scratch) { q, k, v, out in
                attendWithCache(batch: batch, offsets: layout.offsets, layer: index, config: config,
                                queries: q, keys: k, values: v, output: out, scale: scale)
            }
        }
        for sequence in batch { sequence.cache.length += sequence.tokens.count }
        let normed = finish(x, total: layout.total, tape: nil)
        return HiddenStates(values: normed, rows: layout.total, width: config.hiddenSize, sequenceOffsets: layout.offsets)
    }

    var attentionScale: Float { 1 / Float(config.headDimension).squareRoot() }

    /// Every row's rotary cos/sin for one pass, shared by all layers: the same inverse frequencies for every
    /// sequence (NeoX has no length-dependent rope scaling).
    func rotaryAngles(_ layout: PassLayout) -> RotaryAngles {
        RotaryAngles(layout: layout, frequencies: Array(repeating: frequencies, count: layout.counts.count),
                     rotaryDimension: config.rotaryDimension)
    }

    /// The final LayerNorm: [total, hidden]. With a tape, keeps its input for backward.
    func finish(_ x: FloatBuffer, total: Int, tape: LayerTape?) -> FloatBuffer {
        let count = total * config.hiddenSize
        tape?.buffer("final_in", count: count).pointer.update(from: x.pointer, count: count)
        let normed = FloatBuffer(count: count)
        finalNorm.apply(x.pointer, rows: total, into: normed.pointer)
        return normed
    }

    /// Splits the fused projection's rows [total, heads, 3, head_dim] into q, k, v [total, heads, head_dim] each;
    /// `merge` does the reverse (for gradients).
    func splitQueryKeyValue(_ fused: UnsafeMutablePointer<Float>, _ q: UnsafeMutablePointer<Float>,
                            _ k: UnsafeMutablePointer<Float>, _ v: UnsafeMutablePointer<Float>, total: Int, merge: Bool = false) {
        let (heads, size) = (config.headCount, config.headDimension)
        let parts = [q, k, v]
        for row in 0..<total {
            for head in 0..<heads {
                for part in 0..<3 {
                    let packed = fused + (row * heads + head) * 3 * size + part * size
                    let separate = parts[part] + (row * heads + head) * size
                    if merge { packed.update(from: separate, count: size) } else { separate.update(from: packed, count: size) }
                }
            }
        }
    }

    /// One block on x: [total, hidden], in place. Parallel: x += attn(LN1(x)) + mlp(LN2(x)); sequential:
    /// x += attn(LN1(x)); x += mlp(LN2(x)). `attend(q, k, v, out)` runs attention on rotated queries and keys.
    /// With `keepResidual` the tape also keeps the block input ("input") and, for sequential blocks, the residual
    /// between the halves ("mid").
    func runLayer(_ index: Int, x: UnsafeMutablePointer<Float>, layout: PassLayout, angles: RotaryAngles, tape: LayerTape,
                  keepResidual: Bool = false,
                  attend: (UnsafeMutablePointer<Float>, UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void) {
        let layer = layers[index]
        let total = layout.total
        let count = total * config.hiddenSize
        let ffn = total * config.intermediateSize
        func linear(_ module: String, _ base: Linear, _ input: UnsafePointer<Float>, _ output: UnsafeMutablePointer<Float>) {
            applyAdapted(base, layer: index, module: module, input, rows: total, into: output, tape: tape)
        }
        if keepResidual { tape.buffer("input", count: count).pointer.update(from: x, count: count) }
        let attentionInput = tape.buffer("attn_in", count: count).pointer
        let fused = tape.buffer("qkv", count: 3 * count).pointer
        let queries = tape.buffer("q", count: count).pointer
        let keys = tape.buffer("k", count: count).pointer
        let values = tape.buffer("v", count: count).pointer
        let attention = tape.buffer("attn_out", count: count).pointer
        let attentionDelta = tape.buffer("attn_delta", count: count).pointer
        layer.attentionNorm.apply(x, rows: total, into: attentionInput)
        linear("query_key_value", layer.queryKeyValue, attentionInput, fused)
        splitQueryKeyValue(fused, queries, keys, values, total: total)
        rotateQueriesAndKeys(queries: queries, keys: keys, rows: total, angles: angles, config: config)
        attend(queries, keys, values, attention)
        linear("dense", layer.output, attention, attentionDelta)
        if !config.parallelResidual {
            hk_add(x, attentionDelta, count)
            if keepResidual { tape.buffer("mid", count: count).pointer.update(from: x, count: count) }
        }
        // The MLP reads the block input (parallel) or the residual after attention (sequential), i.e. x now.
        let mlpInput = tape.buffer("mlp_in", count: count).pointer
        let up = tape.buffer("up", count: ffn).pointer
        let activated = tape.buffer("h", count: ffn).pointer
        let mlpDelta = tape.buffer("mlp_delta", count: count).pointer
        layer.mlpNorm.apply(x, rows: total, into: mlpInput)
        linear("dense_h_to_4h", layer.up, mlpInput, up)
        hk_gelu(up, activated, ffn, tanhGELU)
        linear("dense_4h_to_h", layer.down, activated, mlpDelta)
        if config.parallelResidual {
            // transformers sums mlp + attn first, then adds the residual.
            hk_add(mlpDelta, attentionDelta, count)
        }
        hk_add(x, mlpDelta, count)
    }

    public func baseLinear(layer: Int, module: String) -> Linear? {
        guard layers.indices.contains(layer) else { return nil }
        let block = layers[layer]
        switch module {
        case "query_key_value": return block.queryKeyValue
        case "dense": return block.output
        case "dense_h_to_4h": return block.up
        case "dense_4h_to_h": return block.down
        default: return nil
        }
    }

    public func projectToVocabulary(_ hidden: UnsafePointer<Float>, rows: Int, into logits: UnsafeMutablePointer<Float>) {
        outputProjection.apply(hidden, rows: rows, into: logits)
    }
}
