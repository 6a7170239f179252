import ArgumentParser
import Foundation
import HoneKit

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a LoRA adapter on a frozen base model.",
        subcommands: [TrainSFT.self])
}

/// A boolean written the way alpaca-lora's fire-based scripts accept it: true/false, True/False, 1/0, yes/no.
struct FlexibleBool: ExpressibleByArgument {
    let value: Bool
    init?(argument: String) {
        switch argument.lowercased() {
        case "true", "1", "yes": value = true
        case "false", "0", "no": value = false
        default: return nil
        }
    }
}

/// Options every objective shares, named as alpaca-lora/CUT name them (underscore spellings accepted).
struct TrainingArguments: ParsableArguments {
    @Option(name: [.customLong("base-model"), .customLong("base_model")], help: "Base model: an HF directory or a GGUF file (quantized ones too).")
    var baseModel: String

    @Option(name: [.customLong("data-path"), .customLong("data_path")], help: "Training data (JSON array or JSONL).")
    var dataPath: String

    @Option(name: [.customLong("output-dir"), .customLong("output_dir")], help: "Where the adapter, checkpoints, metrics.jsonl and loss.svg go.")
    var outputDir: String

    @Option(name: [.customLong("batch-size"), .customLong("batch_size")], help: "Examples per optimizer step (gradient accumulation = batch ÷ micro).")
    var batchSize = 128

    @Option(name: [.customLong("micro-batch-size"), .customLong("micro_batch_size")], help: "Examples per forward/backward pass.")
    var microBatchSize = 4

    @Option(name: [.customLong("num-epochs"), .customLong("num_epochs")], help: "Passes over the training data.")
    var numEpochs = 3

    @Option(name: [.customLong("max-steps"), .customLong("max_steps")], help: "Stop after this many optimizer steps (overrides --num-epochs).")
    var maxSteps: Int?

    @Option(name: [.customLong("learning-rate"), .customLong("learning_rate")], help: "Peak learning rate.")
    var learningRate = 3e-4

    @Option(name: [.customLong("cutoff-len"), .customLong("cutoff_len")], help: "Tokens per example at most.")
    var cutoffLen = 256

    @Option(name: [.customLong("val-set-size"), .customLong("val_set_size")], help: "Examples held out for evaluation (0: none).")
    var valSetSize = 2000

    @Option(name: [.customLong("lora-r"), .customLong("lora_r")], help: "LoRA rank.")
    var loraR = 8

    @Option(name: [.customLong("lora-alpha"), .customLong("lora_alpha")], help: "LoRA alpha (scale = alpha / r).")
    var loraAlpha = 16.0

    @Option(name: [.customLong("lora-dropout"), .customLong("lora_dropout")], help: "Dropout on the LoRA branch's input.")
    var loraDropout = 0.05

    @Option(name: [.customLong("lora-target-modules"), .customLong("lora_target_modules")],
            help: "Modules to adapt, e.g. '[q_proj,v_proj]' (q,k,v,o,gate,up,down or their *_proj names).")
    var loraTargetModules = "[q_proj,v_proj]"

    @Flag(name: [.customLong("use-rslora"), .customLong("use_rslora")], help: "rsLoRA scaling: alpha / √r.")
    var useRSLoRA = false

    @Option(name: [.customLong("prompt-template-name"), .customLong("prompt_template_name")],
            help: "Prompt template: a built-in name or a JSON template file.")
    var promptTemplateName = "alpaca"

    @Option(name: [.customLong("lr-scheduler"), .customLong("lr_scheduler")], help: "cosine, linear or constant.")
    var lrScheduler = "linear"

    @Option(name: [.customLong("warmup-steps"), .customLong("warmup_steps")], help: "Linear warm-up steps.")
    var warmupSteps = 100

    @Option(name: [.customLong("weight-decay"), .customLong("weight_decay")], help: "AdamW's decoupled weight decay.")
    var weightDecay = 0.0

    @Option(name: [.customLong("max-grad-norm"), .customLong("max_grad_norm")], help: "Clip the global gradient norm (0: no clipping).")
    var maxGradNorm = 1.0

    @Option(name: .long, help: "Seed for initialisation, data order and dropout.")
    var seed: UInt64 = 42

    @Option(name: [.customLong("save-steps"), .customLong("save_steps")], help: "Checkpoint every N optimizer steps (0: only the final adapter).")
    var saveSteps = 200

