import Foundation

/// LoRA adapters in PEFT's directory layout (spec §5.4): `adapter_config.json` + `adapter_model.safetensors` with
/// PEFT's saved key names, so PEFT, TRL, vLLM and llama.cpp's converter read what Hone trains, and Hone reads
/// adapters trained elsewhere.
public enum PEFTAdapter {
    public static let configFile = "adapter_config.json"
    public static let weightsFile = "adapter_model.safetensors"
    /// Hone's own record of how the adapter was trained, beside PEFT's files: PEFT warns about (and would reject)
    /// keys of its config it does not know, so they stay out of adapter_config.json.
    public static let recordFile = "hone_training.json"

    /// What Hone records beside PEFT's fields: how the adapter was trained, so chat and generate can default to it.
    public struct TrainingRecord: Sendable, Equatable {
        public var promptTemplate: String?
        public var eosPolicy: String?
        /// A reward model's padding token while it was trained: where its score head reads (see `ScoreHead`).
        public var padTokenID: Int? = nil
        public init(promptTemplate: String? = nil, eosPolicy: String? = nil, padTokenID: Int? = nil) {
            self.promptTemplate = promptTemplate
            self.eosPolicy = eosPolicy
            self.padTokenID = padTokenID
        }
    }

    // MARK: - Writing

