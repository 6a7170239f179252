import Foundation

/// A training checkpoint, `OUTPUT/checkpoint-STEP/`: the adapter in PEFT's layout (usable as it is), the AdamW
/// moments (LZ4), and `trainer_state.json` (step, seed, and a fingerprint of the settings). Data order and dropout masks
/// are functions of (seed, step), so nothing else is needed for a resumed run to equal an uninterrupted one.
/// The directory is written under a temporary name and renamed, so a checkpoint is either whole or absent.
enum TrainingCheckpoint {
    static let stateFile = "trainer_state.json"
    /// The AdamW moments as a safetensors file inside an LZ4 frame (the frame carries a checksum of the content).
    static let optimizerFile = "optimizer.safetensors.lz4"
    /// SHA-256 of the checkpoint's adapter_model.safetensors, in trainer_state.json.
    static let adapterDigestKey = "adapter_sha256"

    static func fingerprint(_ trainer: Trainer) -> String {
        let options = trainer.options
        let lora = trainer.engine.adapters.configuration
        return [
            "objective=\(trainer.objective.name)", "examples=\(trainer.objective.trainingCount)",
            "batch=\(options.batchSize)", "micro=\(options.microBatchSize)", "epochs=\(options.epochs)",
            "max_steps=\(options.stepLimit.map(String.init) ?? "-")", "lr=\(options.learningRate)",
            "schedule=\(options.schedule.rawValue)", "warmup=\(options.warmupSteps)", "wd=\(options.weightDecay)",
            "clip=\(options.maxGradNorm)", "seed=\(options.seed)", "group=\(options.groupByLength)",
            "r=\(lora.rank)", "alpha=\(lora.alpha)", "dropout=\(lora.dropout)", "targets=\(lora.targetModules.joined(separator: ","))",
            "rslora=\(lora.useRSLoRA)",
            // The prompt template shapes every example: resuming under another one mixed two trainings.
            "template=\(trainer.record.promptTemplate ?? "-")",
        ].joined(separator: " ") + (trainer.objective.settingsFingerprint.isEmpty ? "" : " " + trainer.objective.settingsFingerprint)
            + (trainer.inputIdentity.isEmpty ? "" : " " + trainer.inputIdentity)
    }

    static func save(step: Int, trainer: Trainer, to directory: String) throws {
        let manager = FileManager.default
        let temporary = directory + ".tmp"
        try? manager.removeItem(atPath: temporary)
        try PEFTAdapter.save(trainer.engine.adapters, baseModel: trainer.baseModelName, record: trainer.record, to: temporary)
        var entries: [SafetensorsEntry] = []
        for (index, moment) in trainer.optimizer.moments.enumerated() {
            entries.append(SafetensorsEntry(name: "\(index).exp_avg", dtype: "F32", shape: [moment.first.count],
                                            bytes: PEFTAdapter.floatBytes(moment.first)))
            entries.append(SafetensorsEntry(name: "\(index).exp_avg_sq", dtype: "F32", shape: [moment.second.count],
                                            bytes: PEFTAdapter.floatBytes(moment.second)))
        }
        let optimizerState = try LZ4Frame.compress(SafetensorsWriter.encode(entries))
        try writeFileAtomically(optimizerState, to: (temporary as NSString).appendingPathComponent(optimizerFile))
        // The adapter has no checksum of its own (the optimizer state's LZ4 frame has one): a damaged byte resumed
        // silently into a different run.
        let adapterDigest = try TokenizedDataCache.fileDigest((temporary as NSString).appendingPathComponent(PEFTAdapter.weightsFile))
        let state: [String: Any] = ["step": step, "optimizer_step": trainer.optimizer.step, "fingerprint": fingerprint(trainer),
                                    adapterDigestKey: adapterDigest.hexString]
        try writeFileAtomically(try JSONSerialization.data(withJSONObject: state, options: [.prettyPrinted, .sortedKeys]),
                                to: (temporary as NSString).appendingPathComponent(stateFile))
        try? manager.removeItem(atPath: directory)
        do {
            try manager.moveItem(atPath: temporary, toPath: directory)
        } catch {
            throw HoneError.io(path: directory, message: "cannot move the checkpoint into place: \(error.localizedDescription)")
        }
    }

