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
