import Foundation
import HoneKit
import HoneServe

// MARK: - The libFuzzer harness
//
// One executable for every target: HONE_FUZZ_TARGET names the entry of `FuzzTargets.all` it feeds, so the
// sanitized HoneKit is compiled and linked once (a link takes minutes on a small machine) rather than once per
// target. tools/fuzz/run sets the variable, the scratch directory and libFuzzer's limits.

nonisolated(unsafe) private var target: FuzzTarget!
nonisolated(unsafe) private var context: FuzzContext!

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<CInt>,
                       _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    let environment = ProcessInfo.processInfo.environment
    // HoneKit's parsers and the server's request bodies (HoneServe).
    let targets = FuzzTargets.all + ServeFuzzTargets.all
    let names = targets.map(\.name).joined(separator: ", ")
    guard let name = environment["HONE_FUZZ_TARGET"], let chosen = targets.first(where: { $0.name == name }) else {
        FileHandle.standardError.write(Data("HONE_FUZZ_TARGET must name one of: \(names)\n".utf8))
        exit(2)
    }
    target = chosen
    // A directory of its own per process: parsers read their input from a file.
    let base = environment["HONE_FUZZ_SCRATCH"] ?? "/dev/shm/hone-fuzz"
    let root = environment["HONE_FUZZ_ROOT"] ?? FileManager.default.currentDirectoryPath
    do {
        context = try FuzzContext(scratch: "\(base)/\(name)-\(getpid())", repositoryRoot: root)
    } catch {
        FileHandle.standardError.write(Data("\(error)\n".utf8))
        exit(2)
    }
    return 0
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ bytes: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    do {
        try target.run(Data(bytes: bytes, count: size), in: context)
    } catch is HoneError {
        // Refused with one line: what bad input should get.
    } catch {
        // Any other error reaches the user as a Foundation/Swift message without file or record: a finding.
        fatalError("\(target.name): error that is not a HoneError: \(type(of: error)): \(error)")
    }
    return 0
}
