import Foundation
import HoneKernels

/// Folding LoRA adapters into base weights (PEFT's merge, spec §5.3): W ← W + s·B·A computed in f32, then
/// rounded to the output dtype. Rounding can swallow a small delta whole (bf16 keeps 8 bits of mantissa), so
/// every merged tensor reports how much of its delta survived.
public enum AdapterMerge {
    /// How much of one tensor's delta survives rounding to the output dtype.
    public struct TensorReport: Sendable {
        public let name: String
        /// ⟨realised, Δ⟩ / ‖Δ‖²: 1 when the stored change equals the delta, 0 when rounding erased it.
        public let retained: Double
        /// ‖realised − Δ‖ / ‖Δ‖, where realised = stored merged weight − stored base weight.
        public let relativeError: Double
        /// ‖Δ‖ / ‖W‖.
        public let relativeSize: Double
    }

    /// Below this overall retained fraction, writing is refused without --force: the file would be the base model.
    public static let minimumRetained = 0.5

    /// The merged weight of one adapted linear layer, in f32: [out, in].
    public static func mergedWeight(_ weight: TensorView, adapter: LoRAAdapter) -> FloatBuffer {
        let merged = FloatBuffer(count: weight.elementCount)
        weight.convert(offset: 0, count: weight.elementCount, into: merged.pointer)
        adapter.addDelta(into: merged.pointer)
        return merged
    }

    /// A merged weight holding a NaN or an infinity (the base weight held one already, or W + s·B·A overflowed f32;
    /// adapters are checked when they load) stops the merge before anything is written: its report would call it
    /// a full success.
    static func requireFinite(_ merged: FloatBuffer, name: String) throws {
        if let bad = (0..<merged.count).first(where: { !merged[$0].isFinite }) {
            throw HoneError.nonFinite(message: "merge stopped: the merged weight '\(name)' holds \(merged[bad]) at index \(bad); nothing was written")
        }
    }

    /// The stored bytes of `values` in `dtype` and what reading them back gives. Quantized types quantize rows of
    /// `rowLength` values.
    public static func round(_ values: FloatBuffer, to dtype: DType, rowLength: Int = 0) -> (bytes: Data, readBack: FloatBuffer) {
        let count = values.count
        if dtype.isQuantized {
            let length = rowLength > 0 ? rowLength : count
            var bytes = Data(count: dtype.byteCount(elements: count))
            let readBack = FloatBuffer(count: count)
            bytes.withUnsafeMutableBytes { raw in
                _ = hk_quantize(Int32(dtype.ggmlType), values.pointer, raw.baseAddress!, Int64(count / length), Int64(length))
                let view = TensorView(name: "merged", dtype: dtype, shape: [count], data: UnsafeRawPointer(raw.baseAddress!),
                                      source: "merge", owner: nil)
                view.convert(offset: 0, count: count, into: readBack.pointer)
            }
            return (bytes, readBack)
        }
        switch dtype {
        case .f16, .bf16:
            var halves = [UInt16](repeating: 0, count: count)
            let readBack = FloatBuffer(count: count)
            halves.withUnsafeMutableBufferPointer { buffer in
                if dtype == .f16 {
                    hk_convert_f32_to_f16(values.pointer, buffer.baseAddress!, count)
                    hk_convert_f16_to_f32(buffer.baseAddress!, readBack.pointer, count)
                } else {
                    hk_convert_f32_to_bf16(values.pointer, buffer.baseAddress!, count)
                    hk_convert_bf16_to_f32(buffer.baseAddress!, readBack.pointer, count)
                }
            }
            return (halves.withUnsafeBytes { Data($0) }, readBack)
        default:
            return (Data(bytes: values.pointer, count: count * 4), values)
        }
    }

