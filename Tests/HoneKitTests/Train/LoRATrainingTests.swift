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

/// Central differences of `loss` in a few entries of each probed adapter's A and B, against the analytic
/// gradients snapshotted before (every later evaluation accumulates more).
func expectFiniteDifferences(_ probes: [(layer: Int, module: String, adapter: LoRAAdapter)],
                             analytic: [([Float], [Float])], indices: (Int) -> [Int],
                             loss: () throws -> Double) rethrows {
    for ((_, module, adapter), gradients) in zip(probes, analytic) {
        for (values, gradient) in [(adapter.a, gradients.0), (adapter.b, gradients.1)] {
            for index in indices(values.count) {
                let original = values[index]
                let step: Float = 1e-2
                values[index] = original + step
                let plus = try loss()
                values[index] = original - step
                let minus = try loss()
                values[index] = original
                let numeric = (plus - minus) / Double(2 * step)
                let expected = Double(gradient[index])
                #expect(abs(numeric - expected) <= 2e-3 + 0.02 * abs(expected),
                        "\(module)[\(index)]: finite difference \(numeric), backward \(expected)")
            }
        }
    }
}

@Suite("LoRA training against PEFT")
struct LoRATrainingTests {
    static let cases = ["llama-gqa", "llama-gqa-qv", "llama-tied-llama3-r2", "qwen2-bias-rslora", "opt-preln", "qwen3-qknorm",
                        "smollm3-nope", "granite-mult", "phi3-fused", "phi3-longrope", "gemma3-swa", "gemma3-legacy",
                        "gemma2-softcap", "qwen3moe-experts", "qwen3moe-unnormalized", "mixtral-experts",
                        "qwen2moe-shared", "olmo2-post", "olmo3-swa", "olmoe-experts", "gemma-geglu",
                        "granitemoe-experts", "exaone4-swa"]

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

