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
        discussion: """
        Environment: HONE_ISA=avx2 or scalar runs Hone's kernels at most at that instruction-set level (`hone bench` \
        prints the level it ran at); HONE_BLAS_CORETYPE=NAME picks OpenBLAS's kernels.

        Example:
          hone chat --model models/SmolLM2-135M-Instruct.Q4_1.gguf
        """,
        version: HoneKit.version,
        subcommands: [Info.self, Tokenize.self, Score.self, Generate.self, Chat.self, Serve.self, PerplexityCommand.self, Bench.self,
                      Train.self, Merge.self, Quantize.self, Convert.self, DataCommand.self, Template.self,
                      EvalCommand.self, Reward.self])
}
