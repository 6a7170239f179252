import CLZ4
import Foundation

// MARK: - LZ4 frames

/// Whole-buffer compression in the LZ4 frame format (the `.lz4` file format of the `lz4` command line tool),
/// through the system's liblz4. Frames are written with the content size in the header and a content checksum
/// (xxHash-32) at the end, so that a damaged or truncated frame is reported rather than decoded into garbage.
public enum LZ4Frame {
    /// Why a frame could not be made or read; the message comes from liblz4 where it has one.
    public struct Failure: Error, CustomStringConvertible, Equatable {
        public let message: String
        public var description: String { message }
    }

    /// `data` as one LZ4 frame. `level` 0 is liblz4's fast mode (hundreds of MB/s); higher levels (up to 12)
    /// use LZ4-HC, smaller but slower to write, as fast to read.
    public static func compress(_ data: Data, level: Int32 = 0) throws -> Data {
        var preferences = LZ4F_preferences_t()
        preferences.frameInfo.contentChecksumFlag = LZ4F_contentChecksumEnabled
        preferences.frameInfo.contentSize = UInt64(data.count)
        preferences.frameInfo.blockSizeID = LZ4F_max4MB
        preferences.compressionLevel = level
        let bound = LZ4F_compressFrameBound(data.count, &preferences)
        guard LZ4F_isError(bound) == 0 else { throw Failure(message: errorName(bound)) }
        var output = Data(count: bound)
        let written = output.withUnsafeMutableBytes { destination in
            data.withUnsafeBytes { source in
                LZ4F_compressFrame(destination.baseAddress, bound, source.baseAddress, source.count, &preferences)
            }
        }
        guard LZ4F_isError(written) == 0 else { throw Failure(message: "LZ4 compression failed: \(errorName(written))") }
        output.count = written
        return output
    }

    /// The content of the single LZ4 frame that `frame` must hold entirely (trailing bytes are an error).
    /// `expectedSize`, when given, is the exact decompressed size the caller expects: a frame that would
    /// decode to more is rejected without allocating for it.
    public static func decompress(_ frame: Data, expectedSize: Int? = nil) throws -> Data {
        var context: OpaquePointer? = nil
        let created = LZ4F_createDecompressionContext(&context, UInt32(LZ4F_VERSION))
        guard LZ4F_isError(created) == 0, let context else {
            throw Failure(message: "cannot create an LZ4 decompression context: \(errorName(created))")
        }
        defer { LZ4F_freeDecompressionContext(context) }

        // Start with the expected size (or a guess) and grow when no size is known.
        var output = Data(count: max(expectedSize ?? frame.count * 4, 64))
        var produced = 0
        var consumed = 0
        try frame.withUnsafeBytes { source in
            while true {
                var sourceSize = source.count - consumed
                var destinationSize = output.count - produced
                let hint = output.withUnsafeMutableBytes { destination in
                    LZ4F_decompress(context, destination.baseAddress! + produced, &destinationSize,
                                    source.baseAddress.map { $0 + consumed }, &sourceSize, nil)
                }
                guard LZ4F_isError(hint) == 0 else { throw Failure(message: "corrupt LZ4 frame: \(errorName(hint))") }
                consumed += sourceSize
                produced += destinationSize
                if hint == 0 { return }                       // the frame is complete (checksum verified)
                guard sourceSize == 0, destinationSize == 0 else { continue }
                // No progress: either the input is used up (the frame was cut short) or the output is full.
                if consumed == source.count { throw Failure(message: "truncated LZ4 frame") }
                if let expectedSize { throw Failure(message: "LZ4 frame holds more than the \(expectedSize) bytes expected") }
                output.count *= 2
            }
        }
        guard consumed == frame.count else {
            throw Failure(message: "\(frame.count - consumed) bytes follow the end of the LZ4 frame")
        }
        if let expectedSize, produced != expectedSize {
            throw Failure(message: "LZ4 frame holds \(produced) bytes, expected \(expectedSize)")
        }
        output.count = produced
        return output
    }

    private static func errorName(_ code: Int) -> String { String(cString: LZ4F_getErrorName(code)) }
}