    @Test("Ten optimizer steps follow PEFT + torch AdamW (losses, lr, grad norms, final adapter)",
          arguments: ["llama-gqa", "opt-preln"])
    func tenSteps(name: String) throws {
        let fixture = try LoRAFixture(name)
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
        options.maxGradNorm = (steps["max_grad_norm"] as! NSNumber).doubleValue
        options.saveSteps = 0
        let output = Scratch.path("hone-steps").path
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

@Suite("Trainer: checkpoints, resume, dropout")
struct TrainerResumeTests {
    /// A fresh trainer on the llama-gqa fixture model with new adapters (dropout on, so masks must regenerate).
    static func makeTrainer(output: String, saveSteps: Int) throws -> Trainer {
        let fixture = try LoRAFixture("llama-gqa")
        let steps = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: fixture.directory + "/steps.json"))) as! [String: Any]
        let rows = LoRAFixture.rows(steps["rows"])
        let loaded = try LoadedModel.open(fixture.modelPath)
        let configuration = LoRAConfiguration(rank: 4, alpha: 8, dropout: 0.1, targetModules: ["q_proj", "v_proj", "down_proj"])
        let adapters = try AdapterSet.makeNew(configuration: configuration, model: loaded.model, seed: 7)
        var options = TrainingOptions()
        options.batchSize = 6
        options.microBatchSize = 3
        options.epochs = 2
        options.learningRate = 5e-3
        options.warmupSteps = 1
        options.schedule = .cosine
        options.weightDecay = 0.01
        options.saveSteps = saveSteps
        options.evalSteps = 0
        return try Trainer(engine: TrainingEngine(loaded: loaded, adapters: adapters),
                           objective: SupervisedObjective(training: Array(rows.prefix(16)), validation: Array(rows.suffix(4))),
                           options: options, outputDirectory: output)
    }

    static func temporaryDirectory() -> String {
        Scratch.path("hone-resume").path
    }

    @Test("A run stopped after a checkpoint and resumed ends with the same adapter and metrics as an uninterrupted run")
    func resumeIsExact() throws {
        let (whole, split) = (Self.temporaryDirectory(), Self.temporaryDirectory())
        defer {
            try? FileManager.default.removeItem(atPath: whole)
            try? FileManager.default.removeItem(atPath: split)
        }
        let uninterrupted = try Self.makeTrainer(output: whole, saveSteps: 2)
        let reference = try uninterrupted.run()
        #expect(reference.count == 6)
        #expect(reference.last!.loss < reference.first!.loss)

        let first = try Self.makeTrainer(output: split, saveSteps: 2)
        first.stopAfterSteps = 3  // killed during step 4's work: checkpoint-2 is the newest
        _ = try first.run()
        let latest = try #require(first.latestCheckpoint)
        #expect(latest.hasSuffix("checkpoint-2"))
        let second = try Self.makeTrainer(output: split, saveSteps: 2)
        let resumed = try second.run(resumingFrom: latest)
        #expect(resumed.map(\.step) == reference.map(\.step))
        // Steps after the checkpoint are recomputed and must match exactly; the first two come back from
        // metrics.jsonl (JSON text, so to within parsing precision).
        #expect(resumed.dropFirst(2).map(\.loss) == reference.dropFirst(2).map(\.loss))
        #expect(resumed.dropFirst(2).map(\.gradientNorm) == reference.dropFirst(2).map(\.gradientNorm))
        for (ours, theirs) in zip(resumed.prefix(2), reference.prefix(2)) {
            #expect(abs(ours.loss - theirs.loss) <= 1e-12 * abs(theirs.loss))
        }
        for (left, right) in zip(uninterrupted.engine.adapters.ordered, second.engine.adapters.ordered) {
            #expect(left.adapter.a.array == right.adapter.a.array)
            #expect(left.adapter.b.array == right.adapter.b.array)
        }
        let wholeBytes = try Data(contentsOf: URL(fileURLWithPath: whole + "/adapter_model.safetensors"))
        let splitBytes = try Data(contentsOf: URL(fileURLWithPath: split + "/adapter_model.safetensors"))
        #expect(wholeBytes == splitBytes)
    }

    @Test("Resuming with other settings is refused with a clear error")
    func resumeWithOtherSettings() throws {
        let output = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: output) }
        let first = try Self.makeTrainer(output: output, saveSteps: 2)
        first.stopAfterSteps = 2
        _ = try first.run()
        var options = first.options
        options.learningRate = 1e-2
        let other = try Trainer(engine: first.engine, objective: first.objective, options: options, outputDirectory: output)
        #expect(throws: HoneError.self) { try other.run(resumingFrom: first.latestCheckpoint) }
        // Another prompt template (the same count of examples, other tokens) was resumed silently.
        let retemplated = try Self.makeTrainer(output: output, saveSteps: 2)
        retemplated.record = PEFTAdapter.TrainingRecord(promptTemplate: "vicuna")
        do {
            _ = try retemplated.run(resumingFrom: first.latestCheckpoint)
            Issue.record("resumed under another prompt template")
        } catch let error as HoneError {
            #expect(error.description.contains("template=- there, vicuna in this run"), "\(error)")
        }
    }

    /// A checkpoint whose trainer_state.json holds a step outside the run (edited, or from a longer run) is refused
    /// by name: a negative step indexed the batches out of range and one past the end made an empty range (traps).
    @Test func checkpointStepsOutsideTheRun() throws {
        let output = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: output) }
        let first = try Self.makeTrainer(output: output, saveSteps: 2)
        first.stopAfterSteps = 2
        _ = try first.run()
        let checkpoint = try #require(first.latestCheckpoint)
        let statePath = checkpoint + "/trainer_state.json"
        let original = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: statePath))) as! [String: Any]
        for (edit, message) in [(["step": -1, "optimizer_step": 0] as [String: Any], "step -1 is outside this run's 0…6"),
                                (["step": 7, "optimizer_step": 7], "step 7 is outside this run's 0…6"),
                                (["step": 2, "optimizer_step": -5], "optimizer_step -5 is outside 0…2"),
                                (["step": "2"], "'step' must be an integer, not 2"),
                                (["step": 1, "optimizer_step": 1], "step 1 does not match its folder checkpoint-2")] {
            let state = original.merging(edit) { _, new in new }
            try JSONSerialization.data(withJSONObject: state).write(to: URL(fileURLWithPath: statePath))
            let resumed = try Self.makeTrainer(output: output, saveSteps: 2)
            #expect(throws: HoneError.invalidConfig(path: statePath, message: message)) { try resumed.run(resumingFrom: checkpoint) }
        }
        // The fingerprint and the adapter's digest are required, and the adapter must still have that digest.
        for key in ["fingerprint", "adapter_sha256"] {
            try JSONSerialization.data(withJSONObject: original.filter { $0.key != key }).write(to: URL(fileURLWithPath: statePath))
            #expect(throws: HoneError.missingConfigKey(path: statePath, key: key)) {
                try Self.makeTrainer(output: output, saveSteps: 2).run(resumingFrom: checkpoint)
            }
        }
        try JSONSerialization.data(withJSONObject: original).write(to: URL(fileURLWithPath: statePath))
        let adapterPath = checkpoint + "/adapter_model.safetensors"
        var adapter = try Data(contentsOf: URL(fileURLWithPath: adapterPath))
        adapter[adapter.count - 2] ^= 0x01
        try adapter.write(to: URL(fileURLWithPath: adapterPath))
        #expect(throws: HoneError.malformedFile(path: adapterPath, message: "damaged: its SHA-256 differs from the one the checkpoint recorded")) {
            try Self.makeTrainer(output: output, saveSteps: 2).run(resumingFrom: checkpoint)
        }
    }

    @Test("With dropout on, LoRA gradients equal finite differences of the loss under the same masks")
    func dropoutGradientsByFiniteDifferences() throws {
        let fixture = try LoRAFixture("llama-gqa")
        let engine = try fixture.engine()
        let adapters = engine.adapters
        var configuration = adapters.configuration
        configuration.dropout = 0.3
        let dropped = AdapterSet(configuration: configuration, modules: adapters.modules, layerCount: adapters.layerCount)
        for (layer, module, adapter) in adapters.ordered { dropped.attach(adapter, layer: layer, module: module) }
        let training = try TrainingEngine(loaded: LoadedModel.open(fixture.modelPath), adapters: dropped)
        dropped.dropoutSeed = 1234
        for (_, _, adapter) in dropped.ordered { adapter.zeroGradients() }
        let loss = { try fixture.accumulate(training) }
        _ = try loss()
        let probes = Array(dropped.ordered.filter { ["q_proj", "down_proj"].contains($0.module) }.prefix(3))
        let analytic = probes.map { ($0.adapter.gradientA!.array, $0.adapter.gradientB!.array) }
        try expectFiniteDifferences(probes, analytic: analytic, indices: { [0, $0 / 2, $0 - 1] }, loss: loss)
        // Dropout changes the loss (the masks are really applied).
        dropped.isEnabled = true
        let withDropout = try loss()
        let plainEngine = try fixture.engine()
        #expect(abs(withDropout - (try fixture.accumulate(plainEngine))) > 1e-4)
    }

    @Test("Dropout masks repeat exactly for the same seed")
    func dropoutIsDeterministic() throws {
        let (one, two) = (Self.temporaryDirectory(), Self.temporaryDirectory())
        defer {
            try? FileManager.default.removeItem(atPath: one)
            try? FileManager.default.removeItem(atPath: two)
        }
        let a = try Self.makeTrainer(output: one, saveSteps: 0)
        let b = try Self.makeTrainer(output: two, saveSteps: 0)
        #expect(try a.run().map(\.loss) == b.run().map(\.loss))
    }
}

