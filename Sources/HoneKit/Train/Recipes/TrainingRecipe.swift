import Foundation

// MARK: - Per-objective defaults

/// The defaults of the settings whose value depends on the objective. Each follows the reference setup of its
/// method: alpaca-lora's finetune.py (SFT), the CUT README's online run, TRL's DPOConfig, PRO / ScalingAlignment's
/// scripts. The command line shows them in `--help` and applies them where the user sets nothing.
public struct TrainingRecipe: Sendable {
    public let objective: String
    public var batchSize: Int
    public var microBatchSize: Int
    public var numEpochs: Int
    public var learningRate: Double
    public var cutoffLength: Int
    public var validationSize = 0
    public var loraRank = 8
    public var loraAlpha = 16.0
    public var loraDropout = 0.05
    public var loraTargetModules = "[q_proj,v_proj]"
    public var schedule: LearningRateSchedule
    public var warmupSteps: Int
    public var weightDecay = 0.0
    /// A template name: "auto" (the model's own chat template, else alpaca), a built-in, or "raw" for objectives whose
    /// data carries its prompts as written.
    public var promptTemplate: String
    /// What the trainer records about EOS tokens in the adapter (nil: the template's own policy).
    public var eosPolicy: String? = nil

    /// alpaca-lora finetune.py (methods.md §3.2).
    public static let sft = TrainingRecipe(
        objective: "sft", batchSize: 128, microBatchSize: 4, numEpochs: 3, learningRate: 3e-4, cutoffLength: 256,
        validationSize: 2000, schedule: .linear, warmupSteps: 100, promptTemplate: "auto")
    /// CUT README's online iteration-1 run (methods.md §1.7): 8 / 1, one epoch, 4e-4, cosine, warmup 100, cutoff 2048,
    /// r 16 / alpha 16, MLP modules only.
    public static let cut = TrainingRecipe(
        objective: "cut", batchSize: 8, microBatchSize: 1, numEpochs: 1, learningRate: 4e-4, cutoffLength: 2048,
        loraRank: 16, loraAlpha: 16, loraTargetModules: "[gate_proj,down_proj,up_proj]", schedule: .cosine,
        warmupSteps: 100, promptTemplate: "alpaca_judge")
    /// TRL's DPOConfig / transformers' TrainingArguments (methods.md §4): batch 8, 3 epochs, lr 1e-6, linear decay
    /// without warm-up, dropout disabled; PEFT's default targets for Llama.
    public static let dpo = TrainingRecipe(
        objective: "dpo", batchSize: 8, microBatchSize: 2, numEpochs: 3, learningRate: 1e-6, cutoffLength: 1024,
        loraDropout: 0, schedule: .linear, warmupSteps: 0, promptTemplate: "raw", eosPolicy: "dpo: EOS appended to completions")
    /// PRO / ScalingAlignment (methods.md §2.7): LLaMA-7B lr 5e-6, constant, 2 epochs (PRO's train_hh.sh), effective
    /// batch 16 per device, torch AdamW's weight decay 0.01, block size 512.
    public static let pro = TrainingRecipe(
        objective: "pro", batchSize: 16, microBatchSize: 2, numEpochs: 2, learningRate: 5e-6, cutoffLength: 512,
        schedule: .constant, warmupSteps: 0, weightDecay: 0.01, promptTemplate: "raw",
        eosPolicy: "pro: EOS appended and scored for every response")

    /// TRL's RewardConfig / TrainingArguments (methods.md §6): batch 8, 3 epochs, lr 1e-4 linear without warm-up,
    /// dropout disabled, max_length 1024; PEFT's default targets for Llama.
    public static let rm = TrainingRecipe(
        objective: "rm", batchSize: 8, microBatchSize: 4, numEpochs: 3, learningRate: 1e-4, cutoffLength: 1024,
        loraDropout: 0, schedule: .linear, warmupSteps: 0, promptTemplate: "raw",
        eosPolicy: "rm: EOS appended to each text; reward read at the last non-padding token")

