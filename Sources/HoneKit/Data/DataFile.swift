import CZlib
import Foundation

// MARK: - Reading input files, gzip or not

/// Reads a whole input file; gzip data (magic 1F 8B, whatever the name says) is decompressed with zlib, so
/// `test.jsonl.gz` and `test.jsonl` read alike.
public func readInputFile(path: String) throws -> Data {
    guard let data = FileManager.default.contents(atPath: path) else {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            throw HoneError.io(path: path, message: isDirectory.boolValue ? "is a directory, expected a file" : "cannot read file")
        }
        throw HoneError.fileNotFound(path: path)
    }
    return Gzip.isCompressed(data) ? try Gzip.decompress(data, path: path) : data
}

public enum Gzip {
    public static func isCompressed(_ data: Data) -> Bool {
        data.count >= 2 && data[data.startIndex] == 0x1F && data[data.startIndex + 1] == 0x8B
    }

    /// Inflates every member of a gzip file (RFC 1952 allows several back to back; `gzip -c a b` makes them).
    /// A truncated or corrupt stream is an error, never a silently shorter result.
    public static func decompress(_ data: Data, path: String) throws -> Data {
        var output = Data()
        var stream = z_stream()
        // 16 + MAX_WBITS: expect a gzip header and trailer (CRC-32 and length are checked by zlib).
        guard inflateInit2_(&stream, 16 + MAX_WBITS, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw HoneError.io(path: path, message: "cannot start zlib")
        }
        defer { inflateEnd(&stream) }
        let chunkSize = 1 << 20
        var chunk = [UInt8](repeating: 0, count: chunkSize)
        try data.withUnsafeBytes { (input: UnsafeRawBufferPointer) in
            let base = input.bindMemory(to: UInt8.self).baseAddress!
            stream.next_in = UnsafeMutablePointer(mutating: base)
            stream.avail_in = uInt(input.count)
            while true {
                let status = chunk.withUnsafeMutableBufferPointer { buffer -> Int32 in
                    stream.next_out = buffer.baseAddress
                    stream.avail_out = uInt(chunkSize)
                    let status = inflate(&stream, Z_NO_FLUSH)
                    output.append(buffer.baseAddress!, count: chunkSize - Int(stream.avail_out))
                    return status
                }
                switch status {
                case Z_OK:
                    continue
                case Z_STREAM_END:
                    // Another member may follow; trailing zero padding (some tools write it) is ignored.
                    let rest = UnsafeBufferPointer(start: stream.next_in, count: Int(stream.avail_in))
                    if rest.allSatisfy({ $0 == 0 }) { return }
                    guard inflateReset(&stream) == Z_OK else {
                        throw HoneError.malformedFile(path: path, message: "corrupt gzip data after member end")
                    }
                case Z_BUF_ERROR where stream.avail_in == 0:
                    throw HoneError.malformedFile(path: path, message: "gzip data is truncated")
                default:
                    let reason = stream.msg.map { String(cString: $0) } ?? "error \(status)"
                    throw HoneError.malformedFile(path: path, message: "corrupt gzip data (\(reason))")
                }
            }
        }
        return output
    }
}

// MARK: - Records of JSON / JSON Lines data files

/// One object of a data file with where it came from: the 1-based line of a JSON Lines file or the 1-based
/// position in a JSON array file, so that every error can name it.
public struct DataRecord {
    public enum Location: Equatable, Sendable {
        case line(Int)
        case arrayIndex(Int)
    }

    public let path: String
    public let location: Location
    public let object: [String: Any]

    /// "line 3" or "record 3", for summaries.
    public var place: String {
        switch location {
        case .line(let line): return "line \(line)"
        case .arrayIndex(let index): return "record \(index)"
        }
    }

    /// An error about this record: `path:3: message` for a JSONL line, `path: record 3: message` for an array item.
    public func error(_ message: String) -> HoneError {
        switch location {
        case .line(let line): return .malformedRecord(path: path, line: line, message: message)
        case .arrayIndex(let index): return .malformedFile(path: path, message: "record \(index): \(message)")
        }
    }