@Suite("LoRA on GGUF and quantized bases", .serialized)
struct GGUFAdapterTests {
    @Test("A PEFT adapter on llama.cpp's GGUF (permuted Q/K rows) gives PEFT's log-probs")
    func adapterOnGGUF() throws {
        let fixture = try LoRAFixture("llama-gqa")
        let loaded = try LoadedModel.open(Repository.fixture("gguf/llama-gqa-f32.gguf"))
        try loaded.attachAdapter(directory: fixture.directory + "/adapter")
        let engine = try TrainingEngine(loaded: loaded, adapters: (loaded.model as! AdaptableModel).adapters as! AdapterSet)
        let logprobs = try engine.logProbabilities(fixture.rows)
        for (index, row) in fixture.rows.enumerated() {
            for (slot, target) in row.targets.enumerated() {
                #expect(abs(Double(logprobs[index][slot]) - fixture.logprobs[index][target.position]) < 1e-4)
            }
        }
    }

    @Test("Training on the GGUF base saves the same adapter (in HF row order) as training on the HF base")
    func trainingOnGGUFMatchesHF() throws {
        let fixture = try LoRAFixture("llama-gqa")
        func train(_ model: String) throws -> String {
            let loaded = try LoadedModel.open(model)
            let (adapters, _) = try PEFTAdapter.load(directory: fixture.directory + "/adapter", for: loaded.model)
            var options = TrainingOptions()
            options.batchSize = 3
            options.microBatchSize = 3
            options.maxSteps = 3
            options.learningRate = 1e-3
            options.warmupSteps = 0
            options.saveSteps = 0
            let output = Scratch.path("hone-gguf").path
            let trainer = try Trainer(engine: TrainingEngine(loaded: loaded, adapters: adapters),
                                      objective: SupervisedObjective(training: fixture.rows, validation: []),
                                      options: options, outputDirectory: output)
            try trainer.run()
            return output
        }
        let fromHF = try train(fixture.modelPath)
        let fromGGUF = try train(Repository.fixture("gguf/llama-gqa-f32.gguf"))
        defer {
            try? FileManager.default.removeItem(atPath: fromHF)
            try? FileManager.default.removeItem(atPath: fromGGUF)
        }
        let left = try SafetensorsFile(path: fromHF + "/adapter_model.safetensors")
        let right = try SafetensorsFile(path: fromGGUF + "/adapter_model.safetensors")
        #expect(left.tensors.keys.sorted() == right.tensors.keys.sorted())
        for name in left.tensors.keys {
            let difference = relativeDifference(right.tensors[name]!.floats(), left.tensors[name]!.floats())
            #expect(difference < 1e-4, "\(name): \(difference)")
        }
    }

