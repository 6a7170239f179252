import Foundation

/// One `.safetensors` file: an 8-byte little-endian header length, a JSON header, then raw tensor bytes.
/// Every offset in the header is checked against the file size before any tensor is used.
public final class SafetensorsFile: @unchecked Sendable {
    public let file: MappedFile
    public let metadata: [String: String]
    public private(set) var tensors: [String: TensorView] = [:]
    /// Tensors whose dtype Hone does not compute with (e.g. I64 buffers); reported only when asked for.
    public private(set) var unsupported: [String: String] = [:]
    public var path: String { file.path }

    public init(path: String) throws {
        file = try MappedFile(path: path)
        var reader = ByteReader(base: file.bytes, size: file.size, path: path)
        let headerLength = try reader.read(UInt64.self, "header length")
        guard headerLength <= UInt64(file.size - 8) else {
            throw HoneError.malformedFile(path: path, message: "safetensors header length \(headerLength) points past the end of the file (\(file.size) bytes)")
        }
        let headerBytes = try reader.readBytes(Int(headerLength), "header")
        let dataStart = 8 + Int(headerLength)
        let header: [String: Any]
        do {
            guard let object = try parseJSON(Data(headerBytes)) as? [String: Any] else {
                throw HoneError.malformedFile(path: path, message: "safetensors header is not a JSON object")
            }
            header = object
        } catch let error as HoneError {
            throw error
        } catch {
            throw HoneError.malformedFile(path: path, message: "safetensors header is not valid JSON")
        }
        var metadata: [String: String] = [:]
        for (name, value) in header {
            if name == "__metadata__" {
                for (key, item) in (value as? [String: Any]) ?? [:] { metadata[key] = item as? String ?? "\(item)" }
                continue
            }
            // Each field on its own, strictly: compactMap dropped a fractional dimension (shape [2.5, 4] read as [4]).
            func bad(_ what: String) -> HoneError {
                HoneError.malformedFile(path: path, message: "safetensors entry for tensor '\(name)': \(what)")
            }
            guard let entry = value as? [String: Any] else { throw bad("not an object") }
            guard let dtypeName = entry["dtype"] as? String else { throw bad("\"dtype\" must be a string") }
            guard let shapeItems = entry["shape"] as? [Any], case let shape = shapeItems.compactMap(jsonInteger),
                  shape.count == shapeItems.count, shape.allSatisfy({ $0 >= 0 }) else {
                throw bad("\"shape\" must be a list of non-negative integers")
            }
            guard let offsetItems = entry["data_offsets"] as? [Any], case let offsets = offsetItems.compactMap(jsonInteger),
                  offsets.count == 2, offsetItems.count == 2 else {
                throw bad("\"data_offsets\" must be two integers [begin, end]")
            }
            let (begin, end) = (offsets[0], offsets[1])
            guard begin >= 0, end >= begin, end <= file.size - dataStart else {
                throw HoneError.malformedFile(path: path, message: "tensor '\(name)' data [\(begin), \(end)) points past the end of the file (\(file.size - dataStart) data bytes)")
            }
            guard let dtype = DType(safetensorsName: dtypeName) else {
                unsupported[name] = dtypeName
                continue
            }
            // The shape comes from the file: a wrapped product could match the bytes.
            guard let elements = TensorView.checkedElementCount(shape, bytesPerElement: dtype.blockBytes) else {
                throw HoneError.malformedFile(path: path, message: "tensor '\(name)' has an impossible shape \(shape) (too many elements)")
            }
            guard end - begin == dtype.byteCount(elements: elements) else {
                throw HoneError.malformedFile(path: path, message: "tensor '\(name)' has \(end - begin) bytes, but shape \(shape) of \(dtypeName) needs \(dtype.byteCount(elements: elements))")
            }
            tensors[name] = TensorView(name: name, dtype: dtype, shape: shape, data: file.bytes + dataStart + begin,
                                       source: path, owner: file)
        }
        self.metadata = metadata
    }
}

// MARK: - Writing

/// A tensor to be written: raw little-endian bytes of `dtype` in row-major order.
public struct SafetensorsEntry {
    public let name: String
    public let dtype: String
    public let shape: [Int]
    public let bytes: Data

    public init(name: String, dtype: String, shape: [Int], bytes: Data) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.bytes = bytes
    }
}

public enum SafetensorsWriter {
    /// The bytes of a safetensors file: tensors in the given order, header padded with spaces to 8 bytes
    /// as the reference implementation does.
    public static func encode(_ entries: [SafetensorsEntry], metadata: [String: String] = [:]) throws -> Data {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        for entry in entries {
            header[entry.name] = ["dtype": entry.dtype, "shape": entry.shape, "data_offsets": [offset, offset + entry.bytes.count]]
            offset += entry.bytes.count
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(UInt8(ascii: " ")) }
        var data = Data()
        var length = UInt64(json.count).littleEndian
        withUnsafeBytes(of: &length) { data.append(contentsOf: $0) }
        data.append(json)
        for entry in entries { data.append(entry.bytes) }
        return data
    }

    public static func write(_ entries: [SafetensorsEntry], metadata: [String: String] = [:], to path: String) throws {
        try writeFileAtomically(encode(entries, metadata: metadata), to: path)
    }
}

extension SafetensorsFile {
    /// Every tensor as an entry that can be written back (for tools that rewrite a file).
    public func entries() -> [SafetensorsEntry] {
        tensors.values.sorted { $0.data < $1.data }.map { tensor in
            SafetensorsEntry(name: tensor.name, dtype: tensor.dtype.rawValue, shape: tensor.shape,
                             bytes: Data(bytes: tensor.data, count: tensor.byteCount))
        }
    }
}

// MARK: - Streamed writing

/// Writes a safetensors file tensor by tensor: the header is known from names, dtypes and shapes alone, so each
/// tensor's bytes are produced only when it is written (a model never held whole). The file appears atomically.
public struct SafetensorsStreamEntry {
    public let name: String
    public let dtype: DType
    public let shape: [Int]
    public let bytes: () throws -> Data

    public init(name: String, dtype: DType, shape: [Int], bytes: @escaping () throws -> Data) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.bytes = bytes
    }
}

extension SafetensorsWriter {
    /// `progress` is called after each tensor with the bytes written so far.
    public static func write(streaming entries: [SafetensorsStreamEntry], metadata: [String: String] = [:], to path: String,
                             progress: ((Int) -> Void)? = nil) throws {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        for entry in entries {
            precondition(!entry.dtype.isQuantized, "safetensors holds plain types only")
            let count = entry.dtype.byteCount(elements: entry.shape.reduce(1, *))
            header[entry.name] = ["dtype": entry.dtype.rawValue, "shape": entry.shape, "data_offsets": [offset, offset + count]]
            offset += count
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(UInt8(ascii: " ")) }
        var prefix = Data()
        prefix.appendLittleEndian(UInt64(json.count))
        try writeFileStreamingAtomically(to: path) { handle in
            try handle.write(contentsOf: prefix + json)
            var written = 0
            for entry in entries {
                let bytes = try entry.bytes()
                let expected = entry.dtype.byteCount(elements: entry.shape.reduce(1, *))
                guard bytes.count == expected else {
                    throw HoneError.invalidArgument("tensor '\(entry.name)' has \(bytes.count) bytes, its shape needs \(expected)")
                }
                try handle.write(contentsOf: bytes)
                written += bytes.count
                progress?(written)
            }
        }
    }
}
