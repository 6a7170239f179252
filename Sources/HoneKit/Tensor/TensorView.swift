import HoneKernels

/// A typed, read-only view of a tensor's bytes, usually inside a memory-mapped file. Nothing is copied:
/// `owner` keeps the mapping alive while the view exists.
public struct TensorView: @unchecked Sendable {
    public let name: String
    public let dtype: DType
    /// Row-major shape, HF order: a linear weight is [out, in].
    public let shape: [Int]
    public let data: UnsafeRawPointer
    /// Where the tensor came from, for error messages.
    public let source: String
    let owner: AnyObject?

    public init(name: String, dtype: DType, shape: [Int], data: UnsafeRawPointer, source: String, owner: AnyObject?) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.data = data
        self.source = source
        self.owner = owner
    }

    public var elementCount: Int { shape.reduce(1, *) }

    /// The element count of a shape read from a file, or nil when it cannot be a tensor in memory: a negative
    /// dimension, or non-zero dimensions whose product (times `bytesPerElement`) does not fit in an Int. A zero
    /// dimension makes the count 0, but the other dimensions must still fit together: code that multiplies them in
    /// another order or only some of them (a row's length, `elementCount` over the reversed GGUF order) would
    /// otherwise overflow and trap.
    public static func checkedElementCount(_ shape: [Int], bytesPerElement: Int = 1) -> Int? {
        var nonZero = max(1, bytesPerElement)
        for dimension in shape where dimension != 0 {
            guard dimension > 0 else { return nil }
            let (product, overflow) = nonZero.multipliedReportingOverflow(by: dimension)
            guard !overflow else { return nil }
            nonZero = product
        }
        return shape.contains(0) ? 0 : nonZero / max(1, bytesPerElement)
    }

    public var byteCount: Int { dtype.byteCount(elements: elementCount) }

    /// Converts `count` elements starting at `offset` to f32 into `destination`. For block-quantized types both
    /// must be whole blocks (rows of a weight or an embedding always are).
    public func convert(offset: Int, count: Int, into destination: UnsafeMutablePointer<Float>) {
        switch dtype {
        case .f32:
            destination.update(from: data.assumingMemoryBound(to: Float.self) + offset, count: count)
        case .f16:
            hk_convert_f16_to_f32(data.assumingMemoryBound(to: UInt16.self) + offset, destination, count)
        case .bf16:
            hk_convert_bf16_to_f32(data.assumingMemoryBound(to: UInt16.self) + offset, destination, count)
        default: // block types
            precondition(offset % dtype.blockSize == 0 && count % dtype.blockSize == 0, "conversion of part of a block")
            hk_dequantize_row(Int32(dtype.ggmlType), data + dtype.byteCount(elements: offset), destination, Int64(count))
        }
    }

    /// A small tensor (norm weights, biases) as an owned f32 array. Never used for large matrices.
    public func floats() -> [Float] {
        [Float](unsafeUninitializedCapacity: elementCount) { buffer, initialized in
            convert(offset: 0, count: elementCount, into: buffer.baseAddress!)
            initialized = elementCount
        }
    }

    /// Throws unless the shape is exactly `expected`.
    public func expectShape(_ expected: [Int]) throws {
        if shape != expected {
            throw HoneError.tensorShape(name: name, expected: expected, actual: shape, path: source)
        }
    }
}

// MARK: - Shifted copies

extension TensorView {
    /// An f32 copy of a small tensor with `offset` added to every value, the sum rounded to `type` (f32, f16 or
    /// bf16) as torch rounds a sum in that dtype: Gemma's norm weights, which its GGUFs store as 1 + w.
    func offset(by offset: Float, roundedTo type: DType) -> TensorView {
        var values = floats().map { $0 + offset }
        var bits = [UInt16](repeating: 0, count: values.count)
        switch type {
        case .bf16:
            hk_convert_f32_to_bf16(values, &bits, values.count)
            hk_convert_bf16_to_f32(bits, &values, values.count)
        case .f16:
            hk_convert_f32_to_f16(values, &bits, values.count)
            hk_convert_f16_to_f32(bits, &values, values.count)
        default:
            break
        }
        let buffer = FloatBuffer(values)
        return TensorView(name: name, dtype: .f32, shape: shape, data: UnsafeRawPointer(buffer.pointer), source: source,
                          owner: buffer)
    }
}
