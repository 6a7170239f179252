import Foundation
import Testing
@testable import HoneKit

/// CUT, DPO and PRO through the Trainer on the llama-gqa fixture model with random token data: each objective
/// does what it is for, gradient checkpointing changes nothing, a resumed run equals an uninterrupted one, the
/// adapter comes out in PEFT's layout, and a quantized base trains.
enum AlignmentRuns {
    static let model = Repository.fixture("models/llama-gqa")
    static let quantized = Repository.fixture("gguf/llama-gqa-q8_0.gguf")
    static let vocabulary: Int32 = 256

    static func ids(_ generator: inout SplitMix64, _ count: Int) -> [Int32] {
        (0..<count).map { _ in Int32(3 + generator.next() % UInt64(vocabulary - 3)) }
    }

    static func dpoObjective(pairs: Int = 8, seed: UInt64 = 1) throws -> DirectPreferenceObjective {
        var generator = SplitMix64(seed: seed)
        let examples = (0..<pairs).map { index in
            PreferenceExample(prompt: [1] + ids(&generator, 4 + index % 3), chosen: ids(&generator, 3 + index % 4) + [2],
                              rejected: ids(&generator, 4 + index % 2) + [2])
        }
        return try DirectPreferenceObjective(training: examples, validation: Array(examples.prefix(2)), settings: DPOSettings())
    }

    static func cutExamples(seed: UInt64 = 2) -> [CUTExample] {
        var generator = SplitMix64(seed: seed)
        func row(_ prompt: [Int32], _ response: [Int32]) -> TargetedRow {
            TargetedRow(tokens: prompt + response, labels: Array(repeating: -100, count: prompt.count) + response)
        }
        var examples: [CUTExample] = []
        for index in 0..<8 {
            let response = ids(&generator, 6) + [2]
            let plain = [1] + ids(&generator, 5)
            if index % 4 == 3 {
                examples.append(CUTExample(like: row(plain, response), misalign: nil))
            } else {
                let judged = [1] + ids(&generator, 9)
                examples.append(CUTExample(like: row(judged, response), misalign: row(plain, response)))
            }
        }
        return examples
    }

    static func cutObjective() -> ContrastiveUnlikelihoodObjective {
        let examples = cutExamples()
        return ContrastiveUnlikelihoodObjective(training: examples, validation: Array(examples.suffix(2)),
                                                settings: CUTSettings(threshold: 1.1, weightUnlike: 1))
    }

    static func proObjective(seed: UInt64 = 3) -> RankingObjective {
        var generator = SplitMix64(seed: seed)
        let examples = (0..<8).map { _ in
            let prompt: [Int32] = [1] + ids(&generator, 5)
            let rows = (0..<3).map { _ -> TargetedRow in
                let response = ids(&generator, 5) + [2]
                return TargetedRow(tokens: prompt + response, labels: Array(repeating: -100, count: prompt.count) + response)
            }
            return RankingExample(rows: rows, rewards: [1, 0.4, -0.5], sftIndex: 0)
        }
        return RankingObjective(training: examples, validation: Array(examples.prefix(2)))
    }

    static func trainer(_ objective: TrainingObjective, model: String = model, output: String, steps: Int, learningRate: Double = 5e-3,
                        checkpointing: Bool = false, saveSteps: Int = 0, dropout: Double = 0.1) throws -> Trainer {
        let loaded = try LoadedModel.open(model)
        let configuration = LoRAConfiguration(rank: 4, alpha: 8, dropout: dropout,
                                              targetModules: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
        let adapters = try AdapterSet.makeNew(configuration: configuration, model: loaded.model, seed: 5)
        var options = TrainingOptions()
        options.batchSize = 4
        options.microBatchSize = 2
        options.maxSteps = steps
        options.learningRate = learningRate
        options.warmupSteps = 0
        options.schedule = .constant
        options.saveSteps = saveSteps
        options.evalSteps = 0
        options.gradientCheckpointing = checkpointing
        return try Trainer(engine: TrainingEngine(loaded: loaded, adapters: adapters), objective: objective, options: options,
                           outputDirectory: output)
    }

    static func temporary() -> String {
        Scratch.path("hone-align").path
    }

    static func objective(_ name: String) throws -> TrainingObjective {
        switch name {
        case "dpo": return try dpoObjective()
        case "cut": return cutObjective()
        default: return proObjective()
        }
    }
}

@Suite("CUT, DPO and PRO through the trainer")
struct AlignmentTrainingTests {
    @Test("DPO raises the reward accuracy on its training pairs")
    func dpoLearnsPreferences() throws {
        let output = AlignmentRuns.temporary()
        defer { try? FileManager.default.removeItem(atPath: output) }
        let objective = try AlignmentRuns.dpoObjective()
        let trainer = try AlignmentRuns.trainer(objective, output: output, steps: 24, dropout: 0)
        let before = try objective.evaluateTraining(engine: trainer.engine, microBatchSize: 4)
        // A new adapter is a no-op: every reward is 0, so no pair counts as won (strict >).
        #expect(before.allSatisfy { $0.chosen == $0.referenceChosen && $0.rejected == $0.referenceRejected })
        let history = try trainer.run()
        let after = try objective.evaluateTraining(engine: trainer.engine, microBatchSize: 4)
        let won = after.filter { ($0.chosen - $0.referenceChosen) > ($0.rejected - $0.referenceRejected) }.count
        #expect(won == after.count, "won \(won) of \(after.count)")
        print("DPO: reward accuracy 0 → \(won)/\(after.count); loss \(history.first!.loss) → \(history.last!.loss)")
        #expect(history.last!.loss < 0.5 * history.first!.loss, "\(history.first!.loss) → \(history.last!.loss)")
        #expect(history.first!.metrics["rewards/accuracies"] == 0)
        #expect(history.last!.metrics["rewards/accuracies"]! == 1)
        #expect(history.last!.metrics["rewards/margins"]! > 0)
    }

