import Foundation

/// A metadata value of a GGUF file.
public indirect enum GGUFValue: Sendable, Equatable {
    case unsigned(UInt64)
    case signed(Int64)
    case float(Double)
    case bool(Bool)
    case string(String)
    case array([GGUFValue])

    public var intValue: Int? {
        switch self {
        case .unsigned(let value): return Int(exactly: value)
        case .signed(let value): return Int(exactly: value)
        case .float(let value): return Int(exactly: value)
        default: return nil
        }
    }

    public var doubleValue: Double? {
        switch self {
        case .unsigned(let value): return Double(value)
        case .signed(let value): return Double(value)
        case .float(let value): return value
        default: return nil
        }
    }

    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    public var boolValue: Bool? {
        if case .bool(let value) = self { return value }
        return nil
    }

    public var arrayValue: [GGUFValue]? {
        if case .array(let value) = self { return value }
        return nil
    }
}

/// A tensor entry of a GGUF file, whatever its type (quantized types are listed even where Hone cannot
/// compute with them yet, so `hone info` can describe the file).
public struct GGUFTensorInfo: Sendable {
    public let name: String
    /// HF order (outermost first): GGUF stores ne[0] (innermost) first, so this is the reverse of the file's dims.
    public let shape: [Int]
    public let ggmlType: UInt32
    public let offset: Int
    public let byteCount: Int
    /// Which file of a split GGUF holds the tensor (0: the first, the one opened; see `GGUFFile.parts`).
    public internal(set) var part = 0
}

/// A GGUF v2/v3 file (llama.cpp's format): header, metadata key-values, tensor infos, aligned tensor data.
///
/// A model split by llama.cpp's gguf-split (or a converter's --split-max-tensors) is opened by its first part,
/// `PREFIX-00001-of-0000N.gguf`, as llama.cpp opens it: that part holds the metadata, the other parts are found
/// beside it by name, and `tensorInfos` lists the tensors of every part (each mapped where it lies).
public final class GGUFFile: @unchecked Sendable {
    /// The file opened (the first part of a split model).
    public let file: MappedFile
    public let version: UInt32
    public let metadata: [String: GGUFValue]
    /// Metadata keys in file order.
    public let metadataKeys: [String]
    /// Each key's GGUF value type, and the element type of arrays, so a file can be rewritten exactly.
    public let metadataTypes: [String: (type: UInt32, elementType: UInt32?)]
    public let tensorInfos: [GGUFTensorInfo]
    public let dataOffset: Int
    public var path: String { file.path }
    /// Every part of a split model, the opened file first; just that file otherwise.
    public let parts: [(file: MappedFile, dataOffset: Int)]
    /// The bytes of all parts.
    public var totalBytes: Int { parts.reduce(0) { $0 + $1.file.size } }

    public static let magic: UInt32 = 0x4655_4747  // "GGUF" little-endian
    /// The metadata keys that describe a split (llama.cpp's LLM_KV_SPLIT_*); they belong to no single-file copy.
    public static let splitKeys: Set<String> = ["split.no", "split.count", "split.tensors.count"]

