import Foundation
import Testing
@testable import HoneKit

/// The KTO, ORPO, CPO and SimPO fixtures written by tools/oracle/make_preference_objective_fixtures.py from TRL
/// 1.16's own trainers: their loss functions on fixed log-probabilities, and full steps with a PEFT LoRA policy on
/// the llama-gqa fixture model (the policy adapter and the frozen reference are the DPO fixtures' adapters).
struct PreferenceFixture {
    static let directory = Repository.fixture("preference-objectives")
    let cases: [String: [String: Any]]
    let names: [String]

    init() throws {
        let root = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Self.directory + "/cases.json"))) as! [String: Any]
        var cases: [String: [String: Any]] = [:]
        var names: [String] = []
        for item in root["cases"] as! [[String: Any]] {
            cases[item["name"] as! String] = item
            names.append(item["name"] as! String)
        }
        self.cases = cases
        self.names = names
    }

    static func numbers(_ value: Any?) -> [Double] { (value as! [NSNumber]).map(\.doubleValue) }
    static func number(_ value: Any?, default fallback: Double = 0) -> Double { (value as? NSNumber)?.doubleValue ?? fallback }

    static func pairs(_ value: Any?) -> [PreferencePairRows] {
        (value as! [[String: Any]]).map {
            PreferencePairRows(chosenPrompt: ObjectiveFixture.ids($0["chosen_prompt_ids"]), chosen: ObjectiveFixture.ids($0["chosen_ids"]),
                               rejectedPrompt: ObjectiveFixture.ids($0["rejected_prompt_ids"]), rejected: ObjectiveFixture.ids($0["rejected_ids"]))
        }
    }

    static func cpoSettings(_ item: [String: Any]) -> CPOSettings {
        CPOSettings(lossType: CPOLossType(rawValue: item["loss_type"] as! String)!, beta: number(item["beta"]),
                    labelSmoothing: number(item["label_smoothing"]), cpoAlpha: number(item["cpo_alpha"], default: 1),
                    simpoGamma: number(item["simpo_gamma"], default: 0.5))
    }

    /// The objective of a "step" case, its single micro-batch = its whole step.
    func objective(_ name: String, fixture: ObjectiveFixture, engine: TrainingEngine) throws -> TrainingObjective {
        let item = try #require(cases[name])
        switch item["objective"] as! String {
        case "kto":
            let examples = (item["examples"] as! [[String: Any]]).map {
                UnpairedExample(prompt: ObjectiveFixture.ids($0["prompt_ids"]), completion: ObjectiveFixture.ids($0["completion_ids"]),
                                desirable: $0["label"] as! Bool)
            }
            let settings = KTOSettings(beta: Self.number(item["beta"]), desirableWeight: Self.number(item["desirable_weight"]),
                                       undesirableWeight: Self.number(item["undesirable_weight"]))
            let objective = try KahnemanTverskyObjective(training: examples, validation: [], settings: settings,
                                                         maxLength: (item["max_length"] as? NSNumber)?.intValue)
            if item["reference"] as? String == "ref_adapter" { objective.reference = try fixture.referenceAdapter(for: engine) }
            return objective
        case "orpo":
            return try OddsRatioObjective(training: Self.pairs(item["pairs"]), validation: [], settings: ORPOSettings(beta: Self.number(item["beta"])))
        default:
            return try ContrastivePreferenceObjective(training: Self.pairs(item["pairs"]), validation: [], settings: Self.cpoSettings(item))
        }
    }
}

private func close(_ ours: Double, _ theirs: Double, _ tolerance: Double = 1e-4) -> Bool {
    abs(ours - theirs) <= tolerance * max(1, abs(theirs))
}

@Suite("KTO, ORPO, CPO and SimPO against TRL 1.16")
struct PreferenceObjectiveFixtureTests {
    static let steps = ["kto-step", "kto-step-weighted", "kto-step-init-adapter", "orpo-step", "orpo-step-beta-1", "cpo-step-sigmoid",
                        "cpo-step-sigmoid-smoothing", "cpo-step-hinge", "cpo-step-ipo", "simpo-step", "cpo-simpo-step"]

