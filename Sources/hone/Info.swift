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
          hone info -m tinyllama-f16.gguf
        """)

    @Argument(help: "An HF model directory or a GGUF file.")
    var path: String?

    // Every other command names its model with -m/--model; users type it here too.
    @Option(name: [.customShort("m"), .long], help: "The model, as a flag (instead of the argument).")
    var model: String?

    func validate() throws {
        guard (path == nil) != (model == nil) else {
            throw ValidationError("give the model once: as the argument or as --model")
        }
    }

    @OptionGroup var runtime: RuntimeOptions

    func run() throws {
        try runtime.apply()
        try reportingErrors {
            let loaded = try LoadedModel.open(model ?? path!)
            print(ModelSummary(loaded).lines.joined(separator: "\n"))
        }
    }
}
