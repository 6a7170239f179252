import ArgumentParser
import Foundation
import HoneKit

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Answer a list of instructions in the file format alpaca_eval reads.",
        discussion: """
        Input: a JSON list (AlpacaEval's instructions file) or JSON Lines of {"instruction", "input"?, "dataset"?}. \
        Output: a JSON list of {"instruction", "output", "generator", "dataset"} in input order. Defaults follow \
        CUT's generate.py: greedy decoding, up to 2048 new tokens, no stop strings, special tokens skipped; with \
        the alpaca template (what --template auto picks for a model without a chat template of its own) the \
        answer is Python's text.split("### Response:")[1].strip(), with any other template the new text, \
        stripped. A model that runs on \
        past its answer costs time: --stop "### Instruction:" ends it there (the output may then differ from \
        CUT's, which keeps such text).

        Prompts are batched continuously (--batch-size); under greedy decoding every answer equals the \
        batch-size-1 answer. Finished answers go to OUTPUT.journal as they complete: rerun the same command after \
        an interruption and it skips them. The output file is written atomically at the end.

        Example:
          hone generate --model merged-model --instructions alpaca_eval_instructions.json --output alpaca_eval.json
        """)

    @Option(name: [.customShort("m"), .long], help: "An HF model directory or a GGUF file.")
    var model: String

    @Option(name: .long, help: "Instructions: JSON list or JSONL.")
    var instructions: String

    @Option(name: .long, help: "Where to write the alpaca_eval JSON.")
    var output: String

    @Option(name: .long, help: "Generator name in the output (default: the model directory's name).")
    var generator: String?

    @Option(name: .long, help: "Prompt template: auto (the adapter's recorded template, else the model's own chat template, else alpaca), chat_template (the model's own), \(PromptTemplate.builtinNames.joined(separator: ", ")), a JSON template file or a .jinja chat template.")
    var template = "auto"

    @Option(name: [.customLong("batch-size"), .customLong("batch_size")], help: "Sequences decoded together.")
    var batchSize = 8

    @Option(name: .customLong("interrupt-after"), help: .hidden)
    var interruptAfter: Int?

    @OptionGroup var sampling: SamplingOptions
    @OptionGroup var adapterOptions: AdapterOptions
    @OptionGroup var templateKwargs: ChatTemplateKwargsOption

    @OptionGroup var runtime: RuntimeOptions

    func validate() throws {
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1") }
        // An empty name wrote its journal as ".journal" in the working directory.
        guard !output.isEmpty else { throw ValidationError("--output must name a file") }
    }

    func run() throws {
        try runtime.apply(distributed: true)
        try reportingErrors {
            let (loaded, trainedTemplate) = try adapterOptions.open(model: model)
            let tokenizer = try loaded.tokenizer()
            let promptTemplate = try templateKwargs.apply(to: loaded.promptTemplate(template, recorded: trainedTemplate))
            let records = try AlpacaEval.readInstructions(path: instructions)
            let maxNewTokens = sampling.maxNewTokens ?? 2048
            let prompts = try records.map { try promptTemplate.prompt(instruction: $0.instruction, input: $0.input) }
            // Instruction templates (alpaca) hold no special tokens: instructions are plain text, as in CUT's
            // generate.py. Conversation templates write theirs in the text, so those are parsed.
            let parseSpecial = promptTemplate.promptNoInput == nil
            let requests = prompts.map {
                GenerationRequest(promptTokens: tokenizer.encode($0, addSpecialTokens: promptTemplate.addsBOS,
                                                                 parseSpecial: parseSpecial),
                                  maxNewTokens: maxNewTokens, sampling: sampling.parameters,
                                  stopStrings: sampling.stop)
            }
            let name = generator ?? URL(fileURLWithPath: model).standardized.deletingPathExtension().lastPathComponent
            // The model and adapter by content: a folder replaced under the same name resumed with the old answers.
            let fingerprint = "model:\(try ContentIdentity.sampled(model))|\(prompts.hashStable)|\(maxNewTokens)|\(sampling.parameters)|\(sampling.stop)\(try adapterOptions.identity())"
            // Under mpirun each rank answers its share and journals it in its own file; rank 0 writes the output.
            let group = try ProcessGroup.world()
            let journal = try GenerationJournal(path: GenerationJournal.path(output: output, rank: group.rank), fingerprint: fingerprint)
            journal.adopt(GenerationJournal.answersOfOtherRanks(output: output, fingerprint: fingerprint, except: journal.path))
            journal.adopt(try group.merge(journal.answers))
            let remaining = group.share(of: requests.indices.filter { journal.answers[$0] == nil })
            let alreadyDone = requests.indices.filter { journal.answers[$0] != nil }.count
            if alreadyDone > 0, group.isRoot {
                FileHandle.standardError.write(Data("resuming: \(alreadyDone) of \(requests.count) answers are in \(journal.path)\n".utf8))
            }
            let progress = ProgressReporter(total: alreadyDone + remaining.count,
                                            label: group.isDistributed ? "generate (rank \(group.rank))" : "generate")
            let start = DispatchTime.now()
            var tokens = 0
            var finished = alreadyDone
            if group.isRoot { progress.update(done: finished) }
            let generatorEngine = try loaded.makeGenerator(template: promptTemplate)
            try generatorEngine.generate(remaining.map { requests[$0] }, batchSize: batchSize, onFinish: { local, result in
                let index = remaining[local]
                // With a response marker (alpaca), as CUT's generate.py: the decoded prompt and answer, split after
                // the marker, stripped (result.text has stop strings cut; the prompt's own decoding supplies the
                // marker). Any other template: the new text alone, stripped.
                let answer: String
                if promptTemplate.responseSplit != nil {
                    let promptText = tokenizer.decode(requests[index].promptTokens, skipSpecialTokens: true)
                    answer = promptTemplate.extractResponse(from: promptText + result.text)
                } else {
                    answer = promptTemplate.extractResponse(from: result.text)
                }
                try journal.record(index: index, output: answer)
                // Test hook: stop like a killed process (no output file, journal left behind).
                if let interruptAfter, journal.answers.count >= interruptAfter { Foundation.exit(130) }
                tokens += result.tokens.count
                finished += 1
                let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
                if group.isRoot {
                    progress.update(done: finished, extra: String(format: "%.1f tok/s", Double(tokens) / max(seconds, 1e-9)),
                                    rateBase: finished - alreadyDone)
                }
            })
            let answers = try group.merge(journal.answers)
            if group.isRoot {
                let outputs = requests.indices.map { answers[$0] ?? "" }
                try writeFileAtomically(Data(AlpacaEval.outputsJSON(records: records, outputs: outputs, generator: name).utf8), to: output)
            }
            // Journals go only once the output is in place.
            try group.barrier()
            journal.remove()
            if group.isRoot { GenerationJournal.removeLeftovers(output: output) }
        }
    }
}

extension Array where Element == String {
    /// A digest that is the same in every run (Swift's hashValue is seeded per process).
    var hashStable: String {
        var value: UInt64 = 0xcbf2_9ce4_8422_2325
        for text in self {
            for byte in text.utf8 { value = (value ^ UInt64(byte)) &* 0x100_0000_01b3 }
            value = (value ^ 0xFF) &* 0x100_0000_01b3
        }
        return String(value, radix: 16)
    }
}
