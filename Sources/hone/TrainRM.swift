import ArgumentParser
import Foundation
import HoneKit

struct TrainRM: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rm",
        abstract: "Train a reward model on preference pairs (Llama 2's ranking loss; TRL's RewardTrainer with PEFT).",
        discussion: """
        Data: a JSON array or JSONL of {"prompt" (optional), "chosen", "rejected"} plus an optional "margin" (a \
        number) or "rating" (Llama 2's strengths: "significantly better", "better", "slightly better", \
        "negligibly better" / "unsure"). Raw HH-RLHF {chosen, rejected} dialogues work as they are. Each text is \
        prompt + response + EOS; its reward is the score head's output at its last token that is not the padding \
        token (the tokenizer's pad token, else its EOS, as TRL does).

        Loss per pair: −log σ(r_chosen − r_rejected − m), with m the record's margin or its rating mapped by \
        --margin (small: 1, 2/3, 1/3, 0; large: 3, 2, 1, 0; none: 0), plus c·(r_chosen + r_rejected)² with \
        --center-rewards-coefficient c. LoRA adapts the chosen modules and the score head is trained in full; the \
        output is a PEFT adapter with modules_to_save ["score"] (task SEQ_CLS), which PeftModel loads on \
        AutoModelForSequenceClassification and `hone reward --adapter` reads. metrics.jsonl gets accuracy, margin, \
        mean_reward, rewards/chosen, rewards/rejected (and eval_… for the validation split).

        Defaults follow TRL's RewardConfig: lr 1e-4 linear, 3 epochs, batch 8, LoRA dropout 0, max length 1024.

        Example:
          hone train rm --base-model models/hone-tiny --data-path pairs.jsonl --output-dir out-rm \\
            --margin small --val-set-size 50
        """)

    @OptionGroup var training: TrainingArguments

    @Option(name: .long, help: "Margins from ratings: none, small (1, 2/3, 1/3, 0) or large (3, 2, 1, 0).")
    var margin = "none"

    @Option(name: [.customLong("max-length"), .customLong("max_length")],
            help: "Drop pairs with a text longer than this many tokens (TRL's max_length; 0: keep all).")
    var maxLength = TrainingRecipe.rm.cutoffLength

    @Option(name: [.customLong("center-rewards-coefficient"), .customLong("center_rewards_coefficient")],
            help: "c in c·mean((r_chosen + r_rejected)²), keeping rewards centred (TRL's center_rewards_coefficient).")
    var centerRewardsCoefficient: Double?

    @OptionGroup var runtime: RuntimeOptions

    func run() throws {
        try runtime.apply(distributed: true)
        try reportingErrors {
            guard let scale = RewardMarginScale(rawValue: margin.lowercased()) else {
                throw HoneError.invalidArgument("--margin must be none, small or large, not '\(margin)'")
            }
            if training.promptTemplateName != nil {
                throw HoneError.invalidArgument("--prompt-template-name does not apply to rm: texts are used as written")
            }
            if training.cutoffLen != nil {
                throw HoneError.invalidArgument("rm takes --max-length, not --cutoff-len")
            }
            guard maxLength >= 0 else {
                throw HoneError.invalidArgument("--max-length must be at least 0 (0: keep all), not \(maxLength)")
            }
            let recipe = TrainingRecipe.rm
            let setup = try RewardModelTrainingSetup(
                baseModel: training.baseModel, dataPath: training.dataPath, marginScale: scale,
                maxLength: maxLength > 0 ? maxLength : nil, centerRewardsCoefficient: centerRewardsCoefficient,
                validationSize: training.valSetSize ?? recipe.validationSize, seed: training.seed)
            try TrainingRun.run(training.settings, recipe: recipe, base: setup.base, objective: setup.objective,
                                summary: setup.summary, templateName: recipe.promptTemplate, padTokenID: setup.padTokenID)
        }
    }
}
