import Foundation

/// Writes `data` to `path` by way of `path.tmp` and a rename, so a reader never sees half a file and an
/// interrupted run leaves the previous file intact.
public func writeFileAtomically(_ data: Data, to path: String) throws {
    let temporary = path + ".tmp"
    guard FileManager.default.createFile(atPath: temporary, contents: data) else {
        throw HoneError.io(path: temporary, message: "cannot write file")
    }
    if rename(temporary, path) != 0 {
        let message = String(cString: strerror(errno))
        unlink(temporary)
        throw HoneError.io(path: path, message: "cannot move the finished file into place: \(message)")
    }
}

/// Streams a file to `path.tmp` through `body`, then syncs it and renames it into place; on any error the
/// temporary file is removed, so `path` is either the previous file or the complete new one. For outputs too
/// large to build in memory (model files written tensor by tensor).
public func writeFileStreamingAtomically(to path: String, _ body: (FileHandle) throws -> Void) throws {
    let temporary = path + ".tmp"
    guard FileManager.default.createFile(atPath: temporary, contents: nil),
          let handle = FileHandle(forWritingAtPath: temporary) else {
        throw HoneError.io(path: temporary, message: "cannot create file")
    }
    var failed = true
    defer {
        try? handle.close()
        if failed { unlink(temporary) }
    }
    try body(handle)
    try handle.synchronize()
    try handle.close()
    if rename(temporary, path) != 0 {
        throw HoneError.io(path: path, message: "cannot move the finished file into place: \(String(cString: strerror(errno)))")
    }
    failed = false
}

/// One parsed line of a JSONL file; `line` is 1-based for error messages.
public struct JSONLRecord {
    public let line: Int
    public let object: [String: Any]
}

/// Reads a JSON Lines file (gzip-compressed or not); blank lines are skipped; any other line must be a JSON object.
public func readJSONLines(path: String) throws -> [JSONLRecord] {
    try parseJSONLines(readInputFile(path: path), path: path)
}

/// Parses JSON Lines already in memory; `path` is only for error messages.
public func parseJSONLines(_ data: Data, path: String) throws -> [JSONLRecord] {
    var records: [JSONLRecord] = []
    var lineNumber = 0
    for line in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
        lineNumber += 1
        let trimmed = line.drop { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") || $0 == UInt8(ascii: "\r") }
        if trimmed.isEmpty { continue }
        // Say so plainly: the JSON parser would only report "not valid JSON" for bytes that are not UTF-8.
        if String(validating: line, as: UTF8.self) == nil {
            throw HoneError.malformedRecord(path: path, line: lineNumber, message: "not valid UTF-8 text")
        }
        let object: Any
        do {
            object = try parseJSON(Data(line))
        } catch {
            throw HoneError.malformedRecord(path: path, line: lineNumber, message: "not valid JSON")
        }
        guard let dictionary = object as? [String: Any] else {
            throw HoneError.malformedRecord(path: path, line: lineNumber, message: "expected a JSON object")
        }
        records.append(JSONLRecord(line: lineNumber, object: dictionary))
    }
    return records
}

/// A JSON number for a float, `null` when it is not finite (JSON has no NaN or infinity).
public func jsonNumber(_ value: Double) -> String {
    guard value.isFinite else { return "null" }
    if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
    return "\(value)"
}

public func jsonNumber(_ value: Float) -> String {
    guard value.isFinite else { return "null" }
    return "\(value)"
}

/// A number from a parsed JSON value (see `parseJSON`), nil for booleans and non-numbers. Values come either
/// as Swift Bool/Int/Double or as NSNumber, whose booleans have the type code "c" (and also cast to Int on
/// Linux, which is why they must be told apart explicitly).
public func jsonDouble(_ value: Any) -> Double? {
    if type(of: value) == Bool.self { return nil }
    if type(of: value) is NSNumber.Type, let number = value as? NSNumber {
        return String(cString: number.objCType) == "c" ? nil : number.doubleValue
    }
    if let integer = value as? Int { return Double(integer) }
    return value as? Double
}

/// An integer from a parsed JSON value; nil for booleans, fractions and anything else.
public func jsonInteger(_ value: Any) -> Int? {
    if type(of: value) == Int.self { return value as? Int }
    return jsonDouble(value).flatMap { Int(exactly: $0) }
}

/// A JSON string literal (quotes and escapes) for hand-written JSON output.
public func jsonString(_ text: String) -> String {
    let data = (try? JSONSerialization.data(withJSONObject: [text], options: [.withoutEscapingSlashes])) ?? Data("[\"\"]".utf8)
    let array = String(decoding: data, as: UTF8.self)
    return String(array.dropFirst().dropLast())
}
