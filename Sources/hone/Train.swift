import ArgumentParser
import Foundation
import HoneKit

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a LoRA adapter on a frozen base model.",
        subcommands: [TrainSFT.self, TrainCUT.self, TrainDPO.self, TrainPRO.self])
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

    @Option(name: [.customLong("batch-size"), .customLong("batch_size")],
            help: "Examples per optimizer step (gradient accumulation = batch ÷ micro). Default: sft 128, cut 8, dpo 8, pro 16.")
    var batchSize: Int?

    @Option(name: [.customLong("micro-batch-size"), .customLong("micro_batch_size")],
            help: "Examples per forward/backward pass (a DPO pair is two rows, a PRO record one per response). Default: sft 4, cut 1, dpo 2, pro 2.")
    var microBatchSize: Int?

    @Option(name: [.customLong("num-epochs"), .customLong("num_epochs")], help: "Passes over the training data. Default: sft 3, cut 1, dpo 3, pro 2.")
    var numEpochs: Int?

    @Option(name: [.customLong("max-steps"), .customLong("max_steps")], help: "Stop after this many optimizer steps (overrides --num-epochs).")
    var maxSteps: Int?

    @Option(name: [.customLong("learning-rate"), .customLong("learning_rate")],
            help: "Peak learning rate. Default: sft 3e-4, cut 4e-4, dpo 1e-6 (TRL's), pro 5e-6 (PRO's LLaMA runs).")
    var learningRate: Double?

    @Option(name: [.customLong("cutoff-len"), .customLong("cutoff_len")],
            help: "Tokens per row at most. Default: sft 256, cut 2048 (cut from the left), pro 512 (PRO's block size); dpo uses --max-length.")
    var cutoffLen: Int?

    @Option(name: [.customLong("val-set-size"), .customLong("val_set_size")],
            help: "Examples held out for evaluation (0: none). Default: sft 2000, others 0.")
    var valSetSize: Int?

    @Option(name: [.customLong("lora-r"), .customLong("lora_r")], help: "LoRA rank. Default: cut 16, others 8.")
    var loraR: Int?

    @Option(name: [.customLong("lora-alpha"), .customLong("lora_alpha")], help: "LoRA alpha (scale = alpha / r). Default: 16.")
    var loraAlpha: Double?

    @Option(name: [.customLong("lora-dropout"), .customLong("lora_dropout")],
            help: "Dropout on the LoRA branch's input. Default: 0.05; dpo 0 (TRL's disable_dropout).")
    var loraDropout: Double?

    @Option(name: [.customLong("lora-target-modules"), .customLong("lora_target_modules")],
            help: "Modules to adapt, e.g. '[q_proj,v_proj]' (q,k,v,o,gate,up,down or their *_proj names). Default: [q_proj,v_proj]; cut [gate_proj,down_proj,up_proj].")
    var loraTargetModules: String?

    @Flag(name: [.customLong("use-rslora"), .customLong("use_rslora")], help: "rsLoRA scaling: alpha / √r.")
    var useRSLoRA = false

    @Option(name: [.customLong("prompt-template-name"), .customLong("prompt_template_name")],
            help: "Prompt template: a built-in name or a JSON template file. Default: sft alpaca, cut alpaca_judge; dpo and pro use their prompts as written.")
    var promptTemplateName: String?

    @Option(name: [.customLong("lr-scheduler"), .customLong("lr_scheduler")],
            help: "cosine, linear or constant. Default: sft linear, cut cosine, dpo linear, pro constant.")
    var lrScheduler: String?

    @Option(name: [.customLong("warmup-steps"), .customLong("warmup_steps")], help: "Linear warm-up steps. Default: sft and cut 100, dpo and pro 0.")
    var warmupSteps: Int?

    @Option(name: [.customLong("weight-decay"), .customLong("weight_decay")],
            help: "AdamW's decoupled weight decay. Default: 0; pro 0.01 (torch's AdamW default, which PRO uses).")
    var weightDecay: Double?

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

    func trainingOptions(_ defaults: ObjectiveDefaults) throws -> TrainingOptions {
        var options = TrainingOptions()
        options.batchSize = batchSize ?? defaults.batchSize
        options.microBatchSize = microBatchSize ?? defaults.microBatchSize
        options.epochs = numEpochs ?? defaults.numEpochs
        options.maxSteps = maxSteps
        options.learningRate = learningRate ?? defaults.learningRate
        let scheduleName = (lrScheduler ?? defaults.lrScheduler).lowercased()
        guard let schedule = LearningRateSchedule(rawValue: scheduleName) else {
            throw ValidationError("--lr-scheduler must be one of \(LearningRateSchedule.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        options.schedule = schedule
        options.warmupSteps = warmupSteps ?? defaults.warmupSteps
        options.weightDecay = weightDecay ?? defaults.weightDecay
        options.maxGradNorm = maxGradNorm
        options.seed = seed
        options.saveSteps = saveSteps
        options.evalSteps = evalSteps
        options.gradientCheckpointing = gradientCheckpointing
        options.groupByLength = groupByLength.value
        return options
    }

    func loraConfiguration(architecture: ModelArchitecture, _ defaults: ObjectiveDefaults) throws -> LoRAConfiguration {
        LoRAConfiguration(rank: loraR ?? defaults.loraR, alpha: loraAlpha ?? defaults.loraAlpha,
                          dropout: loraDropout ?? defaults.loraDropout,
                          targetModules: try architecture.adaptableModules.resolve(loraTargetModules ?? defaults.loraTargetModules, architecture: architecture.name),
                          useRSLoRA: useRSLoRA)
    }
}

/// The defaults of the options whose value depends on the objective: each follows the reference setup of its
/// method (alpaca-lora's finetune.py; CUT's README online run; TRL's DPOConfig; PRO / ScalingAlignment's scripts).
struct ObjectiveDefaults {
    var batchSize: Int
    var microBatchSize: Int
    var numEpochs: Int
    var learningRate: Double
    var cutoffLen: Int
    var valSetSize = 0
    var loraR = 8
    var loraAlpha = 16.0
    var loraDropout = 0.05
    var loraTargetModules = "[q_proj,v_proj]"
    var lrScheduler: String
    var warmupSteps: Int
    var weightDecay = 0.0
    var promptTemplateName: String

    /// alpaca-lora finetune.py (methods.md §3.2).
    static let sft = ObjectiveDefaults(batchSize: 128, microBatchSize: 4, numEpochs: 3, learningRate: 3e-4, cutoffLen: 256,
                                       valSetSize: 2000, lrScheduler: "linear", warmupSteps: 100, promptTemplateName: "alpaca")
    /// CUT README's online iteration-1 run (methods.md §1.7): 8 / 1, one epoch, 4e-4, cosine, warmup 100, cutoff 2048,
    /// r 16 / alpha 16, MLP modules only.
    static let cut = ObjectiveDefaults(batchSize: 8, microBatchSize: 1, numEpochs: 1, learningRate: 4e-4, cutoffLen: 2048,
                                       loraR: 16, loraAlpha: 16, loraTargetModules: "[gate_proj,down_proj,up_proj]",
                                       lrScheduler: "cosine", warmupSteps: 100, promptTemplateName: "alpaca_judge")
    /// TRL's DPOConfig / transformers' TrainingArguments (methods.md §4): batch 8, 3 epochs, lr 1e-6, linear decay
    /// without warm-up, dropout disabled; PEFT's default targets for Llama.
    static let dpo = ObjectiveDefaults(batchSize: 8, microBatchSize: 2, numEpochs: 3, learningRate: 1e-6, cutoffLen: 1024,
                                       loraDropout: 0, lrScheduler: "linear", warmupSteps: 0, promptTemplateName: "raw")
    /// PRO / ScalingAlignment (methods.md §2.7): LLaMA-7B lr 5e-6, constant, 2 epochs (PRO's train_hh.sh), effective
    /// batch 16 per device, torch AdamW's weight decay 0.01, block size 512.
    static let pro = ObjectiveDefaults(batchSize: 16, microBatchSize: 2, numEpochs: 2, learningRate: 5e-6, cutoffLen: 512,
                                       lrScheduler: "constant", warmupSteps: 0, weightDecay: 0.01, promptTemplateName: "raw")
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
            let defaults = ObjectiveDefaults.sft
            let templateName = training.promptTemplateName ?? defaults.promptTemplateName
            let setup = try SupervisedTrainingSetup(
                baseModel: training.baseModel, dataPath: training.dataPath, templateName: templateName,
                cutoffLength: training.cutoffLen ?? defaults.cutoffLen, trainOnInputs: trainOnInputs.value,
                addEOSToken: addEosToken.value, validationSize: training.valSetSize ?? defaults.valSetSize, seed: training.seed)
            try TrainingLauncher.run(arguments: training, defaults: defaults, base: setup.base, objective: setup.objective,
                                     summary: setup.summary, templateName: templateName)
        }
    }
}

