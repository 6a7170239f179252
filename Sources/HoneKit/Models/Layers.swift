import Foundation
import HoneKernels

// MARK: - Linear

/// A frozen linear layer y = x Wᵀ (+ b) whose weight stays in the mapping in its stored dtype.
public struct Linear: @unchecked Sendable {
    public let weight: TensorView
    public let bias: FloatBuffer?
    public var inFeatures: Int { weight.shape[1] }
    public var outFeatures: Int { weight.shape[0] }

    /// Up to this many rows the matrix-vector kernel is used (weights read once for all rows). It gives each row
    /// bit-identical results whatever the row count, which batched greedy decoding relies on.
    nonisolated(unsafe) public static var rowKernelLimit = 16

    /// Quantized weights through the reference product (dequantize, f32 dot) instead of the integer kernels,
    /// which quantize activations to 8 bits: lets tests check a quantized file's weights exactly.
    @TaskLocal static var exactQuantizedProducts = false

    public init(weight: TensorView, bias: TensorView?) throws {
        guard weight.shape.count == 2 else {
            throw HoneError.tensorShape(name: weight.name, expected: [-1, -1], actual: weight.shape, path: weight.source)
        }
        self.weight = weight
        if let bias {
            try bias.expectShape([weight.shape[0]])
            self.bias = FloatBuffer(bias.floats())
        } else {
            self.bias = nil
        }
    }

    /// y: [rows, out] ← x: [rows, in]
    public func apply(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>) {
        guard rows > 0 else { return }
        let (input, output) = (Int32(inFeatures), Int32(outFeatures))
        if weight.dtype.isQuantized {
            let type = Int32(weight.dtype.ggmlType)
            if Linear.exactQuantizedProducts {
                hk_matmul_rows_quant_ref(type, weight.data, x, y, Int32(rows), input, output)
            } else if weight.dtype.dequantizesForProducts {
                // No integer kernel (IQ/TQ): dequantized tiles and sgemm, whatever the row count.
                hk_matmul_many_quant_sgemm(type, weight.data, x, y, Int32(rows), input, output)
            } else if rows <= Linear.rowKernelLimit {
                hk_matmul_rows_quant(type, weight.data, x, y, Int32(rows), input, output)
            } else {
                // Prefill: activations quantized once, then an int8 GEMM (about 3× dequantize + sgemm here).
                hk_matmul_many_quant(type, weight.data, x, y, Int32(rows), input, output)
            }
        } else if rows <= Linear.rowKernelLimit {
            switch weight.dtype {
            case .f32: hk_matmul_rows_f32(weight.data.assumingMemoryBound(to: Float.self), x, y, Int32(rows), input, output)
            case .f16: hk_matmul_rows_f16(weight.data.assumingMemoryBound(to: UInt16.self), x, y, Int32(rows), input, output)
            case .bf16: hk_matmul_rows_bf16(weight.data.assumingMemoryBound(to: UInt16.self), x, y, Int32(rows), input, output)
            default: preconditionFailure("block types are handled above")
            }
        } else {
            hk_matmul_many(weight.data, Int32(weight.dtype.ggmlType), x, y, Int32(rows), input, output)
        }
        if let bias { hk_add_bias(y, bias.pointer, Int32(rows), output) }
    }
}

// MARK: - Normalisation

public struct RMSNorm: @unchecked Sendable {
    public let weight: FloatBuffer
    public let epsilon: Float

    /// `offset` is added to every weight (Gemma's checkpoints store w for a norm that multiplies by 1 + w).
    public init(weight: TensorView, dimension: Int, epsilon: Float, offset: Float = 0) throws {
        try weight.expectShape([dimension])
        self.weight = FloatBuffer(offset == 0 ? weight.floats() : weight.floats().map { $0 + offset })
        self.epsilon = epsilon
    }

    private init(weight: FloatBuffer, epsilon: Float) {
        self.weight = weight
        self.epsilon = epsilon
    }

    /// The features each row is normed over.
    public var dimension: Int { weight.count }

    /// The same norm with its output × `factor` (a copy of the weights, scaled).
    public func scaled(by factor: Float) -> RMSNorm {
        RMSNorm(weight: FloatBuffer(weight.array.map { $0 * factor }), epsilon: epsilon)
    }

    /// y: [rows, dim] ← x: [rows, dim]
    public func apply(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>) {
        hk_rmsnorm(x, weight.pointer, y, Int32(rows), Int32(weight.count), epsilon)
    }
}

