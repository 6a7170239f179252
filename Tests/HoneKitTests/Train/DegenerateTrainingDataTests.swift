import Foundation
import Testing
@testable import HoneKit

/// Training data and options at their degenerate edges (found by probing every objective with empty, absent and
/// contradictory inputs): each used to crash, to stop a run as if it had diverged, or to write a mislabelled
/// adapter. Each must now end in one line naming what is wrong, or train on what is usable and say what was left out.
@Suite struct DegenerateTrainingDataTests {
    static let model = Repository.root.appendingPathComponent("models/hone-tiny").path
    static let alpaca = Repository.root.appendingPathComponent("examples/alpaca-sample.json").path

    static func train(_ objective: String, data: String, _ extra: [String] = []) throws -> (status: Int32, stdout: String, stderr: String) {
        try runProcess(Repository.honeExecutable, ["train", objective, "--base-model", model, "--data-path", data,
                                                   "--output-dir", try makeTemporaryDirectory().appendingPathComponent("out").path,
                                                   "--max-steps", "1", "--val-set-size", "0", "--threads", "1"] + extra)
    }

    static func expectRefused(_ result: (status: Int32, stdout: String, stderr: String), _ message: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(result.status == 1, "\(result.stderr)", sourceLocation: sourceLocation)
        #expect(!result.stderr.contains("Fatal error") && !result.stderr.contains("NSCocoaErrorDomain"), "\(result.stderr)",
                sourceLocation: sourceLocation)
        #expect(result.stderr.contains(message), "\(result.stderr)", sourceLocation: sourceLocation)
    }

    // MARK: - Data

    /// A PRO record with no response set the ranking length to 0, and the loss indexed its SFT response: a trap.
    @Test func rankingWithoutResponses() throws {
        let path = try temporaryFile("pro.jsonl", "{\"prefix\": [\"<|prompter|>Hi\", \"<|assistant|>\"], \"suffix\": [], \"reward\": []}\n")
        #expect(throws: HoneError.malformedRecord(path: path, line: 1, message: "\"suffix\" is empty; a record needs at least one response")) {
            try RankingData.read(path: path, rankingLength: nil)
        }
        Self.expectRefused(try Self.train("pro", data: path), "\"suffix\" is empty")
    }

    /// `train sft` peeks at the data to tell token ids from Alpaca records; on a directory that read trapped.
    @Test func dataPathThatIsADirectory() throws {
        let directory = try makeTemporaryDirectory().path
        Self.expectRefused(try Self.train("sft", data: directory), "\(directory): is a directory, expected a file")
    }

    /// A row of no token ids has no position to run: held out for validation it crashed the validation pass.
    @Test func emptyTokenRowIsRefused() throws {
        let path = try temporaryFile("ids.jsonl", "{\"input_ids\": [1, 5, 6]}\n{\"input_ids\": []}\n")
        #expect(throws: HoneError.malformedRecord(path: path, line: 2, message: "\"input_ids\" is empty")) {
            try PretokenizedData.read(path: path, cutoffLength: 8, vocabularySize: 10)
        }
    }

    /// Token ids as a JSON array (what `json.dump` of a list writes) read as such, not as Alpaca records missing
    /// "instruction"; an Alpaca file that mentions input_ids in its text is still Alpaca.
    @Test func tokenIDsAsAJSONArray() throws {
        let path = try temporaryFile("ids.json", "[{\"input_ids\": [1, 5, 6], \"labels\": [-100, 5, 6]}, {\"input_ids\": [2, 3]}]")
        let examples = try #require(try PretokenizedData.read(path: path, cutoffLength: 8, vocabularySize: 10))
        #expect(examples == [TrainingExample(inputIDs: [1, 5, 6], labels: [-100, 5, 6]), TrainingExample(inputIDs: [2, 3], labels: [2, 3])])
        let bad = try temporaryFile("ids-bad.json", "[{\"input_ids\": [1, 2]}, {\"input_ids\": [1, 12]}]")
        #expect(throws: HoneError.tokenOutOfRange(token: 12, vocabularySize: 10, location: "\(bad): record 2 \"input_ids\"")) {
            try PretokenizedData.read(path: bad, cutoffLength: 8, vocabularySize: 10)
        }
        let alpaca = try temporaryFile("alpaca.json", "[{\"instruction\": \"Explain \\\"input_ids\\\"\", \"input\": \"\", \"output\": \"Token ids.\"}]")
        #expect(try PretokenizedData.read(path: alpaca, cutoffLength: 8, vocabularySize: 10) == nil)
    }

    /// A validation row with no trained token (a prompt that fills the cutoff, labels all -100) made the validation
    /// loss 0/0, and the run stopped "on a non-finite validation loss" with nothing saved. It is left out and named.
    @Test func validationRowWithoutTrainedToken() throws {
        let path = try temporaryFile("ids.jsonl", "{\"input_ids\": [1, 5, 6, 7]}\n{\"input_ids\": [1, 8, 9]}\n"
                                                  + "{\"input_ids\": [1, 2, 3], \"labels\": [-100, -100, -100]}\n")
        // A seed whose split holds out the third record.
        let seed = try #require((0..<UInt64(64)).first { try DataOrder.validationSplit(count: 3, validationSize: 1, seed: $0).validation == [2] })
        let setup = try SupervisedTrainingSetup(baseModel: Self.model, dataPath: path, templateName: "alpaca", cutoffLength: 16,
                                                trainOnInputs: true, addEOSToken: false, validationSize: 1, seed: seed,
                                                cacheDirectory: nil)
        #expect(setup.objective.trainingCount == 2)
        #expect(setup.objective.validationCount == 0)
        #expect(setup.summary.contains("1 held out for validation with no trained token left, not validated on (record 3)"), "\(setup.summary)")
        // The same rows all in training: the message says why none trains (it blamed --train-on-inputs false).
        let untrained = try temporaryFile("untrained.jsonl", "{\"input_ids\": [1, 2], \"labels\": [-100, -100]}\n")
        Self.expectRefused(try Self.train("sft", data: untrained), "no training record has a trained token (every label is -100)")
    }

    /// Rows longer than the model's context (hone-tiny: 1,024 positions) trained at positions the model never saw,
    /// without a word: `--cutoff-len` above the context for sft, no `--max-length` for dpo, a large one for orpo.
    @Test func rowsPastTheContextAreNamed() throws {
        let ids = (0..<1100).map { String(3 + $0 % 400) }.joined(separator: ", ")
        let long = try temporaryFile("long.jsonl", "{\"input_ids\": [1, 5, 6]}\n{\"input_ids\": [\(ids)]}\n")
        let setup = try SupervisedTrainingSetup(baseModel: Self.model, dataPath: long, templateName: "alpaca", cutoffLength: 2048,
                                                trainOnInputs: true, addEOSToken: false, validationSize: 0, seed: 1, cacheDirectory: nil)
        #expect(setup.summary.contains("warning: 1 longer than the model's context of 1024 tokens, trained at positions it never saw (record 2)"),
                "\(setup.summary)")
        let within = try SupervisedTrainingSetup(baseModel: Self.model, dataPath: long, templateName: "alpaca", cutoffLength: 1024,
                                                 trainOnInputs: true, addEOSToken: false, validationSize: 0, seed: 1, cacheDirectory: nil)
        #expect(!within.summary.contains("context"), "\(within.summary)")
        let answer = String(repeating: "word ", count: 1200)
        let pairs = try temporaryFile("pairs.jsonl", "{\"chosen\": \(jsonString("\n\nHuman: Hi\n\nAssistant: " + answer)), "
                                                     + "\"rejected\": \"\\n\\nHuman: Hi\\n\\nAssistant: No.\"}\n")
        let dpo = try DPOTrainingSetup(baseModel: Self.model, dataPath: pairs, maxLength: nil, maxPromptLength: nil,
                                       settings: DPOSettings(), validationSize: 0, seed: 1)
        #expect(dpo.warning?.hasPrefix("1 pairs are longer than the model's context of 1024 tokens") == true, "\(dpo.warning ?? "none")")
        let cut = try DPOTrainingSetup(baseModel: Self.model, dataPath: pairs, maxLength: 512, maxPromptLength: nil,
                                       settings: DPOSettings(), validationSize: 0, seed: 1)
        #expect(cut.warning == nil)
        let orpo = try ReferenceFreePairs(baseModel: Self.model, dataPath: pairs, maxLength: 2048, validationSize: 0, seed: 1)
        #expect(orpo.warning?.contains("max_length 1024 keeps them within it") == true, "\(orpo.warning ?? "none")")
        #expect(try ReferenceFreePairs(baseModel: Self.model, dataPath: pairs, maxLength: 1024, validationSize: 0, seed: 1).warning == nil)
    }

    // MARK: - Adapters and options

    /// A reward model's adapter (LoRA plus a saved score head) as `--init-adapter` of a generation objective was
    /// trained, head included, and saved as a SEQ_CLS adapter; `train rm` still takes it.
    @Test func rewardAdapterIsNoPolicy() throws {
        let pairs = try temporaryFile("pairs.jsonl", "{\"prompt\": \"Say hi\", \"chosen\": \" Hi there.\", \"rejected\": \" No.\"}\n"
                                                     + "{\"prompt\": \"Say bye\", \"chosen\": \" Bye now.\", \"rejected\": \" Hi.\"}\n")
        let rewardAdapter = try makeTemporaryDirectory().appendingPathComponent("rm").path
        let trained = try runProcess(Repository.honeExecutable, ["train", "rm", "--base-model", Self.model, "--data-path", pairs,
                                                                 "--output-dir", rewardAdapter, "--max-steps", "1", "--val-set-size", "0", "--threads", "1"])
        #expect(trained.status == 0, "\(trained.stderr)")
        Self.expectRefused(try Self.train("sft", data: Self.alpaca, ["--init-adapter", rewardAdapter]),
                           "is a reward model's adapter (it saves 'score', task_type SEQ_CLS); sft trains a causal-LM adapter")
        Self.expectRefused(try Self.train("dpo", data: pairs, ["--init-adapter", rewardAdapter]), "dpo trains a causal-LM adapter")
        let again = try Self.train("rm", data: pairs, ["--init-adapter", rewardAdapter])
        #expect(again.status == 0, "\(again.stderr)")
    }

    /// Merging an adapter whose delta is zero (lora_alpha 0 here; an untrained adapter's lora_B is all zeros too)
    /// reported "100 % of the adapter's change survives" and wrote the base model; now refused unless forced.
    @Test func mergingAZeroChange() throws {
        let fixture = Repository.root.appendingPathComponent("Tests/HoneKitTests/Fixtures")
        let adapter = try makeTemporaryDirectory().appendingPathComponent("adapter")
        try FileManager.default.copyItem(at: fixture.appendingPathComponent("lora/llama-gqa/adapter"), to: adapter)
        let configURL = adapter.appendingPathComponent("adapter_config.json")
        var config = try JSONSerialization.jsonObject(with: Data(contentsOf: configURL)) as! [String: Any]
        config["lora_alpha"] = 0
        try JSONSerialization.data(withJSONObject: config).write(to: configURL)
        let base = fixture.appendingPathComponent("models/llama-gqa").path
        let output = try makeTemporaryDirectory().appendingPathComponent("merged").path
        let arguments = ["merge", "--base-model", base, "--adapter", adapter.path, "--output-dir", output, "--threads", "1"]
        Self.expectRefused(try runProcess(Repository.honeExecutable, arguments), "the adapter changes no weight")
        #expect(!FileManager.default.fileExists(atPath: output))
        let forced = try runProcess(Repository.honeExecutable, arguments + ["--force"])
        #expect(forced.status == 0, "\(forced.stderr)")
    }

    /// Weights that make every loss NaN were taken, and the run stopped as if training had diverged; a negative
    /// validation size was "leaving no training data"; both KTO weights at 0 trained nothing.
    @Test func optionsThatCannotTrain() throws {
        let cut = try NumericOptionTests.cutData()
        let ranking = try temporaryFile("pro.jsonl", "{\"prefix\": [\"<|prompter|>Hi\", \"<|assistant|>\"], \"suffix\": [\"Hello.\", \"No.\"], \"reward\": [2, 1]}\n"
                                                    + "{\"prefix\": [\"<|prompter|>Bye\", \"<|assistant|>\"], \"suffix\": [\"Bye.\", \"Hi.\"], \"reward\": [2, 1]}\n")
        let completions = try temporaryFile("kto.jsonl", "{\"prompt\": \"Say hi\", \"completion\": \" Hi.\", \"label\": true}\n"
                                                         + "{\"prompt\": \"Say hi\", \"completion\": \" No.\", \"label\": false}\n")
        Self.expectRefused(try Self.train("cut", data: cut, ["--weight-unlike", "nan"]), "--weight-unlike must be a finite number at least 0, not nan")
        Self.expectRefused(try Self.train("cut", data: cut, ["--threshold", "inf"]), "--threshold must be a positive finite number, not inf")
        Self.expectRefused(try Self.train("pro", data: ranking, ["--sft-weight", "nan"]), "--sft-weight must be a finite number at least 0, not nan")
        Self.expectRefused(try Self.train("sft", data: Self.alpaca, ["--val-set-size=-1"]), "--val-set-size must be at least 0, not -1")
        Self.expectRefused(try Self.train("kto", data: completions, ["--desirable-weight", "0", "--undesirable-weight", "0"]),
                           "cannot both be 0")
    }

    /// TRL's class-weight advice divides by the class counts: with one class empty it advised a weight that cannot
    /// help (or the range [0.0, 0.0]).
    @Test func ktoAdviceWithAnEmptyClassOrAZeroWeight() throws {
        let settings = KTOSettings()
        let advice = try #require(KTOLoss.weightAdvice(desirable: 2, undesirable: 0, settings: settings))
        #expect(advice.contains("with no undesirable example only one half of KTO's loss trains"), "\(advice)")
        #expect(!advice.contains("in ["), "\(advice)")
        let silenced = try #require(KTOLoss.weightAdvice(desirable: 2, undesirable: 3, settings: KTOSettings(undesirableWeight: 0)))
        #expect(silenced.contains("\(OptionName("undesirable_weight")) 0: the undesirable completions do not train"), "\(silenced)")
    }

    /// A loss of 1e308 (a reward margin that large) printed as a 309-digit number, and loss.svg drew at y = NaN.
    @Test func hugeLossesPrintAndPlot() {
        #expect(lossText(2.45123) == "2.4512")
        #expect(lossText(1e308) == "1.0000e+308")
        let records = [StepRecord(step: 1, loss: 1e308, learningRate: 1e-4, gradientNorm: 1, tokensPerSecond: 1, evalLoss: nil, metrics: [:]),
                       StepRecord(step: 2, loss: -1e308, learningRate: 1e-4, gradientNorm: 1, tokensPerSecond: 1, evalLoss: -1e308, metrics: [:])]
        let svg = LossPlot.svg(records)
        #expect(!svg.lowercased().contains("nan") && !svg.contains("inf"), "\(svg)")
        #expect(svg.contains(">1e+308<") && svg.contains(">-1e+308<"), "\(svg)")
    }

    /// `--help` showed option defaults as Swift values: "FlexibleBool(value: false)", "DownsampleRate(rate: …)".
    @Test func helpShowsPlainDefaults() throws {
        let sft = try runProcess(Repository.honeExecutable, ["train", "sft", "--help"])
        let cut = try runProcess(Repository.honeExecutable, ["train", "cut", "--help"])
        #expect(!sft.stdout.contains("FlexibleBool") && sft.stdout.contains("(default: false)"), "\(sft.stdout)")
        #expect(!cut.stdout.contains("DownsampleRate") && cut.stdout.contains("(default: 0.25)"), "\(cut.stdout)")
    }
}
