import Foundation

// MARK: - What a path holds, for resuming

/// Short content digests that say whether a resumed job still has the inputs it started with. A path alone does
/// not: a model folder replaced by a merged one, or a data file edited in place, kept its name, and a resumed run
/// mixed work done on both.
public enum ContentIdentity {
    /// SHA-256 of every byte of `path` (a file) or of every file in it (a folder, names sorted), as 16 hex digits.
    /// For small inputs: data files and adapters.
    public static func whole(_ path: String) throws -> String {
        var hasher = SHA256()
        for file in try files(path) {
            hasher.update(Array(((file as NSString).lastPathComponent).utf8) + [0])
            hasher.update(try TokenizedDataCache.fileDigest(file))
        }
        return String(hasher.finalize().hexString.prefix(16))
    }

    /// A digest of a model read in samples (a model is too large to hash on every run): for each weight file and
    /// config.json, its name and size, its first 64 KiB (the header: names, shapes, offsets, metadata) and 256
    /// windows of 4 KiB spread evenly over it (1.1 MiB per file). A merge, a requantization or another checkpoint
    /// of the same shape changes most tensors, so some window sees it.
    public static func sampled(_ path: String) throws -> String {
        var hasher = SHA256()
        let weightsAndConfig = { (name: String) in [".safetensors", ".gguf", ".bin"].contains { name.hasSuffix($0) } || name == "config.json" }
        for file in try files(path).filter({ weightsAndConfig(($0 as NSString).lastPathComponent) }) {
            guard let handle = FileHandle(forReadingAtPath: file) else { throw HoneError.io(path: file, message: "cannot read file") }
            defer { try? handle.close() }
            let size: UInt64
            do { size = try handle.seekToEnd() } catch { throw HoneError.io(path: file, message: "cannot read file: \(error.localizedDescription)") }
            hasher.update(Array(((file as NSString).lastPathComponent).utf8) + [0])
            hasher.update("\(size)\n")
            func window(at offset: UInt64, count: Int) throws {
                do {
                    try handle.seek(toOffset: offset)
                    if let bytes = try handle.read(upToCount: count) { hasher.update(bytes) }
                } catch {
                    throw HoneError.io(path: file, message: "cannot read file: \(error.localizedDescription)")
                }
            }
            try window(at: 0, count: 1 << 16)
            let windowSize: UInt64 = 4096, windows: UInt64 = 256
            if size > 1 << 16 {
                let span = size - min(size, windowSize)
                for index in 0..<windows { try window(at: span * index / (windows - 1), count: Int(windowSize)) }
            }
        }
        return String(hasher.finalize().hexString.prefix(16))
    }

    /// The file itself, or the regular files of a folder (sorted; subfolders such as checkpoints left out).
    static func files(_ path: String) throws -> [String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { throw HoneError.fileNotFound(path: path) }
        guard isDirectory.boolValue else { return [path] }
        let names = try FileManager.default.contentsOfDirectory(atPath: path).sorted()
        return names.map { (path as NSString).appendingPathComponent($0) }.filter {
            var nested: ObjCBool = false
            return FileManager.default.fileExists(atPath: $0, isDirectory: &nested) && !nested.boolValue
        }
    }
}
