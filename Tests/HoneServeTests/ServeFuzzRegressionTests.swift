import Foundation
import HoneKit
@testable import HoneServe
import Testing

/// Replays the server's fuzz seeds (tools/fuzz/seeds/serve-request/) and every input the fuzzer found
/// (Tests/HoneKitTests/Fixtures/fuzz-regressions/serve-request/) through the harness's entry point: each body is
/// answered or refused with a 4xx; anything else (a 5xx, another error, a trap) fails.
struct ServeFuzzRegressionTests {
    @Test func everyKeptRequestBodyIsAnsweredOrRefused() throws {
        let target = try #require(ServeFuzzTargets.all.first { $0.name == "serve-request" })
        let inputs = ["tools/fuzz/seeds/serve-request", "Tests/HoneKitTests/Fixtures/fuzz-regressions/serve-request"].flatMap { folder in
            let directory = Paths.root.appendingPathComponent(folder)
            return ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []).sorted()
                .map { directory.appendingPathComponent($0) }
        }
        #expect(inputs.count >= 10)
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("hone-serve-fuzz-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let context = try FuzzContext(scratch: scratch.path, repositoryRoot: Paths.root.path)
        for input in inputs {
            do {
                try target.run(try Data(contentsOf: input), in: context)
            } catch is HoneError {
            } catch {
                Issue.record("\(input.lastPathComponent): \(type(of: error)): \(error)")
            }
        }
    }
}