    @Test("CUT lowers the probability of the reply tokens it flags, raises the others")
    func cutLowersFlaggedTokens() throws {
        let output = AlignmentRuns.temporary()
        defer { try? FileManager.default.removeItem(atPath: output) }
        let objective = AlignmentRuns.cutObjective()
        let pairs = objective.training.filter { $0.misalign != nil }
        // First make the replies likely after both prompts (as if the model had written them): on a random model
        // every reply token is so unlikely that log(1 − p) has almost no gradient.
        let warmup = try AlignmentRuns.trainer(SupervisedObjective(training: pairs.map(\.like) + pairs.map { $0.misalign! }, validation: []),
                                               output: output + "/sft", steps: 12, learningRate: 1e-2, dropout: 0)
        _ = try warmup.run()
        var options = warmup.options
        options.maxSteps = 16
        options.learningRate = 3e-3
        let trainer = try Trainer(engine: warmup.engine, objective: objective, options: options, outputDirectory: output + "/cut")
        func logprobs() throws -> (like: [[Float]], misalign: [[Float]]) {
            (try trainer.engine.logProbabilities(pairs.map(\.like)), try trainer.engine.logProbabilities(pairs.map { $0.misalign! }))
        }
        let (likeBefore, misalignBefore) = try logprobs()
        var flagged: [(Int, Int)] = []
        var kept: [(Int, Int)] = []
        for row in pairs.indices {
            for slot in likeBefore[row].indices {
                if exp(Double(likeBefore[row][slot] - misalignBefore[row][slot])) > 1.1 { flagged.append((row, slot)) } else { kept.append((row, slot)) }
            }
        }
        #expect(!flagged.isEmpty && !kept.isEmpty, "\(flagged.count) flagged, \(kept.count) not")
        _ = try trainer.run()
        let (_, misalignAfter) = try logprobs()
        func mean(_ values: [[Float]], _ positions: [(Int, Int)]) -> Double {
            positions.reduce(0.0) { $0 + Double(values[$1.0][$1.1]) } / Double(positions.count)
        }
        let flaggedBefore = mean(misalignBefore, flagged), flaggedAfter = mean(misalignAfter, flagged)
        let keptBefore = mean(misalignBefore, kept), keptAfter = mean(misalignAfter, kept)
        #expect(flaggedAfter < flaggedBefore - 0.5, "flagged tokens: mean log p \(flaggedBefore) → \(flaggedAfter)")
        #expect(keptAfter > keptBefore, "other tokens: mean log p \(keptBefore) → \(keptAfter)")
        let lowered = flagged.filter { misalignAfter[$0.0][$0.1] < misalignBefore[$0.0][$0.1] }.count
        print("CUT: \(flagged.count) flagged tokens, mean log p \(flaggedBefore) → \(flaggedAfter) (\(lowered) lowered); "
            + "\(kept.count) others \(keptBefore) → \(keptAfter)")
        #expect(Double(lowered) >= 0.8 * Double(flagged.count), "\(lowered) of \(flagged.count) flagged tokens lowered")
    }

    @Test("PRO orders the responses' scores as they are ranked")
    func proOrdersScores() throws {
        let output = AlignmentRuns.temporary()
        defer { try? FileManager.default.removeItem(atPath: output) }
        let objective = AlignmentRuns.proObjective()
        let trainer = try AlignmentRuns.trainer(objective, output: output, steps: 30, learningRate: 5e-3, dropout: 0)
        func orderedCount() throws -> Int {
            try objective.scores(engine: trainer.engine, microBatchSize: 4).filter { zip($0, $0.dropFirst()).allSatisfy { $0 > $1 } }.count
        }
        let before = try orderedCount()
        let history = try trainer.run()
        let after = try orderedCount()
        print("PRO: records with scores in ranked order \(before) → \(after) of \(objective.trainingCount)")
        #expect(before < objective.trainingCount)
        #expect(after == objective.trainingCount, "ordered \(before) → \(after) of \(objective.trainingCount)")
        #expect(history.last!.metrics["pro/ranking_loss"]! < history.first!.metrics["pro/ranking_loss"]!)
    }