    public convenience init(path: String) throws {
        let first = try Parsed(path: path)
        let count = first.metadata["split.count"]?.intValue ?? 1
        guard count > 1 else {
            self.init(first, parts: [first], tensorInfos: first.infos)
            return
        }
        let name = { (prefix: String, index: Int) in prefix + String(format: "-%05d-of-%05d.gguf", index + 1, count) }
        let suffix = name("", 0)
        let number = first.metadata["split.no"]?.intValue ?? 0
        guard number == 0 else {
            throw HoneError.malformedFile(path: path, message: "part \(number + 1) of a model split in \(count) parts: open its first part (\(name("PREFIX", 0)))")
        }
        guard path.hasSuffix(suffix), path.count > suffix.count else {
            throw HoneError.malformedFile(path: path, message: "the first part of a model split in \(count) parts must be named PREFIX\(suffix), so that the other parts can be found")
        }
        let prefix = String(path.dropLast(suffix.count))
        var parts = [first]
        var infos = first.infos
        var seen = Set(infos.map(\.name))
        for index in 1..<count {
            let partPath = name(prefix, index)
            guard FileManager.default.fileExists(atPath: partPath) else {
                throw HoneError.malformedFile(path: path, message: "part \(index + 1) of \(count) (\(partPath)) is missing")
            }
            let part = try Parsed(path: partPath)
            guard part.metadata["split.no"]?.intValue == index else {
                throw HoneError.malformedFile(path: partPath, message: "split.no is \(part.metadata["split.no"]?.intValue.map { "\($0)" } ?? "missing"), not \(index) as its name says")
            }
            for var info in part.infos {
                guard seen.insert(info.name).inserted else {
                    throw HoneError.malformedFile(path: partPath, message: "tensor '\(info.name)' is also in an earlier part")
                }
                info.part = index
                infos.append(info)
            }
            parts.append(part)
        }
        if let expected = first.metadata["split.tensors.count"]?.intValue, expected != infos.count {
            throw HoneError.malformedFile(path: path, message: "split.tensors.count is \(expected), but the \(count) parts hold \(infos.count) tensors")
        }
        self.init(first, parts: parts, tensorInfos: infos)
    }

    private init(_ first: Parsed, parts: [Parsed], tensorInfos: [GGUFTensorInfo]) {
        file = first.file
        version = first.version
        metadata = first.metadata
        metadataKeys = first.keys
        metadataTypes = first.types
        dataOffset = first.dataOffset
        self.parts = parts.map { ($0.file, $0.dataOffset) }
        self.tensorInfos = tensorInfos
    }

    /// One file's header, metadata and tensor table.
    private struct Parsed {
        let file: MappedFile
        let version: UInt32
        let metadata: [String: GGUFValue]
        let keys: [String]
        let types: [String: (type: UInt32, elementType: UInt32?)]
        let infos: [GGUFTensorInfo]
        let dataOffset: Int

