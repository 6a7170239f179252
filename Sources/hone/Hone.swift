import ArgumentParser
import Foundation
import HoneKit

@main
enum Entry {
    static func main() {
        Runtime.selectBLASKernels()
        Runtime.keepFreedMemory()
        // Messages from the library name the options a user set; on the command line those are flags.
        OptionName.spelling = .flag
        Hone.main()
    }
}

struct Hone: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hone",
        abstract: "Fine-tune, merge and serve Llama-family language models on a CPU.",
        version: HoneKit.version,
        subcommands: [Info.self, Tokenize.self, Score.self, Generate.self, Chat.self, Serve.self, PerplexityCommand.self, Bench.self,
                      Train.self, Merge.self, Quantize.self, Convert.self, DataCommand.self, Template.self,
                      EvalCommand.self, Reward.self])
}