public struct LayerNorm: @unchecked Sendable {
    public let weight: FloatBuffer?
    public let bias: FloatBuffer?
    public let dimension: Int
    public let epsilon: Float

    public init(weight: TensorView?, bias: TensorView?, dimension: Int, epsilon: Float) throws {
        try weight?.expectShape([dimension])
        try bias?.expectShape([dimension])
        self.weight = weight.map { FloatBuffer($0.floats()) }
        self.bias = bias.map { FloatBuffer($0.floats()) }
        self.dimension = dimension
        self.epsilon = epsilon
    }

    /// y: [rows, dim] ← x: [rows, dim]
    public func apply(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>) {
        hk_layernorm(x, weight?.pointer, bias?.pointer, y, Int32(rows), Int32(dimension), epsilon)
    }
}

// MARK: - Embedding

/// An embedding table [vocab, dim] read row by row from the mapping.
public struct Embedding: @unchecked Sendable {
    public let table: TensorView
    public var dimension: Int { table.shape[1] }
    public var count: Int { table.shape[0] }

    public init(table: TensorView) throws {
        guard table.shape.count == 2 else {
            throw HoneError.tensorShape(name: table.name, expected: [-1, -1], actual: table.shape, path: table.source)
        }
        self.table = table
    }

    /// out: [ids.count, dim]
    public func lookup(_ ids: [Int32], into out: UnsafeMutablePointer<Float>) {
        for (row, id) in ids.enumerated() {
            table.convert(offset: Int(id) * dimension, count: dimension, into: out + row * dimension)
        }
    }
}

// MARK: - Rotary position embedding

/// Inverse frequencies of rotary embeddings, computed in f32 as transformers does.
public struct RotaryFrequencies: Sendable {
    public let config: ModelConfig

    /// inv_freq[j] = 1 / base^(2j / dim) with the config's scaling; `sequenceLength` matters for dynamic scaling only
    /// (transformers grows the base when a forward pass reaches past max_position_embeddings).
    public func inverseFrequencies(sequenceLength: Int) -> [Float] {
        let dimension = config.rotaryDimension
        var base = config.ropeTheta
        if case .dynamic(let factor) = config.ropeScaling, sequenceLength > config.maxPositionEmbeddings {
            let ratio = factor * Double(sequenceLength) / Double(config.maxPositionEmbeddings) - (factor - 1)
            base *= pow(ratio, Double(dimension) / Double(dimension - 2))
        }
        var frequencies = (0..<(dimension / 2)).map { index -> Float in
            let exponent = Float(2 * index) / Float(dimension)
            return 1 / powf(Float(base), exponent)
        }
        switch config.ropeScaling {
        case .none, .dynamic:
            break
        case .yarn(let factor, let original, let fast, let slow, _):
            frequencies = RotaryFrequencies.yarn(base: base, dimension: dimension, factor: factor, originalContext: original,
                                                 betaFast: fast, betaSlow: slow)
        case .longRoPE(let short, let long, let original, _):
            // transformers: 1 / (factor × base^(2j/dim)), in f32.
            let factors = sequenceLength > original ? long : short
            frequencies = (0..<(dimension / 2)).map { index in
                1 / (Float(factors[index]) * powf(Float(base), Float(2 * index) / Float(dimension)))
            }
        case .linear(let factor):
            frequencies = frequencies.map { $0 / Float(factor) }
        case .llama3(let factor, let low, let high, let original):
            let lowWavelength = Float(Double(original) / low)
            let highWavelength = Float(Double(original) / high)
            frequencies = frequencies.map { frequency in
                let wavelength = 2 * Float.pi / frequency
                if wavelength < highWavelength { return frequency }
                if wavelength > lowWavelength { return frequency / Float(factor) }
                let smooth = (Float(original) / wavelength - Float(low)) / Float(high - low)
                return (1 - smooth) * frequency / Float(factor) + smooth * frequency
            }
        }
        if let factors = config.ropeFrequencyFactors, factors.count == frequencies.count {
            frequencies = zip(frequencies, factors).map { $0 / $1 }
        }
        return frequencies
    }

    /// What cos and sin are multiplied by (LongRoPE's and YaRN's attention factor; 1 otherwise).
    public var angleScale: Float {
        switch config.ropeScaling {
        case .longRoPE(_, _, _, let attention), .yarn(_, _, _, _, let attention): return Float(attention)
        default: return 1
        }
    }

