import Foundation
import Testing
@testable import HoneKit

/// The objective fixtures written by tools/oracle/make_objective_fixtures.py: DPO through TRL's DPOTrainer, CUT and
/// PRO in PyTorch from the spec, on the llama-gqa fixture model with a non-zero adapter.
struct ObjectiveFixture {
    static let directory = Repository.fixture("objectives")
    let cases: [String: [String: Any]]
    let modelPath: String

    init() throws {
        let root = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Self.directory + "/cases.json"))) as! [String: Any]
        modelPath = Repository.fixture(root["model"] as! String)
        var cases: [String: [String: Any]] = [:]
        for item in root["cases"] as! [[String: Any]] { cases[item["name"] as! String] = item }
        self.cases = cases
    }

    /// A training engine over the fixture model with the policy adapter, gradients allocated and zero.
    func engine(checkpointing: Bool = false) throws -> TrainingEngine {
        let loaded = try LoadedModel.open(modelPath)
        let (adapters, _) = try PEFTAdapter.load(directory: Self.directory + "/adapter", for: loaded.model)
        let engine = try TrainingEngine(loaded: loaded, adapters: adapters)
        engine.gradientCheckpointing = checkpointing
        for (_, _, adapter) in adapters.ordered {
            adapter.allocateGradients()
            adapter.zeroGradients()
        }
        return engine
    }

    func referenceAdapter(for engine: TrainingEngine) throws -> AdapterSet {
        let loaded = try LoadedModel.open(modelPath)
        return try PEFTAdapter.load(directory: Self.directory + "/ref_adapter", for: loaded.model).0
    }

    static func ids(_ value: Any?) -> [Int32] { (value as! [NSNumber]).map { Int32($0.intValue) } }
    static func number(_ value: Any?) -> Double { (value as! NSNumber).doubleValue }

    static func rows(_ value: Any?) -> [TargetedRow] {
        (value as! [[String: Any]]).map { TargetedRow(tokens: ids($0["input_ids"]), labels: ids($0["labels"])) }
    }

    /// The objective a case describes, with its single micro-batch = its whole step.
    func objective(_ name: String, engine: TrainingEngine) throws -> TrainingObjective {
        let item = try #require(cases[name])
        switch item["objective"] as! String {
        case "dpo":
            let pairs = (item["pairs"] as! [[String: Any]]).map {
                PreferenceExample(prompt: Self.ids($0["prompt_ids"]), chosen: Self.ids($0["chosen_ids"]), rejected: Self.ids($0["rejected_ids"]))
            }
            let settings = DPOSettings(lossType: DPOLossType(rawValue: item["loss_type"] as! String)!, beta: Self.number(item["beta"]),
                                       labelSmoothing: Self.number(item["label_smoothing"]))
            let objective = try DirectPreferenceObjective(training: pairs, validation: [], settings: settings)
            if item["reference"] as? String == "ref_adapter" { objective.reference = try referenceAdapter(for: engine) }
            return objective
        case "cut":
            let like = Self.rows(item["like"]), misalign = Self.rows(item["misalign"])
            let pairOf = (item["pair_of"] as! [NSNumber]).map(\.intValue)
            var examples = like.map { CUTExample(like: $0, misalign: nil) }
            for (index, partner) in pairOf.enumerated() { examples[partner].misalign = misalign[index] }
            return ContrastiveUnlikelihoodObjective(
                training: examples, validation: [],
                settings: CUTSettings(threshold: Self.number(item["threshold"]), weightUnlike: Self.number(item["weight_unlike"])))
        default:
            let records = (item["records"] as! [[String: Any]]).map {
                RankingExample(rows: Self.rows($0["rows"]), rewards: ($0["rewards"] as! [NSNumber]).map(\.doubleValue),
                               sftIndex: ($0["sft_index"] as! NSNumber).intValue)
            }
            return RankingObjective(training: records, validation: [], sftWeight: Self.number(item["sft_weight"]))
        }
    }
}

@Suite("CUT, DPO and PRO against TRL / PyTorch")
struct ObjectiveFixtureTests {
    static let cases = ["dpo-sigmoid", "dpo-ipo", "dpo-hinge", "dpo-robust", "dpo-sigmoid-init-adapter",
                        "dpo-sigmoid-label-smoothing", "cut", "cut-align-p-only", "pro-3", "pro-2"]