    @Test("A full step: loss, every LoRA gradient and the logged metrics equal TRL's within 1e-4 relative", arguments: steps)
    func step(name: String) throws {
        let fixture = try PreferenceFixture()
        let base = try ObjectiveFixture()
        let engine = try base.engine()
        let objective = try fixture.objective(name, fixture: base, engine: engine)
        let all = Array(0..<objective.trainingCount)
        let result = try objective.accumulate(microBatch: all, step: all, engine: engine)
        let item = fixture.cases[name]!
        let expected = PreferenceFixture.number(item["loss"])
        #expect(close(result.loss, expected), "\(name): loss \(result.loss) vs \(expected)")
        let gradients = try SafetensorsFile(path: PreferenceFixture.directory + "/gradients.safetensors")
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
        let metrics = item["metrics"] as! [String: Any]
        #expect(!metrics.isEmpty)
        for (key, value) in metrics {
            let ours = try #require(result.metrics[key], "\(name): \(key) missing")
            let theirs = (value as! NSNumber).doubleValue
            #expect(close(ours, theirs), "\(name) \(key): \(ours) vs \(theirs)")
        }
    }

    @Test("CPO / SimPO loss on fixed log-probs: per-pair losses, rewards and derivatives equal TRL's cpo_loss")
    func cpoLosses() throws {
        let fixture = try PreferenceFixture()
        let names = fixture.names.filter { $0.hasPrefix("cpo-loss-") }
        #expect(names.count == 6)
        for name in names {
            let item = fixture.cases[name]!
            let settings = PreferenceFixture.cpoSettings(item)
            let chosen = PreferenceFixture.numbers(item["chosen"]), rejected = PreferenceFixture.numbers(item["rejected"])
            let losses = PreferenceFixture.numbers(item["losses"])
            let dChosen = PreferenceFixture.numbers(item["d_chosen"]), dRejected = PreferenceFixture.numbers(item["d_rejected"])
            for index in chosen.indices {
                let result = CPOLoss.pair(chosen: chosen[index], rejected: rejected[index], settings: settings)
                #expect(close(result.loss, losses[index], 1e-9), "\(name) pair \(index): \(result.loss) vs \(losses[index])")
                #expect(close(result.chosen, dChosen[index], 1e-9), "\(name) pair \(index) d chosen")
                #expect(close(result.rejected, dRejected[index], 1e-9), "\(name) pair \(index) d rejected")
                #expect(close(settings.beta * chosen[index], PreferenceFixture.numbers(item["rewards_chosen"])[index], 1e-12))
            }
        }
    }

    @Test("ORPO's odds-ratio term on fixed log-probs equals TRL's odds_ratio_loss, both sides of log1mexp's branch")
    func orpoLosses() throws {
        let fixture = try PreferenceFixture()
        let names = fixture.names.filter { $0.hasPrefix("orpo-loss-") }
        #expect(names.count == 2)
        for name in names {
            let item = fixture.cases[name]!
            // TRL computes this term in float32 (it casts the log-probs with .float()): 1e-6 relative.
            let beta = PreferenceFixture.number(item["beta"])
            let chosen = PreferenceFixture.numbers(item["chosen"]), rejected = PreferenceFixture.numbers(item["rejected"])
            let losses = PreferenceFixture.numbers(item["losses"])
            var ratio = 0.0, logOdds = 0.0
            for index in chosen.indices {
                let odds = ORPOLoss.pair(chosen: chosen[index], rejected: rejected[index])
                #expect(close(beta * odds.ratio, losses[index], 1e-6), "\(name) pair \(index)")
                #expect(close(beta * odds.chosen, PreferenceFixture.numbers(item["d_chosen"])[index], 1e-6), "\(name) pair \(index) d chosen")
                #expect(close(beta * odds.rejected, PreferenceFixture.numbers(item["d_rejected"])[index], 1e-6), "\(name) pair \(index) d rejected")
                ratio += odds.ratio / Double(chosen.count)
                logOdds += odds.logOdds / Double(chosen.count)
            }
            #expect(close(ratio, PreferenceFixture.number(item["log_odds_ratio"]), 1e-6))
            #expect(close(logOdds, PreferenceFixture.number(item["log_odds_chosen"]), 1e-6))
        }
    }