    @Test("QLoRA on a Q8_0 base: gradients through the dequantized weights equal finite differences")
    func quantizedBaseGradients() throws {
        try Linear.$exactQuantizedProducts.withValue(true) { try quantizedBaseGradientsBody() }
    }

    private func quantizedBaseGradientsBody() throws {
        let fixture = try LoRAFixture("llama-gqa")
        let loaded = try LoadedModel.open(Repository.fixture("gguf/llama-gqa-q8_0.gguf"))
        let (adapters, _) = try PEFTAdapter.load(directory: fixture.directory + "/adapter", for: loaded.model)
        let engine = try TrainingEngine(loaded: loaded, adapters: adapters)
        for (_, _, adapter) in adapters.ordered { adapter.allocateGradients() }
        let loss = { try fixture.accumulate(engine) }
        _ = try loss()
        let probes = Array(adapters.ordered.filter { ["k_proj", "up_proj"].contains($0.module) }.prefix(2))
        let analytic = probes.map { ($0.adapter.gradientA!.array, $0.adapter.gradientB!.array) }
        try expectFiniteDifferences(probes, analytic: analytic, indices: { [1, $0 / 3, $0 - 2] }, loss: loss)
    }

    @Test("QLoRA with 8-bit activations stays close to the exact quantized-weight gradients")
    func quantizedBaseFastPath() throws {
        let fixture = try LoRAFixture("llama-gqa")
        func gradients(exact: Bool) throws -> [Float] {
            try Linear.$exactQuantizedProducts.withValue(exact) { try quantizedGradients(fixture) }
        }
        func quantizedGradients(_ fixture: LoRAFixture) throws -> [Float] {
            let loaded = try LoadedModel.open(Repository.fixture("gguf/llama-gqa-q8_0.gguf"))
            let (adapters, _) = try PEFTAdapter.load(directory: fixture.directory + "/adapter", for: loaded.model)
            let engine = try TrainingEngine(loaded: loaded, adapters: adapters)
            for (_, _, adapter) in adapters.ordered { adapter.allocateGradients() }
            _ = try fixture.accumulate(engine)
            return adapters.ordered.flatMap { $0.adapter.gradientA!.array + $0.adapter.gradientB!.array }
        }
        let difference = relativeDifference(try gradients(exact: false), try gradients(exact: true))
        #expect(difference < 5e-2, "relative difference \(difference)")
        #expect(difference > 0)
    }
}

@Suite("Merging adapters into base weights")
struct MergeTests {
    @Test("Merged HF and GGUF models give the adapter's log-probs within the output dtype's error")
    func mergedLogProbabilities() throws {
        let fixture = try LoRAFixture("llama-gqa")
        let base = try LoadedModel.open(fixture.modelPath)
        let (adapters, _) = try PEFTAdapter.load(directory: fixture.directory + "/adapter", for: base.model)
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        func deviation(_ path: String) throws -> Double {
            let merged = try LoadedModel.open(path)
            let scored = try Scorer(model: merged.model).score(fixture.rows.map(\.tokens))
            var worst = 0.0
            for (index, row) in scored.enumerated() {
                for (position, value) in row.enumerated() {
                    worst = max(worst, abs(Double(value) - fixture.logprobs[index][position]))
                }
            }
            return worst
        }
        let hf = directory.appendingPathComponent("hf").path
        let reports = try AdapterMerge.writeHuggingFace(base: base, adapters: adapters, to: hf, force: false)
        #expect(reports.count == adapters.ordered.count)
        #expect(reports.allSatisfy { $0.retained > 0.999999 })
        #expect(try deviation(hf) < 1e-4)
        for (scheme, bound) in [(QuantizationScheme.f32, 1e-4), (.f16, 0.03)] {
            let path = directory.appendingPathComponent("\(scheme.rawValue).gguf").path
            try AdapterMerge.writeGGUF(base: base, adapters: adapters, to: path, scheme: scheme, force: false)
            #expect(try deviation(path) < bound, "\(scheme.rawValue)")
        }
    }