    @Test("Loss and every LoRA gradient equal the oracle's within 1e-4 relative", arguments: cases)
    func lossAndGradients(name: String) throws {
        let fixture = try ObjectiveFixture()
        let engine = try fixture.engine()
        let objective = try fixture.objective(name, engine: engine)
        let all = Array(0..<objective.trainingCount)
        let result = try objective.accumulate(microBatch: all, step: all, engine: engine)
        let expected = ObjectiveFixture.number(fixture.cases[name]!["loss"])
        #expect(abs(result.loss - expected) <= 1e-4 * max(1, abs(expected)), "\(name): loss \(result.loss) vs \(expected)")
        let gradients = try SafetensorsFile(path: ObjectiveFixture.directory + "/gradients.safetensors")
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
        #expect(compared == 2 * 3 * 2)
        // DPO: the figures TRL logs.
        if let metrics = fixture.cases[name]!["metrics"] as? [String: Any] {
            for (key, value) in metrics {
                let ours = try #require(result.metrics[key], "\(key) missing")
                let theirs = (value as! NSNumber).doubleValue
                #expect(abs(ours - theirs) <= 1e-4 * max(1, abs(theirs)), "\(name) \(key): \(ours) vs \(theirs)")
            }
        }
    }

    @Test("CUT: the likelihood and unlikelihood terms and the unlikely-token set match the oracle")
    func cutTerms() throws {
        let fixture = try ObjectiveFixture()
        let engine = try fixture.engine()
        let objective = try fixture.objective("cut", engine: engine)
        let all = Array(0..<objective.trainingCount)
        let result = try objective.accumulate(microBatch: all, step: all, engine: engine)
        let item = fixture.cases["cut"]!
        #expect(abs(result.metrics["cut/likelihood"]! - ObjectiveFixture.number(item["likelihood"])) < 1e-4)
        #expect(abs(result.metrics["cut/unlikelihood"]! - ObjectiveFixture.number(item["unlikelihood"])) < 1e-4)
        let fraction = ObjectiveFixture.number(item["unlikely_tokens"]) / ObjectiveFixture.number(item["misalign_tokens"])
        #expect(result.metrics["cut/unlikely_fraction"] == fraction)
        #expect(fraction > 0 && fraction < 1, "both branches of the threshold are exercised")
    }

    @Test("Split into micro-batches, the step's gradient is unchanged (DPO, PRO: mean over the step)",
          arguments: ["dpo-sigmoid", "pro-3"])
    func microBatchesAddUp(name: String) throws {
        let fixture = try ObjectiveFixture()
        let whole = try fixture.engine()
        let split = try fixture.engine()
        let objective = try fixture.objective(name, engine: whole)
        let all = Array(0..<objective.trainingCount)
        let one = try objective.accumulate(microBatch: all, step: all, engine: whole)
        var loss = 0.0
        for index in all { loss += try objective.accumulate(microBatch: [index], step: all, engine: split).loss }
        #expect(abs(loss - one.loss) < 1e-6 * max(1, abs(one.loss)))
        for (left, right) in zip(whole.adapters.ordered, split.adapters.ordered) {
            #expect(relativeDifference(right.adapter.gradientA!.array, left.adapter.gradientA!.array) < 1e-5)
            #expect(relativeDifference(right.adapter.gradientB!.array, left.adapter.gradientB!.array) < 1e-5)
        }
    }

    @Test("Precomputed reference log-probs give the same step as reference passes per micro-batch")
    func precomputedReference() throws {
        let fixture = try ObjectiveFixture()
        let plain = try fixture.engine()
        let precomputed = try fixture.engine()
        let objective = try fixture.objective("dpo-sigmoid", engine: plain) as! DirectPreferenceObjective
        var settings = objective.settings
        settings.precomputeReferenceLogProbabilities = true
        let other = try DirectPreferenceObjective(training: objective.training, validation: [], settings: settings)
        let all = Array(0..<objective.trainingCount)
        let a = try objective.accumulate(microBatch: all, step: all, engine: plain)
        let b = try other.accumulate(microBatch: all, step: all, engine: precomputed)
        #expect(abs(a.loss - b.loss) < 1e-6)
        for (left, right) in zip(plain.adapters.ordered, precomputed.adapters.ordered) {
            #expect(relativeDifference(right.adapter.gradientB!.array, left.adapter.gradientB!.array) < 1e-5)
        }
    }

