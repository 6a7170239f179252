import Foundation
import Testing
@testable import HoneKit

/// A LoRA fixture written by tools/oracle/make_lora_fixtures.py (PEFT on transformers, f32, single-threaded).
struct LoRAFixture {
    let directory: String
    let modelPath: String
    let rows: [TargetedRow]
    let labelTokens: Int
    let loss: Double
    let logprobs: [[Double]]
    let baseLogprobs: [[Double]]

    init(_ name: String) throws {
        directory = Repository.fixture("lora/\(name)")
        let batch = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: directory + "/batch.json"))) as! [String: Any]
        let expected = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: directory + "/expected.json"))) as! [String: Any]
        modelPath = Repository.fixture(batch["model"] as! String)
        rows = LoRAFixture.rows(batch["rows"])
        labelTokens = (expected["label_tokens"] as! NSNumber).intValue
        loss = (expected["loss"] as! NSNumber).doubleValue
        func lists(_ value: Any?) -> [[Double]] {
            (value as! [[Any]]).map { $0.compactMap { ($0 as? NSNumber)?.doubleValue } }
        }
        logprobs = lists(expected["logprobs"])
        baseLogprobs = lists(expected["base_logprobs"])
    }

    static func rows(_ value: Any?) -> [TargetedRow] {
        (value as! [[String: Any]]).map { row in
            TargetedRow(tokens: (row["input_ids"] as! [NSNumber]).map { Int32($0.intValue) },
                        labels: (row["labels"] as! [NSNumber]).map { Int32($0.intValue) })
        }
    }

    /// The model with the fixture's adapter attached, ready to train.
    func engine(checkpointing: Bool = false) throws -> TrainingEngine {
        let loaded = try LoadedModel.open(modelPath)
        let (adapters, _) = try PEFTAdapter.load(directory: directory + "/adapter", for: loaded.model)
        let engine = try TrainingEngine(loaded: loaded, adapters: adapters)
        engine.gradientCheckpointing = checkpointing
        for (_, _, adapter) in adapters.ordered { adapter.allocateGradients() }
        return engine
    }

    /// SFT's loss over the whole batch in one pass (token mean), accumulating gradients.
    func accumulate(_ engine: TrainingEngine, microBatches: [[Int]]? = nil) throws -> Double {
        var sum = 0.0
        for batch in microBatches ?? [Array(rows.indices)] {
            let selected = batch.map { rows[$0] }
            let coefficient = -1 / Float(labelTokens)
            let logprobs = try engine.accumulateGradients(
                selected, fixedCoefficients: selected.map { Array(repeating: coefficient, count: $0.targets.count) })
            sum += logprobs.reduce(0.0) { $0 + $1.reduce(0.0) { $0 + Double($1) } }
        }
        return -sum / Double(labelTokens)
    }
}

/// ‖a − b‖ / ‖b‖
func relativeDifference(_ a: [Float], _ b: [Float]) -> Double {
    var difference = 0.0, norm = 0.0
    for (x, y) in zip(a, b) {
        difference += Double(x - y) * Double(x - y)
        norm += Double(y) * Double(y)
    }
    return (difference / max(norm, 1e-30)).squareRoot()
}

@Suite("LoRA training against PEFT")
struct LoRATrainingTests {
    static let cases = ["llama-gqa", "llama-gqa-qv", "llama-tied-llama3-r2", "qwen2-bias-rslora"]

    @Test("Adapter log-probs at inference equal PEFT's; switched off they equal the base's", arguments: cases)
    func inferenceWithAdapter(name: String) throws {
        let fixture = try LoRAFixture(name)
        let engine = try fixture.engine()
        let withAdapter = try engine.logProbabilities(fixture.rows)
        let withoutAdapter = try engine.logProbabilities(fixture.rows, adapterEnabled: false)
        for (index, row) in fixture.rows.enumerated() {
            // The fixture lists a log-prob for every position (null first); ours only for trained targets.
            let positions = row.targets.map { $0.position + 1 }
            for (slot, position) in positions.enumerated() {
                #expect(abs(Double(withAdapter[index][slot]) - fixture.logprobs[index][position - 1]) < 1e-4)
                #expect(abs(Double(withoutAdapter[index][slot]) - fixture.baseLogprobs[index][position - 1]) < 1e-4)
            }
        }
    }

