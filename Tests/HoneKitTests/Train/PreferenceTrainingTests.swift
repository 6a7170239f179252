import Foundation
import Testing
@testable import HoneKit

/// KTO, ORPO, CPO and SimPO through the Trainer on the llama-gqa fixture model with random token data (the helpers
/// of AlignmentRuns): each raises the preferred completions' log-probabilities relative to the others, KTO visits
/// its data in order, a resumed run equals an uninterrupted one, gradient checkpointing changes nothing, a q8_0
/// base trains.
enum PreferenceRuns {
    static func pairs(seed: UInt64, count: Int = 8) -> [PreferencePairRows] {
        var generator = SplitMix64(seed: seed)
        return (0..<count).map { index in
            let prompt: [Int32] = [1] + AlignmentRuns.ids(&generator, 4 + index % 3)
            return PreferencePairRows(chosenPrompt: prompt, chosen: AlignmentRuns.ids(&generator, 3 + index % 4) + [2],
                                      rejectedPrompt: prompt, rejected: AlignmentRuns.ids(&generator, 4 + index % 2) + [2])
        }
    }

    static func unpaired(seed: UInt64) -> [UnpairedExample] {
        var generator = SplitMix64(seed: seed)
        return (0..<8).map { index in
            UnpairedExample(prompt: [1] + AlignmentRuns.ids(&generator, 4 + index % 3), completion: AlignmentRuns.ids(&generator, 3 + index % 4) + [2],
                            desirable: index % 2 == 0)
        }
    }

    static func objective(_ name: String, beta: Double? = nil) throws -> TrainingObjective {
        switch name {
        case "kto":
            let examples = unpaired(seed: 11)
            return try KahnemanTverskyObjective(training: examples, validation: Array(examples.prefix(2)),
                                                settings: KTOSettings(beta: beta ?? 0.1), maxLength: nil)
        case "orpo":
            let pairs = pairs(seed: 12)
            return try OddsRatioObjective(training: pairs, validation: Array(pairs.prefix(2)), settings: ORPOSettings(beta: beta ?? 1))
        case "cpo":
            let pairs = pairs(seed: 13)
            return try ContrastivePreferenceObjective(training: pairs, validation: Array(pairs.prefix(2)), settings: CPOSettings(beta: beta ?? 0.1))
        default:
            let pairs = pairs(seed: 14)
            return try ContrastivePreferenceObjective(name: "simpo", training: pairs, validation: Array(pairs.prefix(2)),
                                                      settings: CPOSettings(lossType: .simpo, beta: beta ?? 2, cpoAlpha: 0, simpoGamma: 0.5))
        }
    }
}

@Suite("KTO, ORPO, CPO and SimPO through the trainer")
struct PreferenceTrainingTests {
    static let methods = ["kto", "orpo", "cpo", "simpo"]

    @Test("Training raises the preferred completions' log-probabilities relative to the others", arguments: methods)
    func learnsPreferences(name: String) throws {
        let output = AlignmentRuns.temporary()
        defer { try? FileManager.default.removeItem(atPath: output) }
        let objective = try PreferenceRuns.objective(name)
        let trainer = try AlignmentRuns.trainer(objective, output: output, steps: 20, learningRate: 5e-3, dropout: 0)
        if let kto = objective as? KahnemanTverskyObjective {
            let before = try kto.evaluateTraining(engine: trainer.engine, microBatchSize: 2)
            // A new adapter is a no-op (up to the rounding of passes over differently composed batches).
            #expect(before.allSatisfy { abs($0.policy - $0.reference) < 1e-4 })
            let history = try trainer.run()
            let after = try kto.evaluateTraining(engine: trainer.engine, microBatchSize: 2)
            let labels = kto.trainingLabels
            let desirable = zip(after, labels).filter { $1 }.map { $0.0.policy - $0.0.reference }
            let undesirable = zip(after, labels).filter { !$1 }.map { $0.0.policy - $0.0.reference }
            print("KTO: log-ratio of desirable \(desirable.map { String(format: "%.2f", $0) }), undesirable \(undesirable.map { String(format: "%.2f", $0) })")
            #expect(desirable.allSatisfy { $0 > 0 } && undesirable.allSatisfy { $0 < 0 })
            #expect(history.last!.metrics["rewards/margins"]! > 0 && abs(history.first!.metrics["rewards/margins"]!) < 1e-4)
            #expect(history.allSatisfy { $0.metrics["kl"] != nil })
            return
        }
        func margins() throws -> [Double] {
            let values: [(chosen: Double, rejected: Double)]
            if let orpo = objective as? OddsRatioObjective { values = try orpo.evaluateTraining(engine: trainer.engine) } else {
                values = try (objective as! ContrastivePreferenceObjective).evaluateTraining(engine: trainer.engine)
            }
            return values.map { $0.chosen - $0.rejected }
        }
        let before = try margins()
        let history = try trainer.run()
        let after = try margins()
        let raised = zip(before, after).filter { $1 > $0 }.count
        print("\(name): margin raised on \(raised)/\(after.count) pairs; accuracy \(history.first!.metrics["rewards/accuracies"]!) → \(history.last!.metrics["rewards/accuracies"]!)")
        #expect(raised == after.count, "\(name): \(before) → \(after)")
        #expect(after.allSatisfy { $0 > 0 }, "\(name): \(after)")
        #expect(history.last!.metrics["rewards/accuracies"]! == 1)
    }

