import ArgumentParser
import Foundation
import HoneKit

struct PerplexityCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "perplexity",
        abstract: "Perplexity of a text file, by llama.cpp's method.",
        discussion: """
        The file is tokenized once (with BOS), cut into non-overlapping chunks of --ctx tokens (the first token of \
        each chunk replaced by BOS), and the second half of each chunk is scored. Prints the running perplexity \
        per chunk and the final estimate with llama.cpp's uncertainty, so figures compare with llama-perplexity \
        on the same file.

        Example:
          hone perplexity --model tinyllama-q8_0.gguf --file wiki.test.raw --ctx 512
        """)

    @Option(name: [.customShort("m"), .long], help: "An HF model directory or a GGUF file.")
    var model: String

    @Option(name: [.customShort("f"), .long], help: "A UTF-8 text file.")
    var file: String

    @Option(name: [.customShort("c"), .long], help: "Tokens per chunk.")
    var ctx = 512

    @Option(name: [.customLong("chunks")], help: "Score at most this many chunks.")
    var chunks: Int?

    @OptionGroup var runtime: RuntimeOptions

    func validate() throws {
        // The second half of each chunk is scored, and llama.cpp's method needs 4 tokens a chunk (0 divided by zero
        // below 2; 2 and 3 were refused only after the whole file was tokenized).
        guard ctx >= 4 else { throw ValidationError("--ctx must be at least 4, not \(ctx)") }
        if let chunks, chunks < 1 { throw ValidationError("--chunks must be at least 1, not \(chunks)") }
    }

    func run() throws {
        try runtime.apply()
        try reportingErrors {
            let loaded = try LoadedModel.open(model)
            let tokenizer = try loaded.tokenizer()
            let data = try readInputFile(path: file)
            guard let text = String(validating: data, as: UTF8.self) else {
                throw HoneError.malformedFile(path: file, message: "not valid UTF-8 text")
            }
            let tokens = tokenizer.encode(text, addSpecialTokens: true, parseSpecial: false)
            let bos = tokenizer.addsBOS ? tokenizer.bosTokenID : nil
            // As llama.cpp warns when n_ctx exceeds n_ctx_train: positions past the training length are extrapolation.
            if ctx > loaded.config.maxPositionEmbeddings {
                FileHandle.standardError.write(Data("warning: --ctx \(ctx) is past the model's context of \(loaded.config.maxPositionEmbeddings) tokens\n".utf8))
            }
            FileHandle.standardError.write(Data("\(file): \(tokens.count) tokens, \(tokens.count / ctx) chunks of \(ctx)\n".utf8))
            let result = try Perplexity.evaluate(model: loaded.model, tokens: tokens, contextLength: ctx, bos: bos,
                                                 maxChunks: chunks) { done, total in
                FileHandle.standardError.write(Data("\rchunk \(done)/\(total)".utf8))
            }
            FileHandle.standardError.write(Data("\n".utf8))
            print(result.running.enumerated().map { String(format: "[%d]%.4f", $0.offset + 1, $0.element) }.joined(separator: ","))
            print(String(format: "Final estimate: PPL = %.4f +/- %.5f (%d chunks, %d tokens scored)",
                         result.perplexity, result.uncertainty, result.chunks, result.scoredTokens))
        }
    }
}
