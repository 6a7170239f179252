import ArgumentParser
import Foundation
import HoneKit

/// Options every command takes.
struct RuntimeOptions: ParsableArguments {
    @Option(name: .long, help: "Threads for the kernels (default: all cores).")
    var threads: Int?

    func apply() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        Runtime.setThreads(threads ?? ProcessInfo.processInfo.activeProcessorCount)
    }
}

/// Runs a command body; a HoneError becomes one line on stderr and exit status 1, never a trace.
func reportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as HoneError {
        FileHandle.standardError.write(Data("hone: error: \(error.description)\n".utf8))
        throw ExitCode.failure
    }
}

/// Writes text to stdout or, atomically, to a file.
func emit(_ text: String, to output: String?) throws {
    if let output {
        try writeFileAtomically(Data(text.utf8), to: output)
    } else {
        FileHandle.standardOutput.write(Data(text.utf8))
    }
}
