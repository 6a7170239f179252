import Foundation

// MARK: - Writing a GGUF from an HF directory or another GGUF

/// `hone quantize` and `hone convert` (HF → GGUF): reads a model, picks each tensor's type with
/// `QuantizationPlanner`, and streams the tensors one at a time into a GGUF written atomically.
public enum GGUFExport {
    /// What was written, for the command's summary and for tests.
    public struct Summary: Sendable {
        public let path: String
        public let tensors: [(name: String, shape: [Int], type: DType)]
        public let fallbackCount: Int
        public let requantized: [String]
        public let bytes: Int
    }

    /// One tensor of a plan: its name, shape (HF order), type in the input and the type it will be written as.
    public struct PlannedTensor: Sendable {
        public let name: String
        public let shape: [Int]
        public let inputType: DType
        public let type: DType
        public let fellBack: Bool

        /// Bytes of the tensor's data in the input and in the output.
        public var inputBytes: Int { inputType.byteCount(elements: shape.reduce(1, *)) }
        public var bytes: Int { type.byteCount(elements: shape.reduce(1, *)) }
    }

    /// Each tensor's type in the file `write` would make, without writing it (llama-quantize --dry-run).
    public static func plan(input: String, scheme: QuantizationScheme, pure: Bool = false,
                            overrides: QuantizationOverrides = QuantizationOverrides(),
                            warn: (String) -> Void = { _ in }) throws -> [PlannedTensor] {
        let (source, choices) = try prepare(input: input, scheme: scheme, pure: pure, overrides: overrides, warn: warn)
        return zip(source.tensors, choices).map {
            PlannedTensor(name: $0.name, shape: $0.shape, inputType: $0.source.dtype, type: $1.type, fellBack: $1.fellBack)
        }
    }