    /// TRL's KTOConfig, ORPOConfig and CPOConfig (TRL 1.16): lr 1e-6 linear without warm-up, per-device batch 8 without
    /// accumulation (the micro-batch is TRL's batch: KTO's KL estimate and the NLL's token mean are per micro-batch),
    /// 3 epochs, max length 1024, dropout disabled.
    public static let kto = preference("kto", eosPolicy: "kto: EOS appended to completions")
    public static let orpo = preference("orpo", eosPolicy: "orpo: BOS before prompts, EOS appended to completions")
    public static let cpo = preference("cpo", eosPolicy: "cpo: BOS before prompts, EOS appended to completions")
    public static let simpo = preference("simpo", eosPolicy: "simpo: BOS before prompts, EOS appended to completions")

    private static func preference(_ objective: String, eosPolicy: String) -> TrainingRecipe {
        TrainingRecipe(objective: objective, batchSize: 8, microBatchSize: 8, numEpochs: 3, learningRate: 1e-6, cutoffLength: 1024,
                       loraDropout: 0, schedule: .linear, warmupSteps: 0, promptTemplate: "raw", eosPolicy: eosPolicy)
    }

    public static let all: [TrainingRecipe] = [.sft, .cut, .dpo, .pro, .kto, .orpo, .cpo, .simpo, .rm]

    /// "sft 128, cut 8, dpo 8, pro 16", or the one value when every recipe agrees: for help texts.
    public static func defaultsText<Value: Equatable>(_ value: (TrainingRecipe) -> Value,
                                                      format: (Value) -> String = { "\($0)" }) -> String {
        let values = all.map(value)
        if values.allSatisfy({ $0 == values[0] }) { return format(values[0]) }
        return zip(all, values).map { "\($0.objective) \(format($1))" }.joined(separator: ", ")
    }
}

// MARK: - What a user set

/// The settings every objective shares, with alpaca-lora's/TRL's names. nil takes the recipe's default.
public struct SharedTrainingSettings: Sendable {
    public var baseModel: String
    public var dataPath: String
    public var outputDirectory: String
    public var batchSize: Int?
    public var microBatchSize: Int?
    public var numEpochs: Int?
    public var maxSteps: Int?
    public var learningRate: Double?
    public var cutoffLength: Int?
    public var validationSize: Int?
    public var loraRank: Int?
    public var loraAlpha: Double?
    public var loraDropout: Double?
    public var loraTargetModules: String?
    public var useRSLoRA = false
    public var promptTemplate: String?
    public var schedule: String?
    public var warmupSteps: Int?
    public var weightDecay: Double?
    public var maxGradNorm = 1.0
    public var seed: UInt64 = 42
    public var saveSteps = 200
    public var evalSteps = 200
    /// A checkpoint directory, or "latest" for the newest in the output directory.
    public var resumeFromCheckpoint: String?
    public var initAdapter: String?
    public var gradientCheckpointing = false
    public var groupByLength = false
    /// Stops the run after this many steps as if interrupted (tests of resuming).
    public var stopAfterSteps: Int?

    public init(baseModel: String, dataPath: String, outputDirectory: String) {
        self.baseModel = baseModel
        self.dataPath = dataPath
        self.outputDirectory = outputDirectory
    }

