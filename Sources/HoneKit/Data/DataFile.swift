import Foundation

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
/// decompressed first. An empty file, or one without records, is an error: no tool wants zero inputs. The one
/// reader of "JSON list or JSONL" files: `noun` names what a file without records lacks ("no instructions"), and
/// `namingFoundType` says whether a non-object item's error names what was found instead.
public func readDataRecords(path: String, noun: String = "records", namingFoundType: Bool = true) throws -> [DataRecord] {
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
                let found = namingFoundType ? ", found \(jsonTypeName(item))" : ""
                throw HoneError.malformedFile(path: path, message: "record \(offset + 1): expected a JSON object\(found)")
            }
            records.append(DataRecord(path: path, location: .arrayIndex(offset + 1), object: object))
        }
    } else if firstByte == UInt8(ascii: "{") {
        records = try parseJSONLines(data, path: path).map { DataRecord(path: path, location: .line($0.line), object: $0.object) }
    } else {
        throw HoneError.malformedFile(path: path, message: "expected a JSON array of records or JSON Lines (one object per line)")
    }
    if records.isEmpty { throw HoneError.malformedFile(path: path, message: "no \(noun)") }
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
