import ArgumentParser
import Foundation
import HoneKit

/// `hone eval hh`: PRO's eval_hh pipeline (a subcommand of `hone eval`).
struct EvalHH: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hh",
        abstract: "PRO's HH-RLHF evaluation: greedy answers scored by a reward model (sigmoid) and BLEU against the chosen reply.",
        discussion: """
        For each test file (raw HH-RLHF {chosen, rejected} dialogues, gzip or not, or PRO test records {prefix, \
        suffix}): the prompt is the dialogue before the last reply ("\\n\\nHuman: …\\n\\nAssistant:"), left-truncated \
        to 384 tokens as PRO's pipeline does; the answer is greedy, at most 128 new tokens, cut at the first \
        Human:/human:/Assistant:/assistant:. Each answer gets sigmoid(reward) from --reward-model (the turns with \
        the answer, each followed by its EOS, left-truncated to 1024 tokens) and character-level BLEU against the \
        chosen reply, exactly as NLTK's sentence_bleu on strings. Printed: a table per file and pooled ("global", \
        ×100); --output gets the same as JSON with every sample. Answers are journalled beside the output, so an \
        interrupted run resumes.

        Example:
          hone eval hh --model models/hone-tiny --reward-model rm-dir \\
            --data ../shared/data/hh_rlhf/harmless-base/test.jsonl.gz --data ../shared/data/hh_rlhf/helpful-base/test.jsonl.gz \\
            --limit 50 --output hh.json
        """)

    @Option(name: .long, help: "The policy: an HF model directory or a GGUF file.")
    var model: String

    @Option(name: .long, help: "A PEFT LoRA adapter for the policy.")
    var adapter: String?

    @Option(name: [.customLong("reward-model"), .customLong("reward_model")], help: "The reward model: an HF sequence-classification directory, or the base of --reward-adapter.")
    var rewardModel: String

    @Option(name: [.customLong("reward-adapter"), .customLong("reward_adapter")], help: "A reward adapter from `hone train rm`.")
    var rewardAdapter: String?

    @Option(name: .long, help: "A test file (repeat for several).")
    var data: [String] = []

    @Option(name: .long, help: "Evaluate the first N items of each file.")
    var limit: Int?

    @Option(name: .long, help: "Write the per-file and global means and every sample as JSON here.")
    var output: String?

    @Option(name: [.customLong("max-new-tokens"), .customLong("max_new_tokens")], help: "New tokens per answer at most (PRO: 128).")
    var maxNewTokens: Int?

    @Option(name: [.customLong("batch-size"), .customLong("batch_size")], help: "Answers decoded together.")
    var batchSize = 8

    @OptionGroup var runtime: RuntimeOptions

    func run() throws {
        try runtime.apply()
        try reportingErrors {
            guard !data.isEmpty else { throw HoneError.invalidArgument("give at least one --data test file") }
            guard batchSize >= 1 else { throw HoneError.invalidArgument("--batch-size must be at least 1") }
            if let maxNewTokens, maxNewTokens < 1 { throw HoneError.invalidArgument("--max-new-tokens must be at least 1") }
            let files = try data.map { try HHTestFile.read(path: $0, limit: limit) }
            let policy = try LoadedModel.open(model)
            if let adapter { try policy.attachAdapter(directory: adapter) }
            let reward = try LoadedModel.open(rewardModel)
            let record = try rewardAdapter.map { try reward.attachAdapter(directory: $0) }
            let scorer = try RewardScorer(loaded: reward, adapterRecord: record)
            var settings = HHEvaluation.Settings()
            if let maxNewTokens { settings.maxNewTokens = maxNewTokens }
            settings.batchSize = batchSize
            var journal: GenerationJournal?
            if let output {
                let identity = ([model, adapter ?? "-"] + data).map { URL(fileURLWithPath: $0).standardized.path }.joined(separator: "|")
                journal = try GenerationJournal(path: output + ".journal",
                                                fingerprint: "\(identity)|\(limit ?? -1)|\(settings.maxNewTokens)|\(settings.maxPromptTokens)")
                if let count = journal?.answers.count, count > 0 {
                    FileHandle.standardError.write(Data("resuming: \(count) answers are in \(output).journal\n".utf8))
                }
            }
            var progress: ProgressReporter?
            let report = try HHEvaluation.run(files: files, policy: policy, rewardScorer: scorer,
                                              rewardTokenizer: try reward.tokenizer(), settings: settings,
                                              journal: journal) { done, total in
                if progress == nil { progress = ProgressReporter(total: total, label: "eval hh") }
                progress?.update(done: done)
            }
            if let output { try writeFileAtomically(Data(report.json.utf8), to: output) }
            journal?.remove()
            print(report.table, terminator: "")
        }
    }
}
