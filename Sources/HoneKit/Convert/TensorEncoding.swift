import Foundation
import HoneKernels

// MARK: - A tensor on its way to another file

/// One tensor as it is written to a converted file: its new name and shape, the stored tensor its values come from,
/// and the order of its rows (llama.cpp's converter permutes Llama's Q/K rows; the way back undoes it).
struct ExportTensor {
    let name: String
    /// HF order (outermost first).
    let shape: [Int]
    let source: TensorView
    /// Output row → source row, for permuted tensors (rows are along the first dimension).
    let sourceRow: ((Int) -> Int)?
    /// The type the planner sees: the stored type, or for an HF directory the type llama.cpp's converter would
    /// have written (F32 for tensors it does not convert).
    let plannedType: DType

    var rows: Int { shape.first ?? 1 }
    var rowLength: Int { shape.count <= 1 ? 1 : shape.dropFirst().reduce(1, *) }
    var elementCount: Int { shape.reduce(1, *) }

    /// The tensor's values encoded as `type`, converted a slab of rows at a time so that only one tensor's output
    /// and a bounded f32 buffer are ever in memory. Rows are quantized in parallel by the kernels.
    func encoded(as type: DType) throws -> Data {
        if sourceRow == nil, source.dtype == type {
            return Data(bytes: source.data, count: source.byteCount)  // same type: copied, never re-rounded
        }
        // A 1-D tensor without permutation is one row; otherwise rows along the first dimension.
        let (rowCount, length) = sourceRow == nil && shape.count <= 1 ? (1, elementCount) : (rows, rowLength)
        guard length % type.blockSize == 0 else {
            throw HoneError.invalidArgument("tensor '\(name)' has rows of \(length) values, not a multiple of \(type.blockSize) as \(type.rawValue) needs")
        }
        if source.dtype.isQuantized, length % source.dtype.blockSize != 0 {
            throw HoneError.malformedFile(path: source.source, message: "tensor '\(source.name)' rows are not whole \(source.dtype.rawValue) blocks")
        }
        let rowBytes = type.byteCount(elements: length)
        var output = Data(count: rowBytes * rowCount)
        let slabRows = max(1, min(rowCount, (1 << 22) / max(1, length)))
        let buffer = UnsafeMutablePointer<Float>.allocate(capacity: slabRows * length)
        defer { buffer.deallocate() }
        try output.withUnsafeMutableBytes { (raw: UnsafeMutableRawBufferPointer) in
            let base = raw.baseAddress!
            var first = 0
            while first < rowCount {
                let count = min(slabRows, rowCount - first)
                if let sourceRow {
                    for row in 0..<count {
                        source.convert(offset: sourceRow(first + row) * length, count: length, into: buffer + row * length)
                    }
                } else {
                    source.convert(offset: first * length, count: count * length, into: buffer)
                }
                let destination = base + first * rowBytes
                switch type {
                case .f32:
                    destination.copyMemory(from: buffer, byteCount: count * length * 4)
                case .f16:
                    hk_convert_f32_to_f16(buffer, destination.assumingMemoryBound(to: UInt16.self), count * length)
                case .bf16:
                    hk_convert_f32_to_bf16(buffer, destination.assumingMemoryBound(to: UInt16.self), count * length)
                default: // block types (hk_quantize refuses those it cannot make)
                    guard hk_quantize(Int32(type.ggmlType), buffer, destination, Int64(count), Int64(length)) == 0 else {
                        throw HoneError.invalidArgument("cannot quantize tensor '\(name)' to \(type.rawValue)")
                    }
                }
                first += count
            }
        }
        return output
    }
}

// MARK: - Llama's rotary permutation

/// llama.cpp's converter stores Llama's Q and K rows in GGML's adjacent-pair rope order: within each head the
/// rows (first half, second half) become interleaved pairs. Viewed as [heads, 2, half] → [heads, half, 2].
enum RotaryPermutation {
    /// GGUF row → HF row it comes from (used when writing a GGUF from HF weights).
    static func ggufRowSource(rows: Int, heads: Int) -> (Int) -> Int {
        let half = rows / heads / 2
        return { row in
            let (head, within) = row.quotientAndRemainder(dividingBy: 2 * half)
            let (pair, side) = within.quotientAndRemainder(dividingBy: 2)
            return head * 2 * half + side * half + pair
        }
    }

    /// HF row → GGUF row it comes from (used when writing HF weights from a GGUF).
    static func huggingFaceRowSource(rows: Int, heads: Int) -> (Int) -> Int {
        let half = rows / heads / 2
        return { row in
            let (head, within) = row.quotientAndRemainder(dividingBy: 2 * half)
            let (side, pair) = within.quotientAndRemainder(dividingBy: half)
            return head * 2 * half + pair * 2 + side
        }
    }
}

// MARK: - Names

/// HF ↔ GGUF tensor names of the Llama family (llama.cpp's tensor map for LLAMA and QWEN2).
enum LlamaTensorNames {
    static let topLevel: [(hf: String, gguf: String)] = [
        ("model.embed_tokens", "token_embd"), ("model.norm", "output_norm"), ("lm_head", "output"),
    ]
    static let perLayer: [(hf: String, gguf: String)] = [
        ("input_layernorm", "attn_norm"), ("self_attn.q_proj", "attn_q"), ("self_attn.k_proj", "attn_k"),
        ("self_attn.v_proj", "attn_v"), ("self_attn.o_proj", "attn_output"), ("post_attention_layernorm", "ffn_norm"),
        ("mlp.gate_proj", "ffn_gate"), ("mlp.up_proj", "ffn_up"), ("mlp.down_proj", "ffn_down"),
    ]

    /// "model.layers.3.self_attn.q_proj.weight" → "blk.3.attn_q.weight"; nil for names without a GGUF counterpart.
    static func gguf(fromHuggingFace name: String) -> String? {
        guard let dot = name.lastIndex(of: ".") else { return nil }
        let (module, suffix) = (String(name[..<dot]), String(name[name.index(after: dot)...]))
        if let entry = topLevel.first(where: { $0.hf == module }) { return "\(entry.gguf).\(suffix)" }
        let parts = module.split(separator: ".", maxSplits: 3).map(String.init)
        guard parts.count == 4, parts[0] == "model", parts[1] == "layers", let layer = Int(parts[2]),
              let entry = perLayer.first(where: { $0.hf == parts[3] }) else { return nil }
        return "blk.\(layer).\(entry.gguf).\(suffix)"
    }

    /// The inverse of `gguf(fromHuggingFace:)`.
    static func huggingFace(fromGGUF name: String) -> String? {
        guard let dot = name.lastIndex(of: ".") else { return nil }
        let (module, suffix) = (String(name[..<dot]), String(name[name.index(after: dot)...]))
        if let entry = topLevel.first(where: { $0.gguf == module }) { return "\(entry.hf).\(suffix)" }
        let parts = module.split(separator: ".", maxSplits: 2).map(String.init)
        guard parts.count == 3, parts[0] == "blk", let layer = Int(parts[1]),
              let entry = perLayer.first(where: { $0.gguf == parts[2] }) else { return nil }
        return "model.layers.\(layer).\(entry.hf).\(suffix)"
    }
}