    @Test("hone merge --format gguf takes hone quantize's per-tensor options; safetensors output refuses them")
    func mergeWithPerTensorTypes() throws {
        let fixture = try LoRAFixture("llama-gqa")
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = directory.appendingPathComponent("merged").path
        let common = ["merge", "--base-model", fixture.modelPath, "--adapter", fixture.directory + "/adapter",
                      "--output-dir", output, "--threads", "1"]
        let run = try runProcess(Repository.honeExecutable, common + ["--format", "gguf", "--type", "q8_0",
                                                                      "--tensor-type", "attn_v=f16", "--output-tensor-type", "f32"])
        #expect(run.status == 0, "\(run.stderr)")
        let merged = try GGUFFile(path: output + "/model-q8_0.gguf")
        let planned = try GGUFExport.plan(input: fixture.modelPath, scheme: .q8_0,
                                          overrides: .init(outputTensorType: .f32, tensorTypes: [.init(argument: "attn_v=f16")]))
        #expect(merged.tensorInfos.map { DType(ggmlType: $0.ggmlType) } == planned.map(\.type))
        let types = Dictionary(merged.tensorInfos.map { ($0.name, DType(ggmlType: $0.ggmlType)) }, uniquingKeysWith: { a, _ in a })
        #expect(types["blk.0.attn_v.weight"] == .f16 && types["blk.0.attn_q.weight"] == .q8_0)
        #expect(types["output.weight"] == .f32 || (types["output.weight"] == nil && types["token_embd.weight"] == .f32))
        // The same tensors, byte for byte, as merging to f32 and then quantizing with the same options.
        let f32 = directory.appendingPathComponent("f32").path
        #expect(try runProcess(Repository.honeExecutable, ["merge", "--base-model", fixture.modelPath, "--adapter", fixture.directory + "/adapter",
                                                           "--output-dir", f32, "--format", "gguf", "--type", "f32"]).status == 0)
        let requantized = directory.appendingPathComponent("q8_0.gguf").path
        let quantize = try runProcess(Repository.honeExecutable, ["quantize", f32 + "/model-f32.gguf", requantized, "q8_0",
                                                                  "--tensor-type", "attn_v=f16", "--output-tensor-type", "f32"])
        #expect(quantize.status == 0, "\(quantize.stderr)")
        let reference = try GGUFFile(path: requantized)
        #expect(merged.tensorInfos.count == reference.tensorInfos.count)
        for (mine, theirs) in zip(merged.tensorInfos, reference.tensorInfos) {
            let a = Data(bytes: merged.file.bytes + merged.dataOffset + mine.offset, count: mine.byteCount)
            let b = Data(bytes: reference.file.bytes + reference.dataOffset + theirs.offset, count: theirs.byteCount)
            #expect(mine.name == theirs.name && mine.ggmlType == theirs.ggmlType && a == b, "\(mine.name)")
        }
        let refused = try runProcess(Repository.honeExecutable, common + ["--tensor-type", "attn_v=f16"])
        #expect(refused.status == 1 && refused.stderr.contains("apply to --format gguf only"), "\(refused.stderr)")
    }

    @Test("A merge whose delta rounding erases is refused without --force and reported")
    func erasedDeltaIsRefused() throws {
        let fixture = try LoRAFixture("llama-gqa")
        let base = try LoadedModel.open(Repository.fixture("models/llama-gqa-bf16"))
        let (adapters, _) = try PEFTAdapter.load(directory: fixture.directory + "/adapter", for: base.model)
        for (_, _, adapter) in adapters.ordered {
            for index in 0..<adapter.b.count { adapter.b[index] *= 1e-5 }
        }
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = directory.appendingPathComponent("merged").path
        #expect(throws: HoneError.self) {
            try AdapterMerge.writeHuggingFace(base: base, adapters: adapters, to: output, force: false)
        }
        #expect(!FileManager.default.fileExists(atPath: output + "/model.safetensors"))
        let reports = try AdapterMerge.writeHuggingFace(base: base, adapters: adapters, to: output, force: true)
        #expect(AdapterMerge.overallRetained(reports) < 0.5)
        #expect(FileManager.default.fileExists(atPath: output + "/model.safetensors"))
    }
}

