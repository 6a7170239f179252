import Foundation
import Testing
@testable import HoneKit

/// GPT-NeoX against transformers, PEFT and TRL (fixtures from tools/oracle/make_neox_fixtures.py): rewards of a
/// sequence-classification model, one LoRA SFT step and one reward-model step. Log-probs and cached decoding of the
/// causal models are checked with the other architectures in GoldenLogprobTests.
@Suite("GPT-NeoX against transformers, PEFT and TRL")
struct GPTNeoXTests {
    static let directory = Repository.fixture("neox")
    static let rewardModel = Repository.fixture("neox/models/neox-rm")

    static func json(_ path: String) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
    }

    static func ids(_ value: Any?) -> [Int32] { (value as! [NSNumber]).map { Int32($0.intValue) } }

    // MARK: - Loading

    @Test("Both config styles load: rotary fraction, base, residual form, activation and biases as transformers reads them")
    func configs() throws {
        let parallel = try LoadedModel.open(Repository.fixture("models/neox-parallel")).config
        #expect(parallel.modelType == "gpt_neox" && parallel.parallelResidual && parallel.hiddenActivation == "gelu")
        #expect(parallel.rotaryDimension == 4 && parallel.headDimension == 16 && parallel.ropeTheta == 10000)
        #expect(parallel.queryKeyValueBias && !parallel.tieWordEmbeddings)
        let sequential = try LoadedModel.open(Repository.fixture("models/neox-sequential")).config
        #expect(!sequential.parallelResidual && sequential.hiddenActivation == "gelu_new" && !sequential.queryKeyValueBias)
        #expect(sequential.rotaryDimension == 8 && sequential.ropeTheta == 500)
        let modules = ModelArchitecture.gptNeoX.adaptableModules
        #expect(try modules.resolve("[q_proj,v_proj]", architecture: "gpt_neox") == ["query_key_value"])
        #expect(try modules.resolve("q,k,v,o,gate,up,down", architecture: "gpt_neox")
            == ["query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"])
        #expect(throws: HoneError.self) { try modules.resolve("[fc1]", architecture: "gpt_neox") }
        // Spaces separate names (they were removed: "q_proj v_proj" became 'q_projv_proj'); PEFT's "all-linear".
        #expect(try modules.resolve("q_proj v_proj", architecture: "gpt_neox") == ["query_key_value"])
        #expect(try modules.resolve("all-linear", architecture: "gpt_neox") == modules.names)
        let loaded = try LoadedModel.open(Self.rewardModel)
        #expect(loaded.scoreHead?.labels == 1 && loaded.scoreHead?.padTokenID == 0)
        #expect(ModelSummary(loaded).head.contains("sequence classification"))
    }

    @Test("A config missing a required field, or with an unusable rotary fraction, is one error naming file and field")
    func badConfigs() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let source = Repository.fixture("models/neox-sequential")
        for file in ["config.json", "model.safetensors"] {
            try FileManager.default.copyItem(atPath: source + "/" + file, toPath: directory.appendingPathComponent(file).path)
        }
        let configPath = directory.appendingPathComponent("config.json").path
        let original = try Self.json(configPath)
        for (edit, expected) in [("num_attention_heads", "num_attention_heads"), ("intermediate_size", "intermediate_size")] {
            var config = original
            config.removeValue(forKey: edit)
            try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: configPath))
            do {
                _ = try LoadedModel.open(directory.path)
                Issue.record("a config without \(edit) loaded")
            } catch {
                let message = String(describing: error)
                #expect(message.contains(configPath) && message.contains(expected) && !message.contains("\n"), "\(message)")
            }
        }
        var config = original
        config["rotary_pct"] = 0.2
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: configPath))
        #expect { try LoadedModel.open(directory.path) } throws: { String(describing: $0).contains("rotary_pct") }
        config = original
        config["hidden_act"] = "swish"
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: configPath))
        #expect { try LoadedModel.open(directory.path) } throws: { String(describing: $0).contains("hidden_act 'swish'") }
    }

    // MARK: - Sequence classification

    @Test("Rewards equal transformers' GPTNeoXForSequenceClassification within 1e-4, alone and in one batch")
    func rewards() throws {
        let golden = try Self.json(Self.directory + "/rewards.json")
        let rows = (golden["rows"] as! [Any]).map(Self.ids)
        let expected = (golden["rewards"] as! [NSNumber]).map(\.doubleValue)
        let loaded = try LoadedModel.open(Self.rewardModel)
        for budget in [1, 4096] {
            let scorer = try RewardScorer(loaded: loaded, tokenBudget: budget)
            let rewards = try scorer.rewards(rows).map(Double.init)
            #expect(maxAbsDifference(rewards, expected) <= 1e-4, "token budget \(budget): \(rewards) vs \(expected)")
        }
    }

    @Test("OpenAssistant's GPTNeoXRewardModel layout (out_proj with bias): rewards with last and mean pooling within 1e-4")
    func openAssistantRewardModel() throws {
        let golden = try Self.json(Self.directory + "/oasst_rewards.json")
        let rows = (golden["rows"] as! [Any]).map(Self.ids)
        let source = Repository.fixture(golden["model"] as! String)
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        for file in ["config.json", "model.safetensors"] {
            try FileManager.default.copyItem(atPath: source + "/" + file, toPath: directory.appendingPathComponent(file).path)
        }
        for pooling in ["last", "mean"] {
            var config = try Self.json(source + "/config.json")
            config["pooling"] = pooling
            try JSONSerialization.data(withJSONObject: config).write(to: directory.appendingPathComponent("config.json"))
            let loaded = try LoadedModel.open(directory.path)
            #expect(loaded.scoreHead?.bias != nil && loaded.scoreHead?.pooling.rawValue == pooling)
            let expected = (golden[pooling] as! [NSNumber]).map(\.doubleValue)
            for budget in [1, 4096] {
                let rewards = try RewardScorer(loaded: loaded, tokenBudget: budget).rewards(rows).map(Double.init)
                #expect(maxAbsDifference(rewards, expected) <= 1e-4, "\(pooling), budget \(budget): \(rewards) vs \(expected)")
            }
        }
        var config = try Self.json(source + "/config.json")
        config["pooling"] = "max"
        try JSONSerialization.data(withJSONObject: config).write(to: directory.appendingPathComponent("config.json"))
        #expect { try LoadedModel.open(directory.path) } throws: { String(describing: $0).contains("pooling 'max'") }
    }

    // MARK: - LoRA SFT step

    @Test("Adapter log-probs, loss and every LoRA gradient equal PEFT's (1e-4), with and without checkpointing",
          arguments: ["neox-parallel", "neox-sequential"])
    func loraStep(name: String) throws {
        let fixture = try LoRAFixture(name)
        let expected = try SafetensorsFile(path: fixture.directory + "/gradients.safetensors")
        for checkpointing in [false, true] {
            let engine = try fixture.engine(checkpointing: checkpointing)
            let loss = try fixture.accumulate(engine)
            #expect(abs(loss - fixture.loss) < 1e-5 * max(1, abs(fixture.loss)), "loss \(loss) vs \(fixture.loss)")
            var compared = 0
            for (layer, module, adapter) in engine.adapters.ordered {
                let prefix = engine.adapters.peftPrefix(layer: layer, module: module)
                for (suffix, gradient) in [(".lora_A.weight", adapter.gradientA!), (".lora_B.weight", adapter.gradientB!)] {
                    let reference = try #require(expected.tensors[prefix + suffix]).floats()
                    let difference = relativeDifference(gradient.array, reference)
                    #expect(difference < 1e-4, "\(name) \(prefix + suffix): relative difference \(difference)")
                    compared += 1
                }
            }
            #expect(compared == expected.tensors.count && compared == 2 * 4 * 2)
        }
        let engine = try fixture.engine()
        let withAdapter = try engine.logProbabilities(fixture.rows)
        let withoutAdapter = try engine.logProbabilities(fixture.rows, adapterEnabled: false)
        for (index, row) in fixture.rows.enumerated() {
            for (slot, target) in row.targets.enumerated() {
                #expect(abs(Double(withAdapter[index][slot]) - fixture.logprobs[index][target.position]) < 1e-4)
                #expect(abs(Double(withoutAdapter[index][slot]) - fixture.baseLogprobs[index][target.position]) < 1e-4)
            }
        }
    }

    // MARK: - Reward-model step

    @Test("One reward-model step: loss, every LoRA and score gradient and TRL's logged figures within 1e-4",
          arguments: ["rm", "rm-margin"])
    func rewardModelStep(name: String) throws {
        let root = try Self.json(Self.directory + "/rm_cases.json")
        let item = try #require((root["cases"] as! [[String: Any]]).first { $0["name"] as? String == name })
        let gradients = try SafetensorsFile(path: Self.directory + "/rm_gradients.safetensors")
        for checkpointing in [false, true] {
            let loaded = try LoadedModel.open(Repository.fixture(root["model"] as! String))
            let (adapters, _) = try PEFTAdapter.load(directory: Self.directory + "/rm_adapter", for: loaded.model)
            let engine = try TrainingEngine(loaded: loaded, adapters: adapters)
            engine.gradientCheckpointing = checkpointing
            for (_, _, adapter) in adapters.ordered {
                adapter.allocateGradients()
                adapter.zeroGradients()
            }
            let margins = (item["margins"] as? [NSNumber])?.map(\.doubleValue)
            let pairs = (item["pairs"] as! [[String: Any]]).enumerated().map { index, pair in
                RewardPairExample(chosen: Self.ids(pair["chosen_ids"]), rejected: Self.ids(pair["rejected_ids"]),
                                  margin: margins?[index] ?? 0)
            }
            let settings = RewardModelSettings(centerRewardsCoefficient: (item["center_rewards_coefficient"] as? NSNumber)?.doubleValue,
                                               padTokenID: Int32((item["pad_token_id"] as! NSNumber).intValue))
            let objective = try RewardModelObjective(training: pairs, validation: [], settings: settings,
                                                     initialScore: [Float](repeating: 0, count: 64))
            _ = objective.prepare(adapters: adapters, fromInitAdapter: true)
            let all = Array(0..<objective.trainingCount)
            let result = try objective.accumulate(microBatch: all, step: all, engine: engine)
            let expected = (item["loss"] as! NSNumber).doubleValue
            #expect(abs(result.loss - expected) <= 1e-4 * max(1, abs(expected)), "\(name): loss \(result.loss) vs \(expected)")
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
            #expect(compared == 2 * 4 * 2)
            let score = try #require(engine.adapters.savedModule("score"))
            let reference = try #require(gradients.tensors["\(name)/base_model.model.score.weight"]).floats()
            #expect(relativeDifference(score.gradient!.array, reference) < 1e-4, "\(name) score gradient")
            for (key, value) in item["metrics"] as! [String: Any] {
                let ours = try #require(result.metrics[key], "\(key) missing")
                let theirs = (value as! NSNumber).doubleValue
                #expect(abs(ours - theirs) <= 1e-4 * max(1, abs(theirs)), "\(name) \(key): \(ours) vs \(theirs)")
            }
        }
    }
}