    @Option(name: [.customLong("eval-steps"), .customLong("eval_steps")], help: "Evaluate every N optimizer steps (and at the end).")
    var evalSteps = 200

    @Option(name: [.customLong("resume-from-checkpoint"), .customLong("resume_from_checkpoint")],
            help: "A checkpoint directory, or 'latest' for the newest in --output-dir.")
    var resumeFromCheckpoint: String?

    @Option(name: [.customLong("init-adapter"), .customLong("init_adapter")], help: "Start from this PEFT adapter instead of a new one.")
    var initAdapter: String?

    @Flag(name: [.customLong("gradient-checkpointing"), .customLong("gradient_checkpointing")],
          help: "Recompute each layer's activations in backward: far less memory, about a third more compute.")
    var gradientCheckpointing = false

    @Option(name: [.customLong("group-by-length"), .customLong("group_by_length")], help: "Batch examples of similar length (true/false).")
    var groupByLength = FlexibleBool(argument: "false")!

    @Option(name: .customLong("stop-after-steps"), help: .hidden)
    var stopAfterSteps: Int?

    func trainingOptions() throws -> TrainingOptions {
        var options = TrainingOptions()
        options.batchSize = batchSize
        options.microBatchSize = microBatchSize
        options.epochs = numEpochs
        options.maxSteps = maxSteps
        options.learningRate = learningRate
        guard let schedule = LearningRateSchedule(rawValue: lrScheduler.lowercased()) else {
            throw ValidationError("--lr-scheduler must be one of \(LearningRateSchedule.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        options.schedule = schedule
        options.warmupSteps = warmupSteps
        options.weightDecay = weightDecay
        options.maxGradNorm = maxGradNorm
        options.seed = seed
        options.saveSteps = saveSteps
        options.evalSteps = evalSteps
        options.gradientCheckpointing = gradientCheckpointing
        options.groupByLength = groupByLength.value
        return options
    }

    func loraConfiguration(modelType: String) throws -> LoRAConfiguration {
        LoRAConfiguration(rank: loraR, alpha: loraAlpha, dropout: loraDropout,
                          targetModules: try TargetModuleList.parse(loraTargetModules, modelType: modelType),
                          useRSLoRA: useRSLoRA)
    }
}

struct TrainSFT: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sft",
        abstract: "Supervised fine-tuning on Alpaca data (alpaca-lora's finetune.py).",
        discussion: """
        Data: a JSON array or JSONL of {"instruction", "input" (optional), "output"}, or JSONL of token ids \
        {"input_ids": [...], "labels": [...] (optional, -100 = not trained)}. Each example is the template's \
        prompt followed by the output, cut on the right to --cutoff-len tokens, EOS appended when it fits. The loss \
        is the mean cross-entropy over every trained token of an optimizer step (with --train-on-inputs false, \
        prompt tokens are not trained). The output directory receives a PEFT adapter (adapter_config.json, \
        adapter_model.safetensors), metrics.jsonl (one line per step), loss.svg, and checkpoint-N/ directories.

        Example:
          hone train sft --base-model models/hone-tiny --data-path data.json --output-dir out \\
            --num-epochs 3 --micro-batch-size 4 --batch-size 16 --lora-r 8 --val-set-size 20
        """)

    @OptionGroup var training: TrainingArguments

    @Option(name: [.customLong("train-on-inputs"), .customLong("train_on_inputs")], help: "Train on prompt tokens too (true/false).")
    var trainOnInputs = FlexibleBool(argument: "true")!

    @Option(name: [.customLong("add-eos-token"), .customLong("add_eos_token")], help: "alpaca-lora's add_eos_token (true/false): how the prompt length is measured.")
    var addEosToken = FlexibleBool(argument: "false")!

    @OptionGroup var runtime: RuntimeOptions

    func run() throws {
        try runtime.apply()
        try reportingErrors {
            let setup = try SupervisedTrainingSetup(
                baseModel: training.baseModel, dataPath: training.dataPath, templateName: training.promptTemplateName,
                cutoffLength: training.cutoffLen, trainOnInputs: trainOnInputs.value, addEOSToken: addEosToken.value,
                validationSize: training.valSetSize, seed: training.seed)
            try runTraining(setup: setup.base, objective: setup.objective, summary: setup.summary)
        }
    }

    private func runTraining(setup base: LoadedModel, objective: TrainingObjective, summary: String) throws {
        try TrainingLauncher.run(arguments: training, base: base, objective: objective, summary: summary,
                                 templateName: training.promptTemplateName)
    }
}

