import ArgumentParser
import Foundation
import HoneKit

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a LoRA adapter on a frozen base model.",
        discussion: """
        Every objective also runs data-parallel under Open MPI: each rank takes its share of every step's \
        micro-batches and the adapter gradients are summed across ranks (docs/scale-out.md).

        Example:
          mpirun -np 2 hone train sft --base-model model.gguf --data-path data.json --output-dir out --threads 1
        """,
        subcommands: [TrainSFT.self, TrainCUT.self, TrainDPO.self, TrainPRO.self, TrainKTO.self, TrainORPO.self, TrainCPO.self,
                      TrainSimPO.self, TrainRM.self])
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

    /// What `--help` shows as the default ("false", not the type's debug form).
    var defaultValueDescription: String { String(value) }
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
            help: ArgumentHelp("Examples per optimizer step (gradient accumulation = batch ÷ micro). Default: \(TrainingRecipe.defaultsText { $0.batchSize })."))
    var batchSize: Int?

    @Option(name: [.customLong("micro-batch-size"), .customLong("micro_batch_size")],
            help: ArgumentHelp("Examples per forward/backward pass (a DPO pair is two rows, a PRO record one per response). Default: \(TrainingRecipe.defaultsText { $0.microBatchSize })."))
    var microBatchSize: Int?

    @Option(name: [.customLong("num-epochs"), .customLong("num_epochs")], help: ArgumentHelp("Passes over the training data. Default: \(TrainingRecipe.defaultsText { $0.numEpochs })."))
    var numEpochs: Int?

    @Option(name: [.customLong("max-steps"), .customLong("max_steps")], help: "Stop after this many optimizer steps (overrides --num-epochs).")
    var maxSteps: Int?

    @Option(name: [.customLong("learning-rate"), .customLong("learning_rate")],
            help: ArgumentHelp("Peak learning rate. Default: \(TrainingRecipe.defaultsText { $0.learningRate })."))
    var learningRate: Double?

    @Option(name: [.customLong("cutoff-len"), .customLong("cutoff_len")],
            help: ArgumentHelp("Tokens per row at most (cut cuts from the left; dpo uses --max-length instead). Default: \(TrainingRecipe.defaultsText { $0.cutoffLength })."))
    var cutoffLen: Int?

    @Option(name: [.customLong("val-set-size"), .customLong("val_set_size")],
            help: ArgumentHelp("Examples held out for evaluation (0: none). Default: \(TrainingRecipe.defaultsText { $0.validationSize })."))
    var valSetSize: Int?

    @Option(name: [.customLong("lora-r"), .customLong("lora_r")], help: ArgumentHelp("LoRA rank. Default: \(TrainingRecipe.defaultsText { $0.loraRank })."))
    var loraR: Int?

    @Option(name: [.customLong("lora-alpha"), .customLong("lora_alpha")], help: ArgumentHelp("LoRA alpha (scale = alpha / r). Default: \(TrainingRecipe.defaultsText { $0.loraAlpha })."))
    var loraAlpha: Double?

    @Option(name: [.customLong("lora-dropout"), .customLong("lora_dropout")],
            help: ArgumentHelp("Dropout on the LoRA branch's input (dpo: TRL's disable_dropout). Default: \(TrainingRecipe.defaultsText { $0.loraDropout })."))
    var loraDropout: Double?

    @Option(name: [.customLong("lora-target-modules"), .customLong("lora_target_modules")],
            help: ArgumentHelp("Modules to adapt, e.g. '[q_proj,v_proj]' (q, k, v, o, gate, up, down or their *_proj names). Default: \(TrainingRecipe.defaultsText { $0.loraTargetModules })."))
    var loraTargetModules: String?

    @Flag(name: [.customLong("use-rslora"), .customLong("use_rslora")], help: "rsLoRA scaling: alpha / √r.")
    var useRSLoRA = false

    @Option(name: [.customLong("prompt-template-name"), .customLong("prompt_template_name")],
            help: ArgumentHelp("Prompt template: auto (the model's own chat template, else alpaca), a built-in name, a JSON template file or a .jinja chat template (raw: prompts as written). Default: \(TrainingRecipe.defaultsText { $0.promptTemplate })."))
    var promptTemplateName: String?

    @Option(name: [.customLong("lr-scheduler"), .customLong("lr_scheduler")],
            help: ArgumentHelp("cosine, linear or constant. Default: \(TrainingRecipe.defaultsText { $0.schedule.rawValue })."))
    var lrScheduler: String?

    @Option(name: [.customLong("warmup-steps"), .customLong("warmup_steps")], help: ArgumentHelp("Linear warm-up steps. Default: \(TrainingRecipe.defaultsText { $0.warmupSteps })."))
    var warmupSteps: Int?

    @Option(name: [.customLong("weight-decay"), .customLong("weight_decay")],
            help: ArgumentHelp("AdamW's decoupled weight decay (pro: torch's AdamW default, which PRO uses). Default: \(TrainingRecipe.defaultsText { $0.weightDecay })."))
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

    /// The settings as the library takes them (nil: the recipe's default).
    var settings: SharedTrainingSettings {
        var settings = SharedTrainingSettings(baseModel: baseModel, dataPath: dataPath, outputDirectory: outputDir)
        settings.batchSize = batchSize
        settings.microBatchSize = microBatchSize
        settings.numEpochs = numEpochs
        settings.maxSteps = maxSteps
        settings.learningRate = learningRate
        settings.cutoffLength = cutoffLen
        settings.validationSize = valSetSize
        settings.loraRank = loraR
        settings.loraAlpha = loraAlpha
        settings.loraDropout = loraDropout
        settings.loraTargetModules = loraTargetModules
        settings.useRSLoRA = useRSLoRA
        settings.promptTemplate = promptTemplateName
        settings.schedule = lrScheduler
        settings.warmupSteps = warmupSteps
        settings.weightDecay = weightDecay
        settings.maxGradNorm = maxGradNorm
        settings.seed = seed
        settings.saveSteps = saveSteps
        settings.evalSteps = evalSteps
        settings.resumeFromCheckpoint = resumeFromCheckpoint
        settings.initAdapter = initAdapter
        settings.gradientCheckpointing = gradientCheckpointing
        settings.groupByLength = groupByLength.value
        settings.stopAfterSteps = stopAfterSteps
        return settings
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
        try runtime.apply(distributed: true)
        try reportingErrors {
            let recipe = TrainingRecipe.sft
            let templateName = training.promptTemplateName ?? recipe.promptTemplate
            let setup = try SupervisedTrainingSetup(
                baseModel: training.baseModel, dataPath: training.dataPath, templateName: templateName,
                cutoffLength: training.cutoffLen ?? recipe.cutoffLength, trainOnInputs: trainOnInputs.value,
                addEOSToken: addEosToken.value, validationSize: training.valSetSize ?? recipe.validationSize, seed: training.seed)
            try TrainingRun.run(training.settings, recipe: recipe, base: setup.base, objective: setup.objective,
                                summary: setup.summary, templateName: setup.template.name)
        }
    }
}