    /// Compares what the output file will hold with the intended delta. `storedBase`: what the output would hold
    /// without the adapter (the base itself when the dtype does not change; its quantized form otherwise).
    public static func report(name: String, base: TensorView, merged: FloatBuffer, storedMerged: FloatBuffer,
                              storedBase: FloatBuffer? = nil) -> TensorReport {
        let count = merged.count
        let original = FloatBuffer(count: count)
        base.convert(offset: 0, count: count, into: original.pointer)
        let reference = storedBase ?? original
        var deltaSquared = 0.0, dot = 0.0, errorSquared = 0.0, weightSquared = 0.0
        for index in 0..<count {
            let delta = Double(merged[index]) - Double(original[index])
            let realised = Double(storedMerged[index]) - Double(reference[index])
            deltaSquared += delta * delta
            dot += realised * delta
            errorSquared += (realised - delta) * (realised - delta)
            weightSquared += Double(original[index]) * Double(original[index])
        }
        guard deltaSquared > 0 else {
            return TensorReport(name: name, retained: 1, relativeError: 0, relativeSize: 0)
        }
        return TensorReport(name: name, retained: dot / deltaSquared, relativeError: (errorSquared / deltaSquared).squareRoot(),
                            relativeSize: (deltaSquared / max(weightSquared, .leastNormalMagnitude)).squareRoot())
    }

    /// Overall retained fraction, weighted by each delta's size.
    public static func overallRetained(_ reports: [TensorReport]) -> Double {
        let weights = reports.map { $0.relativeSize * $0.relativeSize }
        let total = weights.reduce(0, +)
        guard total > 0 else { return 1 }
        return zip(reports, weights).reduce(0) { $0 + $1.0.retained * $1.1 } / total
    }

    // MARK: - GGUF output

    /// Writes base + adapters as a GGUF of `scheme` (F16 or a quantized type), through `hone quantize`'s writer:
    /// llama.cpp's tensor types and metadata, the merged weights computed one tensor at a time. The rounding
    /// report uses the scheme's base type for every adapted tensor (q4_k_m keeps some in Q6_K, and `overrides` may
    /// give others other types: those figures are then estimates). `pure` and `overrides` are `hone quantize`'s.
    @discardableResult
    public static func writeGGUF(base: LoadedModel, adapters: AdapterSet, to output: String, scheme: QuantizationScheme,
                                 pure: Bool = false, overrides: QuantizationOverrides = QuantizationOverrides(),
                                 metadataOverrides: [GGUFMetadataOverride] = [],
                                 force: Bool, record: PEFTAdapter.TrainingRecord = .init(), warn: (String) -> Void = { _ in },
                                 progress: ((Int, Int) -> Void)? = nil) throws -> [TensorReport] {
        let adapted = try adaptedWeights(base: base, adapters: adapters)
        var reports: [TensorReport] = []
        let type = scheme.baseType
        for name in adapted.keys.sorted() {
            let weight = try base.weights.tensor(name)
            let merged = mergedWeight(weight, adapter: adapted[name]!)
            try requireFinite(merged, name: name)
            let original = FloatBuffer(count: weight.elementCount)
            weight.convert(offset: 0, count: weight.elementCount, into: original.pointer)
            let rowLength = weight.shape.last ?? 0
            reports.append(report(name: name, base: weight, merged: merged,
                                  storedMerged: round(merged, to: type, rowLength: rowLength).readBack,
                                  storedBase: round(original, to: type, rowLength: rowLength).readBack))
        }
        try refuseIfErased(reports, type: type, force: force)
        // The adapter's template travels with the merged model, so `--template auto` keeps using it.
        let extra = record.promptTemplate.map { [(key: ModelConfig.ggufPromptTemplateKey, value: $0)] } ?? []
        _ = try GGUFExport.write(input: base.path, output: output, scheme: scheme, pure: pure, overrides: overrides,
                                 extraStrings: extra, metadataOverrides: metadataOverrides, warn: warn,
                                 progress: { done, total, _ in progress?(done, total) },
                                 replacing: { name, view in
                                     guard let adapter = adapted[name] else { return nil }
                                     let merged = mergedWeight(view, adapter: adapter)
                                     return TensorView(name: name, dtype: .f32, shape: view.shape,
                                                       data: UnsafeRawPointer(merged.pointer), source: view.source, owner: merged)
                                 })
        return reports
    }