    /// YaRN's inverse frequencies as transformers computes them (f32 tensors; the correction range in f64, floored
    /// and ceiled): each pair blends base^(-2j/d) and that ÷ factor by a linear ramp over the pairs whose number of
    /// rotations in the original context lies between beta_slow and beta_fast.
    static func yarn(base: Double, dimension: Int, factor: Double, originalContext: Int, betaFast: Double,
                     betaSlow: Double) -> [Float] {
        func correctionDimension(_ rotations: Double) -> Double {
            Double(dimension) * log(Double(originalContext) / (rotations * 2 * Double.pi)) / (2 * log(base))
        }
        let low = max(floor(correctionDimension(betaFast)), 0)
        var high = min(ceil(correctionDimension(betaSlow)), Double(dimension - 1))
        if low == high { high += 0.001 }
        return (0..<(dimension / 2)).map { index in
            let positionFrequency = powf(Float(base), Float(2 * index) / Float(dimension))
            let extrapolation = 1 / positionFrequency
            let interpolation = 1 / (Float(factor) * positionFrequency)
            let ramp = min(max((Float(index) - Float(low)) / Float(high - low), 0), 1)
            let extrapolationWeight = 1 - ramp
            return interpolation * (1 - extrapolationWeight) + extrapolation * extrapolationWeight
        }
    }
}

/// The cos/sin of every row's rotary angles in one forward pass ([total, rotary_dim]: cos then sin per pair), made
/// once and used by every layer's queries and keys (and by training's backward, which rotates them back): the
/// angles depend only on the row's position and its sequence's frequencies, not on the layer.
struct RotaryAngles {
    let table: FloatBuffer
    let rotaryDimension: Int

    /// `frequencies[i]`: sequence i's inverse frequencies (the same buffer for all, unless rope scaling is dynamic
    /// or LongRoPE); `scale` multiplies every cos and sin (LongRoPE's attention factor).
    init(layout: PassLayout, frequencies: [FloatBuffer], rotaryDimension: Int, scale: Float = 1) {
        self.rotaryDimension = rotaryDimension
        table = FloatBuffer(count: max(1, layout.total * rotaryDimension))
        let shared = frequencies.allSatisfy { $0 === frequencies.first }
        layout.positions.withUnsafeBufferPointer { positions in
            guard let base = positions.baseAddress, let first = frequencies.first else { return }
            if shared {
                hk_rope_table(base, first.pointer, Int32(layout.total), Int32(rotaryDimension), table.pointer)
                return
            }
            for index in layout.counts.indices {
                let row = layout.offsets[index]
                hk_rope_table(base + row, frequencies[index].pointer, Int32(layout.counts[index]), Int32(rotaryDimension),
                              table.pointer + row * rotaryDimension)
            }
        }
        if scale != 1 { hk_scale(table.pointer, scale, layout.total * rotaryDimension) }
    }
}

/// Rotates the first `config.rotaryDimension` features of every head of queries [rows, heads × head_dim] and keys
/// [rows, kv_heads × head_dim] of a pass, in place, by `angles` (HF's rotate-half pairs, or GGML's adjacent pairs
/// when `config.ropeInterleaved`); `inverse` undoes it (the backward of a rotation is the opposite rotation).
func rotateQueriesAndKeys(queries: UnsafeMutablePointer<Float>, keys: UnsafeMutablePointer<Float>, rows: Int,
                          angles: RotaryAngles, config: ModelConfig, inverse: Bool = false) {
    let interleaved: Int32 = config.ropeInterleaved ? 1 : 0
    for (x, heads) in [(queries, config.headCount), (keys, config.keyValueHeadCount)] {
        hk_rope_apply(x, angles.table.pointer, Int32(rows), Int32(heads), Int32(config.headDimension),
                      Int32(angles.rotaryDimension), interleaved, inverse ? 1 : 0)
    }
}

// MARK: - KV cache

/// Keys and values of one sequence for every layer, in f32: [capacity, kv_heads × head_dim] per layer.
/// Grows by doubling, so decoding appends in amortised constant time.
public final class KVCache: @unchecked Sendable {
    public let layerCount: Int
    public let rowWidth: Int
    /// Positions filled so far (the next token's position).
    public internal(set) var length = 0
    public private(set) var capacity = 0
    var keys: [FloatBuffer] = []
    var values: [FloatBuffer] = []

    public init(layerCount: Int, rowWidth: Int) {
        self.layerCount = layerCount
        self.rowWidth = rowWidth
    }

