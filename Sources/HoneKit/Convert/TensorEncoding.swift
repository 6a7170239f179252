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
    /// A stack written as one tensor (a layer's experts, one matrix each in HF checkpoints, one 3-D tensor in GGUF
    /// files): its parts in order, `source` the first. Rows are encoded independently, so the stack's bytes are
    /// the parts' bytes one after the other.
    var parts: [TensorView]? = nil

    var rows: Int { shape.first ?? 1 }
    var rowLength: Int { shape.count <= 1 ? 1 : shape.dropFirst().reduce(1, *) }
    var elementCount: Int { shape.reduce(1, *) }

    /// The tensor's values encoded as `type`, converted a slab of rows at a time so that only one tensor's output
    /// and a bounded f32 buffer are ever in memory. Rows are quantized in parallel by the kernels.
    func encoded(as type: DType) throws -> Data {
        if let parts {
            var data = Data()
            for part in parts {
                data.append(try ExportTensor(name: name, shape: part.shape, source: part, sourceRow: nil,
                                             plannedType: plannedType).encoded(as: type))
            }
            return data
        }
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
                // A NaN or an infinity would be rounded into the new file as if it were a weight (llama-quantize
                // refuses what fails its row validation too): stop, naming where it is, before anything is written.
                if let bad = (0..<(count * length)).first(where: { !buffer[$0].isFinite }) {
                    let row = sourceRow.map { $0(first + bad / length) } ?? first + bad / length
                    throw HoneError.nonFinite(message: "stopped: tensor '\(source.name)' holds \(buffer[bad]) at row \(row), "
                        + "column \(bad % length); nothing was written")
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
