import ArgumentParser
import Foundation
import HoneKit

// MARK: - mix

struct MixCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mix",
        abstract: "A seeded mixture of several data files with stated shares (Llama 2's reward-model recipes).",
        discussion: """
        Each --source is FILE[,FILE…][:SHARE]: the files pooled (drawn from uniformly as one), and SHARE one of \
        all (default), a count (500), a percentage of the source (10%), or a multiple of what the first source \
        contributes (x1 = an equal part). Draws are without replacement; the mixture is shuffled; records pass \
        through unchanged (--tag-source adds "source"). The same sources, shares and --seed give the same file. \
        A table of what each source gave goes to stderr.

        Examples (Llama 2's recipes):
          all helpfulness data + an equal part sampled uniformly from the others:
            hone data mix --source helpful.jsonl:all --source safety.jsonl,other.jsonl:x1 --output mix.jsonl
          safety data + 10% of the helpfulness data:
            hone data mix --source safety.jsonl:all --source helpful.jsonl:10% --output safety-mix.jsonl
        """)

    @Option(name: .long, help: "FILE[,FILE…][:all|N|P%|xF] (repeat for several).")
    var source: [String] = []

    @Option(name: .long, help: "Where to write the mixture (JSONL).")
    var output: String

    @Option(name: .long, help: "Seed for the draws and the shuffle.")
    var seed: UInt64 = 42

    @Flag(name: .customLong("tag-source"), help: "Add a \"source\" field naming each record's source.")
    var tagSource = false

    func run() throws {
        try reportingErrors {
            let sources = try source.map { try MixtureSource(parsing: $0) }
            let mixture = try Mixture.make(sources, seed: seed, tagSource: tagSource)
            try writeFileAtomically(Data(mixture.jsonl.utf8), to: output)
            FileHandle.standardError.write(Data(mixture.summary(output: output, seed: seed).utf8))
        }
    }
}

// MARK: - rerank

struct RerankCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rerank",
        abstract: "Order ranking records' responses by a reward model → PRO's {prefix, suffix, reward} records.",
        discussion: """
        Input: PRO records {prefix, suffix, …} or raw HH-RLHF {chosen, rejected} dialogues. Each response's reward \
        is the reward model's raw logit on the turns with the response appended, each turn followed by the model's \
        EOS (as PRO's scoring does; left-truncated to 1024 tokens). Output: JSONL {prefix (one list per response), \
        suffix, reward, meta, sft_index: 0} with responses best first and rewards descending, as `hone train pro` \
        reads them.

        Example:
          hone data rerank --input helpful-base/test.jsonl.gz --reward-model rm-dir --output pro_reranked.jsonl
        """)

    @Option(name: .long, help: "PRO ranking records or HH-RLHF dialogues (JSON / JSONL, gzip or not).")
    var input: String

    @Option(name: [.customLong("reward-model"), .customLong("reward_model")], help: "An HF sequence-classification directory, or the base of --reward-adapter.")
    var rewardModel: String

    @Option(name: [.customLong("reward-adapter"), .customLong("reward_adapter")], help: "A reward adapter from `hone train rm`.")
    var rewardAdapter: String?

    @Option(name: .long, help: "Where to write the re-ranked records (JSONL).")
    var output: String

    @OptionGroup var runtime: RuntimeOptions

    func run() throws {
        try runtime.apply()
        try reportingErrors {
            let model = try LoadedModel.open(rewardModel)
            let record = try rewardAdapter.map { try model.attachAdapter(directory: $0) }
            let scorer = try RewardScorer(loaded: model, adapterRecord: record)
            var progress: ProgressReporter?
            let result = try Rerank.run(path: input, scorer: scorer, tokenizer: try model.tokenizer()) { done, total in
                if progress == nil { progress = ProgressReporter(total: total, label: "rerank") }
                progress?.update(done: done)
            }
            // An empty output is no result (DPO pairs given instead of rankings were all skipped, exit 0).
            guard !result.lines.isEmpty else {
                throw HoneError.malformedFile(path: input, message: "no record to rerank: \(result.skipped.count) without a shared prompt "
                                              + "(\(result.skipped.prefix(5).joined(separator: ", ")))")
            }
            try writeFileAtomically(Data(result.lines.map { $0 + "\n" }.joined().utf8), to: output)
            var summary = "rerank: \(result.records) records, \(result.responses) responses scored, \(result.reordered) reordered → \(output)\n"
            if !result.skipped.isEmpty { summary += "skipped \(result.skipped.count) without a shared prompt (\(result.skipped.prefix(5).joined(separator: ", ")))\n" }
            FileHandle.standardError.write(Data(summary.utf8))
        }
    }
}