    /// Stored tensor name → the adapter that changes it.
    static func adaptedWeights(base: LoadedModel, adapters: AdapterSet) throws -> [String: LoRAAdapter] {
        guard let adaptable = base.model as? AdaptableModel else {
            throw HoneError.invalidArgument("\(base.config.modelType) models cannot take LoRA adapters")
        }
        var adapted: [String: LoRAAdapter] = [:]
        for (layer, module, adapter) in adapters.ordered {
            guard let linear = adaptable.baseLinear(layer: layer, module: module) else {
                throw HoneError.missingTensor(name: adapters.modules.path(layer, module) + ".weight", path: base.path)
            }
            adapted[linear.weight.name] = adapter
        }
        return adapted
    }

    static func refuseIfErased(_ reports: [TensorReport], type: DType, force: Bool) throws {
        // A zero delta (lora_alpha 0, or lora_B still all zeros: an untrained adapter) was reported as 100 % of
        // the change surviving; the file would be the base model, as when rounding erases the change.
        if !force, reports.allSatisfy({ $0.relativeSize == 0 }) {
            throw HoneError.invalidArgument("the adapter changes no weight (its delta s·B·A is zero: lora_alpha 0, or lora_B all zeros as "
                                            + "before training); the merged model would be the base. Pass \(OptionName("force")) to write it anyway")
        }
        let retained = overallRetained(reports)
        if retained < minimumRetained, !force {
            throw HoneError.invalidArgument(String(format: "rounding to %@ keeps only %.0f%% of the adapter's change; the merged model would be nearly the base. Merge into a wider type, or pass \(OptionName("force"))", type.rawValue, retained * 100))
        }
    }

    // MARK: - HF directory output