    /// Makes room for `total` positions.
    func reserve(_ total: Int) {
        guard total > capacity else { return }
        let newCapacity = max(total, capacity * 2, 16)
        func grown(_ old: FloatBuffer?) -> FloatBuffer {
            let buffer = FloatBuffer(count: newCapacity * rowWidth)
            if let old, length > 0 { buffer.pointer.update(from: old.pointer, count: length * rowWidth) }
            return buffer
        }
        keys = (0..<layerCount).map { grown(keys.isEmpty ? nil : keys[$0]) }
        values = (0..<layerCount).map { grown(values.isEmpty ? nil : values[$0]) }
        capacity = newCapacity
    }

    /// Forgets positions from `position` on (e.g. to reuse a prompt prefix).
    public func truncate(to position: Int) { length = min(length, max(0, position)) }

    /// Takes the first `count` positions of `source` (a prefix computed once and shared by many sequences); what
    /// this cache held is forgotten.
    public func copyPrefix(of source: KVCache, count: Int) {
        precondition(source.layerCount == layerCount && source.rowWidth == rowWidth && count <= source.length)
        length = 0
        guard count > 0 else { return }
        reserve(count)
        for layer in 0..<layerCount {
            keys[layer].pointer.update(from: source.keys[layer].pointer, count: count * rowWidth)
            values[layer].pointer.update(from: source.values[layer].pointer, count: count * rowWidth)
        }
        length = count
    }

    /// Bytes held by the cache.
    public var byteCount: Int { 2 * layerCount * capacity * rowWidth * 4 }
}

// MARK: - A batch of sequences

/// New tokens for one sequence; they take positions cache.length, cache.length + 1, ...
public struct SequenceInput: @unchecked Sendable {
    public let tokens: [Int32]
    public let cache: KVCache

    public init(tokens: [Int32], cache: KVCache) {
        self.tokens = tokens
        self.cache = cache
    }
}

/// The final hidden states of a forward pass: one row per new token, sequences one after another.
public struct HiddenStates: @unchecked Sendable {
    public let values: FloatBuffer
    public let rows: Int
    public let width: Int
    /// Row where each sequence's tokens start (empty when the rows were selected: see `selecting`).
    public let sequenceOffsets: [Int]

    /// Rows `indices` of these states, in that order.
    public func selecting(_ indices: [Int]) -> HiddenStates {
        let kept = FloatBuffer(count: indices.count * width)
        for (row, index) in indices.enumerated() {
            (kept.pointer + row * width).update(from: values.pointer + index * width, count: width)
        }
        return HiddenStates(values: kept, rows: indices.count, width: width, sequenceOffsets: [])
    }
}

/// Moves rows `indices` (ascending, distinct, so row i never lies after indices[i]) of a [rows, width] buffer to
/// its first `indices.count` rows, in place.
func compactRows(_ buffer: UnsafeMutablePointer<Float>, width: Int, keeping indices: [Int]) {
    for (row, index) in indices.enumerated() where index != row {
        (buffer + row * width).update(from: buffer + index * width, count: width)
    }
}

/// Splits the columns of a fused projection's output [rows, Σ widths] into the given buffers ([rows, width] each),
/// left to right: Phi-3's qkv_proj into q, k, v; its gate_up_proj into gate and up.
func splitColumns(_ fused: UnsafePointer<Float>, rows: Int, into parts: [(UnsafeMutablePointer<Float>, Int)]) {
    let total = parts.reduce(0) { $0 + $1.1 }
    for row in 0..<rows {
        var column = 0
        for (part, width) in parts {
            (part + row * width).update(from: fused + row * total + column, count: width)
            column += width
        }
    }
}

/// The reverse of `splitColumns`: the buffers side by side in `fused` [rows, Σ widths] (gradients of the parts
/// into the gradient of the fused output).
func joinColumns(_ parts: [(UnsafeMutablePointer<Float>, Int)], rows: Int, into fused: UnsafeMutablePointer<Float>) {
    let total = parts.reduce(0) { $0 + $1.1 }
    for row in 0..<rows {
        var column = 0
        for (part, width) in parts {
            (fused + row * total + column).update(from: part + row * width, count: width)
            column += width
        }
    }
}

/// Whether `indices` is a valid selection of `rows` rows: ascending, distinct, in range.
func isRowSelection(_ indices: [Int], of rows: Int) -> Bool {
    zip(indices, indices.dropFirst()).allSatisfy { $0 < $1 } && (indices.first ?? 0) >= 0 && (indices.last ?? -1) < rows
}