    private static func prepare(input: String, scheme: QuantizationScheme, pure: Bool, overrides: QuantizationOverrides,
                                warn: (String) -> Void) throws -> (Source, [QuantizationPlanner.Choice]) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: input, isDirectory: &isDirectory) else {
            throw HoneError.fileNotFound(path: input)
        }
        var source = isDirectory.boolValue ? try huggingFaceSource(directory: input, scheme: scheme, warn: warn)
                                           : try ggufSource(path: input, scheme: scheme)
        if !overrides.pruneLayers.isEmpty { try prune(&source, layers: overrides.pruneLayers) }
        // The planner's layer count stays the model's: llama.cpp counts ffn_down layers from the unpruned model.
        let planner = QuantizationPlanner(scheme: scheme, layerCount: source.layerCount, pure: pure,
                                          headsPerKeyValueHead: source.headsPerKeyValueHead,
                                          expertCount: source.expertCount, overrides: overrides)
        let choices = try planner.choose(source.tensors.map {
            QuantizationPlanner.Tensor(name: $0.name, shape: $0.shape, type: $0.plannedType)
        })
        return (source, choices)
    }

    /// Writes `input` (an HF directory or a GGUF file) to the GGUF `output` as `scheme` says.
    /// - Parameters:
    ///   - warn: one-line warnings (no tokenizer, requantization, lossy rope scaling, fallbacks).
    ///   - progress: (tensors done, total, bytes written so far), called after each tensor.
    ///   - replacing: called with each stored tensor's name and view when it is written; a returned view is written
    ///     instead (`hone merge` supplies merged weights this way, one tensor at a time).
    ///   - pure: llama-quantize's --pure: every quantizable tensor of the scheme's base type (fallbacks still apply).
    ///   - overrides: llama-quantize's per-tensor options (--output-tensor-type, --tensor-type, ...).
    ///   - allowRequantize: llama-quantize's --allow-requantize: quantized input tensors are requantized without a
    ///     warning (without it Hone still requantizes, and warns).
    ///   - extraStrings: string metadata written after the input's keys (`hone merge` records the adapter's template).
    ///   - metadataOverrides: llama-quantize's --override-kv: each key removed where it stands and written last.
    public static func write(input: String, output: String, scheme: QuantizationScheme, pure: Bool = false,
                             overrides: QuantizationOverrides = QuantizationOverrides(), allowRequantize: Bool = false,
                             extraStrings: [(key: String, value: String)] = [],
                             metadataOverrides: [GGUFMetadataOverride] = [],
                             warn: (String) -> Void = { _ in },
                             progress: ((Int, Int, Int) -> Void)? = nil,
                             replacing: ((String, TensorView) throws -> TensorView?)? = nil) throws -> Summary {
        let (source, choices) = try prepare(input: input, scheme: scheme, pure: pure, overrides: overrides, warn: warn)
        // Only a quantized target adds error; dequantizing to f16/bf16/f32 is what --type asked for (merge on a
        // quantized base always does it), not a requantization.
        let requantized = zip(source.tensors, choices)
            .filter { $0.source.dtype.isQuantized && $1.type.isQuantized && $0.source.dtype != $1.type }
            .map(\.0.name)
        if !requantized.isEmpty && !allowRequantize {
            let types = Set(requantized.compactMap { name in source.tensors.first { $0.name == name }?.source.dtype.rawValue })
            warn("\(input) holds \(requantized.count) tensor(s) already quantized (\(types.sorted().joined(separator: ", "))); they are dequantized and quantized again, which adds error (llama-quantize refuses this without \(OptionName("allow_requantize")), which also silences this warning)")
        }
        let fallbacks = choices.filter(\.fellBack).count
        if fallbacks > 0 {
            warn("\(fallbacks) tensor(s) have rows that their blocks do not divide and use llama.cpp's fallback types (Q4_0, Q5_0, Q5_1, Q8_0, IQ4_NL or F16)")
        }

        let writer = GGUFWriter()
        let overridden = Set(metadataOverrides.map(\.key))
        for entry in source.metadata where !extraStrings.contains(where: { $0.key == entry.key }) && !overridden.contains(entry.key) {
            writer.add(entry.key, value: entry.value, type: entry.type, arrayType: entry.arrayType)
        }
        for (key, value) in extraStrings where !overridden.contains(key) { writer.add(key, value: .string(value), type: 8, arrayType: nil) }
        if !source.convertedMetadata {
            // llama-quantize's order: the input's keys, then these two rewritten at the end.
            if !overridden.contains("general.quantization_version") { writer.add("general.quantization_version", uint32: 2) }
            if !overridden.contains("general.file_type") { writer.add("general.file_type", uint32: scheme.fileType) }
        }
        // gguf_set_val removes a key and appends it: a key given twice ends where its last setting put it.
        var placed = Set<String>()
        for entry in metadataOverrides.reversed().filter({ placed.insert($0.key).inserted }).reversed()
        where entry.key != source.prunedBlockCount?.key {
            writer.add(entry.key, value: entry.value, type: entry.type, arrayType: nil)
        }
        if let pruned = source.prunedBlockCount { writer.add(pruned.key, uint32: UInt32(pruned.count)) }

        let total = source.tensors.count
        var done = 0
        var written = 0
        for (tensor, choice) in zip(source.tensors, choices) {
            // llama-quantize writes ggml_n_dims dimensions: trailing 1s in GGML's order (leading here) go, so
            // Qwen2-MoE's [1, hidden] shared-expert gate becomes [hidden]; the converter keeps them.
            let shape = source.convertedMetadata ? tensor.shape : GGUFExport.withoutUnitDimensions(tensor.shape)
            writer.add(tensor: GGUFWriter.TensorEntry(name: tensor.name, shape: shape, dtype: choice.type) {
                var tensor = tensor
                if let replacement = try replacing?(tensor.source.name, tensor.source) {
                    tensor = ExportTensor(name: tensor.name, shape: tensor.shape, source: replacement,
                                          sourceRow: tensor.sourceRow, plannedType: tensor.plannedType)
                }
                let bytes = try tensor.encoded(as: choice.type)
                done += 1
                written += bytes.count
                progress?(done, total, written)
                return bytes
            })
        }
        try writer.write(to: output)
        let size = (try? FileManager.default.attributesOfItem(atPath: output)[.size] as? Int) ?? 0
        return Summary(path: output, tensors: zip(source.tensors, choices).map { ($0.name, $0.shape, $1.type) },
                       fallbackCount: fallbacks, requantized: requantized, bytes: size)
    }

    // MARK: - Sources

    struct Source {
        var metadata: [(key: String, value: GGUFValue, type: UInt32, arrayType: UInt32?)]
        /// In `QuantizationPlanner.loaderOrder`.
        var tensors: [ExportTensor]
        var layerCount: Int
        /// Query heads per key/value head (llama.cpp's n_gqa; 1 when unknown), which some schemes' choices depend on.
        var headsPerKeyValueHead = 1
        /// Experts per sparse MLP (llama.cpp's n_expert; 0 for a dense model).
        var expertCount = 0
        /// Metadata made here (HF input, file type and quantization version included) rather than copied.
        var convertedMetadata: Bool
        /// With --prune-layers: the `ARCH.block_count` key and the blocks left, written last (after --override-kv),
        /// as llama-quantize sets it.
        var prunedBlockCount: (key: String, count: Int)? = nil
    }

    /// llama-quantize's --prune-layers: the blocks listed are left out and the others renumbered in order (those
    /// before the first pruned keep their numbers).
    static func prune(_ source: inout Source, layers pruned: [Int]) throws {
        let architecture = source.metadata.first { $0.key == "general.architecture" }?.value.stringValue ?? ""
        let keyIndex = source.metadata.firstIndex { $0.key == "\(architecture).block_count" }
        guard let keyIndex else { throw HoneError.invalidArgument("\(OptionName("prune_layers")): the input has no \(architecture).block_count") }
        let key = source.metadata[keyIndex].key
        if let outside = pruned.first(where: { $0 >= source.layerCount }) {
            throw HoneError.invalidArgument("\(OptionName("prune_layers")) \(outside): the model has \(source.layerCount) layers (0 to \(source.layerCount - 1))")
        }
        guard pruned.count < source.layerCount else {
            throw HoneError.invalidArgument("\(OptionName("prune_layers")) would leave no layer of \(source.layerCount)")
        }
        let kept = (0..<source.layerCount).filter { !pruned.contains($0) }
        let renumbered = Dictionary(uniqueKeysWithValues: kept.enumerated().map { ($1, $0) })
        source.tensors = source.tensors.compactMap { tensor in
            let block = QuantizationPlanner.blockIndex(tensor.name)
            guard block >= 0 else { return tensor }
            guard let number = renumbered[block] else { return nil }
            let name = "blk.\(number)." + tensor.name.dropFirst("blk.\(block).".count)
            return ExportTensor(name: name, shape: tensor.shape, source: tensor.source, sourceRow: tensor.sourceRow,
                                plannedType: tensor.plannedType, parts: tensor.parts)
        }
        source.metadata.remove(at: keyIndex)
        source.prunedBlockCount = (key, kept.count)
    }

    /// The float type of an HF checkpoint's weight matrices (what `hone convert` keeps by default).
    public static func checkpointFloatType(directory: String) throws -> DType {
        let store = try SafetensorsStore(directory: directory)
        for name in store.tensorNames {
            if let tensor = try? store.tensor(name), tensor.shape.count >= 2 { return tensor.dtype }
        }
        return .f32
    }

    /// A GGUF: metadata copied in order (llama-quantize rewrites general.quantization_version and
    /// general.file_type at the end, and so does this), tensors in the loader's order.
    static func ggufSource(path: String, scheme: QuantizationScheme) throws -> Source {
        let gguf = try GGUFFile(path: path)
        guard let architecture = gguf.architecture else {
            throw HoneError.missingConfigKey(path: path, key: "general.architecture")
        }
        guard ModelArchitectures.forGGUF(architecture)?.ggufNames != nil else {
            throw HoneError.unsupportedArchitecture(name: architecture, path: path)
        }
        guard let layers = gguf.integer("\(architecture).block_count") else {
            throw HoneError.missingConfigKey(path: path, key: "\(architecture).block_count")
        }
        var metadata: [(key: String, value: GGUFValue, type: UInt32, arrayType: UInt32?)] = []
        // A split input is written as one file: its split keys go, as llama-quantize removes them.
        for key in gguf.metadataKeys where key != "general.quantization_version" && key != "general.file_type"
            && !GGUFFile.splitKeys.contains(key) {
            // The writer aligns to 32 bytes; a different alignment key would describe the file wrongly.
            if key == "general.alignment", gguf.integer(key) != GGUFWriter.alignment { continue }
            let type = gguf.metadataTypes[key]!
            metadata.append((key, gguf.metadata[key]!, type.type, type.elementType))
        }
        let tensors = try gguf.tensorInfos.sorted { QuantizationPlanner.loaderOrder($0.name, $1.name) }.map { info in
            let view = try gguf.tensorView(info)
            return ExportTensor(name: info.name, shape: info.shape, source: view, sourceRow: nil, plannedType: view.dtype)
        }
        let heads = gguf.integer("\(architecture).attention.head_count") ?? 1
        let keyValueHeads = gguf.integer("\(architecture).attention.head_count_kv") ?? heads
        return Source(metadata: metadata, tensors: tensors, layerCount: layers,
                      headsPerKeyValueHead: keyValueHeads > 0 ? heads / keyValueHeads : 1,
                      expertCount: gguf.integer("\(architecture).expert_count") ?? 0, convertedMetadata: false)
    }

    /// An HF directory, as llama.cpp's convert_hf_to_gguf.py would write it: llama.cpp tensor names, Q/K rows
    /// permuted for Llama and Mistral, Llama 3 rope factors as `rope_freqs.weight`, 1-D tensors in F32.
    static func huggingFaceSource(directory: String, scheme: QuantizationScheme, warn: (String) -> Void) throws -> Source {
        let configPath = (directory as NSString).appendingPathComponent("config.json")
        let rawConfig = try JSONConfig(path: configPath)
        let config = try ModelConfig.fromHuggingFace(path: configPath)
        guard let names = config.architecture.ggufNames else {
            // OPT and the like: llama.cpp has no such architecture, so a GGUF of it would load nowhere.
            let writable = ModelArchitectures.all.filter { $0.ggufNames != nil }.flatMap { $0.huggingFaceModelTypes.keys.sorted() }
            throw HoneError.invalidConfig(path: configPath, message: "model_type '\(config.modelType)' has no GGUF form that llama.cpp loads (\(writable.joined(separator: ", ")) can be written as GGUF)")
        }
        let architecture = names.architecture(config.modelType)
        if architecture == "smollm3" {
            let interval = LlamaConfig.smolLM3NoRopeInterval
            guard config.layersWithoutRotation == Set((0..<config.layerCount).filter { ($0 + 1) % interval == 0 }) else {
                throw HoneError.invalidConfig(path: configPath, message: "no_rope_layers has no GGUF form: llama.cpp's smollm3 leaves out the rotation on every \(interval)th layer only")
            }
        }
        let llamaCppScale: Float? = architecture == "gemma3" ? Gemma3Config.llamaCppAttentionScale(config)
            : architecture == "gemma2" ? Gemma2Config.llamaCppAttentionScale(config) : nil
        if architecture == "olmo2", config.localRopeTheta != config.ropeTheta, !config.slidingWindowLayers.isEmpty {
            warn("\(configPath): llama.cpp rotates OLMo 3's sliding-window layers with the global rope base \(config.ropeTheta), not their own \(config.localRopeTheta)")
        }
        if architecture == "exaone4", config.slidingWindow != nil, config.layerCount != EXAONE4Config.llamaCppWindowedLayerCount {
            warn("\(configPath): llama.cpp's exaone4 runs sliding windows for 64-layer models only; this model's \(config.layerCount) layers will all attend globally with rotary positions there (and in Hone, reading the GGUF)")
        }
        if architecture == "olmoe", config.normEpsilon != 1e-5 {
            warn("\(configPath): rms_norm_eps is \(config.normEpsilon), but llama.cpp's converter writes 1e-5 for OLMoE (and Hone, reading the GGUF, uses that)")
        }
        if architecture == "gemma", config.ropeTheta != 10000 || config.ropeScaling != .none || !config.tieWordEmbeddings {
            warn("\(configPath): llama.cpp's gemma takes rope base 10000 unscaled and the embedding as the output projection (the converter writes no rope key and drops lm_head), not this config's")
        }
        if let llamaCppScale, config.attentionMultiplier != llamaCppScale {
            warn("\(configPath): query_pre_attn_scalar has no GGUF key; llama.cpp (and Hone, reading the GGUF) will scale attention by \(llamaCppScale), not \(config.attentionMultiplier ?? 0)")
        }
        if config.isMixtureOfExperts, config.normalizesExpertWeights != LlamaConfig.renormalizesExperts(architecture) {
            warn("\(configPath): norm_topk_prob is \(config.normalizesExpertWeights), but llama.cpp (and Hone, reading the GGUF) \(config.normalizesExpertWeights ? "never divides" : "always divides") the chosen experts' probabilities by their sum for \(architecture)")
        }
        let permuted = names.permutedRows(architecture, config)
        let store = try SafetensorsStore(directory: directory)
        var tensors: [ExportTensor] = []
        // A layer's experts, one matrix each here, become one 3-D tensor per role (Qwen2MoeModel and LlamaModel
        // stack them in the converter).
        var expertStacks: [String: [Int: TensorView]] = [:]
        for name in store.tensorNames {
            if name.hasSuffix(".rotary_emb.inv_freq") { continue }
            // GemmaModel drops lm_head whatever the config says (llama.cpp projects with the embedding).
            if name == "lm_head.weight", config.tieWordEmbeddings || architecture == "gemma" { continue }
            if config.modelType == "granitemoe", let (layer, role) = GraniteMoENames.stack(name) {
                // GraniteMoeModel.modify_tensors: input_linear split into the gate and up stacks (each expert's
                // first half of rows, then its second); output_linear is the down stack as it is.
                let view = try store.tensor(name)
                guard view.shape.count == 3, view.shape[0] == config.expertCount else {
                    throw HoneError.tensorShape(name: name, expected: [config.expertCount, -1, -1], actual: view.shape, path: store.location)
                }
                let matrices = (0..<config.expertCount).map { view.matrix($0) }
                let halves: [(String, [TensorView])]
                if role == "inputs" {
                    let half = view.shape[1] / 2
                    halves = [("ffn_gate_exps", matrices.map { $0.rows(0..<half) }), ("ffn_up_exps", matrices.map { $0.rows(half..<(2 * half)) })]
                } else {
                    halves = [("ffn_down_exps", matrices)]
                }
                for (stem, parts) in halves {
                    tensors.append(ExportTensor(name: "blk.\(layer).\(stem).weight", shape: [parts.count] + parts[0].shape, source: parts[0],
                                                sourceRow: nil, plannedType: view.dtype, parts: parts))
                }
                continue
            }
            if config.isMixtureOfExperts, let stacked = ExpertNames.ggufStack(forHuggingFace: name) {
                expertStacks[stacked.name, default: [:]][stacked.expert] = try store.tensor(name)
                continue
            }
            guard let ggufName = names.gguf(name) else {
                throw HoneError.invalidConfig(path: store.location, message: "tensor '\(name)' has no GGUF counterpart in llama.cpp's \(architecture) layout")
            }
            var view = try store.tensor(name)
            if names.normWeightOffset != 0, name.hasSuffix("norm.weight") {
                // Gemma2Model/Gemma3Model.modify_tensors add 1 in the checkpoint's dtype (a bf16 sum for bf16 weights).
                view = view.offset(by: names.normWeightOffset, roundedTo: view.dtype)
            }
            var sourceRow: ((Int) -> Int)? = nil
            if let heads = permuted[ggufStem(ggufName)] {
                sourceRow = RotaryPermutation.ggufRowSource(rows: view.shape[0], heads: heads)
            }
            // The converter writes 1-D tensors (norms, biases) and the experts' routers and shared-expert gates as
            // F32 whatever the output type.
            let planned: DType = view.shape.count <= 1 || ggufName.contains("ffn_gate_inp") ? .f32 : view.dtype
            tensors.append(ExportTensor(name: ggufName, shape: view.shape, source: view, sourceRow: sourceRow, plannedType: planned))
        }
        for (name, experts) in expertStacks {
            let parts = try (0..<config.expertCount).map { expert in
                guard let part = experts[expert] else {
                    throw HoneError.invalidConfig(path: store.location, message: "expert \(expert) of '\(name)' is missing (\(config.expertCount) experts per layer)")
                }
                return part
            }
            guard parts.allSatisfy({ $0.shape == parts[0].shape && $0.dtype == parts[0].dtype }) else {
                throw HoneError.invalidConfig(path: store.location, message: "the experts of '\(name)' differ in shape or dtype")
            }
            tensors.append(ExportTensor(name: name, shape: [parts.count] + parts[0].shape, source: parts[0], sourceRow: nil,
                                        plannedType: parts[0].dtype, parts: parts))
        }
        switch config.ropeScaling {
        case .llama3(let factor, let low, let high, let original) where architecture == "llama" || architecture == "exaone4":
            let factors = llama3RopeFactors(theta: config.ropeTheta, dimension: config.headDimension, factor: factor,
                                            lowFrequencyFactor: low, highFrequencyFactor: high, originalContext: original)
            let buffer = FloatBuffer(factors)
            let view = TensorView(name: "rope_freqs.weight", dtype: .f32, shape: [factors.count],
                                  data: UnsafeRawPointer(buffer.pointer), source: configPath, owner: buffer)
            tensors.append(ExportTensor(name: "rope_freqs.weight", shape: [factors.count], source: view, sourceRow: nil, plannedType: .f32))
        case .longRoPE(let short, let long, _, _) where architecture == "phi3":
            // Phi3MiniModel.generate_extra_tensors: the long list, then the short one, in F32.
            for (name, factors) in [(Phi3Config.longFactorsTensor, long), (Phi3Config.shortFactorsTensor, short)] {
                let buffer = FloatBuffer(factors.map { Float($0) })
                let view = TensorView(name: name, dtype: .f32, shape: [factors.count], data: UnsafeRawPointer(buffer.pointer),
                                      source: configPath, owner: buffer)
                tensors.append(ExportTensor(name: name, shape: [factors.count], source: view, sourceRow: nil, plannedType: .f32))
            }
        case .dynamic(let factor):
            warn("\(configPath): dynamic rope scaling (×\(factor)) has no GGUF form; the GGUF uses plain rope, as llama.cpp's converter does (the same within max_position_embeddings)")
        default:
            break
        }
        tensors.sort { QuantizationPlanner.loaderOrder($0.name, $1.name) }
        var metadata = try modelMetadata(config: config, raw: rawConfig, architecture: architecture, directory: directory,
                                         fileType: scheme.fileType)
        if var vocabulary = try GGUFVocabulary.metadata(directory: directory, vocabularySize: config.vocabularySize) {
            if ["gemma", "gemma2", "gemma3"].contains(architecture),
               vocabulary.contains(where: { $0.key == "tokenizer.ggml.model" && $0.value == .string("llama") }) {
                // Gemma's converters add the SentencePiece vocabulary, then say it has no dummy prefix (llama.cpp
                // would otherwise add one, as for Llama); the first Gemma's also names <end_of_turn> (107) as EOT.
                vocabulary.removeAll { $0.key == "tokenizer.ggml.add_space_prefix" }
                if architecture == "gemma", !vocabulary.contains(where: { $0.key == "tokenizer.ggml.eot_token_id" }) {
                    vocabulary.append(("tokenizer.ggml.eot_token_id", .unsigned(UInt64(GemmaConfig.endOfTurnTokenID)), 4, nil))
                }
                vocabulary.append(("tokenizer.ggml.add_space_prefix", .bool(false), 7, nil))
            }
            metadata += vocabulary
        } else {
            warn("\(directory): no tokenizer (tokenizer.model or tokenizer.json); the GGUF gets none (tokenizer.ggml.model = none), so llama.cpp can load it but not tokenize text")
            metadata.append(("tokenizer.ggml.model", .string("none"), 8, nil))
        }
        return Source(metadata: metadata, tensors: tensors, layerCount: config.layerCount,
                      headsPerKeyValueHead: config.headCount / max(config.keyValueHeadCount, 1),
                      expertCount: config.expertCount, convertedMetadata: true)
    }

    /// The keys convert_hf_to_gguf.py writes for the Llama family before the vocabulary, in its order
    /// (general.file_type and general.quantization_version are added by the caller).
    static func modelMetadata(config: ModelConfig, raw: JSONConfig, architecture: String, directory: String,
                              fileType: UInt32) throws -> [(key: String, value: GGUFValue, type: UInt32, arrayType: UInt32?)] {
        var entries: [(key: String, value: GGUFValue, type: UInt32, arrayType: UInt32?)] = []
        // GGUF stores these as u32: a larger value (a context of 10^12) would be cut to its low 32 bits.
        func u32(_ key: String, _ value: Int) throws {
            guard let stored = UInt32(exactly: value) else {
                throw HoneError.invalidConfig(path: raw.path, message: "\(value) does not fit GGUF's 32-bit \(key)")
            }
            entries.append((key, .unsigned(UInt64(stored)), 4, nil))
        }
        func f32(_ key: String, _ value: Double) { entries.append((key, .float(Double(Float(value))), 6, nil)) }
        func string(_ key: String, _ value: String) { entries.append((key, .string(value), 8, nil)) }
        string("general.architecture", architecture)
        let a = architecture
        if case .longRoPE(_, _, _, let attention) = config.ropeScaling {
            f32("\(a).rope.scaling.attn_factor", attention)  // the converter adds it while it makes the factor tensors
        }
        string("general.type", "model")
        string("general.name", (directory as NSString).standardizingPath.split(separator: "/").last.map(String.init) ?? "model")
        if architecture == "phi3" {  // Phi3MiniModel.set_gguf_parameters, in its order
            try u32("\(a).context_length", config.maxPositionEmbeddings)
            let original: Int
            if case .longRoPE(_, _, let context, _) = config.ropeScaling { original = context } else {
                original = try raw.int("original_max_position_embeddings", default: config.maxPositionEmbeddings)
            }
            try u32("\(a).rope.scaling.original_context_length", original)
            try u32("\(a).embedding_length", config.hiddenSize)
            try u32("\(a).feed_forward_length", config.intermediateSize)
            try u32("\(a).block_count", config.layerCount)
            try u32("\(a).attention.head_count", config.headCount)
            try u32("\(a).attention.head_count_kv", config.keyValueHeadCount)
            f32("\(a).attention.layer_norm_rms_epsilon", Double(config.normEpsilon))
            try u32("\(a).rope.dimension_count", config.rotaryDimension)
            f32("\(a).rope.freq_base", config.ropeTheta)
            entries.append(("general.file_type", .unsigned(UInt64(fileType)), 4, nil))
            try u32("\(a).attention.sliding_window", config.declaredSlidingWindow ?? 0)  // 0: none (Phi-4-mini)
            try u32("general.quantization_version", 2)
            return entries
        }
        // GemmaModel's and Gemma2Model's set_gguf_parameters start alike, in this order (no rope keys; TextModel's
        // is not called).
        func gemmaKeys() throws {
            try u32("\(a).context_length", config.maxPositionEmbeddings)
            try u32("\(a).embedding_length", config.hiddenSize)
            try u32("\(a).block_count", config.layerCount)
            try u32("\(a).feed_forward_length", config.intermediateSize)
            try u32("\(a).attention.head_count", config.headCount)
            try u32("\(a).attention.head_count_kv", config.keyValueHeadCount)
            f32("\(a).attention.layer_norm_rms_epsilon", Double(config.normEpsilon))
            try u32("\(a).attention.key_length", config.headDimension)
            try u32("\(a).attention.value_length", config.headDimension)
            entries.append(("general.file_type", .unsigned(UInt64(fileType)), 4, nil))
        }
        if architecture == "gemma" {
            try gemmaKeys()
            try u32("general.quantization_version", 2)
            return entries
        }
        if architecture == "gemma2" {  // then the caps, the window and the layers
            try gemmaKeys()
            f32("\(a).attn_logit_softcapping", Double(config.attentionLogitSoftcap ?? 0))
            f32("\(a).final_logit_softcapping", Double(config.finalLogitSoftcap ?? 0))
            try u32("\(a).attention.sliding_window", config.slidingWindow ?? 0)
            appendLayerList(config, architecture: a, defaultPattern: Gemma2Config.defaultSlidingWindowPattern, to: &entries)
            // The converter writes no rope base (llama.cpp's default is Gemma 2's 10,000); another one is kept.
            if config.ropeTheta != 10000 { f32("\(a).rope.freq_base", config.ropeTheta) }
            try u32("general.quantization_version", 2)
            return entries
        }
        try u32("\(a).block_count", config.layerCount)
        try u32("\(a).context_length", config.maxPositionEmbeddings)
        try u32("\(a).embedding_length", config.hiddenSize)
        try u32("\(a).feed_forward_length", config.intermediateSize)
        try u32("\(a).attention.head_count", config.headCount)
        try u32("\(a).attention.head_count_kv", config.keyValueHeadCount)
        switch config.ropeScaling {
        case .linear(let factor):
            string("\(a).rope.scaling.type", "linear")
            f32("\(a).rope.scaling.factor", factor)
        case .yarn(let factor, let original, _, _, _):
            // TextModel.set_gguf_parameters: the optional keys only where the config gives them.
            string("\(a).rope.scaling.type", "yarn")
            f32("\(a).rope.scaling.factor", factor)
            try u32("\(a).rope.scaling.original_context_length", original)
            let rope = raw.object("rope_parameters").map { $0.object("full_attention") ?? $0 } ?? raw.object("rope_scaling")
            for (configKey, ggufKey) in [("extrapolation_factor", "yarn_ext_factor"), ("attention_factor", "yarn_attn_factor"),
                                         ("beta_fast", "yarn_beta_fast"), ("beta_slow", "yarn_beta_slow")] {
                if let value = try? rope?.double(configKey) { f32("\(a).rope.scaling.\(ggufKey)", value) }
            }
        default:
            break
        }
        f32("\(a).rope.freq_base", config.ropeTheta)
        if let local = localRopeTheta(raw) {
            f32("\(a).rope.freq_base_swa", local)  // TextModel writes the sliding layers' base where the config has one
        }
        // OlmoeModel sets the epsilon again, to 1e-5, whatever the config says (the key keeps its place).
        f32("\(a).attention.layer_norm_rms_epsilon", architecture == "olmoe" ? 1e-5 : Double(config.normEpsilon))
        if config.isMixtureOfExperts {
            try u32("\(a).expert_count", config.expertCount)
            try u32("\(a).expert_used_count", config.expertsPerToken)
        }
        if raw.has("head_dim") || architecture == "gemma3", !LlamaConfig.isGranite(architecture) {  // GraniteModel drops head_dim
            try u32("\(a).attention.key_length", config.headDimension)
            try u32("\(a).attention.value_length", config.headDimension)
        }
        entries.append(("general.file_type", .unsigned(UInt64(fileType)), 4, nil))
        if architecture == "qwen3moe" || architecture == "qwen2moe" {  // Qwen2MoeModel.set_gguf_parameters
            try u32("\(a).expert_feed_forward_length", config.expertIntermediateSize)
            if config.sharedExpertIntermediateSize > 0 {
                try u32("\(a).expert_shared_feed_forward_length", config.sharedExpertIntermediateSize)
            }
        }
        if ["llama", "smollm3", "granite", "granitemoe"].contains(architecture) {  // the converter's LlamaModel and its subclasses
            try u32("\(a).vocab_size", config.vocabularySize)
            try u32("\(a).rope.dimension_count", config.rotaryDimension)
        }
        if architecture == "gemma3", let window = config.slidingWindow {  // Gemma3Model.set_gguf_parameters
            try u32("\(a).attention.sliding_window", window)
            appendLayerList(config, architecture: a, defaultPattern: Gemma3Config.defaultSlidingWindowPattern, to: &entries)
        }
        if architecture == "exaone4" {  // Exaone4Model.set_gguf_parameters: the vocabulary's size, the window and its layers
            try u32("\(a).vocab_size", config.vocabularySize)
            if let window = config.slidingWindow {
                try u32("\(a).attention.sliding_window", window)
                entries.append(("\(a).attention.sliding_window_pattern",
                                .array((0..<config.layerCount).map { .bool(config.slidingWindowLayers.contains($0)) }), 9, 7))
            }
        }
        if architecture == "olmo2", raw.has("sliding_window") {  // Olmo2Model.set_gguf_parameters: OLMo 3's layers, listed
            try u32("\(a).attention.sliding_window", config.slidingWindow ?? raw.int("sliding_window"))
            entries.append(("\(a).attention.sliding_window_pattern",
                            .array((0..<config.layerCount).map { .bool(config.slidingWindowLayers.contains($0)) }), 9, 7))
        }
        if LlamaConfig.isGranite(architecture) {  // GraniteModel: each multiplier the config gives (and that is not 0)
            for (configKey, ggufKey) in [("attention_multiplier", "attention.scale"), ("embedding_multiplier", "embedding_scale"),
                                         ("residual_multiplier", "residual_scale"), ("logits_scaling", "logit_scale")] {
                if let value = try? raw.double(configKey), value != 0 { f32("\(a).\(ggufKey)", value) }
            }
        }
        try u32("general.quantization_version", 2)
        return entries
    }

    /// The converter writes no layer pattern: llama.cpp takes its default (Gemma 3: five local layers in six,
    /// Gemma 2: every other). A model laid out otherwise gets its layers listed, which llama.cpp reads instead.
    static func appendLayerList(_ config: ModelConfig, architecture: String, defaultPattern: Int,
                                to entries: inout [(key: String, value: GGUFValue, type: UInt32, arrayType: UInt32?)]) {
        let defaultLayers = Set((0..<config.layerCount).filter { $0 % defaultPattern < defaultPattern - 1 })
        guard config.slidingWindow != nil, config.slidingWindowLayers != defaultLayers else { return }
        entries.append(("\(architecture).attention.sliding_window_pattern",
                        .array((0..<config.layerCount).map { .bool(config.slidingWindowLayers.contains($0)) }), 9, 7))
    }

    /// The sliding layers' rope base as the converter finds it: rope_parameters' sliding_attention (transformers
    /// 5) or rope_local_base_freq (the Hub's config.json files); nil when the config has neither.
    static func localRopeTheta(_ raw: JSONConfig) -> Double? {
        if let rope = raw.object("rope_parameters"), let local = rope.object("sliding_attention"), local.has("rope_theta") {
            return try? local.double("rope_theta")
        }
        return raw.has("rope_local_base_freq") ? try? raw.double("rope_local_base_freq") : nil
    }

    /// Llama 3.1's per-frequency divisors as convert_hf_to_gguf.py computes them (in f32).
    static func llama3RopeFactors(theta: Double, dimension: Int, factor: Double, lowFrequencyFactor: Double,
                                  highFrequencyFactor: Double, originalContext: Int) -> [Float] {
        let lowWavelength = Float(Double(originalContext) / lowFrequencyFactor)
        let highWavelength = Float(Double(originalContext) / highFrequencyFactor)
        return stride(from: 0, to: dimension, by: 2).map { index -> Float in
            let frequency = 1 / powf(Float(theta), Float(index) / Float(dimension))
            let wavelength = Float(2 * Double.pi) / frequency
            if wavelength < highWavelength { return 1 }
            if wavelength > lowWavelength { return Float(factor) }
            let smooth = (Float(originalContext) / wavelength - Float(lowFrequencyFactor))
                / Float(highFrequencyFactor - lowFrequencyFactor)
            return 1 / ((1 - smooth) / Float(factor) + smooth)
        }
    }

    /// A shape as ggml_n_dims counts it: outer dimensions of 1 dropped, one dimension kept at least.
    static func withoutUnitDimensions(_ shape: [Int]) -> [Int] {
        let kept = Array(shape.drop { $0 == 1 })
        return kept.isEmpty ? Array(shape.suffix(1)) : kept
    }

    /// "blk.3.attn_q.weight" → "attn_q"; "token_embd.weight" → "token_embd".
    static func ggufStem(_ name: String) -> String {
        var parts = name.split(separator: ".").map(String.init)
        if parts.count > 1 { parts.removeLast() }
        if parts.first == "blk", parts.count >= 3 { parts.removeFirst(2) }
        return parts.joined(separator: ".")
    }
}

