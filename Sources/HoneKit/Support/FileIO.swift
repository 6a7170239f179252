import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Writes `data` to `path` by way of `path.tmp`, an fsync and a rename, so a reader never sees half a file and an
/// interrupted run (or a full disk) leaves the previous file intact. Errors name the file and the system's reason.
public func writeFileAtomically(_ data: Data, to path: String) throws {
    if isDeviceOrPipe(path) {
        try writeFileStreamingAtomically(to: path) { try $0.write(contentsOf: data) }
        return
    }
    let temporary = path + ".tmp"
    let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard descriptor >= 0 else { throw creationFailure(temporary, for: path) }
    var failure: String?
    data.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) in
        var offset = 0
        while offset < bytes.count {
            let written = Glibc.write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
            if written < 0 {
                if errno == EINTR { continue }
                failure = "cannot write: \(systemError())"
                return
            }
            offset += written
        }
    }
    if failure == nil, fsync(descriptor) != 0 { failure = "cannot flush to disk: \(systemError())" }
    if close(descriptor) != 0, failure == nil { failure = "cannot close: \(systemError())" }
    if let failure {
        unlink(temporary)
        throw HoneError.io(path: temporary, message: failure)
    }
    if rename(temporary, path) != 0 {
        let message = systemError()
        unlink(temporary)
        throw HoneError.io(path: path, message: "cannot move the finished file into place: \(message)")
    }
}

/// Why `temporary` (the staging name of `path`) could not be created, right after `open` failed: a missing folder is
/// named as such (the bare ENOENT on `out/x.gguf.tmp` read as if Hone had lost its own file).
func creationFailure(_ temporary: String, for path: String) -> HoneError {
    let code = errno
    let folder = (path as NSString).deletingLastPathComponent
    var isDirectory: ObjCBool = false
    if code == ENOENT || code == ENOTDIR, !folder.isEmpty,
       !(FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory) && isDirectory.boolValue) {
        return HoneError.io(path: path, message: "cannot create the file: the folder \(folder) does not exist")
    }
    return HoneError.io(path: temporary, message: "cannot create the file: \(systemError(code))")
}

/// Whether `path` is an existing character or block device, FIFO or socket: written in place, never replaced.
func isDeviceOrPipe(_ path: String) -> Bool {
    var info = stat()
    guard stat(path, &info) == 0 else { return false }
    let type = info.st_mode & S_IFMT
    return type == S_IFCHR || type == S_IFBLK || type == S_IFIFO || type == S_IFSOCK
}

/// The current errno as the system words it, with its symbolic name for the ones users search for.
public func systemError(_ code: Int32 = errno) -> String {
    let names: [Int32: String] = [ENOSPC: "ENOSPC", EDQUOT: "EDQUOT", EIO: "EIO", EACCES: "EACCES", EROFS: "EROFS",
                                  ENOENT: "ENOENT", EEXIST: "EEXIST", EISDIR: "EISDIR", ENOTDIR: "ENOTDIR"]
    let text = String(cString: strerror(code))
    return names[code].map { "\(text) (\($0))" } ?? text
}

/// Streams a file to `path.tmp` through `body`, then syncs it and renames it into place; on any error the
/// temporary file is removed, so `path` is either the previous file or the complete new one. For outputs too
/// large to build in memory (model files written tensor by tensor).
public func writeFileStreamingAtomically(to path: String, _ body: (FileHandle) throws -> Void) throws {
    if isDeviceOrPipe(path) {
        // `/dev/null` or a FIFO is written in place: renaming a finished file over it would replace the device
        // (run as root, `hone quantize in.gguf /dev/null` turned /dev/null into a regular file).
        let descriptor = open(path, O_WRONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw HoneError.io(path: path, message: "cannot open: \(systemError())") }
        let handle = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
        do { try body(handle) } catch let error as HoneError { throw error } catch {
            throw HoneError.io(path: path, message: "cannot write: \(describeFileError(error))")
        }
        return
    }
    let temporary = path + ".tmp"
    let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard descriptor >= 0 else { throw creationFailure(temporary, for: path) }
    let handle = FileHandle(fileDescriptor: descriptor, closeOnDealloc: false)
    var failed = true
    defer {
        try? handle.close()
        if failed { unlink(temporary) }
    }
    do {
        try body(handle)
        try handle.synchronize()
        try handle.close()
    } catch let error as HoneError {
        throw error
    } catch {
        throw HoneError.io(path: temporary, message: "cannot write: \(describeFileError(error))")
    }
    if rename(temporary, path) != 0 {
        throw HoneError.io(path: path, message: "cannot move the finished file into place: \(systemError())")
    }
    failed = false
}

