import Foundation

// MARK: - Tokenized-data cache

/// Tokenized training data kept on disk between runs, so that a second run (or a resumed one) on the same
/// data, tokenizer, template and settings skips tokenization.
///
/// Each entry is one file `<directory>/<key hex>.tokens`. The key is a SHA-256 over everything the
/// tokenized rows depend on (see `key(...)`), so a changed input is a different file and a stale entry is
/// never used; nothing is ever invalidated in place. A file that cannot be read, is truncated, or fails any
/// check is a miss with a warning, never a crash or wrong data.
///
/// File layout (little-endian):
///
///     offset  size  field
///          0     8  magic "HONETOKC"
///          8     4  file format version (`formatVersion`)
///         12     4  reserved, 0
///         16    32  the key (a file copied under another name is refused)
///         48     8  number of examples
///         56     8  payload size in bytes (uncompressed)
///         64    32  SHA-256 of the payload
///         96     …  the payload as one LZ4 frame (with its own xxHash-32 content checksum)
///
/// Payload: for each example, UInt32 n, then n Int32 input ids, then n Int32 labels.
public final class TokenizedDataCache: Sendable {
    /// Version of the file layout above.
    public static let formatVersion: UInt32 = 1
    /// Version of what Hone's tokenizers and `tokenizeForTraining` produce. Part of every key: bump it
    /// whenever a change there can change ids or labels, so that caches written before are not reused.
    public static let tokenizationVersion = 1

    static let magic = Array("HONETOKC".utf8)
    static let headerSize = 96

    /// A cache key: the SHA-256 of the inputs (see `key(...)`).
    public struct Key: Sendable, Hashable, CustomStringConvertible {
        public let digest: [UInt8]
        public init(digest: [UInt8]) {
            precondition(digest.count == 32, "a key is a 32-byte SHA-256 digest")
            self.digest = digest
        }
        public var description: String { digest.hexString }
    }

    public let directory: String
    private let warn: @Sendable (String) -> Void

