import Foundation
import Testing
@testable import HoneKit

/// Reward-model training against TRL's RewardTrainer with a PEFT adapter (LoRA + modules_to_save score), from
/// tools/oracle/make_reward_fixtures.py, and end to end on a tiny model.
@Suite("Reward models against TRL's RewardTrainer")
struct RewardModelTests {
    static let directory = Repository.fixture("reward")

    static func cases() throws -> [String: [String: Any]] {
        let root = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: directory + "/rm_cases.json"))) as! [String: Any]
        var cases: [String: [String: Any]] = [:]
        for item in root["cases"] as! [[String: Any]] { cases[item["name"] as! String] = item }
        return cases
    }

    static func ids(_ value: Any?) -> [Int32] { (value as! [NSNumber]).map { Int32($0.intValue) } }

    /// The engine over llama-gqa with the oracle's adapter (LoRA + score), gradients zero, and the case's objective.
    static func setUp(_ name: String, checkpointing: Bool = false, model: String = "models/llama-gqa") throws
        -> (TrainingEngine, RewardModelObjective, [String: Any]) {
        let item = try #require(try cases()[name])
        let loaded = try LoadedModel.open(Repository.fixture(model))
        let (adapters, _) = try PEFTAdapter.load(directory: directory + "/rm_adapter", for: loaded.model)
        #expect(adapters.savedModule("score")?.shape == [1, 64])
        let engine = try TrainingEngine(loaded: loaded, adapters: adapters)
        engine.gradientCheckpointing = checkpointing
        for (_, _, adapter) in adapters.ordered {
            adapter.allocateGradients()
            adapter.zeroGradients()
        }
        let margins = (item["margins"] as? [NSNumber])?.map(\.doubleValue)
        let pairs = (item["pairs"] as! [[String: Any]]).enumerated().map { index, pair in
            RewardPairExample(chosen: ids(pair["chosen_ids"]), rejected: ids(pair["rejected_ids"]), margin: margins?[index] ?? 0)
        }
        let settings = RewardModelSettings(centerRewardsCoefficient: (item["center_rewards_coefficient"] as? NSNumber)?.doubleValue,
                                           padTokenID: Int32((item["pad_token_id"] as! NSNumber).intValue))
        let objective = try RewardModelObjective(training: pairs, validation: [], settings: settings,
                                                 initialScore: [Float](repeating: 0, count: 64))
        _ = objective.prepare(adapters: adapters, fromInitAdapter: true)
        return (engine, objective, item)
    }

    @Test("Loss, every LoRA and score-head gradient and the logged figures equal TRL's within 1e-4 relative",
          arguments: ["rm", "rm-margin", "rm-center"])
    func lossAndGradients(name: String) throws {
        for checkpointing in [false, true] {
            let (engine, objective, item) = try Self.setUp(name, checkpointing: checkpointing)
            let all = Array(0..<objective.trainingCount)
            let result = try objective.accumulate(microBatch: all, step: all, engine: engine)
            let expected = (item["loss"] as! NSNumber).doubleValue
            #expect(abs(result.loss - expected) <= 1e-4 * max(1, abs(expected)), "\(name): loss \(result.loss) vs \(expected)")
            let gradients = try SafetensorsFile(path: Self.directory + "/rm_gradients.safetensors")
            var compared = 0
            for (layer, module, adapter) in engine.adapters.ordered {
                let prefix = engine.adapters.peftPrefix(layer: layer, module: module)
                for (suffix, gradient) in [(".lora_A.weight", adapter.gradientA!), (".lora_B.weight", adapter.gradientB!)] {
                    let reference = try #require(gradients.tensors["\(name)/\(prefix)\(suffix)"]).floats()
                    let difference = relativeDifference(gradient.array, reference)
                    #expect(difference < 1e-4, "\(name) \(prefix + suffix): relative difference \(difference)")
                    compared += 1
                }
            }
            let score = try #require(engine.adapters.savedModule("score"))
            let reference = try #require(gradients.tensors["\(name)/base_model.model.score.weight"]).floats()
            #expect(relativeDifference(score.gradient!.array, reference) < 1e-4, "\(name) score gradient")
            #expect(compared == 2 * 3 * 2)
            for (key, value) in item["metrics"] as! [String: Any] {
                let ours = try #require(result.metrics[key], "\(key) missing")
                let theirs = (value as! NSNumber).doubleValue
                #expect(abs(ours - theirs) <= 1e-4 * max(1, abs(theirs)), "\(name) \(key): \(ours) vs \(theirs)")
            }
        }
    }

    @Test("Rewards without gradients equal TRL's per-row rewards; micro-batches add up to the step")
    func rewardsAndMicroBatches() throws {
        let (engine, objective, item) = try Self.setUp("rm-margin")
        let rewards = try objective.evaluateTraining(engine: engine, microBatchSize: 2)
        let expected = item["rewards"] as! [String: [NSNumber]]
        #expect(maxAbsDifference(rewards.map(\.chosen), expected["chosen"]!.map(\.doubleValue)) < 1e-4)
        #expect(maxAbsDifference(rewards.map(\.rejected), expected["rejected"]!.map(\.doubleValue)) < 1e-4)
        let all = Array(0..<objective.trainingCount)
        let (split, _, _) = try Self.setUp("rm-margin")
        let whole = try objective.accumulate(microBatch: all, step: all, engine: engine)
        var loss = 0.0
        for index in all { loss += try objective.accumulate(microBatch: [index], step: all, engine: split).loss }
        #expect(abs(loss - whole.loss) < 1e-6 * max(1, abs(whole.loss)))
        #expect(relativeDifference(split.adapters.savedModule("score")!.gradient!.array,
                                   engine.adapters.savedModule("score")!.gradient!.array) < 1e-5)
    }

    @Test("Margins from Llama 2's ratings: small 1, 2/3, 1/3, 0; large 3, 2, 1, 0; records read and checked")
    func margins() throws {
        #expect(RewardMarginScale.small.margin(forRating: RewardMarginScale.ratingIndex("Significantly Better")!) == 1)
        #expect(RewardMarginScale.small.margin(forRating: RewardMarginScale.ratingIndex("better")!) == 2.0 / 3)
        #expect(RewardMarginScale.large.margin(forRating: RewardMarginScale.ratingIndex("slightly better")!) == 1)
        #expect(RewardMarginScale.large.margin(forRating: RewardMarginScale.ratingIndex("unsure")!) == 0)
        #expect(RewardMarginScale.none.margin(forRating: 0) == 0)
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("pairs.jsonl").path
        try """
        {"prompt": "Q: ", "chosen": "yes", "rejected": "no", "rating": "better"}
        {"chosen": "\\n\\nHuman: hi\\n\\nAssistant: hello", "rejected": "\\n\\nHuman: hi\\n\\nAssistant: go", "margin": 0.5}
        {"prompt": "Q: ", "chosen": "a", "rejected": "b"}
        """.write(toFile: path, atomically: true, encoding: .utf8)
        let read = try RewardData.read(path: path, scale: .large)
        #expect(read.map(\.margin) == [2, 0.5, 0])
        #expect(read[0].chosen == "Q: yes" && read[1].rejected.hasSuffix("go"))
        try "{\"chosen\": \"a\", \"rejected\": \"b\", \"rating\": \"much better\"}\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: HoneError.self) { try RewardData.read(path: path, scale: .small) }
    }

    @Test("The loss's derivatives match finite differences (with margin and centering)")
    func derivatives() {
        let (c, r, m, k) = (0.7, -0.2, 0.4, 0.05)
        let value = RewardModelLoss.pair(chosen: c, rejected: r, margin: m, center: k)
        let h = 1e-6
        let dc = (RewardModelLoss.pair(chosen: c + h, rejected: r, margin: m, center: k).loss - RewardModelLoss.pair(chosen: c - h, rejected: r, margin: m, center: k).loss) / (2 * h)
        let dr = (RewardModelLoss.pair(chosen: c, rejected: r + h, margin: m, center: k).loss - RewardModelLoss.pair(chosen: c, rejected: r - h, margin: m, center: k).loss) / (2 * h)
        #expect(abs(value.chosen - dc) < 1e-6 && abs(value.rejected - dr) < 1e-6)
    }

    @Test("A saved reward adapter reads back (score included) and PEFT's config says SEQ_CLS with modules_to_save score")
    func saveAndLoad() throws {
        let (engine, _, _) = try Self.setUp("rm")
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try PEFTAdapter.save(engine.adapters, baseModel: "llama-gqa", record: .init(padTokenID: 2), to: directory.path)
        let config = try JSONConfig(path: directory.path + "/adapter_config.json").values
        #expect(config["task_type"] as? String == "SEQ_CLS")
        #expect(config["modules_to_save"] as? [String] == ["score"])
        let loaded = try LoadedModel.open(Repository.fixture("models/llama-gqa"))
        let (set, record) = try PEFTAdapter.load(directory: directory.path, for: loaded.model)
        #expect(record.padTokenID == 2)
        #expect(set.savedModule("score")!.weight.array == engine.adapters.savedModule("score")!.weight.array)
    }

    @Test("GGUF bases: f32 (Q/K rows permuted) gives TRL's loss and figures; a Q8_0 base trains with finite gradients close to them")
    func ggufBases() throws {
        for (model, tolerance) in [("gguf/llama-gqa-f32.gguf", 1e-4), ("gguf/llama-gqa-q8_0.gguf", 3e-2)] {
            let (engine, objective, item) = try Self.setUp("rm-margin", model: model)
            let all = Array(0..<objective.trainingCount)
            let result = try objective.accumulate(microBatch: all, step: all, engine: engine)
            let expected = (item["loss"] as! NSNumber).doubleValue
            #expect(abs(result.loss - expected) <= tolerance * max(1, abs(expected)), "\(model): loss \(result.loss) vs \(expected)")
            #expect(engine.adapters.firstNonFiniteGradient() == nil)
            let gradients = try SafetensorsFile(path: Self.directory + "/rm_gradients.safetensors")
            let reference = gradients.tensors["rm-margin/base_model.model.score.weight"]!.floats()
            #expect(relativeDifference(engine.adapters.savedModule("score")!.gradient!.array, reference) < tolerance * 10, "\(model) score gradient")
        }
    }

    @Test("Merging a reward adapter writes a sequence-classification directory whose rewards are the adapter's")
    func merge() throws {
        let (engine, _, item) = try Self.setUp("rm-margin")
        let base = try LoadedModel.open(Repository.fixture("models/llama-gqa"))
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try AdapterMerge.writeHuggingFace(base: base, adapters: engine.adapters, to: directory.path, force: false,
                                          record: .init(padTokenID: 2))
        let merged = try LoadedModel.open(directory.path)
        let head = try #require(merged.scoreHead)
        #expect(head.padTokenID == 2)
        let config = try JSONConfig(path: directory.path + "/config.json").values
        #expect(config["architectures"] as? [String] == ["LlamaForSequenceClassification"] && config["num_labels"] as? Int == 1)
        let pairs = (item["pairs"] as! [[String: Any]])
        let rows = pairs.map { Self.ids($0["chosen_ids"]) } + pairs.map { Self.ids($0["rejected_ids"]) }
        let rewards = try RewardScorer(loaded: merged).rewards(rows).map(Double.init)
        let expected = item["rewards"] as! [String: [NSNumber]]
        #expect(maxAbsDifference(rewards, (expected["chosen"]! + expected["rejected"]!).map(\.doubleValue)) < 1e-4)
    }
}
