import Foundation

/// Writes GGUF v3 files (llama.cpp's format): header, metadata, tensor infos, then tensor data aligned to
/// `general.alignment` (32). Tensors are streamed one by one to `path.tmp`, so a model is never held in memory
/// whole, and the file is renamed into place only when complete.
public final class GGUFWriter {
    public struct TensorEntry {
        public let name: String
        /// HF order (outermost first); written reversed as GGUF's ne[0..].
        public let shape: [Int]
        public let dtype: DType
        /// Produces the tensor's bytes when the data section is written.
        public let bytes: () throws -> Data

        public init(name: String, shape: [Int], dtype: DType, bytes: @escaping () throws -> Data) {
            self.name = name
            self.shape = shape
            self.dtype = dtype
            self.bytes = bytes
        }
    }

    public static let alignment = 32
    public private(set) var metadata: [(key: String, value: GGUFValue, arrayType: UInt32?)] = []
    public private(set) var tensors: [TensorEntry] = []

    public init() {}

    // MARK: - Metadata

    public func add(_ key: String, string value: String) { metadata.append((key, .string(value), nil)) }
    public func add(_ key: String, uint32 value: UInt32) { metadata.append((key, .unsigned(UInt64(value)), nil)) }
    public func add(_ key: String, int32 value: Int32) { metadata.append((key, .signed(Int64(value)), nil)) }
    public func add(_ key: String, float32 value: Float) { metadata.append((key, .float(Double(value)), nil)) }
    public func add(_ key: String, bool value: Bool) { metadata.append((key, .bool(value), nil)) }
    public func add(_ key: String, strings value: [String]) { metadata.append((key, .array(value.map { .string($0) }), 8)) }
    public func add(_ key: String, float32s value: [Float]) { metadata.append((key, .array(value.map { .float(Double($0)) }), 6)) }
    public func add(_ key: String, int32s value: [Int32]) { metadata.append((key, .array(value.map { .signed(Int64($0)) }), 5)) }

    /// Copies a metadata value read from another GGUF, keeping its exact type.
    public func add(_ key: String, value: GGUFValue, type: UInt32, arrayType: UInt32?) {
        metadata.append((key, value, arrayType))
        types[key] = type
    }

    private var types: [String: UInt32] = [:]

    // MARK: - Tensors

    public func add(tensor: TensorEntry) { tensors.append(tensor) }

    // MARK: - Writing

    public func write(to path: String) throws {
        var header = Data()
        header.appendLittleEndian(GGUFFile.magic)
        header.appendLittleEndian(UInt32(3))
        header.appendLittleEndian(UInt64(tensors.count))
        header.appendLittleEndian(UInt64(metadata.count))
        for entry in metadata {
            header.appendGGUFString(entry.key)
            let type = types[entry.key] ?? GGUFWriter.valueType(entry.value)
            header.appendLittleEndian(type)
            try GGUFWriter.appendValue(entry.value, type: type, arrayType: entry.arrayType, key: entry.key, to: &header)
        }
        var offset = 0
        var offsets: [Int] = []
        for tensor in tensors {
            header.appendGGUFString(tensor.name)
            header.appendLittleEndian(UInt32(tensor.shape.count))
            for dimension in tensor.shape.reversed() { header.appendLittleEndian(UInt64(dimension)) }
            header.appendLittleEndian(tensor.dtype.ggmlType)
            header.appendLittleEndian(UInt64(offset))
            offsets.append(offset)
            offset += GGUFWriter.padded(tensor.dtype.byteCount(elements: tensor.shape.reduce(1, *)))
        }
        header.append(Data(count: GGUFWriter.padded(header.count) - header.count))
        try writeFileStreamingAtomically(to: path) { handle in
            try handle.write(contentsOf: header)
            for tensor in tensors {
                let bytes = try tensor.bytes()
                let expected = tensor.dtype.byteCount(elements: tensor.shape.reduce(1, *))
                guard bytes.count == expected else {
                    throw HoneError.invalidArgument("tensor '\(tensor.name)' has \(bytes.count) bytes, its shape needs \(expected)")
                }
                try handle.write(contentsOf: bytes)
                let padding = GGUFWriter.padded(bytes.count) - bytes.count
                if padding > 0 { try handle.write(contentsOf: Data(count: padding)) }
            }
        }
    }

    static func padded(_ count: Int) -> Int { (count + alignment - 1) / alignment * alignment }

    /// The GGUF type a value is written as when none was given (u32 for unsigned, i32 for signed, f32, ...).
    static func valueType(_ value: GGUFValue) -> UInt32 {
        switch value {
        case .unsigned: return 4
        case .signed: return 5
        case .float: return 6
        case .bool: return 7
        case .string: return 8
        case .array: return 9
        }
    }

    static func appendValue(_ value: GGUFValue, type: UInt32, arrayType: UInt32?, key: String, to data: inout Data) throws {
        func integer() throws -> Int64 {
            guard let number = value.intValue else { throw HoneError.invalidArgument("metadata '\(key)' is not an integer") }
            return Int64(number)
        }
        switch type {
        case 0: data.appendLittleEndian(UInt8(truncatingIfNeeded: try integer()))
        case 1: data.appendLittleEndian(Int8(truncatingIfNeeded: try integer()))
        case 2: data.appendLittleEndian(UInt16(truncatingIfNeeded: try integer()))
        case 3: data.appendLittleEndian(Int16(truncatingIfNeeded: try integer()))
        case 4: data.appendLittleEndian(UInt32(truncatingIfNeeded: try integer()))
        case 5: data.appendLittleEndian(Int32(truncatingIfNeeded: try integer()))
        case 6: data.appendLittleEndian(Float(value.doubleValue ?? 0).bitPattern)
        case 7: data.appendLittleEndian(UInt8(value.boolValue == true ? 1 : 0))
        case 8: data.appendGGUFString(value.stringValue ?? "")
        case 9:
            let items = value.arrayValue ?? []
            let elementType = arrayType ?? items.first.map(valueType) ?? 4
            data.appendLittleEndian(elementType)
            data.appendLittleEndian(UInt64(items.count))
            for item in items { try appendValue(item, type: elementType, arrayType: nil, key: key, to: &data) }
        case 10: data.appendLittleEndian(UInt64(bitPattern: try integer()))
        case 11: data.appendLittleEndian(try integer())
        case 12: data.appendLittleEndian((value.doubleValue ?? 0).bitPattern)
        default: throw HoneError.invalidArgument("metadata '\(key)' has unknown GGUF type \(type)")
        }
    }
}

extension Data {
    mutating func appendLittleEndian<T: FixedWidthInteger>(_ value: T) {
        var little = value.littleEndian
        Swift.withUnsafeBytes(of: &little) { append(contentsOf: $0) }
    }

    mutating func appendGGUFString(_ text: String) {
        appendLittleEndian(UInt64(text.utf8.count))
        append(contentsOf: Array(text.utf8))
    }
}