    /// A required string field.
    public func string(_ key: String) throws -> String {
        guard let value = object[key] else { throw error("missing \"\(key)\"") }
        guard let text = value as? String else { throw error("\"\(key)\" is not a string") }
        return text
    }

    /// An optional string field: nil when absent or null; an error when it is something else.
    public func optionalString(_ key: String) throws -> String? {
        guard let value = object[key], !(value is NSNull) else { return nil }
        guard let text = value as? String else { throw error("\"\(key)\" is not a string or null") }
        return text
    }

    /// An optional number field: nil when absent or null; an error for booleans, strings and the like.
    public func optionalNumber(_ key: String) throws -> Double? {
        guard let value = object[key], !(value is NSNull) else { return nil }
        guard let number = jsonDouble(value) else { throw error("\"\(key)\" is not a number or null") }
        return number
    }
}

/// Reads a data file of JSON objects: a JSON array (first non-blank byte `[`) or JSON Lines; gzip is
/// decompressed first. An empty file, or one without records, is an error: no tool wants zero inputs.
public func readDataRecords(path: String) throws -> [DataRecord] {
    let data = try readInputFile(path: path)
    let firstByte = data.first { ![0x20, 0x09, 0x0A, 0x0D, 0xEF, 0xBB, 0xBF].contains($0) }
    guard let firstByte else { throw HoneError.malformedFile(path: path, message: "no records (the file is empty)") }
    var records: [DataRecord] = []
    if firstByte == UInt8(ascii: "[") {
        let parsed: Any
        do {
            parsed = try parseJSON(data)
        } catch {
            guard String(validating: data, as: UTF8.self) != nil else {
                throw HoneError.malformedFile(path: path, message: "not valid UTF-8 text")
            }
            throw HoneError.malformedFile(path: path, message: "not valid JSON (truncated or corrupt)")
        }
        for (offset, item) in ((parsed as? [Any]) ?? []).enumerated() {
            guard let object = item as? [String: Any] else {
                throw HoneError.malformedFile(path: path, message: "record \(offset + 1): expected a JSON object, found \(jsonTypeName(item))")
            }
            records.append(DataRecord(path: path, location: .arrayIndex(offset + 1), object: object))
        }
    } else if firstByte == UInt8(ascii: "{") {
        records = try parseJSONLines(data, path: path).map { DataRecord(path: path, location: .line($0.line), object: $0.object) }
    } else {
        throw HoneError.malformedFile(path: path, message: "expected a JSON array of records or JSON Lines (one object per line)")
    }
    if records.isEmpty { throw HoneError.malformedFile(path: path, message: "no records") }
    return records
}

// MARK: - Writing

/// A JSON array of pre-rendered objects, one per line group, as `json.dump(..., indent=2)` lays them out.
func prettyJSONArray(_ objects: [[(key: String, value: String)]]) -> String {
    if objects.isEmpty { return "[]\n" }
    let items = objects.map { fields in
        "  {\n" + fields.map { "    \(jsonString($0.key)): \($0.value)" }.joined(separator: ",\n") + "\n  }"
    }
    return "[\n" + items.joined(separator: ",\n") + "\n]\n"
}

/// One JSON object on one line from pre-rendered values, in the given key order.
func jsonObjectLine(_ fields: [(key: String, value: String)]) -> String {
    "{" + fields.map { "\(jsonString($0.key)): \($0.value)" }.joined(separator: ", ") + "}"
}

/// A JSON array of strings on one line.
func jsonStringArray(_ values: [String]) -> String {
    "[" + values.map(jsonString).joined(separator: ", ") + "]"
}

/// Serialises any parsed JSON value (records passed through unchanged), keys sorted so output is stable.
func jsonValueText(_ value: Any) throws -> String {
    let data = try JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed, .sortedKeys, .withoutEscapingSlashes])
    return String(decoding: data, as: UTF8.self)
}