    /// `warn` receives one line per unusable cache file (default: `hone: warning: ...` on stderr).
    /// `$HONE_CACHE_DIR/tokenized`, else `$XDG_CACHE_HOME/hone/tokenized`, else `~/.cache/hone/tokenized`;
    /// nil (no caching) when HONE_CACHE_DIR is set to an empty string.
    public static var defaultDirectory: String? {
        let environment = ProcessInfo.processInfo.environment
        if let root = environment["HONE_CACHE_DIR"] {
            return root.isEmpty ? nil : (root as NSString).appendingPathComponent("tokenized")
        }
        let base = environment["XDG_CACHE_HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? (NSHomeDirectory() as NSString).appendingPathComponent(".cache")
        return ((base as NSString).appendingPathComponent("hone") as NSString).appendingPathComponent("tokenized")
    }

    public init(directory: String, warn: @escaping @Sendable (String) -> Void = TokenizedDataCache.warnOnStandardError) {
        self.directory = directory
        self.warn = warn
    }

    public static let warnOnStandardError: @Sendable (String) -> Void = { message in
        FileHandle.standardError.write(Data("hone: warning: \(message)\n".utf8))
    }

    public func path(for key: Key) -> String {
        (directory as NSString).appendingPathComponent("\(key.digest.hexString).tokens")
    }

    // MARK: Keys

    /// The key of tokenizing `dataFile` with the tokenizer of `tokenizerSource` (a model directory or a
    /// GGUF file), `template` and the settings of `tokenizeForTraining`. It covers:
    /// * the data file's bytes;
    /// * the tokenizer: the bytes of every tokenizer file in a model directory (`tokenizerFileNames`), or
    ///   for a single file (GGUF, too large to hash on every run) its identity: absolute path, size and
    ///   modification time;
    /// * the template (its JSON encoding, keys sorted), `cutoffLength`, `trainOnInputs`, `addEOSToken`;
    /// * `formatVersion` and `tokenizationVersion`.
    ///
    /// Each part goes in as name, length and bytes, so no two different inputs serialize alike; with SHA-256
    /// an accidental collision (probability about n²/2²⁵⁷ for n entries) is not a concern.
    public static func key(dataFile: String, tokenizerSource: String, template: PromptTemplate, cutoffLength: Int,
                           trainOnInputs: Bool, addEOSToken: Bool) throws -> Key {
        var parts: [(String, [UInt8])] = [
            ("format", Array("\(formatVersion)".utf8)),
            ("tokenization", Array("\(tokenizationVersion)".utf8)),
            ("data", try fileDigest(dataFile)),
        ]
        parts += try tokenizerIdentity(tokenizerSource)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        parts.append(("template", Array(try encoder.encode(template))))
        if let chat = template.chatTemplate {
            parts.append(("chat_template", Array(chat.source.utf8)))
            parts.append(("chat_template_tokens", Array("\(chat.bosToken ?? "")\u{0}\(chat.eosToken ?? "")".utf8)))
        }
        parts.append(("cutoff_len", Array("\(cutoffLength)".utf8)))
        parts.append(("train_on_inputs", Array("\(trainOnInputs)".utf8)))
        parts.append(("add_eos_token", Array("\(addEOSToken)".utf8)))
        return key(parts: parts)
    }

    /// The key of named parts, each hashed as name, 0, UInt64 length, bytes.
    public static func key(parts: [(String, [UInt8])]) -> Key {
        var hasher = SHA256()
        hasher.update("hone tokenized-data cache\n")
        for (name, bytes) in parts {
            hasher.update(Array(name.utf8) + [0])
            hasher.update(littleEndianBytes(UInt64(bytes.count)))
            hasher.update(bytes)
        }
        return Key(digest: hasher.finalize())
    }

    /// Files of a model directory that decide how text is tokenized.
    public static let tokenizerFileNames = ["tokenizer.json", "tokenizer.model", "tokenizer_config.json",
                                            "special_tokens_map.json", "added_tokens.json", "vocab.json", "merges.txt"]

    static func tokenizerIdentity(_ source: String) throws -> [(String, [UInt8])] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: source, isDirectory: &isDirectory) else {
            throw HoneError.fileNotFound(path: source)
        }
        if isDirectory.boolValue {
            var parts: [(String, [UInt8])] = []
            for name in tokenizerFileNames {
                let path = (source as NSString).appendingPathComponent(name)
                if FileManager.default.fileExists(atPath: path) { parts.append(("tokenizer-file:\(name)", try fileDigest(path))) }
            }
            if parts.isEmpty { throw HoneError.io(path: source, message: "no tokenizer files found") }
            return parts
        }
        var status = stat()
        guard stat(source, &status) == 0 else { throw HoneError.io(path: source, message: "cannot read file") }
        let absolute = canonicalPath(source)
        let modified = Int64(status.st_mtim.tv_sec) * 1_000_000_000 + Int64(status.st_mtim.tv_nsec)
        return [("tokenizer-path", Array(absolute.utf8)), ("tokenizer-size", littleEndianBytes(UInt64(status.st_size))),
                ("tokenizer-mtime-ns", littleEndianBytes(UInt64(bitPattern: modified)))]
    }

    static func fileDigest(_ path: String) throws -> [UInt8] {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            if FileManager.default.fileExists(atPath: path) { throw HoneError.io(path: path, message: "cannot read file") }
            throw HoneError.fileNotFound(path: path)
        }
        defer { try? handle.close() }
        var hasher = SHA256()
        while true {
            let chunk: Data?
            do { chunk = try handle.read(upToCount: 1 << 22) } catch {
                throw HoneError.io(path: path, message: "cannot read file: \(error.localizedDescription)")
            }
            guard let chunk, !chunk.isEmpty else { break }
            hasher.update(chunk)
        }
        return hasher.finalize()
    }

    // MARK: Store and load

    /// Writes the examples under `key` (atomically: `name.tmp`, then a rename), creating the directory.
    /// A reader never sees a partial file. Two processes storing the same key at the same moment share the
    /// `.tmp` name, so one of them may fail: callers should treat a failed store as a warning (the data is
    /// tokenized either way).
    public func store(_ examples: [TrainingExample], key: Key) throws {
        var payload = Data()
        payload.reserveCapacity(examples.reduce(0) { $0 + 4 + 8 * $1.inputIDs.count })
        for example in examples {
            precondition(example.inputIDs.count == example.labels.count && example.inputIDs.count <= Int(UInt32.max))
            payload.append(contentsOf: Self.littleEndianBytes(UInt32(example.inputIDs.count)))
            Self.appendLittleEndian(example.inputIDs, to: &payload)
            Self.appendLittleEndian(example.labels, to: &payload)
        }
        let frame: Data
        do { frame = try LZ4Frame.compress(payload) } catch {
            throw HoneError.io(path: path(for: key), message: "cannot compress the tokenized data: \(error)")
        }
        var file = Data(Self.magic)
        file.append(contentsOf: Self.littleEndianBytes(Self.formatVersion))
        file.append(contentsOf: Self.littleEndianBytes(UInt32(0)))
        file.append(contentsOf: key.digest)
        file.append(contentsOf: Self.littleEndianBytes(UInt64(examples.count)))
        file.append(contentsOf: Self.littleEndianBytes(UInt64(payload.count)))
        file.append(contentsOf: SHA256.hash(payload))
        assert(file.count == Self.headerSize)
        file.append(frame)
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw HoneError.io(path: directory, message: "cannot create the cache directory: \(error.localizedDescription)")
        }
        try writeFileAtomically(file, to: path(for: key))
    }

    /// The examples stored under `key`; nil when there is no entry, or (with a warning) when the file is
    /// unreadable, truncated, from another format version, for another key, or fails its checksums.
    public func load(key: Key) -> [TrainingExample]? {
        let path = path(for: key)
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        do {
            return try Self.decode(fileAt: path, key: key)
        } catch {
            warn("\(path): ignoring the tokenized-data cache entry (\(error)); tokenizing again")
            return nil
        }
    }

    struct Corrupt: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    static func decode(fileAt path: String, key: Key) throws -> [TrainingExample] {
        guard let file = FileManager.default.contents(atPath: path) else { throw Corrupt("cannot read the file") }
        guard file.count >= headerSize else { throw Corrupt("truncated header (\(file.count) bytes)") }
        let bytes = [UInt8](file.prefix(headerSize))
        guard Array(bytes[0..<8]) == magic else { throw Corrupt("not a Hone tokenized-data cache file") }
        let version: UInt32 = readLittleEndian(bytes, at: 8)
        guard version == formatVersion else { throw Corrupt("format version \(version), this Hone writes \(formatVersion)") }
        guard Array(bytes[16..<48]) == key.digest else { throw Corrupt("the file holds another key") }
        let count: UInt64 = readLittleEndian(bytes, at: 48)
        let payloadSize: UInt64 = readLittleEndian(bytes, at: 56)
        let frame = file.dropFirst(headerSize)
        // LZ4 cannot expand more than ~255×: a larger claim is a damaged header, refused before allocating.
        guard payloadSize <= UInt64(frame.count) * 256 + 1024, count <= payloadSize / 4 else {
            throw Corrupt("implausible sizes in the header")
        }
        let payload: Data
        do { payload = try LZ4Frame.decompress(Data(frame), expectedSize: Int(payloadSize)) } catch {
            throw Corrupt("\(error)")
        }
        guard SHA256.hash(payload) == Array(bytes[64..<96]) else { throw Corrupt("payload checksum mismatch") }
        return try payload.withUnsafeBytes { raw -> [TrainingExample] in
            var examples: [TrainingExample] = []
            examples.reserveCapacity(Int(count))
            var offset = 0
            for _ in 0..<count {
                guard raw.count - offset >= 4 else { throw Corrupt("payload ends inside an example") }
                let n = Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
                offset += 4
                guard (raw.count - offset) / 8 >= n else { throw Corrupt("payload ends inside an example") }
                var ids = [Int32](repeating: 0, count: n)
                var labels = [Int32](repeating: 0, count: n)
                for i in 0..<n {
                    ids[i] = Int32(littleEndian: raw.loadUnaligned(fromByteOffset: offset + 4 * i, as: Int32.self))
                    labels[i] = Int32(littleEndian: raw.loadUnaligned(fromByteOffset: offset + 4 * (n + i), as: Int32.self))
                }
                offset += 8 * n
                examples.append(TrainingExample(inputIDs: ids, labels: labels))
            }
            guard offset == raw.count else { throw Corrupt("\(raw.count - offset) unexpected bytes after the examples") }
            return examples
        }
    }

    // MARK: Little-endian helpers

    static func littleEndianBytes<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
        withUnsafeBytes(of: value.littleEndian) { Array($0) }
    }

    static func readLittleEndian<T: FixedWidthInteger>(_ bytes: [UInt8], at offset: Int) -> T {
        bytes.withUnsafeBytes { T(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: T.self)) }
    }

    static func appendLittleEndian(_ values: [Int32], to data: inout Data) {
        values.withUnsafeBufferPointer { buffer in
            if Int32(1).littleEndian == 1 {
                data.append(UnsafeBufferPointer(start: UnsafeRawPointer(buffer.baseAddress)?.assumingMemoryBound(to: UInt8.self),
                                                count: buffer.count * 4))
            } else {
                for value in buffer { data.append(contentsOf: littleEndianBytes(value)) }
            }
        }
    }
}
