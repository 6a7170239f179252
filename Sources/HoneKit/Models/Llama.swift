import Foundation
import HoneKernels

/// Llama 1/2/3, TinyLlama, Mistral (full attention) and Qwen2 (q/k/v bias): pre-norm decoder blocks with
/// RMSNorm, grouped-query attention with rotary positions, and a SwiGLU MLP.
public final class LlamaModel: CausalLanguageModel, @unchecked Sendable {
    public let config: ModelConfig
    let embedding: Embedding
    let layers: [Block]
    let finalNorm: RMSNorm
    let outputProjection: Linear
    let rotary: RotaryFrequencies
    let defaultFrequencies: FloatBuffer

    struct Block {
        let attentionNorm: RMSNorm
        let query, key, value, output: Linear
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
                ][part]!
                return "model.layers.\(index).\(module)"
            })

        static let gguf = TensorNames(
            embedding: "token_embd.weight", finalNorm: "output_norm.weight", output: "output.weight",
            layer: { index, part in
                let module = [
                    "attn_norm": "attn_norm", "q": "attn_q", "k": "attn_k", "v": "attn_v", "o": "attn_output",
                    "mlp_norm": "ffn_norm", "gate": "ffn_gate", "up": "ffn_up", "down": "ffn_down",
                ][part]!
                return "blk.\(index).\(module)"
            })
    }

    public init(config: ModelConfig, weights: WeightStore) throws {
        let names = weights.isGGUF ? TensorNames.gguf : TensorNames.huggingFace
        var config = config
        if weights.isGGUF, weights.contains("rope_freqs.weight") {
            config.ropeFrequencyFactors = try weights.tensor("rope_freqs.weight").floats()
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
                mlpNorm: try norm(name("mlp_norm") + ".weight"),
                gate: try linear(name("gate"), [config.intermediateSize, hidden], bias: config.mlpBias),
                up: try linear(name("up"), [config.intermediateSize, hidden], bias: config.mlpBias),
                down: try linear(name("down"), [hidden, config.intermediateSize], bias: config.mlpBias))
        }
        finalNorm = try norm(names.finalNorm)
        if config.tieWordEmbeddings || !weights.contains(names.output) {
            outputProjection = try Linear(weight: table, bias: nil)
        } else {
            outputProjection = try linear(String(names.output.dropLast(".weight".count)), [config.vocabularySize, hidden], bias: false)
        }
        rotary = RotaryFrequencies(config: config)
        defaultFrequencies = FloatBuffer(rotary.inverseFrequencies(sequenceLength: 0))
    }

    public func forward(_ batch: [SequenceInput]) throws -> HiddenStates {
        try validate(batch)
        let (offsets, total) = batchOffsets(batch)
        let hidden = config.hiddenSize
        let queryWidth = config.headCount * config.headDimension
        let kvWidth = config.keyValueHeadCount * config.headDimension
        let ffn = config.intermediateSize
        for sequence in batch { sequence.cache.reserve(sequence.cache.length + sequence.tokens.count) }

        // Positions and rotary frequencies per sequence (dynamic scaling depends on how far a sequence reaches).
        var positions = [Int32](repeating: 0, count: total)
        var frequencies: [FloatBuffer] = []
        for (index, sequence) in batch.enumerated() {
            for step in 0..<sequence.tokens.count {
                positions[offsets[index] + step] = Int32(sequence.cache.length + step)
            }
            if case .dynamic = config.ropeScaling {
                let reach = sequence.cache.length + sequence.tokens.count
                frequencies.append(FloatBuffer(rotary.inverseFrequencies(sequenceLength: reach)))
            } else {
                frequencies.append(defaultFrequencies)
            }
        }

        let x = FloatBuffer(count: total * hidden)
        let normed = FloatBuffer(count: total * hidden)
        let queries = FloatBuffer(count: total * queryWidth)
        let keys = FloatBuffer(count: total * kvWidth)
        let values = FloatBuffer(count: total * kvWidth)
        let attention = FloatBuffer(count: total * queryWidth)
        let gate = FloatBuffer(count: total * ffn)
        let up = FloatBuffer(count: total * ffn)
        let delta = FloatBuffer(count: total * hidden)

        embedding.lookup(batch.flatMap(\.tokens), into: x.pointer)
        let scale = 1 / Float(config.headDimension).squareRoot()
        for (layerIndex, layer) in layers.enumerated() {
            layer.attentionNorm.apply(x.pointer, rows: total, into: normed.pointer)
            layer.query.apply(normed.pointer, rows: total, into: queries.pointer)
            layer.key.apply(normed.pointer, rows: total, into: keys.pointer)
            layer.value.apply(normed.pointer, rows: total, into: values.pointer)
            positions.withUnsafeBufferPointer { positionPointer in
                for (index, sequence) in batch.enumerated() {
                    let row = offsets[index]
                    let count = Int32(sequence.tokens.count)
                    let interleaved: Int32 = config.ropeInterleaved ? 1 : 0
                    hk_rope(queries.pointer + row * queryWidth, positionPointer.baseAddress! + row,
                            frequencies[index].pointer, count, Int32(config.headCount), Int32(config.headDimension),
                            Int32(config.rotaryDimension), interleaved)
                    hk_rope(keys.pointer + row * kvWidth, positionPointer.baseAddress! + row,
                            frequencies[index].pointer, count, Int32(config.keyValueHeadCount),
                            Int32(config.headDimension), Int32(config.rotaryDimension), interleaved)
                }
            }
            attendWithCache(batch: batch, offsets: offsets, layer: layerIndex, config: config,
                            queries: queries.pointer, keys: keys.pointer, values: values.pointer,
                            output: attention.pointer, scale: scale)
            layer.output.apply(attention.pointer, rows: total, into: delta.pointer)
            hk_add(x.pointer, delta.pointer, total * hidden)

            layer.mlpNorm.apply(x.pointer, rows: total, into: normed.pointer)
            layer.gate.apply(normed.pointer, rows: total, into: gate.pointer)
            layer.up.apply(normed.pointer, rows: total, into: up.pointer)
            hk_silu_mul(gate.pointer, up.pointer, gate.pointer, total * ffn)
            layer.down.apply(gate.pointer, rows: total, into: delta.pointer)
            hk_add(x.pointer, delta.pointer, total * hidden)
        }
        for sequence in batch { sequence.cache.length += sequence.tokens.count }
        finalNorm.apply(x.pointer, rows: total, into: normed.pointer)
        return HiddenStates(values: normed, rows: total, width: hidden, sequenceOffsets: offsets)
    }

    public func projectToVocabulary(_ hidden: UnsafePointer<Float>, rows: Int, into logits: UnsafeMutablePointer<Float>) {
        outputProjection.apply(hidden, rows: rows, into: logits)
    }
}