    /// Loads adapter weights and optimizer state into `trainer`; returns the step to continue from.
    static func restore(from directory: String, trainer: Trainer) throws -> Int {
        let statePath = (directory as NSString).appendingPathComponent(stateFile)
        guard FileManager.default.fileExists(atPath: statePath) else { throw HoneError.fileNotFound(path: statePath) }
        let state = try JSONConfig(path: statePath).values
        func counter(_ key: String) throws -> Int {
            guard let value = state[key] else { throw HoneError.missingConfigKey(path: statePath, key: key) }
            guard let count = jsonInteger(value) else {
                throw HoneError.invalidConfig(path: statePath, message: "'\(key)' must be an integer, not \(value)")
            }
            return count
        }
        // A step outside the run indexed its batches out of range (negative) or made an empty range of steps to
        // run (past the end): both trapped.
        let step = try counter("step"), optimizerStep = try counter("optimizer_step")
        guard (0...trainer.totalSteps).contains(step) else {
            throw HoneError.invalidConfig(path: statePath, message: "step \(step) is outside this run's 0…\(trainer.totalSteps)")
        }
        guard (0...step).contains(optimizerStep) else {
            throw HoneError.invalidConfig(path: statePath, message: "optimizer_step \(optimizerStep) is outside 0…\(step)")
        }
        // A step edited by hand (or a folder renamed) would resume at the wrong place of the schedule and data order.
        let name = (directory as NSString).lastPathComponent
        if name.hasPrefix("checkpoint-"), let named = Int(name.dropFirst("checkpoint-".count)), named != step {
            throw HoneError.invalidConfig(path: statePath, message: "step \(step) does not match its folder \(name)")
        }
        let expected = fingerprint(trainer)
        guard let recorded = state["fingerprint"] as? String else { throw HoneError.missingConfigKey(path: statePath, key: "fingerprint") }
        if recorded != expected {
            throw HoneError.invalidConfig(path: statePath, message: "the checkpoint was made with other settings (\(fingerprintDifferences(recorded, expected)))")
        }
        guard let recordedDigest = state[adapterDigestKey] as? String else { throw HoneError.missingConfigKey(path: statePath, key: adapterDigestKey) }
        let adapterPath = (directory as NSString).appendingPathComponent(PEFTAdapter.weightsFile)
        guard try TokenizedDataCache.fileDigest(adapterPath).hexString == recordedDigest else {
            throw HoneError.malformedFile(path: adapterPath, message: "damaged: its SHA-256 differs from the one the checkpoint recorded")
        }
        // Through the PEFT reader, which puts B's rows back in the model's stored order (GGUF Q/K).
        let (saved, _) = try PEFTAdapter.load(directory: directory, for: trainer.engine.model)
        let set = trainer.engine.adapters
        for (layer, module, adapter) in set.ordered {
            guard let restored = saved.adapter(layer: layer, module: module), restored.a.count == adapter.a.count,
                  restored.b.count == adapter.b.count else {
                throw HoneError.missingTensor(name: set.peftPrefix(layer: layer, module: module) + ".lora_A.weight", path: directory)
            }
            adapter.a.pointer.update(from: restored.a.pointer, count: adapter.a.count)
            adapter.b.pointer.update(from: restored.b.pointer, count: adapter.b.count)
        }
        for module in set.savedModules {
            guard let restored = saved.savedModule(module.name), restored.weight.count == module.weight.count else {
                throw HoneError.missingTensor(name: module.peftKey, path: directory)
            }
            module.weight.pointer.update(from: restored.weight.pointer, count: module.weight.count)
        }
        let optimizerPath = (directory as NSString).appendingPathComponent(optimizerFile)
        let moments = try readOptimizerState(path: optimizerPath)
        for (index, moment) in trainer.optimizer.moments.enumerated() {
            for (name, buffer) in [("\(index).exp_avg", moment.first), ("\(index).exp_avg_sq", moment.second)] {
                guard let values = moments[name], values.count == buffer.count else {
                    throw HoneError.missingTensor(name: name, path: optimizerPath)
                }
                values.withUnsafeBufferPointer { buffer.pointer.update(from: $0.baseAddress!, count: values.count) }
            }
        }
        trainer.optimizer.step = optimizerStep
        return step
    }