    public func trainingOptions(_ recipe: TrainingRecipe) throws -> TrainingOptions {
        var options = TrainingOptions()
        options.batchSize = batchSize ?? recipe.batchSize
        options.microBatchSize = microBatchSize ?? recipe.microBatchSize
        options.epochs = numEpochs ?? recipe.numEpochs
        options.maxSteps = maxSteps
        options.learningRate = learningRate ?? recipe.learningRate
        if let schedule {
            guard let chosen = LearningRateSchedule(rawValue: schedule.lowercased()) else {
                throw HoneError.invalidArgument("\(OptionName("lr_scheduler")) must be one of \(LearningRateSchedule.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            options.schedule = chosen
        } else {
            options.schedule = recipe.schedule
        }
        options.warmupSteps = warmupSteps ?? recipe.warmupSteps
        options.weightDecay = weightDecay ?? recipe.weightDecay
        options.maxGradNorm = maxGradNorm
        options.seed = seed
        options.saveSteps = saveSteps
        options.evalSteps = evalSteps
        options.gradientCheckpointing = gradientCheckpointing
        options.groupByLength = groupByLength
        return options
    }

    public func loraConfiguration(config: ModelConfig, _ recipe: TrainingRecipe) throws -> LoRAConfiguration {
        let architecture = config.architecture
        return LoRAConfiguration(rank: loraRank ?? recipe.loraRank, alpha: loraAlpha ?? recipe.loraAlpha,
                          dropout: loraDropout ?? recipe.loraDropout,
                          targetModules: try architecture.adaptableModules.resolve(loraTargetModules ?? recipe.loraTargetModules,
                                                                                   architecture: config.modelType,
                                                                                   unavailable: config.modulesWithoutAdapters),
                          useRSLoRA: useRSLoRA)
    }
}

// MARK: - Running a recipe

/// A loss for the progress line: four decimals, or four significant digits in exponent form when large (a reward
/// margin of 1e308 printed as a 309-digit number).
func lossText(_ loss: Double) -> String {
    abs(loss) < 1e6 ? String(format: "%.4f", loss) : String(format: "%.4e", loss)
}

/// Runs a trainer for any objective: adapters (new or from `init_adapter`), the objective's reference hook, resume,
/// progress on stderr, a closing line.
public enum TrainingRun {
    public static func run(_ settings: SharedTrainingSettings, recipe: TrainingRecipe, base: LoadedModel,
                           objective: TrainingObjective, summary: String, templateName: String,
                           padTokenID: Int32? = nil) throws {
        let adapters: AdapterSet
        if let initAdapter = settings.initAdapter {
            adapters = try PEFTAdapter.load(directory: initAdapter, for: base.model).0
            // A reward model's adapter carries a score head: a generation objective would train the head along and
            // save a policy labelled SEQ_CLS (PEFT would then load it as a classifier).
            if !objective.trainsScoreHead, let module = adapters.savedModules.first {
                throw HoneError.invalidArgument("\(OptionName("init_adapter")) \(initAdapter) is a reward model's adapter (it saves "
                                                + "'\(module.name)', task_type SEQ_CLS); \(objective.name) trains a causal-LM adapter")
            }
            // The adapter brings its own shape: a LoRA option that disagrees with it would be silently ignored.
            let own = adapters.configuration
            var disagreements: [String] = []
            if let rank = settings.loraRank, rank != own.rank { disagreements.append("\(OptionName("lora_r")) \(rank) (it has \(own.rank))") }
            if let alpha = settings.loraAlpha, alpha != own.alpha { disagreements.append("\(OptionName("lora_alpha")) \(alpha) (it has \(own.alpha))") }
            if let modules = settings.loraTargetModules {
                let asked = try base.config.architecture.adaptableModules.resolve(modules, architecture: base.config.modelType,
                                                                                  unavailable: base.config.modulesWithoutAdapters)
                if Set(asked) != Set(own.targetModules) {
                    disagreements.append("\(OptionName("lora_target_modules")) \(asked.joined(separator: ",")) (it has \(own.targetModules.joined(separator: ",")))")
                }
            }
            if !disagreements.isEmpty {
                throw HoneError.invalidArgument("\(OptionName("init_adapter")) \(initAdapter) keeps its own shape: "
                                                + disagreements.joined(separator: ", "))
            }
        } else {
            adapters = try AdapterSet.makeNew(configuration: try settings.loraConfiguration(config: base.config, recipe),
                                              model: base.model, seed: settings.seed)
        }
        // Before any checkpoint is restored: DPO takes its frozen reference copy of an init adapter here.
        let note = objective.prepare(adapters: adapters, fromInitAdapter: settings.initAdapter != nil)
        let engine = try TrainingEngine(loaded: base, adapters: adapters)
        let options = try settings.trainingOptions(recipe)
        let trainer = try Trainer(engine: engine, objective: objective, options: options, outputDirectory: settings.outputDirectory)
        trainer.baseModelName = base.path
        trainer.inputIdentity = "base=\(try ContentIdentity.sampled(base.path)) data=\(try ContentIdentity.whole(settings.dataPath)) "
            + "init_adapter=\(try settings.initAdapter.map(ContentIdentity.whole) ?? "-")"
        trainer.record = PEFTAdapter.TrainingRecord(promptTemplate: templateName, eosPolicy: recipe.eosPolicy,
                                                    padTokenID: padTokenID.map(Int.init))
        trainer.stopAfterSteps = settings.stopAfterSteps
        let group = try ProcessGroup.world()
        trainer.processGroup = group
        var resume: String?
        if let requested = settings.resumeFromCheckpoint {
            // Rank 0 alone reads checkpoints and hands their state to the other ranks.
            if ["latest", "true", "True"].contains(requested), group.isRoot {
                guard let latest = trainer.newestCheckpointOfThisRun else {
                    throw HoneError.invalidArgument("no checkpoint-N directory in \(settings.outputDirectory) to resume from")
                }
                resume = latest.path
                if !latest.passedOver.isEmpty {
                    let names = latest.passedOver.map { ($0 as NSString).lastPathComponent }.joined(separator: ", ")
                    FileHandle.standardError.write(Data("hone: resuming from \((latest.path as NSString).lastPathComponent), this run's newest; \(names) (an earlier run's, made with other settings or inputs) left as they are\n".utf8))
                }
            } else {
                resume = requested
            }
        }
        // Under mpirun, rank 0 speaks for the job.
        let log = group.isRoot ? FileHandle.standardError : FileHandle.nullDevice
        if group.isDistributed {
            log.write(Data("data parallel: \(group.size) ranks share each step's \(options.accumulationSteps) micro-batches\n".utf8))
        }
        log.write(Data("\(summary)\(note.map { "; \($0)" } ?? "")\n".utf8))
        log.write(Data("LoRA: r \(adapters.configuration.rank), alpha \(adapters.configuration.alpha), \(adapters.ordered.count) modules, \(adapters.parameterCount) trainable parameters; \(trainer.totalSteps) steps of \(options.accumulationSteps) × \(options.microBatchSize) examples, lr \(options.learningRate) \(options.schedule.rawValue)\n".utf8))
        let progress = ProgressReporter(total: trainer.totalSteps, label: "train")
        var firstStep: Int?
        trainer.onStep = { record, total in
            guard group.isRoot else { return }
            if firstStep == nil { firstStep = record.step - 1 }
            var extra = "loss \(lossText(record.loss))  " + String(format: "lr %.2e  %.0f tok/s  RSS %.2f GiB", record.learningRate,
                                                                    record.tokensPerSecond, Double(peakResidentBytes()) / 1_073_741_824)
            if let evalLoss = record.evalLoss { extra += "  eval \(lossText(evalLoss))" }
            progress.update(done: record.step, extra: extra, rateBase: record.step - (firstStep ?? 0))
        }
        Interrupt.install()
        let history = try trainer.run(resumingFrom: resume)
        if let last = history.last, last.step == trainer.totalSteps {
            let first = history.first!
            var line = "done: loss \(lossText(first.loss)) → \(lossText(last.loss)) over \(last.step) steps"
            if let evalLoss = last.evalLoss { line += ", eval loss \(lossText(evalLoss))" }
            log.write(Data("\(line); adapter in \(settings.outputDirectory)\n".utf8))
            if group.isDistributed {
                let steps = max(1, history.count - (firstStep ?? 0))
                let megabytes = Double(4 * trainer.optimizer.parameterCount) / 1_048_576
                log.write(Data(String(format: "gradient exchange: %.1f ms per step (%.2f MiB per micro-batch, gathered by %d ranks)\n",
                                      trainer.exchangeSeconds * 1000 / Double(steps), megabytes, group.size).utf8))
            }
        }
    }
}
