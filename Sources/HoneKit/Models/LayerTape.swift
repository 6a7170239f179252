import Foundation

/// The activations of one decoder layer's forward pass, by name, that its backward pass reads: the layer's input,
/// normalised inputs, queries/keys/values after rotation, the MLP's pre-activations, and each adapter's projection
/// u = x Aᵀ. Inference passes one tape that every layer overwrites (scratch); training without checkpointing
/// keeps one per layer; with checkpointing one is refilled by recomputing a layer just before its backward.
public final class LayerTape: @unchecked Sendable {
    private(set) var buffers: [String: FloatBuffer] = [:]
    private(set) var projections: [String: FloatBuffer] = [:]

    /// A buffer of at least `count` floats under `name`, reused when big enough (contents unspecified).
    func buffer(_ name: String, count: Int) -> FloatBuffer {
        if let existing = buffers[name], existing.count >= count { return existing }
        let buffer = FloatBuffer(count: count)
        buffers[name] = buffer
        return buffer
    }

    /// The kept buffer `name`; its absence is a programming error.
    subscript(_ name: String) -> UnsafeMutablePointer<Float> {
        guard let buffer = buffers[name] else { preconditionFailure("layer tape has no '\(name)'") }
        return buffer.pointer
    }

    /// Where the adapter of `module` keeps u: [rows, rank].
    func projection(_ module: String, rows: Int, rank: Int) -> FloatBuffer {
        if let existing = projections[module], existing.count >= rows * rank { return existing }
        let buffer = FloatBuffer(count: rows * rank)
        projections[module] = buffer
        return buffer
    }

    var byteCount: Int {
        (buffers.values.reduce(0) { $0 + $1.count } + projections.values.reduce(0) { $0 + $1.count }) * 4
    }
}

/// How the rows of a pass are laid out: sequences one after another, each with its first position and the
/// rotary frequencies that apply to it.
struct PassLayout {
    /// Row where each sequence starts, and how many rows it has.
    let offsets: [Int]
    let counts: [Int]
    /// Position of every row.
    let positions: [Int32]
    let total: Int

    init(counts: [Int], starts: [Int]) {
        var offsets: [Int] = []
        var positions: [Int32] = []
        var total = 0
        for (count, start) in zip(counts, starts) {
            offsets.append(total)
            positions.append(contentsOf: (0..<count).map { Int32(start + $0) })
            total += count
        }
        self.offsets = offsets
        self.counts = counts
        self.positions = positions
        self.total = total
    }
}
