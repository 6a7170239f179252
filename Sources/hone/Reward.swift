import ArgumentParser
import Foundation
import HoneKit

struct Reward: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Score texts or preference pairs with a reward (sequence-classification) model.",
        discussion: """
        The model is an HF directory saved as a sequence-classification model (score.weight, one label), or any \
        base with a reward adapter from `hone train rm` (--adapter). Each input record is {"prompt", "response"}, \
        {"text"}, {"tokens": [ids]} or a pair {"prompt" (optional), "chosen", "rejected"}. Texts are tokenized as \
        reward-model training does (BOS as the tokenizer says, EOS appended; --add-eos false to leave it out). A \
        reward is the score at the text's last token that is not the padding token. Output: one JSON line per \
        record, {"reward": r} or {"chosen_reward", "rejected_reward", "margin"}; a summary (mean reward, pair \
        accuracy) on stderr.

        Example:
          hone reward --model models/hone-tiny --adapter out-rm --input pairs.jsonl --output rewards.jsonl
        """)

    @Option(name: .long, help: "An HF model directory (a sequence-classification model, or the base of --adapter).")
    var model: String

    @Option(name: .long, help: "A reward adapter (PEFT, modules_to_save score) from `hone train rm`.")
    var adapter: String?

    @Option(name: .long, help: "JSON or JSONL records to score.")
    var input: String

    @Option(name: .long, help: "Where to write the JSONL rewards (default: stdout).")
    var output: String?

    @Option(name: [.customLong("add-eos"), .customLong("add_eos")], help: "Append the EOS token to each text (true/false).")
    var addEos = FlexibleBool(argument: "true")!

    @Option(name: [.customLong("batch-tokens"), .customLong("batch_tokens")], help: "Tokens per forward pass.")
    var batchTokens = 4096

    func validate() throws {
        guard batchTokens >= 1 else { throw ValidationError("--batch-tokens must be at least 1, not \(batchTokens)") }
    }

    @OptionGroup var runtime: RuntimeOptions

    func run() throws {
        try runtime.apply(distributed: true)
        try reportingErrors {
            let loaded = try LoadedModel.open(model)
            let record = try adapter.map { try loaded.attachAdapter(directory: $0) }
            let scorer = try RewardScorer(loaded: loaded, adapterRecord: record, tokenBudget: batchTokens)
            // Under mpirun the ranks share the forward passes; rank 0 writes every reward, in input order.
            let group = try ProcessGroup.world()
            scorer.processGroup = group
            var progress: ProgressReporter?
            let result = try RewardFile.score(path: input, scorer: scorer, tokenizer: { try loaded.tokenizer() },
                                              addEOS: addEos.value) { done, total in
                guard group.isRoot else { return }
                if progress == nil { progress = ProgressReporter(total: total, label: "reward") }
                progress?.update(done: done)
            }
            guard group.isRoot else { return }
            try emit(result.jsonLines, to: output)
            FileHandle.standardError.write(Data((result.summary + "\n").utf8))
        }
    }
}
