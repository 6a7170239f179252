import ArgumentParser
import Foundation
import HoneKit

// MARK: - CUT

struct TrainCUT: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cut",
        abstract: "Contrastive Unlikelihood Training on judged replies (CUT's finetune_unlikelihood.py).",
        discussion: """
        Data: a JSON array or JSONL of {"instruction", "input" (optional), "output", "judgment", "score" (optional)} \
        as `hone data judgments` writes it. A record whose judgment is null (or whose score is 7 or more) trains its \
        reply as Align-P (plain likelihood). A record with a judgment gives an Align-N row (the prompt with the \
        judgment, likelihood) and a Misalign row (the same reply without it): reply tokens whose probability the \
        judgment raises by more than --threshold (λ) get the unlikelihood term α·log(1 − p), the others likelihood. \
        A micro-batch's loss is (L_like + L_unlike) / 2 when it holds a pair, else L_like. Rows are cut from the left \
        to --cutoff-len and end with a trained EOS.

        Defaults follow the CUT README's online run (Llama2-13b-chat, iteration 1): batch 8, micro-batch 1, one \
        epoch, lr 4e-4 cosine with 100 warm-up steps, cutoff 2048, LoRA r 16 / alpha 16 / dropout 0.05 on \
        gate/down/up, α 1, λ 1.1, Align-P records down-sampled to 0.25 × the judged ones. \
        --cut-prompt-wrap double reproduces the released code, which wraps the formatted prompt in the Alpaca \
        prompt a second time; single is the paper's form (and what generation uses).

        Example:
          hone train cut --base-model models/hone-tiny --data-path judgments.json --output-dir out-cut \\
            --weight-unlike 1 --threshold 1.1 --downsample 0.25
        """)

    @OptionGroup var training: TrainingArguments

    @Option(name: .long, help: "λ: a reply token is unlikely when p(y|x, judgment) / p(y|x) exceeds it.")
    var threshold = 1.1

    @Option(name: [.customLong("weight-unlike"), .customLong("weight_unlike")], help: "α: weight of the unlikelihood term.")
    var weightUnlike = 1.0

    @Option(name: .long, help: "Keep at most int(judged × this) Align-P records, chosen with --seed ('off' or --downsample=-1: keep all).")
    var downsample = DownsampleRate(argument: "0.25")!

    @Option(name: .customLong("cut-prompt-wrap"), help: "double (CUT's released code) or single (the paper).")
    var cutPromptWrap = "double"

    @OptionGroup var runtime: RuntimeOptions

    func run() throws {
        try runtime.apply(distributed: true)
        try reportingErrors {
            guard let wrap = CUTPromptWrap(rawValue: cutPromptWrap) else {
                throw HoneError.invalidArgument("--cut-prompt-wrap must be double or single, not '\(cutPromptWrap)'")
            }
            var recipe = TrainingRecipe.cut
            recipe.eosPolicy = "cut: EOS appended and trained; prompt wrap \(wrap.rawValue)"
            let templateName = training.promptTemplateName ?? recipe.promptTemplate
            let setup = try CUTTrainingSetup(
                baseModel: training.baseModel, dataPath: training.dataPath, templateName: templateName,
                cutoffLength: training.cutoffLen ?? recipe.cutoffLength, wrap: wrap,
                settings: CUTSettings(threshold: threshold, weightUnlike: weightUnlike),
                downsample: downsample.rate, validationSize: training.valSetSize ?? recipe.validationSize,
                seed: training.seed)
            try TrainingRun.run(training.settings, recipe: recipe, base: setup.base, objective: setup.objective,
                                summary: setup.summary, templateName: templateName)
        }
    }
}

/// CUT's `downsample`: a rate, or off ("off", or -1 as CUT writes it).
struct DownsampleRate: ExpressibleByArgument {
    let rate: Double?
    init?(argument: String) {
        if ["off", "-1", "none"].contains(argument.lowercased()) {
            rate = nil
        } else if let value = Double(argument), value >= 0, value.isFinite {
            rate = value
        } else {
            return nil
        }
    }

    /// What `--help` shows as the default.
    var defaultValueDescription: String { rate.map { "\($0)" } ?? "off" }
}