    @Test("Gradient checkpointing gives the same run bit for bit", arguments: ["cut", "dpo", "pro"])
    func checkpointingIsExact(name: String) throws {
        let (a, b) = (AlignmentRuns.temporary(), AlignmentRuns.temporary())
        defer {
            try? FileManager.default.removeItem(atPath: a)
            try? FileManager.default.removeItem(atPath: b)
        }
        let plain = try AlignmentRuns.trainer(try AlignmentRuns.objective(name), output: a, steps: 3)
        let recomputed = try AlignmentRuns.trainer(try AlignmentRuns.objective(name), output: b, steps: 3, checkpointing: true)
        let first = try plain.run(), second = try recomputed.run()
        #expect(first.map(\.loss) == second.map(\.loss))
        #expect(first.map(\.gradientNorm) == second.map(\.gradientNorm))
        for (left, right) in zip(plain.engine.adapters.ordered, recomputed.engine.adapters.ordered) {
            #expect(left.adapter.a.array == right.adapter.a.array)
            #expect(left.adapter.b.array == right.adapter.b.array)
        }
    }

    @Test("A run resumed from a checkpoint ends exactly as an uninterrupted one, in PEFT's layout", arguments: ["cut", "dpo", "pro"])
    func resumeIsExact(name: String) throws {
        let (whole, split) = (AlignmentRuns.temporary(), AlignmentRuns.temporary())
        defer {
            try? FileManager.default.removeItem(atPath: whole)
            try? FileManager.default.removeItem(atPath: split)
        }
        let uninterrupted = try AlignmentRuns.trainer(try AlignmentRuns.objective(name), output: whole, steps: 4, saveSteps: 2)
        let reference = try uninterrupted.run()
        let first = try AlignmentRuns.trainer(try AlignmentRuns.objective(name), output: split, steps: 4, saveSteps: 2)
        first.stopAfterSteps = 3
        _ = try first.run()
        let second = try AlignmentRuns.trainer(try AlignmentRuns.objective(name), output: split, steps: 4, saveSteps: 2)
        let checkpoint = first.latestCheckpoint
        #expect(checkpoint?.hasSuffix("checkpoint-2") == true)
        let resumed = try second.run(resumingFrom: checkpoint)
        #expect(resumed.dropFirst(2).map(\.loss) == reference.dropFirst(2).map(\.loss))
        #expect(resumed.dropFirst(2).map(\.metrics) == reference.dropFirst(2).map(\.metrics))
        for file in ["adapter_config.json", "adapter_model.safetensors", "metrics.jsonl", "loss.svg"] {
            #expect(FileManager.default.fileExists(atPath: split + "/" + file), "\(file) missing")
        }
        let wholeBytes = try Data(contentsOf: URL(fileURLWithPath: whole + "/adapter_model.safetensors"))
        let splitBytes = try Data(contentsOf: URL(fileURLWithPath: split + "/adapter_model.safetensors"))
        #expect(wholeBytes == splitBytes)
        // PEFT's layout: the saved adapter loads back onto the base and equals the trained one.
        let (reloaded, _) = try PEFTAdapter.load(directory: split, for: LoadedModel.open(AlignmentRuns.model).model)
        #expect(reloaded.ordered.count == uninterrupted.engine.adapters.ordered.count)
        for (left, right) in zip(reloaded.ordered, uninterrupted.engine.adapters.ordered) {
            #expect(left.adapter.b.array == right.adapter.b.array)
        }
    }

    @Test("Resuming with another β (or λ) is refused")
    func resumeWithOtherObjectiveSettings() throws {
        let output = AlignmentRuns.temporary()
        defer { try? FileManager.default.removeItem(atPath: output) }
        let first = try AlignmentRuns.trainer(try AlignmentRuns.dpoObjective(), output: output, steps: 4, saveSteps: 2)
        first.stopAfterSteps = 2
        _ = try first.run()
        let objective = try AlignmentRuns.dpoObjective()
        let other = try DirectPreferenceObjective(training: objective.training, validation: objective.validation,
                                                  settings: DPOSettings(beta: 0.2))
        let second = try AlignmentRuns.trainer(other, output: output, steps: 4, saveSteps: 2)
        #expect(throws: HoneError.self) { try second.run(resumingFrom: first.latestCheckpoint) }
    }

    @Test("Each objective trains on a q8_0 GGUF base", arguments: ["cut", "dpo", "pro"])
    func quantizedBase(name: String) throws {
        let output = AlignmentRuns.temporary()
        defer { try? FileManager.default.removeItem(atPath: output) }
        let trainer = try AlignmentRuns.trainer(try AlignmentRuns.objective(name), model: AlignmentRuns.quantized, output: output,
                                                steps: 6, dropout: 0)
        let history = try trainer.run()
        #expect(history.allSatisfy { $0.loss.isFinite && $0.gradientNorm > 0 })
        let losses = history.map(\.loss)
        let early = losses[0] + losses[1], late = losses[losses.count - 2] + losses[losses.count - 1]
        #expect(late < early, "\(losses)")
        #expect(FileManager.default.fileExists(atPath: output + "/adapter_model.safetensors"))
        // Validation runs the same loss without gradients.
        #expect(try trainer.objective.validationLoss(engine: trainer.engine, microBatchSize: 2).isFinite)
    }
}