        init(path: String) throws {
            file = try MappedFile(path: path)
            var reader = ByteReader(base: file.bytes, size: file.size, path: path)
            guard try reader.read(UInt32.self, "magic") == GGUFFile.magic else {
                throw HoneError.malformedFile(path: path, message: "not a GGUF file (bad magic)")
            }
            version = try reader.read(UInt32.self, "version")
            guard version == 2 || version == 3 else {
                throw HoneError.malformedFile(path: path, message: "GGUF version \(version) is not supported (2 and 3 are)")
            }
            let tensorCount = try reader.read(UInt64.self, "tensor count")
            let metadataCount = try reader.read(UInt64.self, "metadata count")
            // Each entry takes at least 8+4 bytes, so counts beyond the file size are corrupt, not just big.
            guard tensorCount < UInt64(file.size), metadataCount < UInt64(file.size) else {
                throw HoneError.malformedFile(path: path, message: "GGUF header counts (\(tensorCount) tensors, \(metadataCount) keys) exceed the file size")
            }
            var metadata: [String: GGUFValue] = [:]
            var keys: [String] = []
            var types: [String: (type: UInt32, elementType: UInt32?)] = [:]
            for index in 0..<Int(metadataCount) {
                let key = try GGUFFile.readString(&reader, "metadata key \(index)")
                let type = try reader.read(UInt32.self, "type of '\(key)'")
                // Peek at an array's element type (bounds-checked: a truncated file may end here; readValue reports it).
                let elementType = type == 9 && reader.size - reader.offset >= 4
                    ? reader.base.loadUnaligned(fromByteOffset: reader.offset, as: UInt32.self) : nil
                metadata[key] = try GGUFFile.readValue(&reader, type: type, key: key)
                keys.append(key)
                types[key] = (type, elementType.map { UInt32(littleEndian: $0) })
            }
            self.metadata = metadata
            self.keys = keys
            self.types = types
            var infos: [GGUFTensorInfo] = []
            infos.reserveCapacity(Int(tensorCount))
            for index in 0..<Int(tensorCount) {
                let name = try GGUFFile.readString(&reader, "tensor name \(index)")
                let dimensionCount = try reader.read(UInt32.self, "dimension count of '\(name)'")
                guard dimensionCount <= 8 else {
                    throw HoneError.malformedFile(path: path, message: "tensor '\(name)' has \(dimensionCount) dimensions")
                }
                var dims: [Int] = []
                for _ in 0..<dimensionCount {
                    let dim = try reader.read(UInt64.self, "dimensions of '\(name)'")
                    guard dim < (1 << 40) else {
                        throw HoneError.malformedFile(path: path, message: "tensor '\(name)' has an impossible dimension \(dim)")
                    }
                    dims.append(Int(dim))
                }
                let type = try reader.read(UInt32.self, "type of '\(name)'")
                let offset = try reader.read(UInt64.self, "offset of '\(name)'")
                let shape = Array(dims.reversed())
                // Each dimension is below 2^40, but their product can still wrap, also behind a zero dimension.
                guard let elements = TensorView.checkedElementCount(dims) else {
                    throw HoneError.malformedFile(path: path, message: "tensor '\(name)' has an impossible shape \(shape) (too many elements)")
                }
                guard let layout = GGUFFile.blockLayout(type: type) else {
                    throw HoneError.malformedFile(path: path, message: "tensor '\(name)' has unknown GGML type id \(type)")
                }
                // Rows are read whole blocks at a time: a row that ends inside a block has no valid encoding.
                guard (dims.first ?? 1) % layout.elementsPerBlock == 0 else {
                    throw HoneError.malformedFile(path: path, message: "tensor '\(name)' has rows of \(dims.first ?? 1) values, not a multiple of \(ggmlTypeName(type))'s block of \(layout.elementsPerBlock)")
                }
                let (bytes, overflow) = (elements / layout.elementsPerBlock).multipliedReportingOverflow(by: layout.bytesPerBlock)
                guard !overflow else {
                    throw HoneError.malformedFile(path: path, message: "tensor '\(name)' has an impossible shape \(shape) (too many bytes)")
                }
                infos.append(GGUFTensorInfo(name: name, shape: shape, ggmlType: type, offset: Int(clamping: offset), byteCount: bytes))
            }
            var alignment = 32
            if let value = metadata["general.alignment"] {
                guard let aligned = value.intValue, aligned > 0, aligned & (aligned - 1) == 0 else {
                    throw HoneError.malformedFile(path: path, message: "general.alignment must be a power of two")
                }
                alignment = aligned
            }
            dataOffset = (reader.offset + alignment - 1) / alignment * alignment
            for info in infos {
                guard dataOffset <= file.size, info.offset <= file.size - dataOffset,
                      info.byteCount <= file.size - dataOffset - info.offset
                else {
                    throw HoneError.malformedFile(path: path, message: "truncated: tensor '\(info.name)' (\(info.byteCount) bytes at data offset \(info.offset)) runs past the end of the file (\(file.size) bytes)")
                }
            }
            self.infos = infos
        }
    }

    /// The view of a tensor Hone can compute with (a type id Hone does not know throws `unsupportedDType`).
    public func tensorView(_ info: GGUFTensorInfo) throws -> TensorView {
        let part = parts[info.part]
        guard let dtype = DType(ggmlType: info.ggmlType) else {
            throw HoneError.unsupportedDType(name: info.name, dtype: "\(ggmlTypeName(info.ggmlType)) (GGML type id \(info.ggmlType))", path: part.file.path)
        }
        return TensorView(name: info.name, dtype: dtype, shape: info.shape, data: part.file.bytes + part.dataOffset + info.offset,
                          source: part.file.path, owner: part.file)
    }

