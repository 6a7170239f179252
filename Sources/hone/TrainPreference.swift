import ArgumentParser
import Foundation
import HoneKit

// MARK: - Shared

/// Options the preference objectives after DPO share with TRL's configs.
struct PreferenceLengthOptions: ParsableArguments {
    @Option(name: [.customLong("max-length"), .customLong("max_length")], help: "Tokens per row (prompt + completion) at most; completions are cut.")
    var maxLength = 1024
}

private func refuseCutoffAndTemplate(_ training: TrainingArguments, command: String) throws {
    if training.promptTemplateName != nil {
        throw HoneError.invalidArgument("--prompt-template-name does not apply to \(command): prompts are used as written")
    }
    if training.cutoffLen != nil { throw HoneError.invalidArgument("\(command) limits rows with --max-length, not --cutoff-len") }
}

// MARK: - KTO

struct TrainKTO: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kto",
        abstract: "Kahneman-Tversky Optimization on thumbs-up / thumbs-down completions (TRL's KTOTrainer with a PEFT adapter).",
        discussion: """
        Data: JSONL or a JSON array of {"prompt", "completion", "label"} with label true (desirable) or false \
        (undesirable); or DPO pairs ({"prompt", "chosen", "rejected"} or raw HH-RLHF dialogues), split as TRL does: \
        per block of 1000 pairs, the chosen completions (true) then the rejected ones (false). Completions end with \
        EOS; a completion's log-probability is the sum over its tokens.

        Loss (KTO paper, Ethayarajh et al. 2024, eq. 7-8; TRL 1.16 loss_type "kto"), r = policy − reference \
        log-probability of the completion:
          desirable    λ_D · (1 − σ(β (r − z)))
          undesirable  λ_U · (1 − σ(β (z − r)))
        z, the KL estimate, is the mean of policy − reference log-probability over mismatched rows made by rotating \
        each micro-batch's completions by one, (x₁,y_n), (x₂,y₁), …; computed without gradients and clamped at 0. \
        The micro-batch is TRL's per-device batch (at least 2), and examples are visited in data order every epoch \
        (TRL's sequential sampler), so the pairing is TRL's. When λ_D·n_D / (λ_U·n_U) leaves [1, 4/3], the run \
        prints TRL's advice on the weights. The reference is the base with the adapter off; with --init-adapter, the \
        base plus a frozen copy of it. metrics.jsonl gets kl, rewards/chosen, rewards/rejected, rewards/margins, \
        logps/chosen and logps/rejected, as TRL logs them.

        Defaults are TRL's KTOConfig: β 0.1, λ_D = λ_U = 1, lr 1e-6 linear without warm-up, batch 8 = micro-batch 8, \
        3 epochs, dropout off, --max-length 1024 (examples whose prompt fills it are dropped). LoRA usually wants a \
        higher learning rate (5e-6 to 5e-5).

        Example:
          hone train kto --base-model models/hone-tiny --data-path kto.jsonl --output-dir out-kto \\
            --beta 0.1 --desirable-weight 1.0 --undesirable-weight 1.0 --learning-rate 5e-5
        """)

    @OptionGroup var training: TrainingArguments

    @Option(name: .long, help: "β: strength of the tie to the reference model.")
    var beta = 0.1

    @Option(name: [.customLong("desirable-weight"), .customLong("desirable_weight")], help: "λ_D: weight of the desirable completions' losses.")
    var desirableWeight = 1.0

    @Option(name: [.customLong("undesirable-weight"), .customLong("undesirable_weight")], help: "λ_U: weight of the undesirable completions' losses.")
    var undesirableWeight = 1.0

    @OptionGroup var lengths: PreferenceLengthOptions
    @OptionGroup var runtime: RuntimeOptions

    func run() throws {
        try runtime.apply(distributed: true)
        try reportingErrors {
            try refuseCutoffAndTemplate(training, command: "kto")
            if training.groupByLength.value { throw HoneError.invalidArgument("--group-by-length does not apply to kto: TRL's KL pairing needs the data order") }
            let recipe = TrainingRecipe.kto
            let setup = try KTOTrainingSetup(
                baseModel: training.baseModel, dataPath: training.dataPath, maxLength: lengths.maxLength,
                settings: KTOSettings(beta: beta, desirableWeight: desirableWeight, undesirableWeight: undesirableWeight),
                microBatchSize: training.microBatchSize ?? recipe.microBatchSize,
                validationSize: training.valSetSize ?? recipe.validationSize, seed: training.seed)
            printWarning(setup.warning)
            try TrainingRun.run(training.settings, recipe: recipe, base: setup.base, objective: setup.objective,
                                summary: setup.summary, templateName: recipe.promptTemplate)
        }
    }
}

