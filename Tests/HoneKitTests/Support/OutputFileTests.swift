import Foundation
import Testing
@testable import HoneKit

/// Where outputs may land besides plain files: a device or a pipe is written in place (renaming a finished file over
/// it replaced `/dev/null` with a regular file when Hone ran as root), and a directory output never replaces a file.
@Suite struct OutputFileTests {
    /// A FIFO stands in for `/dev/null` (a test must not risk the real device): both writers feed it, and it is
    /// still a FIFO afterwards.
    @Test func aPipeIsWrittenInPlace() async throws {
        let fifo = try makeTemporaryDirectory().appendingPathComponent("out.fifo").path
        #expect(mkfifo(fifo, 0o600) == 0)
        let writers: [() throws -> Void] = [{ try writeFileAtomically(Data("whole".utf8), to: fifo) },
                                            { try writeFileStreamingAtomically(to: fifo) { try $0.write(contentsOf: Data("streamed".utf8)) } }]
        for write in writers {
            // A reader that reads to the end (open blocks until the writer comes, EOF when it closes).
            let received = Task.detached { () -> Data? in FileHandle(forReadingAtPath: fifo)?.readDataToEndOfFile() }
            try write()
            let data = await received.value
            #expect(data == Data("whole".utf8) || data == Data("streamed".utf8), "\(String(describing: data))")
            var info = stat()
            #expect(stat(fifo, &info) == 0 && info.st_mode & S_IFMT == S_IFIFO, "the FIFO was replaced")
            #expect(!FileManager.default.fileExists(atPath: fifo + ".tmp"))
        }
    }

    /// A directory output whose name is taken by a file is refused; the file stays.
    @Test func aDirectoryNeverReplacesAFile() throws {
        let path = try temporaryFile("taken", "keep me")
        #expect(throws: HoneError.io(path: path, message: "exists and is not a directory")) {
            try writeDirectoryAtomically(path) { staging in
                try Data("x".utf8).write(to: URL(fileURLWithPath: staging + "/file"))
            }
        }
        #expect(FileManager.default.contents(atPath: path) == Data("keep me".utf8))
        #expect(!FileManager.default.fileExists(atPath: path + ".tmp"))
    }

    /// An output directory (`train --output-dir`, `merge`, `eval --output-dir`) whose name, or a parent's, is a file:
    /// one line naming it (Foundation's error was a multi-line dump, or "error 512").
    @Test func anOutputDirectoryUnderAFile() throws {
        let file = try temporaryFile("taken", "keep me")
        #expect(throws: HoneError.io(path: file, message: "exists and is not a directory")) { try createOutputDirectory(file) }
        let nested = file + "/run/adapter"
        #expect(throws: HoneError.io(path: nested, message: "cannot create the directory: \(file) is a file")) {
            try createOutputDirectory(nested)
        }
        let fresh = try makeTemporaryDirectory().appendingPathComponent("a/b").path
        try createOutputDirectory(fresh)
        try createOutputDirectory(fresh)
        var isDirectory: ObjCBool = false
        #expect(FileManager.default.fileExists(atPath: fresh, isDirectory: &isDirectory) && isDirectory.boolValue)
        #expect(FileManager.default.contents(atPath: file) == Data("keep me".utf8))
    }
}
