import Foundation
import Testing
@testable import HoneKit

/// Paths of the repository, found from this file's location (fixtures are read in place, not copied).
enum Repository {
    static let root: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let fixtures = root.appendingPathComponent("Tests/HoneKitTests/Fixtures")
    static let shared = root.deletingLastPathComponent().appendingPathComponent("shared")

    static func fixture(_ relative: String) -> String { fixtures.appendingPathComponent(relative).path }

    /// The `hone` executable built beside the test bundle.
    static var honeExecutable: String {
        let runner = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for candidate in [runner, runner.deletingLastPathComponent(), root.appendingPathComponent(".build/debug")] {
            let path = candidate.appendingPathComponent("hone").path
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return root.appendingPathComponent(".build/debug/hone").path
    }
}

/// A golden file written by tools/oracle/make_fixtures.py.
struct GoldenFile {
    struct Row {
        let tokens: [Int32]
        let logprobs: [Double]
        let originalLogprobs: [Double]?
    }

    let modelPath: String
    let dtype: String
    let rows: [Row]
    let incremental: (tokens: [Int32], prefill: Int, logprobs: [Double])?
    let maxAbsDiffVersusF32: Double?

    init(name: String) throws {
        let path = Repository.fixture("logprobs/\(name).json")
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let json = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        let model = json["model"] as! String
        modelPath = model.hasPrefix("models/hone") ? Repository.root.appendingPathComponent(model).path
                                                   : Repository.fixture(model)
        dtype = json["dtype"] as? String ?? "float32"
        maxAbsDiffVersusF32 = (json["max_abs_diff_vs_f32"] as? NSNumber)?.doubleValue
        func values(_ list: Any?) -> [Double] {
            ((list as? [Any]) ?? []).dropFirst().map { ($0 as! NSNumber).doubleValue }
        }
        rows = (json["rows"] as! [[String: Any]]).map { row in
            Row(tokens: (row["tokens"] as! [NSNumber]).map { Int32($0.intValue) },
                logprobs: values(row["logprobs"]),
                originalLogprobs: row["logprobs_f32_original"] == nil ? nil : values(row["logprobs_f32_original"]))
        }
        if let incremental = json["incremental"] as? [String: Any] {
            let tokens = ((incremental["tokens"] as? [NSNumber]) ?? []).map { Int32($0.intValue) }
            let prefill = (incremental["prefill_length"] as? NSNumber)?.intValue ?? 10
            self.incremental = (tokens, prefill, values(incremental["logprobs"]))
        } else {
            incremental = nil
        }
    }
}

/// Largest absolute difference between two equally long sequences.
func maxAbsDifference(_ a: [Double], _ b: [Double]) -> Double {
    precondition(a.count == b.count, "lengths differ: \(a.count) vs \(b.count)")
    return zip(a, b).map { abs($0 - $1) }.max() ?? 0
}

/// Runs a command and returns its exit status, stdout and stderr.
func runProcess(_ executable: String, _ arguments: [String],
                environment: [String: String] = [:]) throws -> (status: Int32, stdout: String, stderr: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if !environment.isEmpty {
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, added in added }
    }
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    let errData = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self))
}

/// One directory per test process that holds every test's scratch files. It is removed when the process exits, so
/// a test that fails half-way (or a test that does not clean up after itself) leaves nothing behind in /tmp.
enum Scratch {
    static let root: URL = {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("hone-tests-\(getpid())")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        atexit { try? FileManager.default.removeItem(at: Scratch.root) }
        return url
    }()

    /// A fresh path under the root (not created): for outputs a command must create itself.
    static func path(_ prefix: String) -> URL {
        root.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
    }
}

/// A fresh temporary directory under `Scratch.root`.
func makeTemporaryDirectory() throws -> URL {
    let url = Scratch.path("hone-test")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

/// Copies `source` (a model or adapter directory) into a temporary directory and writes a NaN over value `index` of
/// the f32 tensor `tensor` in its `file`: the poisoned input of the "no NaN passes for a result" tests.
func poisonedCopy(of source: String, tensor: String, index: Int = 0, file: String = "model.safetensors") throws -> URL {
    let directory = try makeTemporaryDirectory().appendingPathComponent((source as NSString).lastPathComponent)
    try FileManager.default.copyItem(atPath: source, toPath: directory.path)
    let path = directory.appendingPathComponent(file).path
    let entries = try SafetensorsFile(path: path).entries().map { entry -> SafetensorsEntry in
        guard entry.name == tensor else { return entry }
        #expect(entry.dtype == "F32")
        var bytes = entry.bytes
        withUnsafeBytes(of: Float.nan.bitPattern.littleEndian) { bytes.replaceSubrange((index * 4)..<(index * 4 + 4), with: $0) }
        return SafetensorsEntry(name: entry.name, dtype: entry.dtype, shape: entry.shape, bytes: bytes)
    }
    try SafetensorsWriter.write(entries, to: path)
    return directory
}

/// Copies a fixture model directory into a temporary one that a test may damage.
func copyFixtureModel(_ name: String) throws -> URL {
    let directory = try makeTemporaryDirectory().appendingPathComponent(name)
    try FileManager.default.copyItem(at: Repository.fixtures.appendingPathComponent("models/\(name)"), to: directory)
    return directory
}