    @Test("The reference pass with a frozen adapter leaves the trained adapter attached and untouched")
    func referenceSwapRestores() throws {
        let fixture = try ObjectiveFixture()
        let engine = try fixture.engine()
        let reference = try fixture.referenceAdapter(for: engine)
        let rows = ObjectiveFixture.rows(fixture.cases["pro-3"]!["records"].map { ($0 as! [[String: Any]])[0]["rows"]! })
        let before = try engine.logProbabilities(rows)
        let withReference = try engine.logProbabilities(rows, reference: reference)
        let base = try engine.logProbabilities(rows, reference: nil)
        let after = try engine.logProbabilities(rows)
        #expect(before == after)
        #expect(zip(before, withReference).map { maxAbsDifference($0.map(Double.init), $1.map(Double.init)) }.max()! > 1e-3)
        #expect(zip(before, base).map { maxAbsDifference($0.map(Double.init), $1.map(Double.init)) }.max()! > 1e-3)
        // The copy is independent of the original.
        let copy = engine.adapters.copy()
        copy.ordered[0].adapter.b[0] += 1
        #expect(copy.ordered[0].adapter.b[0] != engine.adapters.ordered[0].adapter.b[0])
        #expect(try engine.logProbabilities(rows, reference: engine.adapters.copy()) == before)
    }
}

@Suite("Objective losses on hand-made log-probs")
struct ObjectiveLossTests {
    @Test("CUT's 1e-5 rule: a certain unlikely token costs −α log 1e-5, with a finite gradient")
    func cutCertainToken() {
        // like log-prob 0 (p = 1), misalign log-prob 0: ratio 1 > λ = 0.5 → in U, 1 − p = 0 → 1e-5.
        let result = CUTLoss.microBatch(like: [[0, -1]], misalign: [[0, -1]], pairOf: [0], settings: CUTSettings(threshold: 0.5, weightUnlike: 2))
        #expect(result.unlikelyTokens == 2)
        let second = -2 * log(1 - exp(-1.0))
        #expect(abs(result.unlikelihood - (-2 * log(1e-5) + second) / 2) < 1e-9)
        #expect(abs(result.misalignGradients[0][0] - 0.5 * 2 * 1 / 1e-5 / 2) < 1e-6)
        #expect(abs(result.loss - 0.5 * (0.5 + result.unlikelihood)) < 1e-9)
    }

    @Test("DPO per-pair derivatives equal finite differences for every loss type")
    func dpoDerivatives() {
        for type in DPOLossType.allCases {
            let settings = DPOSettings(lossType: type, beta: 0.7, labelSmoothing: type == .hinge || type == .ipo ? 0 : 0.1)
            let pair = DPOPairLogProbabilities(chosen: -12.3, rejected: -11.9, referenceChosen: -12.5, referenceRejected: -11.2,
                                               chosenTokens: 5, rejectedTokens: 4)
            let (_, chosen, rejected) = DPOLoss.pair(pair, settings: settings)
            let step = 1e-5
            var plus = pair, minus = pair
            plus.chosen += step
            minus.chosen -= step
            let numericChosen = (DPOLoss.pair(plus, settings: settings).loss - DPOLoss.pair(minus, settings: settings).loss) / (2 * step)
            plus = pair; minus = pair
            plus.rejected += step
            minus.rejected -= step
            let numericRejected = (DPOLoss.pair(plus, settings: settings).loss - DPOLoss.pair(minus, settings: settings).loss) / (2 * step)
            #expect(abs(numericChosen - chosen) < 1e-6, "\(type)")
            #expect(abs(numericRejected - rejected) < 1e-6, "\(type)")
        }
    }

    @Test("PRO: derivatives equal finite differences; n = 1 is plain SFT on the summed log-prob")
    func proDerivatives() {
        let sums = [-10.0, -14.0, -9.0, -20.0], tokens = [5, 7, 3, 8], rewards = [1.5, 0.3, 0.3, -2.0]
        let result = PROLoss.record(sums: sums, tokens: tokens, rewards: rewards, sftIndex: 1)
        for index in sums.indices {
            var plus = sums, minus = sums
            plus[index] += 1e-5
            minus[index] -= 1e-5
            let numeric = (PROLoss.record(sums: plus, tokens: tokens, rewards: rewards, sftIndex: 1).loss
                - PROLoss.record(sums: minus, tokens: tokens, rewards: rewards, sftIndex: 1).loss) / 2e-5
            #expect(abs(numeric - result.gradients[index]) < 1e-6)
        }
        #expect(abs(result.sft - 0.05 * 9 * 14) < 1e-12)
        let single = PROLoss.record(sums: [-7], tokens: [3], rewards: [1], sftIndex: 0)
        #expect(single.loss == 7 && single.gradients == [-1])
    }
}
