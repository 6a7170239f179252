import ArgumentParser
import Foundation
import HoneKit

struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Describe a model: architecture, parameter count, dtypes, sizes, tokenizer.",
        discussion: """
        Example:
          hone info models/hone-tiny
          hone info tinyllama-f16.gguf
        """)

    @Argument(help: "An HF model directory or a GGUF file.")
    var model: String

    @OptionGroup var runtime: RuntimeOptions

    func run() throws {
        try runtime.apply()
        try reportingErrors {
            let loaded = try LoadedModel.open(model)
            print(ModelSummary(loaded).lines.joined(separator: "\n"))
        }
    }
}
