import ArgumentParser
import Foundation
import HoneKit

struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Prepare training data: HH-RLHF pairs, CUT judgments, matched-budget subsets, prompt diversity.",
        discussion: """
        Inputs may be JSON Lines or a JSON array, gzip-compressed or not. Summaries go to stderr; only \
        `diversity` prints its table to stdout (the table is its result).

        Example:
          hone data hh-rlhf --input helpful-base/test.jsonl.gz --output-dir helpful
        """,
        subcommands: [HHRLHFCommand.self, JudgmentsCommand.self, SampleCommand.self, DiversityCommand.self,
                      MixCommand.self, RerankCommand.self])
}

private func writeSummary(_ text: String) {
    FileHandle.standardError.write(Data(text.utf8))
}

// MARK: - hh-rlhf

struct HHRLHFCommand: ParsableCommand {
    enum Format: String, ExpressibleByArgument, CaseIterable { case dpo, pro, both }

    static let configuration = CommandConfiguration(
        commandName: "hh-rlhf",
        abstract: "Anthropic HH-RLHF {chosen, rejected} dialogues → DPO pairs and PRO ranking-2 records.",
        discussion: """
        Prompt: the longest common prefix of chosen and rejected, backed off to the end of the last \
        "\\n\\nAssistant:" inside it (the marker belongs to the prompt). Each completion is the rest of its \
        dialogue and so starts with the space after the colon, which is where TRL's extract_prompt puts that \
        space. A plain cut at the last "\\n\\nAssistant:" would be wrong for the replies that go on with \
        invented Human/Assistant turns.

        dpo.jsonl: TRL's preference format, {"prompt", "chosen", "rejected"} per line.

        pro.jsonl: PRO's ranking format, {"prefix": [turns, turns], "suffix": [chosen, rejected], \
        "reward": [1.0, 0.0], "meta": {"path", "line_num", "task"}, "sft_index": 0}, with turns = \
        ["<|prompter|>q1", "<|assistant|>a1", ..., "<|assistant|>"] (turn texts and responses stripped). \
        Rewards: no reward model has scored the pair, so the human preference is used (chosen 1.0, \
        rejected 0.0). PRO's own no-reward-model path writes 1.0 for both, which makes its loss constant.

        Records are never dropped silently: the summary (stderr) counts each reason with line numbers. \
        Pairs with identical dialogues or a blank reply are kept and counted.

        Example:
          hone data hh-rlhf --input harmless-base/test.jsonl.gz --output-dir harmless
        """)

    @Option(name: .long, help: "HH-RLHF JSONL, gzip or not.")
    var input: String

    @Option(name: .customLong("output-dir"), help: "Directory for dpo.jsonl and/or pro.jsonl (created if missing).")
    var outputDirectory: String

    @Option(name: .long, help: "dpo, pro or both.")
    var format: Format = .both

    @OptionGroup var runtime: RuntimeOptions

    func run() throws {
        try runtime.apply()
        try reportingErrors {
            let conversion = try HHRLHFConversion.convert(try readDataRecords(path: input))
            guard !conversion.pairs.isEmpty else {
                throw HoneError.malformedFile(path: input, message: "no record gives a preference pair")
            }
            try createOutputDirectory(outputDirectory)
            var written: [String] = []
            if format != .pro {
                let path = (outputDirectory as NSString).appendingPathComponent("dpo.jsonl")
                try writeFileAtomically(Data(conversion.dpoJSONL().utf8), to: path)
                written.append(path)
            }
            if format != .dpo {
                let path = (outputDirectory as NSString).appendingPathComponent("pro.jsonl")
                try writeFileAtomically(Data(conversion.proJSONL(sourcePath: input).utf8), to: path)
                written.append(path)
            }
            writeSummary(conversion.summary(input: input, outputs: written))
        }
    }
}

// MARK: - judgments

struct JudgmentsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "judgments",
        abstract: "Judgment data (Shepherd, CUT) → CUT's training JSON.",
        discussion: """
        Output: a JSON array of {"id"?, "instruction", "input", "output", "judgment", "score"?} (CUT's \
        data/iter layout; "id" passed through when the source has one). A null judgment marks an acceptable \
        reply.

        --schema shepherd: human_data_for_model.jsonl {id, question, answer, feedback}; instruction = \
        question, output = answer, judgment = feedback, score = 1, input "" (as CUT's convert2alpaca.py).

        --schema cut: CUT's own records {instruction, input, output, judgment, score?}, checked and kept.

        The summary (stderr) labels records as CUT's trainer would: no judgment (or score >= 7) → one Align-P \
        row; a judgment → an Align-N row (prompt with the judgment) and a Misalign row (without it). Records \
        with an empty output are dropped and counted.

        Example:
          hone data judgments --schema shepherd --input human_data_for_model.jsonl.gz \\
            --output shepherd.json
        """)

    @Option(name: .long, help: "Input JSON or JSONL, gzip or not.")
    var input: String

    @Option(name: .long, help: "shepherd or cut.")
    var schema: String

    @Option(name: .long, help: "The CUT training JSON to write.")
    var output: String

    @OptionGroup var runtime: RuntimeOptions

    func run() throws {
        try runtime.apply()
        try reportingErrors {
            guard let schema = JudgmentSchema(rawValue: schema) else {
                throw HoneError.invalidArgument("unknown schema '\(self.schema)' (known: "
                    + JudgmentSchema.allCases.map(\.rawValue).joined(separator: ", ") + ")")
            }
            let conversion = try JudgmentConversion.convert(try readDataRecords(path: input), schema: schema)
            guard !conversion.records.isEmpty else { throw HoneError.malformedFile(path: input, message: "no usable record") }
            try writeFileAtomically(Data(conversion.trainingJSON().utf8), to: output)
            writeSummary(conversion.summary(input: input, schema: schema, output: output))
        }
    }
}

