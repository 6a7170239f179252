import Foundation
import HoneKernels

/// A decoder-only language model: runs new tokens of several sequences at once, each with its own KV cache.
public protocol CausalLanguageModel: AnyObject, Sendable {
    var config: ModelConfig { get }
    /// Runs the new tokens of every sequence through the model, appends their keys and values to the caches,
    /// and returns the final (normalised) hidden states, one row per new token.
    func forward(_ batch: [SequenceInput]) throws -> HiddenStates
    /// Like `forward`, but returns only the rows `outputRows` (ascending, distinct indices into the pass's rows),
    /// row i being pass row outputRows[i]; `sequenceOffsets` is empty. A model may skip the last layer's work
    /// after attention for the other rows (llama.cpp does the same with its output ids): scoring a context needs
    /// only its last row, a prompt prefill only its last, a shared prefix none.
    func forward(_ batch: [SequenceInput], outputRows: [Int]) throws -> HiddenStates
    /// logits: [rows, vocab] for `rows` hidden-state rows starting at `hidden` (each of width hiddenWidth).
    func projectToVocabulary(_ hidden: UnsafePointer<Float>, rows: Int, into logits: UnsafeMutablePointer<Float>)
}

extension CausalLanguageModel {
    /// Runs every row to the end, then keeps `outputRows`: for architectures without the shortcut.
    public func forward(_ batch: [SequenceInput], outputRows: [Int]) throws -> HiddenStates {
        let all = try forward(batch)
        return all.selecting(outputRows)
    }

    public func makeCache() -> KVCache {
        KVCache(layerCount: config.layerCount, rowWidth: config.keyValueHeadCount * config.headDimension)
    }

    /// Checks ids and context length before any work, so a bad request fails cleanly and caches stay intact.
    func validate(_ batch: [SequenceInput]) throws {
        for (index, sequence) in batch.enumerated() {
            for token in sequence.tokens where token < 0 || Int(token) >= config.vocabularySize {
                throw HoneError.tokenOutOfRange(token: Int(token), vocabularySize: config.vocabularySize,
                                                location: "sequence \(index)")
            }
        }
    }
}

/// Attention of every sequence of a batch over its cache, after its new keys and values were appended.
/// queries: [tokens, heads × head_dim], keys/values: [tokens, kv_heads × head_dim] (rows of all sequences).
func attendWithCache(batch: [SequenceInput], offsets: [Int], layer: Int, config: ModelConfig,
                     queries: UnsafeMutablePointer<Float>, keys: UnsafePointer<Float>, values: UnsafePointer<Float>,
                     output: UnsafeMutablePointer<Float>, scale: Float, window: Int? = nil, softcap: Float? = nil) {
    let queryWidth = config.headCount * config.headDimension
    let rowWidth = config.keyValueHeadCount * config.headDimension
    var sequences: [hk_attention_sequence] = []
    sequences.reserveCapacity(batch.count)
    for (index, sequence) in batch.enumerated() {
        let cache = sequence.cache
        let start = cache.length
        let count = sequence.tokens.count
        let row = offsets[index]
        (cache.keys[layer].pointer + start * rowWidth).update(from: keys + row * rowWidth, count: count * rowWidth)
        (cache.values[layer].pointer + start * rowWidth).update(from: values + row * rowWidth, count: count * rowWidth)
        let whole = hk_attention_sequence(q: queries + row * queryWidth, k: cache.keys[layer].pointer,
                                          v: cache.values[layer].pointer, out: output + row * queryWidth,
                                          n_q: Int32(count), q_start: Int32(start))
        sequences += windowed(whole, window: window, queryWidth: queryWidth, keyWidth: rowWidth)
    }
    attendBatch(sequences, heads: config.headCount, keyValueHeads: config.keyValueHeadCount,
                headDimension: config.headDimension, scale: scale, softcap: softcap)
}

/// The attention kernels on a batch of sequences; with `softcap`, scores soft-capped (Gemma 2).
func attendBatch(_ sequences: [hk_attention_sequence], heads: Int, keyValueHeads: Int, headDimension: Int, scale: Float,
                 softcap: Float?) {
    if let softcap {
        hk_attention_batch_softcap(sequences, Int32(sequences.count), Int32(heads), Int32(keyValueHeads),
                                   Int32(headDimension), scale, softcap)
    } else {
        hk_attention_batch(sequences, Int32(sequences.count), Int32(heads), Int32(keyValueHeads), Int32(headDimension),
                           scale)
    }
}

/// One sequence's attention under a sliding window (Gemma 3's local layers: a query at position p sees keys
/// p - window + 1 ... p), as the causal attention kernels run it: the rows whose window still starts at key 0 stay
/// one sequence, and each later row becomes a sequence of its own whose keys and values begin at its window.
/// Without a window, or while every row sees the whole prefix, the sequence is returned as it is.
func windowed(_ sequence: hk_attention_sequence, window: Int?, queryWidth: Int, keyWidth: Int) -> [hk_attention_sequence] {
    let (count, start) = (Int(sequence.n_q), Int(sequence.q_start))
    guard let window, start + count > window else { return [sequence] }
    let whole = max(0, window - start)  // rows whose position is below the window
    var parts: [hk_attention_sequence] = []
    parts.reserveCapacity(count - whole + 1)
    if whole > 0 {
        var head = sequence
        head.n_q = Int32(whole)
        parts.append(head)
    }
    for row in whole..<count {
        let firstKey = start + row - window + 1
        parts.append(hk_attention_sequence(q: sequence.q + row * queryWidth, k: sequence.k + firstKey * keyWidth,
                                           v: sequence.v + firstKey * keyWidth, out: sequence.out + row * queryWidth,
                                           n_q: 1, q_start: Int32(window - 1)))
    }
    return parts
}

/// Row offsets of each sequence in a flattened batch, plus the total.
func batchOffsets(_ batch: [SequenceInput]) -> (offsets: [Int], total: Int) {
    var offsets: [Int] = []
    var total = 0
    for sequence in batch {
        offsets.append(total)
        total += sequence.tokens.count
    }
    return (offsets, total)
}