/// Runs a trainer for any objective with the shared arguments: adapters (new or --init-adapter), resume,
/// progress on stderr, a closing summary.
enum TrainingLauncher {
    static func run(arguments: TrainingArguments, base: LoadedModel, objective: TrainingObjective, summary: String,
                    templateName: String) throws {
        let adapters: AdapterSet
        if let initAdapter = arguments.initAdapter {
            adapters = try PEFTAdapter.load(directory: initAdapter, for: base.model).0
        } else {
            adapters = try AdapterSet.makeNew(configuration: try arguments.loraConfiguration(modelType: base.config.modelType),
                                              model: base.model, seed: arguments.seed)
        }
        let engine = try TrainingEngine(loaded: base, adapters: adapters)
        let trainer = try Trainer(engine: engine, objective: objective, options: try arguments.trainingOptions(),
                                  outputDirectory: arguments.outputDir)
        trainer.baseModelName = base.path
        trainer.record = PEFTAdapter.TrainingRecord(promptTemplate: templateName, eosPolicy: nil)
        trainer.stopAfterSteps = arguments.stopAfterSteps
        var resume: String?
        if let requested = arguments.resumeFromCheckpoint {
            if ["latest", "true", "True"].contains(requested) {
                guard let latest = trainer.latestCheckpoint else {
                    throw HoneError.invalidArgument("no checkpoint-N directory in \(arguments.outputDir) to resume from")
                }
                resume = latest
            } else {
                resume = requested
            }
        }
        let log = FileHandle.standardError
        log.write(Data("\(summary)\n".utf8))
        log.write(Data("LoRA: r \(adapters.configuration.rank), alpha \(adapters.configuration.alpha), \(adapters.ordered.count) modules, \(adapters.parameterCount) trainable parameters; \(trainer.totalSteps) steps of \(arguments.trainingOptionsSummary)\n".utf8))
        let progress = ProgressReporter(total: trainer.totalSteps, label: "train")
        var firstStep: Int?
        trainer.onStep = { record, total in
            if firstStep == nil { firstStep = record.step - 1 }
            var extra = String(format: "loss %.4f  lr %.2e  %.0f tok/s  RSS %.2f GiB", record.loss, record.learningRate,
                               record.tokensPerSecond, Double(peakResidentBytes()) / 1_073_741_824)
            if let evalLoss = record.evalLoss { extra += String(format: "  eval %.4f", evalLoss) }
            progress.update(done: record.step, extra: extra, rateBase: record.step - (firstStep ?? 0))
        }
        Interrupt.install()
        let history = try trainer.run(resumingFrom: resume)
        if let last = history.last, last.step == trainer.totalSteps {
            let first = history.first!
            var line = String(format: "done: loss %.4f → %.4f over %d steps", first.loss, last.loss, last.step)
            if let evalLoss = last.evalLoss { line += String(format: ", eval loss %.4f", evalLoss) }
            log.write(Data("\(line); adapter in \(arguments.outputDir)\n".utf8))
        }
    }
}

extension TrainingArguments {
    var trainingOptionsSummary: String {
        let accumulation = max(1, batchSize / max(1, microBatchSize))
        return "\(accumulation) × \(microBatchSize) examples"
    }
}

/// `--lora-target-modules` as alpaca-lora's scripts write it: "[q_proj,v_proj]", "['q_proj', 'v_proj']",
/// "q_proj,v_proj", with short names (q, k, v, o, gate, up, down) allowed.
enum TargetModuleList {
    static func parse(_ text: String, modelType: String) throws -> [String] {
        let cleaned = text.filter { !"[]'\" ".contains($0) }
        let names = cleaned.split(separator: ",").map(String.init).filter { !$0.isEmpty }
        guard !names.isEmpty else { throw ValidationError("--lora-target-modules is empty") }
        let short: [String: String] = modelType == "opt"
            ? ["q": "q_proj", "k": "k_proj", "v": "v_proj", "o": "out_proj", "up": "fc1", "down": "fc2"]
            : ["q": "q_proj", "k": "k_proj", "v": "v_proj", "o": "o_proj", "gate": "gate_proj", "up": "up_proj", "down": "down_proj"]
        var result: [String] = []
        for name in names {
            let full = short[name] ?? name
            if !result.contains(full) { result.append(full) }
        }
        return result
    }
}