// MARK: - ORPO

struct TrainORPO: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "orpo",
        abstract: "Odds Ratio Preference Optimization on preference pairs, reference-free (TRL's ORPOTrainer).",
        discussion: """
        Data: as `hone train dpo`: {"prompt", "chosen", "rejected"} strings or raw HH-RLHF dialogues. Tokenized as \
        TRL's ORPOTrainer does: the tokenizer's BOS before each prompt, EOS after each completion, completions cut \
        to --max-length (pairs whose prompt fills it are dropped).

        Loss (ORPO paper, Hong et al. 2024, eq. 4-7; TRL 1.16), a_c, a_r = chosen / rejected completion log-probs \
        averaged over their tokens:
          log odds = (a_c − a_r) − (log(1 − e^a_c) − log(1 − e^a_r))
          L = NLL − λ · mean log σ(log odds)
        The NLL is the token mean of −log p over the micro-batch's chosen rows, every token after the first: prompt \
        and completion alike, as TRL's decoder-only ORPO computes it. No reference model. metrics.jsonl gets \
        rewards/chosen (λ·a_c), rewards/rejected, rewards/accuracies, rewards/margins, logps/chosen, logps/rejected \
        (averaged), nll_loss, log_odds_ratio (mean log σ) and log_odds_chosen (mean log odds), as TRL logs them.

        Defaults are TRL's ORPOConfig: λ (--beta) 0.1, lr 1e-6 linear without warm-up, batch 8 = micro-batch 8 (the \
        NLL's token mean is per micro-batch, as per TRL batch), 3 epochs, dropout off, --max-length 1024.

        Example:
          hone train orpo --base-model models/hone-tiny --data-path hh/dpo_train.jsonl --output-dir out-orpo \\
            --beta 0.1 --learning-rate 5e-5 --max-length 512
        """)

    @OptionGroup var training: TrainingArguments

    @Option(name: .long, help: "λ: weight of the odds-ratio term (TRL's beta).")
    var beta = 0.1

    @OptionGroup var lengths: PreferenceLengthOptions
    @OptionGroup var runtime: RuntimeOptions

    func run() throws {
        try runtime.apply(distributed: true)
        try reportingErrors {
            try refuseCutoffAndTemplate(training, command: "orpo")
            let recipe = TrainingRecipe.orpo
            let pairs = try ReferenceFreePairs(baseModel: training.baseModel, dataPath: training.dataPath, maxLength: lengths.maxLength,
                                               validationSize: training.valSetSize ?? recipe.validationSize, seed: training.seed)
            printWarning(pairs.warning)
            let objective = try OddsRatioObjective(training: pairs.training, validation: pairs.validation, settings: ORPOSettings(beta: beta))
            objective.dataDescription = "max_length=\(lengths.maxLength)"
            try TrainingRun.run(training.settings, recipe: recipe, base: pairs.base, objective: objective,
                                summary: pairs.summary + "; λ \(beta)", templateName: recipe.promptTemplate)
        }
    }
}

// MARK: - CPO and SimPO

/// `hone train cpo` and `hone train simpo`: TRL's CPOTrainer, with its CPOConfig defaults (cpo) or the SimPO
/// settings TRL documents (loss_type simpo, cpo_alpha 0).
struct CPOCommandOptions: ParsableArguments {
    @Option(name: [.customLong("loss-type"), .customLong("loss_type")], help: "sigmoid, hinge, ipo or simpo (default: the command's).")
    var lossType: String?

    @Option(name: .long, help: "β: the preference loss's temperature.")
    var beta = 0.1

    @Option(name: [.customLong("label-smoothing"), .customLong("label_smoothing")], help: "ε: the chance a label is flipped (sigmoid, simpo), in [0, 0.5).")
    var labelSmoothing = 0.0

    @Option(name: [.customLong("cpo-alpha"), .customLong("cpo_alpha")], help: "α: weight of the NLL on the chosen completions (0: off; default: the command's).")
    var cpoAlpha: Double?

    @Option(name: [.customLong("simpo-gamma"), .customLong("simpo_gamma")], help: "γ: SimPO's target reward margin (loss type simpo).")
    var simpoGamma = 0.5

    @OptionGroup var lengths: PreferenceLengthOptions