// MARK: - sample

struct SampleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sample",
        abstract: "A matched-budget subset: N prompts × K responses, as ScalingAlignment's split.py and sample.py.",
        discussion: """
        Input: PRO ranking JSONL ({prefix, suffix, reward, ...}) or DPO pairs (then K = 2). Records with more \
        than K responses keep a random.sample of them (one pass per step down, 4→3→2, like split.py), \
        re-sorted by reward. Then the records are shuffled (random.shuffle) and the first N written, in that \
        order. Both use CPython's Mersenne Twister with --seed, so with seed 42 the subsets equal \
        ScalingAlignment's on the same file, and the prompt set is the same for every K. \
        Matched budget: N × K held equal, e.g. 24000 × 2 = 16000 × 3 = 12000 × 4.

        Example:
          hone data sample --input pro.jsonl --output pro_1500x2.jsonl --prompts 1500 --responses 2
        """)

    @Option(name: .long, help: "PRO ranking or DPO JSONL, gzip or not.")
    var input: String

    @Option(name: .long, help: "The JSONL subset to write.")
    var output: String

    @Option(name: .long, help: "Number of prompts N.")
    var prompts: Int

    @Option(name: .long, help: "Responses per prompt K (at least 2).")
    var responses: Int

    @Option(name: .long, help: "Seed of both draws (ScalingAlignment's is 42).")
    var seed: UInt64 = 42

    @Option(name: .long, help: "Also report the subset's prompt diversity with this model's tokenizer.")
    var model: String?

    @OptionGroup var runtime: RuntimeOptions

    func run() throws {
        try runtime.apply()
        try reportingErrors {
            let tokenizer = try model.map { try TokenizerLoader.load(tokenizerPath: $0) }
            let subset = try SubsetSample.make(try readDataRecords(path: input), prompts: prompts, responses: responses, seed: seed)
            try writeFileAtomically(Data(subset.jsonl().utf8), to: output)
            var diversity: BigramStatistics?
            if let tokenizer {
                var counter = BigramCounter()
                for record in subset.records {
                    counter.add(PromptDiversity.tokenIDs(try PromptDiversity.promptText(of: record), tokenizer: tokenizer,
                                                         maxLength: PromptDiversity.defaultMaxLength))
                }
                diversity = counter.statistics
            }
            writeSummary(subset.summary(input: input, output: output, seed: seed, diversity: diversity))
        }
    }
}

// MARK: - diversity

struct DiversityCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diversity",
        abstract: "Prompt diversity D = sqrt(N) · U / T over token bigrams (ScalingAlignment).",
        discussion: """
        N = prompts, T = token bigrams in all, U = distinct bigrams. Each prompt is tokenized with BOS (as the \
        tokenizer's config says; the BOS-first-token bigram counts) and cut to --max-length ids (512, as the \
        reference). Prompt text: for PRO records "".join(prefix[0]) with <|prompter|> → "\\n\\nHuman: " and \
        <|assistant|> → "\\n\\nAssistant: ", right-stripped; for DPO records the prompt, right-stripped; for \
        HH-RLHF records the shared prompt of `hone data hh-rlhf`, right-stripped. One row per file and a \
        "Global" row pooled over all files (a bigram seen in two files counts once).

        Example:
          hone data diversity --model models/hone-tiny harmless/pro.jsonl helpful/pro.jsonl
        """)

    @Option(name: .long, parsing: .singleValue, help: "Input file (repeatable): PRO, DPO or HH-RLHF records.")
    var input: [String] = []

    @Argument(help: "More input files.")
    var files: [String] = []

    @Option(name: .long, help: "An HF model directory or GGUF whose tokenizer to use.")
    var model: String?

    @Option(name: .long, help: "A tokenizer.json, tokenizer.model or GGUF file (instead of --model).")
    var tokenizer: String?

    @Option(name: .customLong("max-length"), help: "Ids kept per prompt (0: no limit).")
    var maxLength = PromptDiversity.defaultMaxLength

    @OptionGroup var runtime: RuntimeOptions

    func validate() throws {
        guard (model == nil) != (tokenizer == nil) else { throw ValidationError("give exactly one of --model and --tokenizer") }
        guard !(input + files).isEmpty else { throw ValidationError("give at least one input file") }
        guard maxLength >= 0 else { throw ValidationError("--max-length must be 0 or more") }
    }

    func run() throws {
        try runtime.apply()
        try reportingErrors {
            let loaded = try TokenizerLoader.load(tokenizerPath: (model ?? tokenizer)!)
            let result = try PromptDiversity.measure(paths: input + files, tokenizer: loaded, maxLength: maxLength == 0 ? nil : maxLength)
            print(PromptDiversity.table(files: result.files, global: result.global), terminator: "")
        }
    }
}