// MARK: - DPO

struct TrainDPO: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dpo",
        abstract: "Direct Preference Optimization on preference pairs (TRL's DPOTrainer with a PEFT adapter).",
        discussion: """
        Data: JSONL or a JSON array of {"prompt", "chosen", "rejected"} strings (what `hone data hh-rlhf` writes), \
        or raw HH-RLHF {"chosen", "rejected"} dialogues, whose prompt is their common prefix backed off to the last \
        "\\n\\nAssistant:" (pairs without one are dropped and counted). Completions follow the prompt directly and \
        end with EOS; a completion's log-probability is the sum over its tokens.

        The reference model is the base with the adapter switched off; with --init-adapter it is the base plus a \
        frozen copy of that adapter, while a copy of it trains (TRL's "ref" adapter). Loss per pair, h = policy − \
        reference log-ratio of chosen minus that of rejected:
          sigmoid  −log σ(βh); with --label-smoothing ε: −(1−ε) log σ(βh) − ε log σ(−βh) (TRL v0.7.11's cDPO; TRL 1.x ignores ε here)
          ipo      (h̄ − 1/(2β))², h̄ from per-token averaged log-probs
          hinge    relu(1 − βh)
          robust   [−(1−ε) log σ(βh) + ε log σ(−βh)] / (1 − 2ε)
        metrics.jsonl gets rewards/chosen, rewards/rejected, rewards/accuracies, rewards/margins, logps/chosen and \
        logps/rejected, as TRL logs them.

        Defaults are TRL's: β 0.1, lr 1e-6 linear without warm-up, batch 8, 3 epochs, dropout off, --max-length \
        1024 keeping the start (pairs whose prompt fills it are dropped). --max-prompt-length switches to TRL \
        v0.7.11's rule: a too-long pair keeps its prompt's BOS and last tokens, then cuts the completions. LoRA \
        usually wants a higher learning rate than TRL's full-model default (5e-6 to 5e-5).

        Example:
          hone train dpo --base-model models/hone-tiny --data-path hh/dpo_train.jsonl --output-dir out-dpo \\
            --beta 0.1 --loss-type sigmoid --learning-rate 5e-5 --max-length 512
        """)

    @OptionGroup var training: TrainingArguments

    @Option(name: [.customLong("loss-type"), .customLong("loss_type")], help: "sigmoid, ipo, hinge or robust.")
    var lossType = "sigmoid"

    @Option(name: .long, help: "β: strength of the tie to the reference model.")
    var beta = 0.1

    @Option(name: [.customLong("label-smoothing"), .customLong("label_smoothing")], help: "ε: the chance a label is flipped (sigmoid, robust), in [0, 0.5).")
    var labelSmoothing = 0.0

    @Flag(name: [.customLong("precompute-ref-log-probs"), .customLong("precompute_ref_log_probs")],
          help: "Compute every reference log-probability once before training (saves a pass per step).")
    var precomputeRefLogProbs = false

    @Option(name: [.customLong("max-length"), .customLong("max_length")], help: "Tokens per row (prompt + completion) at most.")
    var maxLength = 1024

    @Option(name: [.customLong("max-prompt-length"), .customLong("max_prompt_length")],
            help: "Prompt tokens at most when a pair is too long (TRL v0.7.11's rule; default: off, TRL HEAD's).")
    var maxPromptLength: Int?

    @OptionGroup var runtime: RuntimeOptions

    func run() throws {
        try runtime.apply(distributed: true)
        try reportingErrors {
            guard let type = DPOLossType(rawValue: lossType) else {
                throw HoneError.invalidArgument("--loss-type must be one of \(DPOLossType.allCases.map(\.rawValue).joined(separator: ", ")), not '\(lossType)'")
            }
            if training.promptTemplateName != nil {
                throw HoneError.invalidArgument("--prompt-template-name does not apply to dpo: prompts are used as written")
            }
            if training.cutoffLen != nil { throw HoneError.invalidArgument("dpo limits rows with --max-length, not --cutoff-len") }
            let recipe = TrainingRecipe.dpo
            let settings = DPOSettings(lossType: type, beta: beta, labelSmoothing: labelSmoothing,
                                       precomputeReferenceLogProbabilities: precomputeRefLogProbs)
            let setup = try DPOTrainingSetup(baseModel: training.baseModel, dataPath: training.dataPath, maxLength: maxLength,
                                             maxPromptLength: maxPromptLength, settings: settings,
                                             validationSize: training.valSetSize ?? recipe.validationSize, seed: training.seed)
            printWarning(setup.warning)
            try TrainingRun.run(training.settings, recipe: recipe, base: setup.base, objective: setup.objective,
                                summary: setup.summary, templateName: recipe.promptTemplate)
        }
    }
}