    func run(_ training: TrainingArguments, recipe: TrainingRecipe, defaultLoss: CPOLossType, defaultAlpha: Double) throws {
        try refuseCutoffAndTemplate(training, command: recipe.objective)
        let type: CPOLossType
        if let lossType {
            guard let chosen = CPOLossType(rawValue: lossType) else {
                throw HoneError.invalidArgument("--loss-type must be one of \(CPOLossType.allCases.map(\.rawValue).joined(separator: ", ")), not '\(lossType)'")
            }
            type = chosen
        } else {
            type = defaultLoss
        }
        let settings = CPOSettings(lossType: type, beta: beta, labelSmoothing: labelSmoothing, cpoAlpha: cpoAlpha ?? defaultAlpha,
                                   simpoGamma: simpoGamma)
        let pairs = try ReferenceFreePairs(baseModel: training.baseModel, dataPath: training.dataPath, maxLength: lengths.maxLength,
                                           validationSize: training.valSetSize ?? recipe.validationSize, seed: training.seed)
        printWarning(pairs.warning)
        let objective = try ContrastivePreferenceObjective(name: recipe.objective, training: pairs.training, validation: pairs.validation,
                                                           settings: settings)
        objective.dataDescription = "max_length=\(lengths.maxLength)"
        var summary = pairs.summary + "; loss \(type.rawValue), β \(beta), α \(settings.cpoAlpha)"
        if type == .simpo { summary += ", γ \(simpoGamma)" }
        if labelSmoothing > 0 { summary += ", label smoothing \(labelSmoothing)" }
        try TrainingRun.run(training.settings, recipe: recipe, base: pairs.base, objective: objective, summary: summary,
                            templateName: recipe.promptTemplate)
    }
}

private let cpoFormulas = """
Data: as `hone train dpo`, tokenized as TRL's CPOTrainer does (BOS before prompts, EOS after completions, completions \
cut to --max-length; pairs whose prompt fills it are dropped). No reference model. With π = the completion's \
log-probability, summed over its tokens (sigmoid, hinge) or averaged (ipo, simpo), h = π_chosen − π_rejected:
  sigmoid  −(1−ε) log σ(βh) − ε log σ(−βh)   (CPO: Xu et al. 2024, eq. 3)
  simpo    the same on h − γ/β              (SimPO: Meng et al. 2024, eq. 6)
  hinge    relu(1 − βh)
  ipo      (h − 1/(2β))²
  L = mean over pairs + α · NLL
The NLL is the token mean of −log p over the micro-batch's chosen completions (TRL 1.16's CPOTrainer). \
metrics.jsonl gets rewards/chosen (β·π_chosen), rewards/rejected, rewards/accuracies, rewards/margins, logps/chosen, \
logps/rejected and nll_loss, as TRL logs them.

"""

struct TrainCPO: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cpo",
        abstract: "Contrastive Preference Optimization on preference pairs, reference-free (TRL's CPOTrainer).",
        discussion: cpoFormulas + "\n" + """
        Defaults are TRL's CPOConfig: loss sigmoid, β 0.1, α (--cpo-alpha) 1, ε 0, γ 0.5 (simpo only), lr 1e-6 \
        linear without warm-up, batch 8 = micro-batch 8 (the NLL's token mean is per micro-batch, as per TRL batch), \
        3 epochs, dropout off, --max-length 1024.

        Example:
          hone train cpo --base-model models/hone-tiny --data-path hh/dpo_train.jsonl --output-dir out-cpo \\
            --beta 0.1 --cpo-alpha 1.0 --learning-rate 5e-5
        """)

    @OptionGroup var training: TrainingArguments
    @OptionGroup var options: CPOCommandOptions
    @OptionGroup var runtime: RuntimeOptions

    func run() throws {
        try runtime.apply(distributed: true)
        try reportingErrors { try options.run(training, recipe: .cpo, defaultLoss: .sigmoid, defaultAlpha: 1) }
    }
}

struct TrainSimPO: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simpo",
        abstract: "SimPO on preference pairs: TRL's CPOTrainer with loss_type simpo and cpo_alpha 0.",
        discussion: cpoFormulas + "\n" + """
        Defaults are the SimPO setting TRL documents for its CPOTrainer: loss simpo, α (--cpo-alpha) 0 (pure SimPO; \
        a non-zero α is CPO-SimPO), γ (--simpo-gamma) 0.5, β 0.1 and the rest of CPOConfig: lr 1e-6 linear without \
        warm-up, batch 8 = micro-batch 8, 3 epochs, dropout off, --max-length 1024. The SimPO paper itself trains \
        full models with β 2 to 2.5 and γ/β near 0.5.

        Example:
          hone train simpo --base-model models/hone-tiny --data-path hh/dpo_train.jsonl --output-dir out-simpo \\
            --beta 2.0 --simpo-gamma 1.0 --learning-rate 5e-5
        """)

    @OptionGroup var training: TrainingArguments
    @OptionGroup var options: CPOCommandOptions
    @OptionGroup var runtime: RuntimeOptions

    func run() throws {
        try runtime.apply(distributed: true)
        try reportingErrors { try options.run(training, recipe: .simpo, defaultLoss: .simpo, defaultAlpha: 0) }
    }
}