    // MARK: - Metadata accessors

    public var architecture: String? { metadata["general.architecture"]?.stringValue }

    public func integer(_ key: String) -> Int? { metadata[key]?.intValue }
    public func double(_ key: String) -> Double? { metadata[key]?.doubleValue }
    public func string(_ key: String) -> String? { metadata[key]?.stringValue }

    // MARK: - Parsing

    static func readString(_ reader: inout ByteReader, _ what: String) throws -> String {
        let length = try reader.read(UInt64.self, what)
        guard length <= UInt64(reader.size) else {
            throw HoneError.malformedFile(path: reader.path, message: "truncated: \(what) claims \(length) bytes")
        }
        let bytes = try reader.readBytes(Int(length), what)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Arrays of arrays are allowed, but real files nest at most once; a deep nest would only exhaust the stack.
    static let maxArrayNesting = 8

    static func readValue(_ reader: inout ByteReader, type: UInt32, key: String, depth: Int = 0) throws -> GGUFValue {
        switch type {
        case 0: return .unsigned(UInt64(try reader.read(UInt8.self, key)))
        case 1: return .signed(Int64(try reader.read(Int8.self, key)))
        case 2: return .unsigned(UInt64(try reader.read(UInt16.self, key)))
        case 3: return .signed(Int64(try reader.read(Int16.self, key)))
        case 4: return .unsigned(UInt64(try reader.read(UInt32.self, key)))
        case 5: return .signed(Int64(try reader.read(Int32.self, key)))
        case 6: return .float(Double(try reader.readFloat(key)))
        case 7: return .bool(try reader.read(UInt8.self, key) != 0)
        case 8: return .string(try readString(&reader, "value of '\(key)'"))
        case 9:
            guard depth < maxArrayNesting else {
                throw HoneError.malformedFile(path: reader.path, message: "metadata '\(key)' nests arrays more than \(maxArrayNesting) deep")
            }
            let elementType = try reader.read(UInt32.self, "array type of '\(key)'")
            let count = try reader.read(UInt64.self, "array length of '\(key)'")
            guard count <= UInt64(reader.size) else {
                throw HoneError.malformedFile(path: reader.path, message: "truncated: array '\(key)' claims \(count) elements")
            }
            var values: [GGUFValue] = []
            values.reserveCapacity(Int(count))
            for _ in 0..<Int(count) { values.append(try readValue(&reader, type: elementType, key: key, depth: depth + 1)) }
            return .array(values)
        case 10: return .unsigned(try reader.read(UInt64.self, key))
        case 11: return .signed(try reader.read(Int64.self, key))
        case 12: return .float(try reader.readDouble(key))
        default:
            throw HoneError.malformedFile(path: reader.path, message: "metadata '\(key)' has unknown value type \(type)")
        }
    }

    /// Values and bytes per block of GGML type `type` (block sizes from ggml.c's type traits); nil for unknown ids.
    static func blockLayout(type: UInt32) -> (elementsPerBlock: Int, bytesPerBlock: Int)? {
        let blockLayout: [UInt32: (elementsPerBlock: Int, bytesPerBlock: Int)] = [
            0: (1, 4), 1: (1, 2), 2: (32, 18), 3: (32, 20), 6: (32, 22), 7: (32, 24), 8: (32, 34), 9: (32, 36),
            10: (256, 84), 11: (256, 110), 12: (256, 144), 13: (256, 176), 14: (256, 210), 15: (256, 292),
            16: (256, 66), 17: (256, 74), 18: (256, 98), 19: (256, 50), 20: (32, 18), 21: (256, 110),
            22: (256, 82), 23: (256, 136), 24: (1, 1), 25: (1, 2), 26: (1, 4), 27: (1, 8), 28: (1, 8),
            29: (256, 56), 30: (1, 2), 34: (256, 54), 35: (256, 66),
        ]
        return blockLayout[type]
    }
}
