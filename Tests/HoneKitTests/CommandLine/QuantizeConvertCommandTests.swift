import Foundation
import Testing
@testable import HoneKit

// The tests of these suites that run the built `hone` binary.

extension QuantizeConvertTests {
    @Test func commandLineWritesAndSummarises() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let out = directory.appendingPathComponent("q.gguf").path
        let result = try runProcess(Repository.honeExecutable, ["quantize", Repository.fixture("models/llama-gqa"), out, "--type", "q4_k", "--threads", "1"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("Q5_0") && result.stderr.contains("writing"))
        #expect(try GGUFFile(path: out).integer("general.file_type") == 15)
        let hf = directory.appendingPathComponent("hf").path
        let back = try runProcess(Repository.honeExecutable, ["convert", out, hf, "--threads", "1"])
        #expect(back.status == 0, "\(back.stderr)")
        #expect(back.stderr.contains("dequantized to F16"))
        #expect(FileManager.default.fileExists(atPath: hf + "/model.safetensors"))
    }
}
