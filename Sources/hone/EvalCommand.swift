import ArgumentParser
import Foundation
import HoneKit

/// `hone eval`: benchmark evaluations. Without a subcommand it runs the multiple-choice tasks.
struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Evaluate a model (and adapters) on benchmarks, as lm-evaluation-harness does.",
        discussion: """
        `hone eval --tasks ...` runs `hone eval tasks` (multiple-choice benchmarks); see `hone eval tasks --help`.

        Example:
          hone eval --model models/SmolLM2-135M-Instruct.Q4_1.gguf --tasks seed-table --data ../shared/data/mc_eval
        """,
        subcommands: [EvalTasks.self, EvalHH.self],
        defaultSubcommand: EvalTasks.self)
}

struct EvalTasks: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tasks",
        abstract: "Multiple-choice benchmarks (ARC, HellaSwag, PIQA, MMLU, TruthfulQA) with lm-eval's definitions.",
        discussion: """
        Prompts, few-shot examples, continuations and metrics follow lm-evaluation-harness (acc, acc_norm = \
        log-likelihood ÷ character length, TruthfulQA mc2, standard errors, MMLU groups weighted by size). Each \
        context runs once and its KV state is shared by all choices. Rows of the table: the base model and each \
        --adapter. Tasks: arc_easy, arc_challenge, hellaswag, piqa, mmlu, mmlu_stem, mmlu_humanities, \
        mmlu_social_sciences, mmlu_other, mmlu_<subject>, truthfulqa_mc1, truthfulqa_mc2; presets seed-table \
        (0-shot: arc_challenge acc_norm, piqa acc_norm, hellaswag acc_norm, mmlu acc, truthfulqa mc2) and \
        open-llm-v1 (ARC-c 25-shot, HellaSwag 10-shot, MMLU 5-shot, TruthfulQA mc2 0-shot).

        --data is a folder laid out as arc/ARC-{Easy,Challenge}-test.jsonl, piqa/valid.jsonl + valid-labels.lst, \
        hellaswag/hellaswag_val.jsonl (or llama.cpp's hellaswag_val_full.txt.gz), mmlu/{dev,test}/*.csv, \
        truthfulqa/mc_task.json; or holds the Hugging Face datasets' exports (`to_json`): arc/ARC-Easy/test.jsonl, \
        piqa/validation.jsonl, hellaswag/validation.jsonl, truthfulqa/validation.jsonl, and cais/mmlu as \
        mmlu/{test,dev}.jsonl (the "all" configuration) or mmlu/<subject>/{test,dev}.jsonl. With --output-dir, each \
        row writes ROW/results.json and ROW/samples_<task>.jsonl.

        Instruct models: --apply-chat-template (with --fewshot-as-multiturn, the default, or \
        --no-fewshot-as-multiturn) and --system-instruction build prompts as lm-eval's options of those names do.

        Example:
          hone eval --model models/SmolLM2-135M-Instruct.Q4_1.gguf --adapter sft=out/sft \\
            --tasks seed-table --data ../shared/data/mc_eval --limit 100 --output-dir eval-out
          hone eval --model models/SmolLM2-135M-Instruct.Q4_1.gguf --tasks mmlu --num-fewshot 5 \\
            --apply-chat-template --data ../shared/data/mc_eval
        """)

    @Option(name: .long, help: "An HF model directory or a GGUF file.")
    var model: String

    @Option(name: .long, help: "NAME=DIR (or DIR) of a PEFT LoRA adapter; one table row each. Repeatable.")
    var adapter: [String] = []

    @Option(name: .long, help: "Comma-separated tasks, groups or presets (seed-table, open-llm-v1).")
    var tasks: String

    @Option(name: .long, help: "Folder with the benchmark files (the layout of mc_eval/).")
    var data: String

    @Option(name: [.customLong("num-fewshot"), .customLong("num_fewshot")], help: "Few-shot examples per question (tasks outside presets; default 0).")
    var numFewshot: Int?

    @Option(name: .long, help: "Evaluate only the first N documents of each task, or (below 1, as lm-eval) that fraction of each, rounded up.")
    var limit: String?

    @Option(name: [.customLong("output-dir"), .customLong("output_dir"), .customLong("output-path"), .customLong("output_path")],
            help: "Folder for results.json and samples_<task>.jsonl per row.")
    var outputDir: String?

    @Option(name: [.customLong("batch-tokens"), .customLong("batch_tokens")], help: "Context tokens per forward pass.")
    var batchTokens = 2048

    @Flag(name: [.customLong("apply-chat-template"), .customLong("apply_chat_template")],
          help: "Render each prompt with the model's chat template, as lm-eval's --apply_chat_template (the choices follow the opened assistant turn with no delimiter).")
    var applyChatTemplate = false

    @Flag(name: [.customLong("fewshot-as-multiturn"), .customLong("fewshot_as_multiturn")], inversion: .prefixedNo,
          help: "With --apply-chat-template: few-shot examples as user/assistant turns (the default, as lm-eval's), or with --no-fewshot-as-multiturn all in one user message.")
    var fewshotAsMultiturn: Bool?

    @Option(name: .long, help: "lm-eval's --seed: one integer, or 3–4 comma-separated (Python, NumPy, torch, few-shot; None keeps a default); only the few-shot seed (default 1234) changes a multiple-choice evaluation.")
    var seed: String?

    @Option(name: [.customLong("system-instruction"), .customLong("system_instruction")],
            help: "A system instruction before the task description (lm-eval's --system_instruction).")
    var systemInstruction: String?

    func validate() throws {
        guard batchTokens >= 1 else { throw ValidationError("--batch-tokens must be at least 1, not \(batchTokens)") }
    }

    @OptionGroup var runtime: RuntimeOptions

    func run() throws {
        try runtime.apply(distributed: true)
        try reportingErrors {
            if let numFewshot, numFewshot < 0 { throw HoneError.invalidArgument("--num-fewshot must be at least 0") }
            let documentLimit = try limit.map { text in
                guard let parsed = DocumentLimit(text) else {
                    throw HoneError.invalidArgument("--limit must be a count of at least 1 or a fraction between 0 and 1, not \(text)")
                }
                return parsed
            }
            let selection = try MultipleChoiceEvaluation.select(tasks, numFewShot: numFewshot)
            let fewShotSeed = try seed.map(MultipleChoiceEvaluation.fewShotSeed(lmEvalSeed:)) ?? MultipleChoiceTask.defaultSeed
            let taskList = MultipleChoiceEvaluation.withFewShotSeed(
                fewShotSeed, try selection.leafTasks.map { try MultipleChoiceEvaluation.loadTask($0, directory: data) })
            for note in Set(taskList.compactMap(\.note)) { FileHandle.standardError.write(Data("note: \(note)\n".utf8)) }
            if fewshotAsMultiturn == true, !applyChatTemplate {
                throw HoneError.invalidArgument("--fewshot-as-multiturn needs --apply-chat-template")
            }
            let loaded = try LoadedModel.open(model)
            var format = MultipleChoiceTask.PromptFormat(systemInstruction: systemInstruction)
            if applyChatTemplate {
                guard let template = try loaded.chatTemplate() else {
                    throw HoneError.invalidArgument("--apply-chat-template: \(model) has no chat template")
                }
                format.chatTemplate = template
                format.fewShotAsMultiturn = fewshotAsMultiturn ?? true
            }
            let scorer = MultipleChoiceScorer(model: loaded.model, tokenizer: try loaded.tokenizer(), tokenBudget: batchTokens)
            // Under mpirun the ranks share the forward passes; rank 0 reports and writes.
            let group = try ProcessGroup.world()
            scorer.processGroup = group
            var rows: [(name: String, directory: String?)] = [("base", nil)]
            for spec in adapter {
                if let equals = spec.firstIndex(of: "="), equals != spec.startIndex {
                    rows.append((String(spec[..<equals]), String(spec[spec.index(after: equals)...])))
                } else {
                    rows.append(((spec as NSString).lastPathComponent, spec))
                }
            }
            // Row names are table rows and --output-dir folders: two of one name overwrote each other (two adapters
            // in folders called "out", or one called "base"), and "../x" wrote outside the output folder.
            var seenNames = Set<String>()
            for row in rows {
                guard !row.name.isEmpty, !row.name.contains("/"), row.name != ".", row.name != ".." else {
                    throw HoneError.invalidArgument("--adapter \(row.directory ?? ""): the row name '\(row.name)' cannot be a folder name; give NAME=DIR")
                }
                guard seenNames.insert(row.name).inserted else {
                    throw HoneError.invalidArgument("--adapter \(row.directory ?? ""): a row named '\(row.name)' is already in the table (the base is 'base'); give NAME=DIR with another name")
                }
            }
            // Every adapter is read before the first row runs: a bad one was reported only after the base row.
            for case let (_, directory?) in rows { _ = try PEFTAdapter.load(directory: directory, for: loaded.model) }
            var tableRows: [(name: String, scores: [String: [String: (value: Double, stderr: Double?, size: Int)]])] = []
            for row in rows {
                if let directory = row.directory {
                    try loaded.attachAdapter(directory: directory)
                } else if !adapter.isEmpty {
                    try loaded.detachAdapters()
                }
                let progress = ProgressReporter(total: taskList.reduce(0) { $0 + (documentLimit?.documents(of: $1.documents.count) ?? $1.documents.count) },
                                                label: "eval \(row.name)")
                let start = Date()
                let results = try MultipleChoiceEvaluation.run(tasks: taskList, fewShot: selection.fewShot, limit: documentLimit,
                                                               scorer: scorer, format: format) { done, _ in
                    guard group.isRoot else { return }
                    let rate = Double(done) / max(Date().timeIntervalSince(start), 1e-9)
                    progress.update(done: done, extra: String(format: "%.2f docs/s", rate))
                }
                tableRows.append((row.name, MultipleChoiceEvaluation.scores(results, groups: selection.groups)))
                if let outputDir, group.isRoot {
                    let folder = (outputDir as NSString).appendingPathComponent(row.name)
                    try createOutputDirectory(folder)
                    // Samples first, results.json last: a row whose results.json is there has all its files.
                    for result in results {
                        try writeFileAtomically(Data(MultipleChoiceEvaluation.samplesJSONL(result).utf8),
                                                to: (folder as NSString).appendingPathComponent("samples_\(result.task.name).jsonl"))
                    }
                    let json = MultipleChoiceEvaluation.resultsJSON(results, groups: selection.groups, model: model,
                                                                    adapter: row.directory, limit: documentLimit, format: format,
                                                                    fewShotSeed: fewShotSeed)
                    try writeFileAtomically(Data(json.utf8), to: (folder as NSString).appendingPathComponent("results.json"))
                }
            }
            if group.isRoot {
                print(MultipleChoiceEvaluation.markdownTable(rows: tableRows, columns: selection.columns), terminator: "")
            }
        }
    }
}