    /// The f32 tensors of the LZ4-framed safetensors file of AdamW moments, by name, bounds-checked.
    static func readOptimizerState(path: String) throws -> [String: [Float]] {
        guard let frame = FileManager.default.contents(atPath: path) else { throw HoneError.fileNotFound(path: path) }
        let data: Data
        do {
            data = try LZ4Frame.decompress(frame)
        } catch {
            throw HoneError.malformedFile(path: path, message: "damaged optimizer state (\(error))")
        }
        let bytes = [UInt8](data)
        guard bytes.count >= 8 else { throw HoneError.malformedFile(path: path, message: "optimizer state too short") }
        let headerLength = bytes[0..<8].enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        guard headerLength <= bytes.count - 8,
              let header = try? parseJSON(Data(bytes[8..<(8 + headerLength)])) as? [String: Any] else {
            throw HoneError.malformedFile(path: path, message: "optimizer state has a bad header")
        }
        let base = 8 + headerLength
        var tensors: [String: [Float]] = [:]
        for (name, value) in header where name != "__metadata__" {
            guard let entry = value as? [String: Any], entry["dtype"] as? String == "F32",
                  let offsets = entry["data_offsets"] as? [Any], offsets.count == 2,
                  let start = jsonInteger(offsets[0]), let end = jsonInteger(offsets[1]),
                  start >= 0, start <= end, base + end <= bytes.count, (end - start) % 4 == 0 else {
                throw HoneError.malformedFile(path: path, message: "optimizer state entry '\(name)' is malformed")
            }
            let count = (end - start) / 4
            guard count > 0 else {
                tensors[name] = []
                continue
            }
            tensors[name] = bytes.withUnsafeBytes { raw in
                [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
                    UnsafeMutableRawPointer(buffer.baseAddress!).copyMemory(from: raw.baseAddress! + base + start, byteCount: count * 4)
                    initialized = count
                }
            }
        }
        return tensors
    }

    /// The checkpoints in `outputDirectory`, newest first.
    static func all(in outputDirectory: String) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: outputDirectory)) ?? []
        let steps = names.compactMap { name -> Int? in
            guard name.hasPrefix("checkpoint-"), !name.hasSuffix(".tmp") else { return nil }
            return Int(name.dropFirst("checkpoint-".count))
        }
        return steps.sorted(by: >).map { (outputDirectory as NSString).appendingPathComponent("checkpoint-\($0)") }
    }

    /// What differs between two fingerprints, setting by setting ("cutoff=256 there, 64 in this run"); both whole
    /// when they do not read as key=value pairs.
    static func fingerprintDifferences(_ recorded: String, _ expected: String) -> String {
        func pairs(_ text: String) -> [(key: String, value: String)] {
            text.split(separator: " ").compactMap { part -> (key: String, value: String)? in
                guard let equals = part.firstIndex(of: "=") else { return nil }
                return (String(part[..<equals]), String(part[equals...].dropFirst()))
            }
        }
        let there = pairs(recorded), here = pairs(expected)
        let thereByKey = Dictionary(there, uniquingKeysWith: { first, _ in first })
        let hereByKey = Dictionary(here, uniquingKeysWith: { first, _ in first })
        var keys = here.map(\.key)
        keys += there.map(\.key).filter { hereByKey[$0] == nil }
        let differing = keys.filter { thereByKey[$0] != hereByKey[$0] }.map {
            "\($0)=\(thereByKey[$0] ?? "(none)") there, \(hereByKey[$0] ?? "(none)") in this run"
        }
        return differing.isEmpty ? "\(recorded); this run has \(expected)" : differing.joined(separator: "; ")
    }

    /// The fingerprint a checkpoint records, when its state file reads.
    static func recordedFingerprint(_ checkpoint: String) -> String? {
        let path = (checkpoint as NSString).appendingPathComponent(stateFile)
        return (try? JSONConfig(path: path))?.values["fingerprint"] as? String
    }
}

extension Trainer {
    /// The newest checkpoint of this run in the output directory (for `--resume-from-checkpoint latest`).
    public var latestCheckpoint: String? { newestCheckpointOfThisRun?.path }

    /// The newest checkpoint of this run, and the newer ones passed over because they record other settings or
    /// inputs: an earlier run into the same folder leaves its checkpoints, and resuming from one of those mixed two
    /// trainings. With no checkpoint of this run, the newest is returned (restoring it names what differs); one
    /// whose state does not read is not passed over, so that its damage is reported.
    public var newestCheckpointOfThisRun: (path: String, passedOver: [String])? {
        let checkpoints = TrainingCheckpoint.all(in: outputDirectory)
        guard let newest = checkpoints.first else { return nil }
        let expected = TrainingCheckpoint.fingerprint(self)
        for (index, checkpoint) in checkpoints.enumerated() {
            let recorded = TrainingCheckpoint.recordedFingerprint(checkpoint)
            if recorded == nil || recorded == expected { return (checkpoint, Array(checkpoints[..<index])) }
        }
        return (newest, [])
    }
}