    public static func save(_ set: AdapterSet, baseModel: String, record: TrainingRecord = TrainingRecord(),
                            to directory: String) throws {
        try createOutputDirectory(directory)
        let configuration = set.configuration
        var config: [String: Any] = [
            "base_model_name_or_path": baseModel,
            "peft_type": "LORA",
            "task_type": "CAUSAL_LM",
            "inference_mode": true,
            "r": configuration.rank,
            "lora_alpha": configuration.alpha,
            "lora_dropout": configuration.dropout,
            "target_modules": configuration.targetModules,
            "use_rslora": configuration.useRSLoRA,
            "bias": "none",
            "fan_in_fan_out": false,
            "init_lora_weights": true,
            "modules_to_save": NSNull(),
            "revision": NSNull(),
        ]
        if !set.savedModules.isEmpty {
            // A sequence-classification adapter: PEFT rebuilds it on AutoModelForSequenceClassification.
            config["task_type"] = "SEQ_CLS"
            config["modules_to_save"] = set.savedModules.map(\.name)
        }
        var side: [String: Any] = [:]
        if let template = record.promptTemplate { side["prompt_template"] = template }
        if let policy = record.eosPolicy { side["eos_policy"] = policy }
        if let pad = record.padTokenID { side["pad_token_id"] = pad }
        let json = try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        var entries: [SafetensorsEntry] = []
        for (layer, module, adapter) in set.ordered {
            let prefix = set.peftPrefix(layer: layer, module: module)
            entries.append(SafetensorsEntry(name: prefix + ".lora_A.weight", dtype: "F32",
                                            shape: [adapter.rank, adapter.inFeatures], bytes: floatBytes(adapter.a)))
            var b = adapter.b
            if let order = set.rowOrders[module] {
                // Back to HF's row order for PEFT.
                b = FloatBuffer(count: adapter.b.count)
                for (stored, hf) in order.enumerated() {
                    (b.pointer + hf * adapter.rank).update(from: adapter.b.pointer + stored * adapter.rank, count: adapter.rank)
                }
            }
            entries.append(SafetensorsEntry(name: prefix + ".lora_B.weight", dtype: "F32",
                                            shape: [adapter.outFeatures, adapter.rank], bytes: floatBytes(b)))
        }
        for module in set.savedModules {
            entries.append(SafetensorsEntry(name: module.peftKey, dtype: "F32", shape: module.shape, bytes: floatBytes(module.weight)))
        }
        // Weights first, config last: a directory with a config always has its weights.
        try SafetensorsWriter.write(entries, metadata: ["format": "pt"], to: (directory as NSString).appendingPathComponent(weightsFile))
        let recordPath = (directory as NSString).appendingPathComponent(recordFile)
        if side.isEmpty {
            try? FileManager.default.removeItem(atPath: recordPath)
        } else {
            let sideJSON = try JSONSerialization.data(withJSONObject: side, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
            try writeFileAtomically(sideJSON + Data("\n".utf8), to: recordPath)
        }
        try writeFileAtomically(json + Data("\n".utf8), to: (directory as NSString).appendingPathComponent(configFile))
    }

    static func floatBytes(_ buffer: FloatBuffer) -> Data {
        Data(bytes: buffer.pointer, count: buffer.count * 4)
    }

    // MARK: - Reading

    /// Reads a PEFT LoRA adapter for `model`, checking every factor's shape against the model's layers.
    public static func load(directory: String, for model: CausalLanguageModel) throws -> (AdapterSet, TrainingRecord) {
        let configPath = (directory as NSString).appendingPathComponent(configFile)
        guard FileManager.default.fileExists(atPath: configPath) else { throw HoneError.fileNotFound(path: configPath) }
        let config = try JSONConfig(path: configPath).values
        if let type = config["peft_type"] as? String, type.uppercased() != "LORA" {
            throw HoneError.invalidConfig(path: configPath, message: "peft_type \(type) is not supported (only LORA)")
        }
        if config["use_dora"] as? Bool == true {
            throw HoneError.invalidConfig(path: configPath, message: "DoRA adapters (use_dora) are not supported")
        }
        for key in ["rank_pattern", "alpha_pattern"] {
            if let pattern = config[key] as? [String: Any], !pattern.isEmpty {
                throw HoneError.invalidConfig(path: configPath, message: "\(key) is not supported")
            }
        }
        guard let rankValue = config["r"] else { throw HoneError.missingConfigKey(path: configPath, key: "r") }
        guard let rank = jsonInteger(rankValue), rank > 0 else {
            throw HoneError.invalidConfig(path: configPath, message: "'r' must be a positive integer, not \(rankValue)")
        }
        // A present but unreadable number is an error, not a silent default.
        func number(_ key: String, default fallback: Double) throws -> Double {
            guard let value = config[key], !(value is NSNull) else { return fallback }
            guard let number = jsonDouble(value), number.isFinite else {
                throw HoneError.invalidConfig(path: configPath, message: "'\(key)' must be a finite number, not \(value)")
            }
            return number
        }
        let alpha = try number("lora_alpha", default: Double(rank))
        let dropout = try number("lora_dropout", default: 0)
        let useRSLoRA = config["use_rslora"] as? Bool ?? false
        let modules = model.config.architecture.adaptableModules

        let weightsPath = (directory as NSString).appendingPathComponent(weightsFile)
        guard FileManager.default.fileExists(atPath: weightsPath) else {
            if FileManager.default.fileExists(atPath: (directory as NSString).appendingPathComponent("adapter_model.bin")) {
                throw HoneError.malformedFile(path: directory, message: "adapter_model.bin (pickle) is not read; save the adapter with safe_serialization=True")
            }
            throw HoneError.fileNotFound(path: weightsPath)
        }
        let file = try SafetensorsFile(path: weightsPath)
        // Which modules the file holds, by parsing PEFT key names.
        var found: [(layer: Int, module: String, prefix: String)] = []
        for name in file.tensors.keys.sorted() where name.hasSuffix(".lora_A.weight") {
            let prefix = String(name.dropLast(".lora_A.weight".count))
            guard let (layer, module) = locate(prefix, modules: modules, layerCount: model.config.layerCount) else {
                throw HoneError.malformedFile(path: weightsPath, message: "'\(name)' is not a LoRA factor of a \(model.config.modelType) layer Hone can adapt")
            }
            found.append((layer, module, prefix))
        }
        guard !found.isEmpty else { throw HoneError.malformedFile(path: weightsPath, message: "no lora_A/lora_B tensors") }
        let targets = modules.names.filter { name in found.contains { $0.module == name } }
        let configuration = LoRAConfiguration(rank: rank, alpha: alpha, dropout: dropout, targetModules: targets, useRSLoRA: useRSLoRA)
        let set = AdapterSet(configuration: configuration, modules: modules, layerCount: model.config.layerCount)
        set.rowOrders = (model as? AdaptableModel)?.storedRowOrders ?? [:]
        // A factor holding a NaN or an infinity makes every output of its layer NaN, and a merge would write NaN
        // weights while reporting success: refused here, naming the tensor (indices in the file's order).
        func requireFinite(_ values: UnsafeMutablePointer<Float>, count: Int, _ name: String) throws {
            if let bad = (0..<count).first(where: { !values[$0].isFinite }) {
                throw HoneError.malformedFile(path: weightsPath, message: "tensor '\(name)' holds \(values[bad]) at index \(bad)")
            }
        }
        for (layer, module, prefix) in found {
            let (outFeatures, inFeatures) = try AdapterSet.linearShape(model: model, layer: layer, module: module)
            guard let viewA = file.tensors[prefix + ".lora_A.weight"], let viewB = file.tensors[prefix + ".lora_B.weight"] else {
                throw HoneError.missingTensor(name: prefix + ".lora_B.weight", path: weightsPath)
            }
            try viewA.expectShape([rank, inFeatures])
            try viewB.expectShape([outFeatures, rank])
            let adapter = LoRAAdapter(inFeatures: inFeatures, outFeatures: outFeatures, rank: rank, scale: configuration.scale)
            viewA.convert(offset: 0, count: adapter.a.count, into: adapter.a.pointer)
            try requireFinite(adapter.a.pointer, count: adapter.a.count, prefix + ".lora_A.weight")
            if let order = set.rowOrders[module] {
                let hfOrder = FloatBuffer(count: adapter.b.count)
                viewB.convert(offset: 0, count: adapter.b.count, into: hfOrder.pointer)
                try requireFinite(hfOrder.pointer, count: hfOrder.count, prefix + ".lora_B.weight")
                for (stored, hf) in order.enumerated() {
                    (adapter.b.pointer + stored * rank).update(from: hfOrder.pointer + hf * rank, count: rank)
                }
            } else {
                viewB.convert(offset: 0, count: adapter.b.count, into: adapter.b.pointer)
                try requireFinite(adapter.b.pointer, count: adapter.b.count, prefix + ".lora_B.weight")
            }
            set.attach(adapter, layer: layer, module: module)
        }
        // modules_to_save: fully trained copies saved beside the factors (a reward model's score head).
        let savedNames = (config["modules_to_save"] as? [Any])?.compactMap { $0 as? String } ?? []
        for name in savedNames where !set.savedModules.contains(where: { $0.name == name }) {
            let key = "base_model.model.\(name).weight"
            guard let view = file.tensors[key] else { continue }
            guard view.shape.count == 2 else {
                throw HoneError.tensorShape(name: key, expected: [-1, -1], actual: view.shape, path: weightsPath)
            }
            let weight = FloatBuffer(count: view.shape[0] * view.shape[1])
            view.convert(offset: 0, count: weight.count, into: weight.pointer)
            try requireFinite(weight.pointer, count: weight.count, key)
            set.savedModules.append(SavedModule(name: name, shape: view.shape, weight: weight))
        }
        // hone_training.json; adapters written before it existed kept the record in adapter_config.json.
        var side: [String: Any] = [:]
        let recordPath = (directory as NSString).appendingPathComponent(recordFile)
        if FileManager.default.fileExists(atPath: recordPath) { side = try JSONConfig(path: recordPath).values }
        let record = TrainingRecord(promptTemplate: side["prompt_template"] as? String ?? config["hone_prompt_template"] as? String,
                                    eosPolicy: side["eos_policy"] as? String ?? config["hone_eos_policy"] as? String,
                                    padTokenID: side["pad_token_id"].flatMap(jsonInteger))
        return (set, record)
    }

    /// (layer, module) of a PEFT key prefix such as "base_model.model.model.layers.3.self_attn.q_proj".
    static func locate(_ prefix: String, modules: AdaptableModules, layerCount: Int) -> (Int, String)? {
        for layer in 0..<layerCount {
            for module in modules.names where prefix.hasSuffix("." + modules.path(layer, module)) || prefix == modules.path(layer, module) {
                return (layer, module)
            }
        }
        return nil
    }
}

extension LoadedModel {
    /// Attaches the PEFT adapter in `directory` to the model (for score, generate, chat).
    @discardableResult
    public func attachAdapter(directory: String) throws -> PEFTAdapter.TrainingRecord {
        guard let adaptable = model as? AdaptableModel else {
            throw HoneError.invalidArgument("\(config.modelType) models cannot take LoRA adapters yet")
        }
        let (set, record) = try PEFTAdapter.load(directory: directory, for: model)
        adaptable.adapters = set
        return record
    }

    /// Removes any attached adapter: the base model again.
    public func detachAdapters() throws {
        guard let adaptable = model as? AdaptableModel else { return }
        adaptable.adapters = nil
    }
}