    @Test("KTO on fixed log-probs: KL estimate (clamped), weighted mean loss, derivatives and metrics equal TRL's _compute_loss")
    func ktoLosses() throws {
        let fixture = try PreferenceFixture()
        let names = fixture.names.filter { $0.hasPrefix("kto-loss-") }
        #expect(names.count == 3)
        for name in names {
            let item = fixture.cases[name]!
            let settings = KTOSettings(beta: PreferenceFixture.number(item["beta"]), desirableWeight: PreferenceFixture.number(item["desirable_weight"]),
                                       undesirableWeight: PreferenceFixture.number(item["undesirable_weight"]))
            let labels = item["labels"] as! [Bool]
            let policy = PreferenceFixture.numbers(item["policy"]), reference = PreferenceFixture.numbers(item["reference"])
            let kl = KTOLoss.klEstimate(policy: PreferenceFixture.numbers(item["policy_kl"]), reference: PreferenceFixture.numbers(item["reference_kl"]))
            let expectedMetrics = item["metrics"] as! [String: Any]
            #expect(close(kl, PreferenceFixture.number(expectedMetrics["kl"]), 1e-12), "\(name): kl \(kl)")
            var loss = 0.0
            var metrics: [String: Double] = [:]
            let desirable = labels.filter { $0 }.count
            for index in labels.indices {
                let result = KTOLoss.example(policy: policy[index], reference: reference[index], desirable: labels[index], kl: kl, settings: settings)
                loss += result.loss / Double(labels.count)
                #expect(close(result.derivative / Double(labels.count), PreferenceFixture.numbers(item["d_policy"])[index], 1e-9), "\(name) \(index)")
                KahnemanTverskyObjective.addMetrics(policy: policy[index], reference: reference[index], desirable: labels[index], beta: settings.beta,
                                                    desirableCount: desirable, undesirableCount: labels.count - desirable, to: &metrics)
            }
            #expect(close(loss, PreferenceFixture.number(item["loss"]), 1e-9), "\(name): \(loss)")
            for (key, value) in expectedMetrics where key != "kl" {
                #expect(close(metrics[key] ?? .nan, (value as! NSNumber).doubleValue, 1e-9), "\(name) \(key)")
            }
        }
    }