/// Builds a directory at `directory.tmp` through `body` (which gets the staging path), then moves it into place,
/// so `directory` is either the previous one or the complete new one, never a mix. A previous directory is moved
/// aside (`directory.old`) for the moment of the swap and removed after it; on any error the staging directory is
/// removed.
public func writeDirectoryAtomically(_ directory: String, _ body: (String) throws -> Void) throws {
    let manager = FileManager.default
    // Only a previous directory is replaced: a file (or a device) of that name would have been moved aside and
    // deleted.
    var existingIsDirectory: ObjCBool = false
    if manager.fileExists(atPath: directory, isDirectory: &existingIsDirectory), !existingIsDirectory.boolValue {
        throw HoneError.io(path: directory, message: "exists and is not a directory")
    }
    let staging = directory + ".tmp"
    let aside = directory + ".old"
    try? manager.removeItem(atPath: staging)
    do {
        try manager.createDirectory(atPath: staging, withIntermediateDirectories: true)
    } catch {
        throw HoneError.io(path: staging, message: "cannot create the directory: \(describeFileError(error))")
    }
    var completed = false
    defer { if !completed { try? manager.removeItem(atPath: staging) } }
    try body(staging)
    var isDirectory: ObjCBool = false
    let replacing = manager.fileExists(atPath: directory, isDirectory: &isDirectory)
    if replacing {
        try? manager.removeItem(atPath: aside)
        guard rename(directory, aside) == 0 else {
            throw HoneError.io(path: directory, message: "cannot move the previous output aside: \(systemError())")
        }
    }
    guard rename(staging, directory) == 0 else {
        let message = systemError()
        if replacing { _ = rename(aside, directory) }
        throw HoneError.io(path: directory, message: "cannot move the finished directory into place: \(message)")
    }
    completed = true
    if replacing { try? manager.removeItem(atPath: aside) }
}

/// Foundation's file errors carry the POSIX code underneath; say it the way `systemError` does.
/// A path made absolute, with `.`, `..` and symbolic links resolved: two spellings of one file compare equal.
public func canonicalPath(_ path: String) -> String {
    URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath().path
}

/// Creates an output directory (and its parents) when it is not there. A file of that name, or a parent that is
/// one, is reported in one line naming the path (Foundation's own error is a multi-line dump).
public func createOutputDirectory(_ path: String) throws {
    var isDirectory: ObjCBool = false
    if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
        guard isDirectory.boolValue else { throw HoneError.io(path: path, message: "exists and is not a directory") }
        return
    }
    do {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    } catch {
        // Foundation says only "error 512" when a parent is a file: name that parent.
        var parent = (path as NSString).deletingLastPathComponent
        while !parent.isEmpty, parent != "/", !FileManager.default.fileExists(atPath: parent) {
            parent = (parent as NSString).deletingLastPathComponent
        }
        if !parent.isEmpty, FileManager.default.fileExists(atPath: parent, isDirectory: &isDirectory), !isDirectory.boolValue {
            throw HoneError.io(path: path, message: "cannot create the directory: \(parent) is a file")
        }
        throw HoneError.io(path: path, message: "cannot create the directory: \(describeFileError(error))")
    }
}

func describeFileError(_ error: Error) -> String {
    let nsError = error as NSError
    if let underlying = nsError.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
        return systemError(Int32(underlying.code))
    }
    if nsError.domain == NSPOSIXErrorDomain { return systemError(Int32(nsError.code)) }
    return nsError.localizedDescription
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