    @Test("KTO visits its examples in data order every epoch (TRL's sequential sampler)")
    func ktoInOrder() throws {
        let output = AlignmentRuns.temporary()
        defer { try? FileManager.default.removeItem(atPath: output) }
        let trainer = try AlignmentRuns.trainer(try PreferenceRuns.objective("kto"), output: output, steps: 3)
        #expect(trainer.microBatches(ofStep: 0) == [[0, 1], [2, 3]])
        #expect(trainer.microBatches(ofStep: 1) == [[4, 5], [6, 7]])
        #expect(trainer.microBatches(ofStep: 2) == [[0, 1], [2, 3]])
    }

    @Test("A resumed KTO / ORPO run ends exactly as an uninterrupted one; gradient checkpointing changes nothing",
          arguments: ["kto", "orpo"])
    func resumeAndCheckpointing(name: String) throws {
        let (whole, split, recomputed) = (AlignmentRuns.temporary(), AlignmentRuns.temporary(), AlignmentRuns.temporary())
        defer { for path in [whole, split, recomputed] { try? FileManager.default.removeItem(atPath: path) } }
        let uninterrupted = try AlignmentRuns.trainer(try PreferenceRuns.objective(name), output: whole, steps: 4, saveSteps: 2)
        let reference = try uninterrupted.run()
        let first = try AlignmentRuns.trainer(try PreferenceRuns.objective(name), output: split, steps: 4, saveSteps: 2)
        first.stopAfterSteps = 3
        _ = try first.run()
        let second = try AlignmentRuns.trainer(try PreferenceRuns.objective(name), output: split, steps: 4, saveSteps: 2)
        let resumed = try second.run(resumingFrom: first.latestCheckpoint)
        #expect(resumed.dropFirst(2).map(\.loss) == reference.dropFirst(2).map(\.loss))
        #expect(resumed.dropFirst(2).map(\.metrics) == reference.dropFirst(2).map(\.metrics))
        let wholeBytes = try Data(contentsOf: URL(fileURLWithPath: whole + "/adapter_model.safetensors"))
        let splitBytes = try Data(contentsOf: URL(fileURLWithPath: split + "/adapter_model.safetensors"))
        #expect(wholeBytes == splitBytes)
        let checkpointed = try AlignmentRuns.trainer(try PreferenceRuns.objective(name), output: recomputed, steps: 4, checkpointing: true)
        #expect(try checkpointed.run().map(\.loss) == reference.map(\.loss))
        // Another β is refused on resume.
        let other = try AlignmentRuns.trainer(try PreferenceRuns.objective(name, beta: 0.37), output: split + "-other", steps: 4, saveSteps: 2)
        defer { try? FileManager.default.removeItem(atPath: split + "-other") }
        #expect(throws: HoneError.self) { try other.run(resumingFrom: first.latestCheckpoint) }
    }

    @Test("Each new objective trains on a q8_0 GGUF base, with a finite validation loss", arguments: methods)
    func quantizedBase(name: String) throws {
        let output = AlignmentRuns.temporary()
        defer { try? FileManager.default.removeItem(atPath: output) }
        let trainer = try AlignmentRuns.trainer(try PreferenceRuns.objective(name), model: AlignmentRuns.quantized, output: output,
                                                steps: 4, dropout: 0)
        let history = try trainer.run()
        #expect(history.allSatisfy { $0.loss.isFinite && $0.gradientNorm > 0 })
        #expect(try trainer.objective.validationLoss(engine: trainer.engine, microBatchSize: 2).isFinite)
    }
}