    /// The output directory is swapped whole: only an earlier merge's output may be replaced. A directory holding
    /// anything else lost it (an existing folder's files, the adapter itself), and the base's own folder was
    /// overwritten.
    static func requireReplaceable(_ directory: String, base: String) throws {
        guard canonicalPath(directory) != canonicalPath(base) else {
            throw HoneError.invalidArgument("\(directory) is the base model's folder; choose a new output directory")
        }
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return }
        if let foreign = entries.sorted().first(where: { !(companionFiles + ["model.safetensors"]).contains($0) }) {
            throw HoneError.invalidArgument("\(directory) already holds '\(foreign)', which a merge does not write; choose a new or empty output directory")
        }
    }

    /// Files copied from the base directory beside the merged weights.
    static let companionFiles = ["config.json", "generation_config.json", "tokenizer.json", "tokenizer.model",
                                 "tokenizer_config.json", "special_tokens_map.json", "vocab.json", "merges.txt",
                                 "added_tokens.json", "chat_template.jinja"]

    /// Writes base + adapters as an HF directory in the base's dtypes (one model.safetensors, streamed).
    /// Throws, writing nothing, when rounding would erase the adapter and `force` is false.
    @discardableResult
    public static func writeHuggingFace(base: LoadedModel, adapters: AdapterSet, to directory: String, force: Bool,
                                        record: PEFTAdapter.TrainingRecord = .init(),
                                        progress: ((Int, Int) -> Void)? = nil) throws -> [TensorReport] {
        guard base.format == .huggingFace else {
            throw HoneError.invalidArgument("merging into a GGUF base writes GGUF: use \(OptionName("format")) gguf")
        }
        try requireReplaceable(directory, base: base.path)
        let adapted = try adaptedWeights(base: base, adapters: adapters)
        // First pass: merge and measure, before anything is written.
        var reports: [TensorReport] = []
        for name in adapted.keys.sorted() {
            let weight = try base.weights.tensor(name)
            let merged = mergedWeight(weight, adapter: adapted[name]!)
            try requireFinite(merged, name: name)
            reports.append(report(name: name, base: weight, merged: merged, storedMerged: round(merged, to: weight.dtype).readBack))
        }
        try refuseIfErased(reports, type: reports.isEmpty ? .f32 : try base.weights.tensor(reports[0].name).dtype, force: force)

        let names = base.weights.tensorNames.sorted()
        var entries: [SafetensorsStreamEntry] = []
        var totalBytes = 0
        for name in names {
            let tensor = try base.weights.tensor(name)
            guard [.f32, .f16, .bf16].contains(tensor.dtype) else {
                throw HoneError.unsupportedDType(name: name, dtype: tensor.dtype.rawValue, path: base.path)
            }
            totalBytes += tensor.byteCount
            entries.append(SafetensorsStreamEntry(name: name, dtype: tensor.dtype, shape: tensor.shape) {
                if let adapter = adapted[name] {
                    return round(mergedWeight(tensor, adapter: adapter), to: tensor.dtype).bytes
                }
                return Data(bytes: tensor.data, count: tensor.byteCount)
            })
        }
        // A reward adapter's trained score head (modules_to_save): the merged model is a sequence classifier.
        let score = adapters.savedModule(ScoreHead.moduleName)
        if let score {
            // The merged model is read back with the head's shape: the base's head, or one row per label over the
            // model's output width.
            let expected = try base.weights.tensorNames.contains(ScoreHead.tensorName)
                ? base.weights.tensor(ScoreHead.tensorName).shape
                : [score.shape.first ?? 1, RewardModelTrainingSetup.outputWidth(base)]
            try adapters.requireScoreShape(score, expected)
            entries.removeAll { $0.name == ScoreHead.tensorName }
            entries.append(SafetensorsStreamEntry(name: ScoreHead.tensorName, dtype: .f32, shape: score.shape) {
                PEFTAdapter.floatBytes(score.weight)
            })
            totalBytes += score.weight.count * 4
        }
        // Staged and moved into place whole: a failed rerun keeps the previous merged model as it was.
        try writeDirectoryAtomically(directory) { staging in
            try SafetensorsWriter.write(streaming: entries, metadata: ["format": "pt"],
                                        to: (staging as NSString).appendingPathComponent("model.safetensors")) { written in
                progress?(written, totalBytes)
            }
            for file in companionFiles {
                let source = (base.path as NSString).appendingPathComponent(file)
                guard var data = FileManager.default.contents(atPath: source) else { continue }
                if file == "config.json", record.promptTemplate != nil || score != nil,
                   var config = try? parseJSON(data) as? [String: Any] {
                    // The adapter's template travels with the merged model (transformers keeps unknown config keys).
                    if let template = record.promptTemplate { config[ModelConfig.huggingFacePromptTemplateKey] = template }
                    if let score {
                        // transformers' sequence-classification class of the same architecture, with the head's labels
                        // and the padding id the reward model was trained to read around.
                        let causal = (config["architectures"] as? [String])?.first ?? ""
                        config["architectures"] = [causal.replacingOccurrences(of: "ForCausalLM", with: "ForSequenceClassification")]
                        config["num_labels"] = score.shape[0]
                        config["id2label"] = Dictionary(uniqueKeysWithValues: (0..<score.shape[0]).map { ("\($0)", "LABEL_\($0)") })
                        config["label2id"] = Dictionary(uniqueKeysWithValues: (0..<score.shape[0]).map { ("LABEL_\($0)", $0) })
                        if let pad = record.padTokenID { config["pad_token_id"] = pad }
                    }
                    data = try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
                }
                try writeFileAtomically(data, to: (staging as NSString).appendingPathComponent(file))
            }
        }
        return reports
    }
}
