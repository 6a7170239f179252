import Foundation

/// A whole file mapped read-only. Tensors are views into it; pages are read from disk only when touched,
/// so opening a multi-gigabyte model costs almost nothing and resident memory grows with use.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    public let size: Int
    public let bytes: UnsafeRawPointer

    public init(path: String) throws {
        self.path = path
        let descriptor = open(path, O_RDONLY)
        if descriptor < 0 {
            if errno == ENOENT { throw HoneError.fileNotFound(path: path) }
            throw HoneError.io(path: path, message: String(cString: strerror(errno)))
        }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else {
            throw HoneError.io(path: path, message: String(cString: strerror(errno)))
        }
        if (status.st_mode & S_IFMT) == S_IFDIR {
            throw HoneError.io(path: path, message: "is a directory, expected a file")
        }
        size = Int(status.st_size)
        if size == 0 {
            // mmap refuses empty files; an empty file is still a valid (if useless) mapping for the parsers.
            bytes = UnsafeRawPointer(UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 64))
            return
        }
        guard let address = mmap(nil, size, PROT_READ, MAP_PRIVATE, descriptor, 0), address != MAP_FAILED else {
            throw HoneError.io(path: path, message: "cannot map file: \(String(cString: strerror(errno)))")
        }
        bytes = UnsafeRawPointer(address)
    }

    deinit {
        if size == 0 {
            UnsafeMutableRawPointer(mutating: bytes).deallocate()
        } else {
            munmap(UnsafeMutableRawPointer(mutating: bytes), size)
        }
    }
}

/// Reads little-endian values from a byte range, throwing a `malformedFile` error instead of reading past the end.
struct ByteReader {
    let base: UnsafeRawPointer
    let size: Int
    let path: String
    var offset: Int = 0

    init(base: UnsafeRawPointer, size: Int, path: String) {
        self.base = base
        self.size = size
        self.path = path
    }

    mutating func need(_ count: Int, _ what: @autoclosure () -> String) throws {
        if count < 0 || offset > size - count {
            throw HoneError.malformedFile(path: path, message: "truncated: \(what()) at byte \(offset) runs past the end of the file (\(size) bytes)")
        }
    }

    mutating func read<T: FixedWidthInteger>(_ type: T.Type, _ what: @autoclosure () -> String) throws -> T {
        try need(MemoryLayout<T>.size, what())
        let value = base.loadUnaligned(fromByteOffset: offset, as: T.self)
        offset += MemoryLayout<T>.size
        return T(littleEndian: value)
    }

    mutating func readFloat(_ what: @autoclosure () -> String) throws -> Float {
        Float(bitPattern: try read(UInt32.self, what()))
    }

    mutating func readDouble(_ what: @autoclosure () -> String) throws -> Double {
        Double(bitPattern: try read(UInt64.self, what()))
    }

    mutating func readBytes(_ count: Int, _ what: @autoclosure () -> String) throws -> UnsafeRawBufferPointer {
        try need(count, what())
        let buffer = UnsafeRawBufferPointer(start: base + offset, count: count)
        offset += count
        return buffer
    }
}