    @Test("Loss and every LoRA gradient equal PEFT autograd within 1e-4 relative", arguments: cases)
    func gradientsMatchPEFT(name: String) throws {
        let fixture = try LoRAFixture(name)
        let engine = try fixture.engine()
        let loss = try fixture.accumulate(engine)
        #expect(abs(loss - fixture.loss) < 1e-5 * max(1, abs(fixture.loss)))
        let expected = try SafetensorsFile(path: fixture.directory + "/gradients.safetensors")
        var compared = 0
        for (layer, module, adapter) in engine.adapters.ordered {
            let prefix = engine.adapters.peftPrefix(layer: layer, module: module)
            for (suffix, gradient) in [(".lora_A.weight", adapter.gradientA!), (".lora_B.weight", adapter.gradientB!)] {
                let reference = try #require(expected.tensors[prefix + suffix]).floats()
                let difference = relativeDifference(gradient.array, reference)
                #expect(difference < 1e-4, "\(prefix + suffix): relative difference \(difference)")
                compared += 1
            }
        }
        #expect(compared == expected.tensors.count)
    }

    @Test("Gradient checkpointing gives the same gradients bit for bit")
    func checkpointingIsExact() throws {
        let fixture = try LoRAFixture("llama-gqa")
        let plain = try fixture.engine()
        let recomputed = try fixture.engine(checkpointing: true)
        let lossPlain = try fixture.accumulate(plain)
        let lossRecomputed = try fixture.accumulate(recomputed)
        #expect(lossPlain == lossRecomputed)
        for (left, right) in zip(plain.adapters.ordered, recomputed.adapters.ordered) {
            #expect(left.adapter.gradientA!.array == right.adapter.gradientA!.array)
            #expect(left.adapter.gradientB!.array == right.adapter.gradientB!.array)
        }
    }

    @Test("Ten optimizer steps follow PEFT + torch AdamW (losses, lr, grad norms, final adapter)")
    func tenSteps() throws {
        let fixture = try LoRAFixture("llama-gqa")
        let steps = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: fixture.directory + "/steps.json"))) as! [String: Any]
        let rows = LoRAFixture.rows(steps["rows"])
        let records = steps["steps"] as! [[String: Any]]
        let engine = try fixture.engine()
        var options = TrainingOptions()
        options.microBatchSize = 2
        options.batchSize = 4
        options.maxSteps = records.count
        options.learningRate = 1e-3
        options.weightDecay = 0.01
        options.warmupSteps = 2
        options.schedule = .linear
        options.maxGradNorm = 1.0
        options.saveSteps = 0
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("hone-steps-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: output) }
        let trainer = try Trainer(engine: engine, objective: SupervisedObjective(training: rows, validation: []),
                                  options: options, outputDirectory: output)
        trainer.batchOrder = { step in
            (records[step]["micro_batches"] as! [[NSNumber]]).map { $0.map(\.intValue) }
        }
        let history = try trainer.run()
        #expect(history.count == records.count)
        for (ours, theirs) in zip(history, records) {
            let loss = (theirs["loss"] as! NSNumber).doubleValue
            #expect(abs(ours.loss - loss) < 1e-4 * max(1, abs(loss)), "step \(ours.step): loss \(ours.loss) vs \(loss)")
            #expect(abs(ours.learningRate - (theirs["lr"] as! NSNumber).doubleValue) < 1e-12)
            let norm = (theirs["grad_norm"] as! NSNumber).doubleValue
            #expect(abs(ours.gradientNorm - norm) < 1e-4 * norm, "step \(ours.step): grad norm \(ours.gradientNorm) vs \(norm)")
        }
        let final = try SafetensorsFile(path: fixture.directory + "/final_adapter.safetensors")
        for (layer, module, adapter) in engine.adapters.ordered {
            let prefix = engine.adapters.peftPrefix(layer: layer, module: module)
            for (suffix, values) in [(".lora_A.weight", adapter.a), (".lora_B.weight", adapter.b)] {
                let reference = try #require(final.tensors[prefix + suffix]).floats()
                let difference = relativeDifference(values.array, reference)
                #expect(difference < 1e-4, "\(prefix + suffix): relative difference \(difference)")
            }
        }
        // The saved adapter reads back to the same numbers.
        let loaded = try LoadedModel.open(fixture.modelPath)
        let (reloaded, _) = try PEFTAdapter.load(directory: output, for: loaded.model)
        for (left, right) in zip(engine.adapters.ordered, reloaded.ordered) {
            #expect(left.adapter.a.array == right.adapter.a.array)
            #expect(left.adapter.b.array == right.adapter.b.array)
        }
        let metrics = try String(contentsOfFile: output + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
        #expect(metrics.count == records.count)
        #expect(FileManager.default.fileExists(atPath: output + "/loss.svg"))
    }
}