// MARK: - PRO

struct TrainPRO: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pro",
        abstract: "Preference Ranking Optimization on ranked responses (PRO / ScalingAlignment).",
        discussion: """
        Data: JSONL of {"prefix", "suffix", "reward", "sft_index" (optional)}: responses best first with descending \
        rewards, each with its prompt turns ("<|prompter|>…", "<|assistant|>…", ending with "<|assistant|>"), as \
        `hone data hh-rlhf` and `hone data sample` write them. The prompt is the turns with "\\n\\nHuman: " / \
        "\\n\\nAssistant: " (left-cut to --max-prompt-length tokens), each row prompt + " " + response + EOS, cut \
        to --cutoff-len (PRO's block size). Every response token and the EOS are scored (PRO scores the EOS only for \
        rows shorter than the longest of their batch; Hone always does, so a score never depends on the batch).

        Loss per record, s_k = mean log-prob of response k, τ_kj = r_k − r_j:
          Σ_{k<n−1} [log(1e-10 + e^{s_k τ_kk} + Σ_{j>k} e^{s_j τ_kj}) − s_k τ_kk] − 0.05·(n−1)²·(summed log-prob of response sft_index)
        with τ_kk = max_{j>k} τ_kj; for --ranking-len 1 the loss is the SFT term alone. metrics.jsonl gets \
        pro/ranking_loss, pro/sft_loss and pro/ordered (records whose scores are in the ranked order).

        Defaults follow PRO's LLaMA runs: lr 5e-6 constant, 2 epochs, weight decay 0.01, batch 16, block 512, \
        prompt 384 tokens. PRO trains the full model; LoRA usually wants a higher learning rate.

        Example:
          hone train pro --base-model models/hone-tiny --data-path hh/pro_train.jsonl --output-dir out-pro \\
            --ranking-len 2 --learning-rate 5e-5
        """)

    @OptionGroup var training: TrainingArguments

    @Option(name: [.customLong("ranking-len"), .customLong("ranking_len")],
            help: "Responses per record to rank (the first ones; default: the data's own count, 2 to 4 in PRO).")
    var rankingLen: Int?

    @Option(name: [.customLong("max-prompt-length"), .customLong("max_prompt_length")],
            help: "Prompt tokens at most, BOS included (default: --cutoff-len − 128, PRO's 384).")
    var maxPromptLength: Int?

    @Option(name: [.customLong("sft-weight"), .customLong("sft_weight")], help: "Weight of the SFT term (scaled by (n−1)²).")
    var sftWeight = PROLoss.defaultSFTWeight

    @OptionGroup var runtime: RuntimeOptions

    func run() throws {
        try runtime.apply(distributed: true)
        try reportingErrors {
            if training.promptTemplateName != nil {
                throw HoneError.invalidArgument("--prompt-template-name does not apply to pro: prompts are built from the turns")
            }
            let recipe = TrainingRecipe.pro
            let blockSize = training.cutoffLen ?? recipe.cutoffLength
            let setup = try PROTrainingSetup(baseModel: training.baseModel, dataPath: training.dataPath, rankingLength: rankingLen,
                                             blockSize: blockSize, maxPromptLength: maxPromptLength ?? max(1, blockSize - 128),
                                             sftWeight: sftWeight, validationSize: training.valSetSize ?? recipe.validationSize,
                                             seed: training.seed)
            try TrainingRun.run(training.settings, recipe: recipe, base: setup.base, objective: setup.objective,
                                summary: setup.summary, templateName: recipe.promptTemplate)
        }
    }
}