@Suite("Hone's adapters in PEFT")
struct PEFTReadBackTests {
    static let fixture = Repository.fixture("lora/hone-written")

    /// tools/oracle/check_hone_adapter.py loaded the committed Hone-written adapter with PeftModel.from_pretrained
    /// and recorded its log-probs: Hone's must agree, so PEFT reads the files as Hone means them.
    @Test("PEFT reads a Hone-written adapter to the same log-probs")
    func peftAgrees() throws {
        let expected = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Self.fixture + "/peft_logprobs.json"))) as! [String: Any]
        let rows = (expected["rows"] as! [[Any]]).map { $0.compactMap { ($0 as? NSNumber)?.doubleValue } }
        let ids = try String(contentsOfFile: Self.fixture + "/rows.jsonl", encoding: .utf8).split(separator: "\n").map { line in
            ((try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any])["input_ids"] as! [NSNumber]).map { Int32($0.intValue) }
        }
        let loaded = try LoadedModel.open(Repository.fixture("models/llama-gqa"))
        try loaded.attachAdapter(directory: Self.fixture)
        let scored = try Scorer(model: loaded.model).score(ids)
        let base = try Scorer(model: LoadedModel.open(Repository.fixture("models/llama-gqa")).model).score(ids)
        var worst = 0.0, moved = 0.0
        for (index, row) in scored.enumerated() {
            for (position, value) in row.enumerated() {
                worst = max(worst, abs(Double(value) - rows[index][position]))
                moved = max(moved, abs(Double(value) - Double(base[index][position])))
            }
        }
        #expect(worst < 1e-4)
        #expect(moved > 0.05, "the adapter must change the model for the comparison to mean anything")
    }

}

@Suite("OPT post-norm training")
struct OPTPostNormTrainingTests {
    /// OPT-350m's layout (post-norm blocks, projections in and out of the hidden size) has no PEFT fixture: its
    /// backward is checked by finite differences of the training loss.
    @Test("Gradients through post-norm blocks and the output projection equal finite differences")
    func postNormGradients() throws {
        let loaded = try LoadedModel.open(Repository.fixture("models/opt-proj-postln"))
        #expect(!loaded.config.layerNormBefore)
        let configuration = LoRAConfiguration(rank: 4, alpha: 8, dropout: 0,
                                              targetModules: ["q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"])
        let adapters = try AdapterSet.makeNew(configuration: configuration, model: loaded.model, seed: 3)
        var generator = SplitMix64(seed: 11)
        for (_, _, adapter) in adapters.ordered {
            for index in 0..<adapter.b.count { adapter.b[index] = (Float(generator.next() >> 40) / Float(1 << 24) - 0.5) * 0.2 }
        }
        let engine = try TrainingEngine(loaded: loaded, adapters: adapters)
        for (_, _, adapter) in adapters.ordered { adapter.allocateGradients() }
        let vocabulary = UInt64(loaded.config.vocabularySize)
        // Two rows of random tokens after BOS; the first three labels masked, as a prompt would be.
        let rows = [7, 19].map { length -> TargetedRow in
            let tokens: [Int32] = [2] + (1..<length).map { _ in Int32(generator.next() % vocabulary) }
            return TargetedRow(tokens: tokens, labels: tokens.enumerated().map { $0.offset < 3 ? -100 : $0.element })
        }
        let count = rows.reduce(0) { $0 + $1.targets.count }
        let loss = { () throws -> Double in
            let coefficient = -1 / Float(count)
            let logprobs = try engine.accumulateGradients(rows, fixedCoefficients: rows.map { Array(repeating: coefficient, count: $0.targets.count) })
            return -logprobs.reduce(0.0) { $0 + $1.reduce(0.0) { $0 + Double($1) } } / Double(count)
        }
        _ = try loss()
        let probes = Array(adapters.ordered.filter { ["q_proj", "out_proj", "fc1", "fc2"].contains($0.module) }.prefix(4))
        let analytic = probes.map { ($0.adapter.gradientA!.array, $0.adapter.gradientB!.array) }
        try expectFiniteDifferences(probes, analytic: analytic, indices: { [0, $0 / 2, $0 - 1] }, loss: loss)
    }
}
