import ArgumentParser
import Foundation
import HoneKit

struct Score: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Per-token log-probabilities of token rows.",
        discussion: """
        Each input line is {"tokens": [ids]} or {"text": "..."} (tokenized with the model's tokenizer, BOS/EOS as \
        its config says). Each output line is \
        {"tokens": [...], "logprobs": [null, lp_1, ..., lp_n-1], "sum": s, "mean": m} \
        where lp_i = log p(token_i | tokens before i). Rows are scored in batches.

        Example:
          hone score --model models/hone-tiny --input rows.jsonl --output scores.jsonl
        """)

    @Option(name: .long, help: "An HF model directory or a GGUF file.")
    var model: String

    @Option(name: .long, help: "JSONL input, one {\"tokens\": [...]} or {\"text\": ...} per line.")
    var input: String

    @Option(name: .long, help: "Where to write the JSONL results (default: stdout).")
    var output: String?

    @Option(name: [.customLong("batch-tokens"), .customLong("batch_tokens")], help: "Tokens per forward pass.")
    var batchTokens = 2048

    func validate() throws {
        guard batchTokens >= 1 else { throw ValidationError("--batch-tokens must be at least 1, not \(batchTokens)") }
    }

    @OptionGroup var adapterOptions: AdapterOptions
    @OptionGroup var runtime: RuntimeOptions

    func run() throws {
        try runtime.apply(distributed: true)
        try reportingErrors {
            let (loaded, _) = try adapterOptions.open(model: model)
            let records = try readJSONLines(path: input)
            guard !records.isEmpty else { throw HoneError.malformedFile(path: input, message: "no rows (the file is empty)") }
            let rows = try tokenRows(from: records, path: input, vocabularySize: loaded.config.vocabularySize,
                                     tokenizer: { try loaded.tokenizer() })
            let context = loaded.config.maxPositionEmbeddings
            let long = rows.filter { $0.count > context }.count
            if long > 0, ProcessGroup.current.isRoot {
                FileHandle.standardError.write(Data("warning: \(long) rows are longer than the model's context of \(context) tokens (scored in full)\n".utf8))
            }
            let scorer = Scorer(model: loaded.model, tokenBudget: batchTokens)
            // Under mpirun each rank scores its share of the forward passes; rank 0 writes every row, in input order.
            let group = try ProcessGroup.world()
            let passes = scorer.passes(for: rows)
            let all = try group.merge(try scorer.score(rows, passes: passes.indices.filter(group.owns).map { passes[$0] }))
            guard group.isRoot else { return }
            let logprobs = rows.indices.map { all[$0]! }
            // A NaN log-probability is not a score (a poisoned weight, an overflowing model): stop before writing,
            // naming the line and the token.
            for (index, values) in logprobs.enumerated() {
                if let position = values.firstIndex(where: { !$0.isFinite }) {
                    throw HoneError.nonFinite(message: "score stopped: \(input):\(records[index].line): token at index \(position + 1): "
                        + "the log-probability is \(values[position]); the model produces non-finite numbers")
                }
            }
            var text = ""
            for (row, values) in zip(rows, logprobs) { text += Scorer.jsonLine(tokens: row, logprobs: values) + "\n" }
            try emit(text, to: output)
        }
    }
}