// MARK: - Metadata overrides

/// llama-quantize's `--override-kv KEY=TYPE:VALUE`: a metadata key set in the output (int as u32 of its absolute
/// value, as llama-quantize stores it; float as f32; bool; str of at most 127 bytes).
public struct GGUFMetadataOverride: Sendable, Equatable {
    public let key: String
    public let value: GGUFValue
    /// The GGUF value type: 4 u32, 6 f32, 7 bool, 8 string.
    public let type: UInt32

    public init(argument: String) throws {
        func refuse(_ why: String) -> HoneError {
            HoneError.invalidArgument("\(OptionName("override_kv")) '\(argument)': \(why)")
        }
        guard let equals = argument.firstIndex(of: "=") else { throw refuse("not KEY=TYPE:VALUE (TYPE int, float, bool or str)") }
        key = String(argument[..<equals])
        guard !key.isEmpty, key.utf8.count < 128 else { throw refuse("the key must have 1 to 127 bytes") }
        let typed = argument[argument.index(after: equals)...]
        guard let colon = typed.firstIndex(of: ":") else { throw refuse("no TYPE: before the value (int, float, bool or str)") }
        let text = String(typed[typed.index(after: colon)...])
        switch typed[..<colon] {
        case "int":
            guard let number = Int64(text) else { throw refuse("'\(text)' is not an integer") }
            (value, type) = (.unsigned(UInt64(UInt32(truncatingIfNeeded: number.magnitude))), 4)
        case "float":
            guard let number = Double(text), number.isFinite else { throw refuse("'\(text)' is not a finite number") }
            (value, type) = (.float(Double(Float(number))), 6)
        case "bool":
            guard text == "true" || text == "false" else { throw refuse("a bool is true or false, not '\(text)'") }
            (value, type) = (.bool(text == "true"), 7)
        case "str":
            guard text.utf8.count <= 127 else { throw refuse("a string value has at most 127 bytes") }
            (value, type) = (.string(text), 8)
        default:
            throw refuse("unknown type '\(typed[..<colon])' (int, float, bool or str)")
        }
    }
}