/// Runs a trainer for any objective with the shared arguments: adapters (new or --init-adapter), resume,
/// progress on stderr, a closing summary.
enum TrainingLauncher {
    /// `prepare` runs once the adapters exist, before any checkpoint is restored (DPO takes its frozen reference
    /// copy of an --init-adapter there); its second argument says whether they came from --init-adapter.
    static func run(arguments: TrainingArguments, defaults: ObjectiveDefaults, base: LoadedModel, objective: TrainingObjective,
                    summary: String, templateName: String, eosPolicy: String? = nil,
                    prepare: ((AdapterSet, Bool) throws -> Void)? = nil) throws {
        let adapters: AdapterSet
        if let initAdapter = arguments.initAdapter {
            adapters = try PEFTAdapter.load(directory: initAdapter, for: base.model).0
        } else {
            adapters = try AdapterSet.makeNew(configuration: try arguments.loraConfiguration(architecture: base.config.architecture, defaults),
                                              model: base.model, seed: arguments.seed)
        }
        try prepare?(adapters, arguments.initAdapter != nil)
        let engine = try TrainingEngine(loaded: base, adapters: adapters)
        let options = try arguments.trainingOptions(defaults)
        let trainer = try Trainer(engine: engine, objective: objective, options: options, outputDirectory: arguments.outputDir)
        trainer.baseModelName = base.path
        trainer.record = PEFTAdapter.TrainingRecord(promptTemplate: templateName, eosPolicy: eosPolicy)
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
        log.write(Data("LoRA: r \(adapters.configuration.rank), alpha \(adapters.configuration.alpha), \(adapters.ordered.count) modules, \(adapters.parameterCount) trainable parameters; \(trainer.totalSteps) steps of \(options.accumulationSteps) × \(options.microBatchSize) examples, lr \(options.learningRate) \(options.schedule.rawValue)\n".utf8))
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