    @Test("KTO's class-weight advice appears exactly when TRL prints it, with TRL's bounds")
    func ktoAdvice() throws {
        let fixture = try PreferenceFixture()
        let names = fixture.names.filter { $0.hasPrefix("kto-advice-") }
        #expect(names.count == 7)
        for name in names {
            let item = fixture.cases[name]!
            let settings = KTOSettings(desirableWeight: PreferenceFixture.number(item["desirable_weight"]),
                                       undesirableWeight: PreferenceFixture.number(item["undesirable_weight"]))
            let advice = KTOLoss.weightAdvice(desirable: (item["desirable"] as! NSNumber).intValue,
                                              undesirable: (item["undesirable"] as! NSNumber).intValue, settings: settings)
            if let bounds = item["bounds"] as? [NSNumber] {
                let text = try #require(advice, "\(name): TRL warns, Hone does not")
                #expect(text.contains("[\(bounds[0].doubleValue), \(bounds[1].doubleValue)]") && text.contains("[\(bounds[2].doubleValue), \(bounds[3].doubleValue)]"),
                        "\(name): \(text)")
            } else {
                #expect(advice == nil, "\(name): \(advice ?? "")")
            }
        }
    }

    @Test("Text records tokenize as TRL's ORPO/CPO tokenize_row and KTO's dataset preparation do (hone-tiny's Llama tokenizer)")
    func tokenization() throws {
        let fixture = try PreferenceFixture()
        let tokenizer = try LoadedModel.open(Repository.root.appendingPathComponent("models/hone-tiny").path).tokenizer()
        for name in ["tokenize-orpo-1024", "tokenize-orpo-16"] {
            let item = fixture.cases[name]!
            let maxLength = (item["max_length"] as! NSNumber).intValue
            let records = (item["records"] as! [[String: String]]).map {
                PreferenceRecord(prompt: $0["prompt"]!, chosen: $0["chosen"]!, rejected: $0["rejected"]!)
            }
            for (record, row) in zip(records, item["rows"] as! [[String: Any]]) {
                let ours = PreferencePairRows.tokenize(record, tokenizer: tokenizer, maxLength: maxLength)
                let theirs = PreferenceFixture.pairs([row])[0]
                if theirs.chosen.isEmpty || theirs.rejected.isEmpty {
                    #expect(ours == nil, "\(name): TRL leaves an empty completion, Hone drops the pair")
                } else {
                    #expect(ours == theirs, "\(name): \(record.prompt)")
                }
            }
        }
        for name in ["tokenize-kto-1024", "tokenize-kto-16"] {
            let item = fixture.cases[name]!
            let maxLength = (item["max_length"] as! NSNumber).intValue
            let records = (item["records"] as! [[String: String]]).map {
                PreferenceRecord(prompt: $0["prompt"]!, chosen: $0["chosen"]!, rejected: $0["rejected"]!)
            }
            let examples = UnpairedPreferenceData.unpair(records).compactMap { UnpairedExample.tokenize($0, tokenizer: tokenizer, maxLength: maxLength) }
            let rows = item["rows"] as! [[String: Any]]
            try #require(examples.count == rows.count, "\(name): \(examples.count) kept vs TRL's \(rows.count)")
            for (example, row) in zip(examples, rows) {
                #expect(example.prompt == ObjectiveFixture.ids(row["prompt_ids"]) && example.completion == ObjectiveFixture.ids(row["completion_ids"])
                        && example.desirable == row["label"] as! Bool, "\(name)")
            }
            // The mismatched rows of each micro-batch (TRL's batch of 3) pair each prompt with TRL's KL completion.
            let objective = try KahnemanTverskyObjective(training: examples, validation: [], settings: KTOSettings(), maxLength: maxLength)
            let batch = (item["batch"] as! NSNumber).intValue
            for start in stride(from: 0, to: examples.count, by: batch) {
                let chunk = Array(examples[start..<min(examples.count, start + batch)])
                for (offset, mismatched) in objective.rows(chunk).mismatched.enumerated() {
                    let row = rows[start + offset]
                    let expected = UnpairedExample.row(prompt: ObjectiveFixture.ids(row["prompt_ids"]),
                                                       completion: ObjectiveFixture.ids(row["kl_completion_ids"]), maxLength: maxLength)
                    #expect(mismatched.tokens == expected.tokens, "\(name) row \(start + offset)")
                }
            }
        }
    }

    @Test("Derivatives of every new loss equal finite differences")
    func finiteDifferences() {
        let h = 1e-6
        for type in CPOLossType.allCases {
            let settings = CPOSettings(lossType: type, beta: 0.7, labelSmoothing: type == .hinge || type == .ipo ? 0 : 0.1, simpoGamma: 0.4)
            let base = CPOLoss.pair(chosen: -1.3, rejected: -0.6, settings: settings)
            let numeric = (CPOLoss.pair(chosen: -1.3 + h, rejected: -0.6, settings: settings).loss
                - CPOLoss.pair(chosen: -1.3 - h, rejected: -0.6, settings: settings).loss) / (2 * h)
            #expect(abs(numeric - base.chosen) < 1e-6, "\(type)")
        }
        let odds = ORPOLoss.pair(chosen: -0.4, rejected: -1.1)
        let numeric = (ORPOLoss.pair(chosen: -0.4, rejected: -1.1 + h).ratio - ORPOLoss.pair(chosen: -0.4, rejected: -1.1 - h).ratio) / (2 * h)
        #expect(abs(numeric - odds.rejected) < 1e-6)
        for desirable in [true, false] {
            let settings = KTOSettings(beta: 0.3, desirableWeight: 1.2, undesirableWeight: 0.8)
            let result = KTOLoss.example(policy: -10, reference: -11, desirable: desirable, kl: 0.4, settings: settings)
            let numeric = (KTOLoss.example(policy: -10 + h, reference: -11, desirable: desirable, kl: 0.4, settings: settings).loss
                - KTOLoss.example(policy: -10 - h, reference: -11, desirable: desirable, kl: 0.4, settings: settings).loss) / (2 * h)
            #expect(abs(numeric - result.derivative) < 1e-7)
        }
    }
}
