import Foundation
import Testing
@testable import HoneKit

// The tests of these suites that run the built `hone` binary.

extension BadInputTests {
    /// The command line turns each error into one line on stderr and a non-zero exit.
    @Test func commandLineReportsOneLine() throws {
        let directory = try copyFixtureModel("llama-gqa")
        try editConfig(directory) { $0["model_type"] = "falcon" }
        let input = directory.appendingPathComponent("rows.jsonl").path
        try Data("{\"tokens\": [1, 2, 3]}\n".utf8).write(to: URL(fileURLWithPath: input))
        for arguments in [["score", "--model", directory.path, "--input", input],
                          ["info", directory.appendingPathComponent("nonexistent").path],
                          ["score", "--model", Repository.fixture("models/llama-gqa"), "--input", directory.path]] {
            let result = try runProcess(Repository.honeExecutable, arguments)
            #expect(result.status != 0)
            #expect(result.stdout.isEmpty)
            let lines = result.stderr.split(separator: "\n")
            #expect(lines.count == 1, "\(result.stderr)")
            #expect(result.stderr.hasPrefix("hone: error: "))
        }
    }
}
