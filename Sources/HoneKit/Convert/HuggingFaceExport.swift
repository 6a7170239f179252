import Foundation

// MARK: - Writing an HF directory from a GGUF

/// `hone convert GGUF DIR`: config.json, generation_config.json, model.safetensors (Q/K rows back in HF order,
/// quantized tensors dequantized) and tokenizer files that Hone and HF `tokenizers` load with the GGUF's ids.
/// The directory is assembled beside `output` and renamed into place when complete.
public enum HuggingFaceExport {
    public struct Summary: Sendable {
        public let path: String
        public let dtype: DType
        public let tensorCount: Int
        public let tokenizerFiles: [String]
    }

    public static func write(gguf path: String, to output: String, dtype requested: DType?,
                             warn: (String) -> Void = { _ in },
                             progress: ((Int, Int, Int) -> Void)? = nil) throws -> Summary {
        let gguf = try GGUFFile(path: path)
        let config = try ModelConfig.fromGGUF(gguf)  // refuses architectures the registry does not know
        guard let names = config.architecture.ggufNames else {
            throw HoneError.unsupportedArchitecture(name: config.modelType, path: path)
        }
        let permuted = names.permutedRows(gguf.architecture ?? config.modelType, config)
        if gguf.tensorInfos.contains(where: { $0.name == "rope_freqs.weight" }) {
            throw HoneError.invalidConfig(path: path, message: "rope_freqs.weight (Llama 3 rope scaling) cannot be written back as config.json rope_scaling exactly; convert the original HF model instead")
        }
        guard let embedding = gguf.tensorInfos.first(where: { $0.name == "token_embd.weight" }) else {
            throw HoneError.missingTensor(name: "token_embd.weight", path: path)
        }
        let embeddingType = DType(ggmlType: embedding.ggmlType)
        let dtype = requested ?? (embeddingType.flatMap { $0.isQuantized ? nil : $0 } ?? .f16)
        guard !dtype.isQuantized else {
            throw HoneError.invalidArgument("safetensors holds f16, bf16 or f32 only, not \(dtype.rawValue)")
        }
        if requested == nil, embeddingType?.isQuantized ?? true {
            warn("\(path) is quantized; its tensors are dequantized to F16 (use \(OptionName("type")) to choose f32 or bf16)")
        }
        try checkOutputDirectory(output)

        // Tensors: HF names, Llama's Q/K rows un-permuted, one output dtype for all (as HF checkpoints have it).
        var entries: [ExportTensor] = []
        // LongRoPE's factor tensors go back into config.json (rope_scaling), where HF keeps them.
        let factorTensors = [Phi3Config.longFactorsTensor, Phi3Config.shortFactorsTensor]
        for info in gguf.tensorInfos where !(config.modelType == "phi3" && factorTensors.contains(info.name)) {
            if config.modelType == "granitemoe", let tensors = try graniteExpertTensors(info, gguf: gguf, config: config, dtype: dtype) {
                entries += tensors
                continue
            }
            if config.isMixtureOfExperts, let expertNames = ExpertNames.huggingFaceNames(
                forGGUF: info.name, modelType: config.modelType, experts: config.expertCount) {
                entries += try expertTensors(info, names: expertNames, gguf: gguf, config: config, dtype: dtype)
                continue
            }
            guard let name = names.huggingFace(info.name) else {
                throw HoneError.invalidConfig(path: path, message: "tensor '\(info.name)' has no Hugging Face counterpart")
            }
            var view = try gguf.tensorView(info)
            if names.normWeightOffset != 0, name.hasSuffix("norm.weight") {
                view = view.offset(by: -names.normWeightOffset, roundedTo: .f32)  // Gemma's GGUFs store 1 + w
            }
            var sourceRow: ((Int) -> Int)? = nil
            if let heads = permuted[GGUFExport.ggufStem(info.name)] {
                sourceRow = RotaryPermutation.huggingFaceRowSource(rows: info.shape[0], heads: heads)
            }
            // Qwen2-MoE's shared-expert gate is [1, hidden] in HF; llama-quantize's files hold it as [hidden].
            let shape = info.name.hasSuffix("ffn_gate_inp_shexp.weight") && info.shape.count == 1 ? [1] + info.shape : info.shape
            entries.append(ExportTensor(name: name, shape: shape, source: view, sourceRow: sourceRow, plannedType: dtype))
        }

        var tokenizerFiles: [String] = []
        // An empty directory may stand where the output goes (checked above); it is replaced whole.
        try writeDirectoryAtomically(output) { staging in
            let join = { (name: String) in (staging as NSString).appendingPathComponent(name) }

            var done = 0
            var written = 0
            let streamed = entries.map { tensor in
                SafetensorsStreamEntry(name: tensor.name, dtype: dtype, shape: tensor.shape) {
                    let bytes = try tensor.encoded(as: dtype)
                    done += 1
                    written += bytes.count
                    progress?(done, entries.count, written)
                    return bytes
                }
            }
            try SafetensorsWriter.write(streaming: streamed, metadata: ["format": "pt"], to: join("model.safetensors"))
            try writeJSON(configJSON(config, gguf: gguf, embeddingRows: embedding.shape[0], dtype: dtype), to: join("config.json"))
            var generation: [String: Any] = [:]
            if let bos = config.bosTokenID { generation["bos_token_id"] = bos }
            if let eos = config.eosTokenIDs.first { generation["eos_token_id"] = eos }
            if let pad = config.padTokenID { generation["pad_token_id"] = pad }
            try writeJSON(generation, to: join("generation_config.json"))

            switch gguf.string("tokenizer.ggml.model") {
            case "llama":
                let files = try HuggingFaceTokenizerFiles.sentencePiece(gguf, contextLength: config.maxPositionEmbeddings)
                for (name, object) in files {
                    try writeJSON(object, to: join(name))
                    tokenizerFiles.append(name)
                }
            case "gpt2":
                let files = try HuggingFaceTokenizerFiles.byteLevel(gguf, contextLength: config.maxPositionEmbeddings)
                for (name, object) in files {
                    try writeJSON(object, to: join(name))
                    tokenizerFiles.append(name)
                }
            case let kind:
                warn("\(path) has no tokenizer Hone can write (tokenizer.ggml.model = \(kind ?? "absent")); the directory gets none")
            }
        }
        return Summary(path: output, dtype: dtype, tensorCount: entries.count, tokenizerFiles: tokenizerFiles.sorted())
    }

    /// A router as it is, or a stack of experts as one matrix per expert (a gate_up stack split into gate's rows
    /// and up's).
    static func expertTensors(_ info: GGUFTensorInfo, names: [String], gguf: GGUFFile, config: ModelConfig,
                              dtype: DType) throws -> [ExportTensor] {
        let view = try gguf.tensorView(info)
        guard names.count > 1 else {
            return [ExportTensor(name: names[0], shape: info.shape, source: view, sourceRow: nil, plannedType: dtype)]
        }
        guard info.shape.count == 3, info.shape[0] == config.expertCount else {
            throw HoneError.tensorShape(name: info.name, expected: [config.expertCount, -1, -1], actual: info.shape, path: gguf.path)
        }
        let ups = info.name.contains("ffn_gate_up_exps")
            ? ExpertNames.fusedUpNames(forGGUF: info.name, modelType: config.modelType, experts: config.expertCount) : nil
        var tensors: [ExportTensor] = []
        for expert in 0..<config.expertCount {
            var matrix = view.matrix(expert)
            if let ups {
                let half = matrix.shape[0] / 2
                let up = matrix.rows(half..<(2 * half))
                tensors.append(ExportTensor(name: ups[expert], shape: up.shape, source: up, sourceRow: nil, plannedType: dtype))
                matrix = matrix.rows(0..<half)
            }
            tensors.append(ExportTensor(name: names[expert], shape: matrix.shape, source: matrix, sourceRow: nil, plannedType: dtype))
        }
        return tensors
    }

    /// Granite-MoE's router as `router.layer`, and its experts stacked again as the Hub's files hold them: gate and
    /// up as `input_linear` [experts, 2 × ffn, hidden] (each expert's gate rows, then its up rows; made once, from
    /// the gate stack), down as `output_linear`. nil for tensors that are not the experts'.
    static func graniteExpertTensors(_ info: GGUFTensorInfo, gguf: GGUFFile, config: ModelConfig,
                                     dtype: DType) throws -> [ExportTensor]? {
        let parts = info.name.split(separator: ".").map(String.init)
        guard parts.count == 4, parts[0] == "blk", let layer = Int(parts[1]) else { return nil }
        func matrices(_ name: String) throws -> [TensorView] {
            guard let stack = gguf.tensorInfos.first(where: { $0.name == name }) else {
                throw HoneError.missingTensor(name: name, path: gguf.path)
            }
            guard stack.shape.count == 3, stack.shape[0] == config.expertCount else {
                throw HoneError.tensorShape(name: name, expected: [config.expertCount, -1, -1], actual: stack.shape, path: gguf.path)
            }
            let view = try gguf.tensorView(stack)
            return (0..<config.expertCount).map { view.matrix($0) }
        }
        // One 3-D tensor [experts, rows, columns] of `matrices`, in order: one or more matrices per expert.
        func stack(_ name: String, _ matrices: [TensorView]) -> ExportTensor {
            let perExpert = matrices.count / config.expertCount
            return ExportTensor(name: name, shape: [config.expertCount, perExpert * matrices[0].shape[0], matrices[0].shape[1]],
                                source: matrices[0], sourceRow: nil, plannedType: dtype, parts: matrices)
        }
        switch parts[2] {
        case "ffn_gate_inp":
            let view = try gguf.tensorView(info)
            return [ExportTensor(name: GraniteMoENames.router(layer: layer), shape: info.shape, source: view, sourceRow: nil, plannedType: dtype)]
        case "ffn_gate_exps":
            let gates = try matrices(info.name), ups = try matrices("blk.\(layer).ffn_up_exps.weight")
            return [stack(GraniteMoENames.inputs(layer: layer), zip(gates, ups).flatMap { [$0, $1] })]
        case "ffn_up_exps":
            return []  // written with the gates
        case "ffn_gate_up_exps":
            return [stack(GraniteMoENames.inputs(layer: layer), try matrices(info.name))]
        case "ffn_down_exps":
            return [stack(GraniteMoENames.outputs(layer: layer), try matrices(info.name))]
        default:
            return nil
        }
    }

    /// The output may be absent or an empty directory; anything else is refused rather than overwritten.
    static func checkOutputDirectory(_ output: String) throws {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: output, isDirectory: &isDirectory) else { return }
        let contents = (try? FileManager.default.contentsOfDirectory(atPath: output)) ?? []
        guard isDirectory.boolValue, contents.isEmpty else {
            throw HoneError.io(path: output, message: "already exists; choose a new directory (GGUF → HF writes a directory)")
        }
    }

    static func writeJSON(_ object: Any, to path: String) throws {
        var data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        data.append(UInt8(ascii: "\n"))
        try writeFileAtomically(data, to: path)
    }

    /// A number as config.json would have it: the shortest decimal of the f32 that GGUF stored (1e-05, not
    /// 9.99999974737875e-06).
    static func decimal(_ value: Double) -> Double { Double(String(describing: Float(value))) ?? value }

    static func configJSON(_ config: ModelConfig, gguf: GGUFFile, embeddingRows: Int, dtype: DType) -> [String: Any] {
        var json: [String: Any] = [
            "architectures": [config.architecture.huggingFaceModelTypes[config.modelType] ?? "LlamaForCausalLM"],
            "model_type": config.modelType,
            "hidden_size": config.hiddenSize,
            "intermediate_size": config.intermediateSize,
            "num_hidden_layers": config.layerCount,
            "num_attention_heads": config.headCount,
            "num_key_value_heads": config.keyValueHeadCount,
            "max_position_embeddings": config.maxPositionEmbeddings,
            "rms_norm_eps": decimal(Double(config.normEpsilon)),
            "rope_theta": decimal(config.ropeTheta),
            "tie_word_embeddings": config.tieWordEmbeddings,
            "vocab_size": embeddingRows,
            "hidden_act": "silu",
            "torch_dtype": ["F32": "float32", "F16": "float16", "BF16": "bfloat16"][dtype.rawValue] ?? "float16",
        ]
        if config.headDimension * config.headCount != config.hiddenSize
            || gguf.integer("\(gguf.architecture ?? "llama").attention.key_length") != nil {
            json["head_dim"] = config.headDimension
        }
        if config.rotaryDimension != config.headDimension {
            json["partial_rotary_factor"] = Double(config.rotaryDimension) / Double(config.headDimension)
        }
        switch config.ropeScaling {
        case .linear(let factor):
            json["rope_scaling"] = ["type": "linear", "rope_type": "linear", "factor": decimal(factor)]
        case .yarn(let factor, let original, let fast, let slow, let attention):
            json["rope_scaling"] = ["type": "yarn", "rope_type": "yarn", "factor": decimal(factor),
                                    "original_max_position_embeddings": original, "beta_fast": decimal(fast),
                                    "beta_slow": decimal(slow), "attention_factor": decimal(attention)]
        default:
            break
        }
        if LlamaConfig.isGranite(config.modelType) {
            json["embedding_multiplier"] = decimal(Double(config.embeddingMultiplier))
            json["residual_multiplier"] = decimal(Double(config.residualMultiplier))
            json["attention_multiplier"] = decimal(Double(config.attentionMultiplier ?? 1 / Float(config.headDimension).squareRoot()))
            json["logits_scaling"] = decimal(Double(config.logitsScaling))
        }
        if config.modelType == "phi3" {
            json["sliding_window"] = config.declaredSlidingWindow ?? NSNull()
            if let original = gguf.integer("phi3.rope.scaling.original_context_length") {
                json["original_max_position_embeddings"] = original
            }
            if case .longRoPE(let short, let long, let original, let attention) = config.ropeScaling {
                json["original_max_position_embeddings"] = original
                json["rope_scaling"] = ["type": "longrope", "rope_type": "longrope", "short_factor": short.map(decimal),
                                        "long_factor": long.map(decimal), "original_max_position_embeddings": original,
                                        "attention_factor": decimal(attention)]
            }
        }
        if config.modelType == "gemma3_text" || config.modelType == "gemma2" {
            json["hidden_activation"] = "gelu_pytorch_tanh"
            json.removeValue(forKey: "hidden_act")
            json["head_dim"] = config.headDimension
            let scale = Double(config.attentionMultiplier ?? 1 / Float(config.headDimension).squareRoot())
            json["query_pre_attn_scalar"] = Int((1 / (scale * scale)).rounded())  // an integer in every Gemma config
            if config.modelType == "gemma3_text" { json["rope_local_base_freq"] = decimal(config.localRopeTheta) }
            json["sliding_window"] = config.slidingWindow ?? NSNull()
            json["layer_types"] = (0..<config.layerCount).map { config.slidingWindowLayers.contains($0) ? "sliding_attention" : "full_attention" }
            json["final_logit_softcapping"] = config.finalLogitSoftcap.map { decimal(Double($0)) } ?? NSNull()
            json["attn_logit_softcapping"] = config.attentionLogitSoftcap.map { decimal(Double($0)) } ?? NSNull()
        }
        if config.modelType == "gemma" {
            json["hidden_act"] = "gelu_pytorch_tanh"
            json["head_dim"] = config.headDimension
        }
        if config.modelType == "exaone4" {
            json["sliding_window"] = config.slidingWindow ?? NSNull()
            json["sliding_window_pattern"] = config.slidingWindow == nil ? 0 : EXAONE4Config.defaultSlidingWindowPattern
            json["layer_types"] = (0..<config.layerCount).map { config.slidingWindowLayers.contains($0) ? "sliding_attention" : "full_attention" }
        }
        if config.modelType == "olmo3" {
            json["sliding_window"] = config.slidingWindow ?? NSNull()
            json["layer_types"] = (0..<config.layerCount).map { config.slidingWindowLayers.contains($0) ? "sliding_attention" : "full_attention" }
        }
        if config.modelType == "granitemoe" {
            json["num_local_experts"] = config.expertCount
            json["intermediate_size"] = config.expertIntermediateSize
        }
        if config.modelType == "olmoe" {
            json["num_experts"] = config.expertCount
            json["norm_topk_prob"] = config.normalizesExpertWeights
        }
        if config.modelType == "smollm3" {
            json["no_rope_layers"] = (0..<config.layerCount).map { config.layersWithoutRotation.contains($0) ? 0 : 1 }
        }
        if ["qwen2", "qwen3", "qwen2_moe", "qwen3_moe"].contains(config.modelType) {
            json["use_sliding_window"] = false
        }
        if config.modelType == "qwen2_moe" {
            json["qkv_bias"] = config.queryKeyValueBias
            json["shared_expert_intermediate_size"] = config.sharedExpertIntermediateSize
        }
        if config.modelType == "qwen3_moe" || config.modelType == "qwen2_moe" {
            json["num_experts"] = config.expertCount
            json["moe_intermediate_size"] = config.expertIntermediateSize
            json["norm_topk_prob"] = config.normalizesExpertWeights
            json["decoder_sparse_step"] = 1
            json["mlp_only_layers"] = [Int]()
        }
        if config.modelType == "mixtral" {
            json["num_local_experts"] = config.expertCount
            json["intermediate_size"] = config.expertIntermediateSize
            json["sliding_window"] = NSNull()
        }
        if config.isMixtureOfExperts { json["num_experts_per_tok"] = config.expertsPerToken }
        if config.modelType != "qwen2" {
            json["attention_bias"] = config.queryKeyValueBias
            json["mlp_bias"] = config.mlpBias
        }
        // null where the GGUF has none: a config class's own default (Phi3Config's pad and eos 32000) would name a
        // token the vocabulary may not have.
        json["bos_token_id"] = config.bosTokenID ?? NSNull()
        json["eos_token_id"] = config.eosTokenIDs.first ?? NSNull()
        json["pad_token_id"] = config.padTokenID ?? NSNull()
        return json
    }
}

// MARK: - Tokenizer files from GGUF metadata

/// tokenizer.json and tokenizer_config.json for a GGUF vocabulary, laid out as transformers writes them for the
/// same kind of tokenizer (Llama's legacy SentencePiece conversion; byte-level BPE with the matching
/// pre-tokenizer), so that HF `tokenizers` and Hone's loaders give the GGUF's ids.
enum HuggingFaceTokenizerFiles {
    struct Vocabulary {
        let tokens: [String]
        let types: [Int]
        let bos, eos, unknown, pad: Int?
        let addsBOS: Bool
        let addsEOS: Bool
        let chatTemplate: String?
        /// What llama.cpp gives the tokens by the model's name (Phi-3's rstrip), written as tokenizer.json's
        /// lstrip / rstrip.
        let strips: AddedTokenStrips

        init(_ gguf: GGUFFile, defaultAddsBOS: Bool) throws {
            guard let tokens = gguf.metadata["tokenizer.ggml.tokens"]?.arrayValue?.map({ $0.stringValue ?? "" }) else {
                throw HoneError.missingConfigKey(path: gguf.path, key: "tokenizer.ggml.tokens")
            }
            self.tokens = tokens
            types = gguf.metadata["tokenizer.ggml.token_type"]?.arrayValue?.map { $0.intValue ?? 1 }
                ?? [Int](repeating: 1, count: tokens.count)
            guard types.count == tokens.count else {
                throw HoneError.malformedFile(path: gguf.path, message: "tokenizer.ggml.token_type does not match tokenizer.ggml.tokens (\(tokens.count))")
            }
            func id(_ key: String) -> Int? { gguf.integer(key).flatMap { $0 >= 0 && $0 < tokens.count ? $0 : nil } }
            bos = id("tokenizer.ggml.bos_token_id")
            eos = id("tokenizer.ggml.eos_token_id")
            unknown = id("tokenizer.ggml.unknown_token_id")
            pad = id("tokenizer.ggml.padding_token_id")
            addsBOS = (gguf.metadata["tokenizer.ggml.add_bos_token"]?.boolValue ?? defaultAddsBOS) && bos != nil
            addsEOS = (gguf.metadata["tokenizer.ggml.add_eos_token"]?.boolValue ?? false) && eos != nil
            chatTemplate = gguf.string("tokenizer.chat_template")
            strips = AddedTokenStrips.llamaCpp(gguf, tokens: tokens, types: types)
        }

        var isAdded: (Int) -> Bool { { [types] id in types[id] == 3 || types[id] == 4 || types[id] == 2 } }

        func addedTokens(normalizedUserDefined: Bool) -> [[String: Any]] {
            tokens.indices.filter(isAdded).map { id in
                ["id": id, "content": tokens[id], "single_word": false,
                 "lstrip": strips.byID[Int32(id)]?.contains(.left) ?? false,
                 "rstrip": strips.byID[Int32(id)]?.contains(.right) ?? false,
                 "normalized": types[id] == 4 ? normalizedUserDefined : false, "special": types[id] != 4]
            }
        }

        /// TemplateProcessing that adds BOS / EOS as the GGUF says.
        func postProcessor() -> [String: Any] {
            var single: [[String: Any]] = []
            var pair: [[String: Any]] = []
            var specials: [String: Any] = [:]
            func special(_ id: Int, _ typeID: Int) -> [String: Any] {
                specials[tokens[id]] = ["id": tokens[id], "ids": [id], "tokens": [tokens[id]]]
                return ["SpecialToken": ["id": tokens[id], "type_id": typeID]]
            }
            for typeID in 0...1 {
                var part: [[String: Any]] = []
                if addsBOS, let bos { part.append(special(bos, typeID)) }
                part.append(["Sequence": ["id": typeID == 0 ? "A" : "B", "type_id": typeID]])
                if addsEOS, let eos { part.append(special(eos, typeID)) }
                if typeID == 0 { single = part }
                pair += part
            }
            return ["type": "TemplateProcessing", "single": single, "pair": pair, "special_tokens": specials]
        }

        func tokenizerConfig(contextLength: Int, tokenizerClass: String, extra: [String: Any]) -> [String: Any] {
            var decoder: [String: Any] = [:]
            for entry in addedTokens(normalizedUserDefined: false) {
                var value = entry
                let id = value.removeValue(forKey: "id") as! Int
                decoder[String(id)] = value
            }
            var config: [String: Any] = [
                "add_bos_token": addsBOS, "add_eos_token": addsEOS, "added_tokens_decoder": decoder,
                "clean_up_tokenization_spaces": false, "model_max_length": contextLength, "tokenizer_class": tokenizerClass,
            ]
            config["bos_token"] = bos.map { tokens[$0] } ?? NSNull()
            config["eos_token"] = eos.map { tokens[$0] } ?? NSNull()
            config["unk_token"] = unknown.map { tokens[$0] } ?? NSNull()
            config["pad_token"] = pad.map { tokens[$0] } ?? NSNull()
            if let chatTemplate { config["chat_template"] = chatTemplate }
            for (key, value) in extra { config[key] = value }
            return config
        }
    }

    /// A `tokenizer.ggml.model = llama` vocabulary as transformers' legacy Llama conversion writes it: BPE with
    /// byte fallback, merges in score order, a "▁" prefix and space replacement.
    static func sentencePiece(_ gguf: GGUFFile, contextLength: Int) throws -> [(String, Any)] {
        let vocabulary = try Vocabulary(gguf, defaultAddsBOS: true)
        let tokens = vocabulary.tokens
        let scores = (gguf.metadata["tokenizer.ggml.scores"]?.arrayValue ?? []).map { Float($0.doubleValue ?? 0) }
        guard scores.count == tokens.count else {
            throw HoneError.malformedFile(path: gguf.path, message: "tokenizer.ggml.scores does not match tokenizer.ggml.tokens (\(tokens.count))")
        }
        var ids: [String: Int] = [:]
        for (id, token) in tokens.enumerated() where ids[token] == nil { ids[token] = id }
        // Merges as sentencepiece applies them: a pair whose concatenation is a normal or user-defined piece, the
        // higher that piece's score the earlier; ties by piece id, then by the parts' ids.
        var merges: [(score: Float, merged: Int, left: Int, right: Int)] = []
        for (id, token) in tokens.enumerated() where vocabulary.types[id] == 1 || vocabulary.types[id] == 4 {
            let scalars = Array(token.unicodeScalars)
            guard scalars.count > 1 else { continue }
            for split in 1..<scalars.count {
                let left = String(String.UnicodeScalarView(scalars[..<split]))
                let right = String(String.UnicodeScalarView(scalars[split...]))
                guard let leftID = ids[left], let rightID = ids[right] else { continue }
                merges.append((scores[id], id, leftID, rightID))
            }
        }
        merges.sort { ($0.score, -$0.merged, -$0.left, -$0.right) > ($1.score, -$1.merged, -$1.left, -$1.right) }
        var vocab: [String: Any] = [:]
        for (token, id) in ids { vocab[token] = id }
        let addPrefix = gguf.metadata["tokenizer.ggml.add_space_prefix"]?.boolValue ?? true
        let replaceSpaces: [String: Any] = ["type": "Replace", "pattern": ["String": " "], "content": "\u{2581}"]
        let normalizer: [String: Any] = addPrefix
            ? ["type": "Sequence", "normalizers": [["type": "Prepend", "prepend": "\u{2581}"], replaceSpaces]]
            : replaceSpaces
        var decoders: [[String: Any]] = [
            ["type": "Replace", "pattern": ["String": "\u{2581}"], "content": " "], ["type": "ByteFallback"], ["type": "Fuse"],
        ]
        if addPrefix { decoders.append(["type": "Strip", "content": " ", "start": 1, "stop": 0]) }
        let unknownText = vocabulary.unknown.map { tokens[$0] }
        let model: [String: Any] = [
            "type": "BPE", "dropout": NSNull(), "unk_token": unknownText ?? NSNull(), "continuing_subword_prefix": NSNull(),
            "end_of_word_suffix": NSNull(), "fuse_unk": true, "byte_fallback": vocabulary.types.contains(6),
            "ignore_merges": false, "vocab": vocab, "merges": merges.map { [tokens[$0.left], tokens[$0.right]] },
        ]
        let tokenizerJSON: [String: Any] = [
            "version": "1.0", "truncation": NSNull(), "padding": NSNull(),
            "added_tokens": vocabulary.addedTokens(normalizedUserDefined: false), "normalizer": normalizer,
            "pre_tokenizer": NSNull(), "post_processor": vocabulary.postProcessor(),
            "decoder": ["type": "Sequence", "decoders": decoders], "model": model,
        ]
        let config = vocabulary.tokenizerConfig(contextLength: contextLength, tokenizerClass: "LlamaTokenizer",
                                                extra: ["legacy": true, "sp_model_kwargs": [String: Any]()])
        return [("tokenizer.json", tokenizerJSON), ("tokenizer_config.json", config)]
    }

    /// A `tokenizer.ggml.model = gpt2` vocabulary: byte-level BPE with the pre-tokenizer its `tokenizer.ggml.pre` names.
    static func byteLevel(_ gguf: GGUFFile, contextLength: Int) throws -> [(String, Any)] {
        let vocabulary = try Vocabulary(gguf, defaultAddsBOS: false)
        let tokens = vocabulary.tokens
        let pre = gguf.string("tokenizer.ggml.pre") ?? "default"
        guard let named = GGUFPreTokenizer.named(pre), let steps = preTokenizerSteps(named.steps) else {
            throw HoneError.malformedFile(path: gguf.path, message: "pre-tokenizer '\(pre)' (tokenizer.ggml.pre) cannot be written as tokenizer.json yet")
        }
        // GPT-2's and SmolLM's are written as transformers writes those tokenizers; every other list of llama.cpp's
        // steps (one scanner's pattern, as Llama 3's and Qwen2's, included) as a Sequence of Splits.
        let kind = ByteLevelBPETokenizer.preTokenizerKind(ggufPre: pre)
        let merges = try (gguf.metadata["tokenizer.ggml.merges"]?.arrayValue ?? []).map { value -> [String] in
            let text = value.stringValue ?? ""
            let parts = text.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 2 else {
                throw HoneError.malformedFile(path: gguf.path, message: "merge '\(text)' is not two symbols")
            }
            return parts
        }
        // Every token goes in the model's vocab, special ones included: HF tokenizers keeps an added token's id only
        // when the vocab holds it, and otherwise numbers it after the vocab. SmolLM2's specials (ids 0-16) left
        // out became 49135-49151, the ids of ordinary tokens (' Siri' decoded as '<|im_start|>').
        var vocab: [String: Any] = [:]
        for (id, token) in tokens.enumerated() where vocab[token] == nil { vocab[token] = id }
        let byteLevel: [String: Any] = ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true,
                                        "use_regex": kind == .gpt2 || kind == .smollm]
        let preTokenizer: [String: Any]
        switch kind {
        case .gpt2?: preTokenizer = byteLevel
        case .smollm?: preTokenizer = ["type": "Sequence", "pretokenizers": [["type": "Digits", "individual_digits": true], byteLevel]]
        default: preTokenizer = ["type": "Sequence", "pretokenizers": steps]
        }
        let postProcessor: [String: Any] = vocabulary.addsBOS || vocabulary.addsEOS ? vocabulary.postProcessor()
            : ["type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true]
        let model: [String: Any] = [
            "type": "BPE", "dropout": NSNull(), "unk_token": NSNull(), "continuing_subword_prefix": NSNull(),
            "end_of_word_suffix": NSNull(), "fuse_unk": false, "byte_fallback": false, "ignore_merges": named.ignoresMerges,
            "vocab": vocab, "merges": merges,
        ]
        let tokenizerJSON: [String: Any] = [
            "version": "1.0", "truncation": NSNull(), "padding": NSNull(),
            "added_tokens": vocabulary.addedTokens(normalizedUserDefined: true),
            "normalizer": named.normalizesNFC ? ["type": "NFC"] as [String: Any] : NSNull(),
            "pre_tokenizer": preTokenizer, "post_processor": postProcessor,
            "decoder": ["type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true], "model": model,
        ]
        let config = vocabulary.tokenizerConfig(contextLength: contextLength, tokenizerClass: "PreTrainedTokenizerFast",
                                                extra: [:])
        return [("tokenizer.json", tokenizerJSON), ("tokenizer_config.json", config)]
    }

    /// tokenizer.json's pre-tokenizers for llama.cpp's steps; nil when a step has no such form.
    static func preTokenizerSteps(_ steps: [PreTokenizerStep]) -> [[String: Any]]? {
        var written: [[String: Any]] = []
        for step in steps {
            switch step {
            case .scanner(let kind) where kind != .smollm:
                written.append(["type": "Split", "pattern": ["Regex": kind.pattern], "behavior": "Isolated", "invert": false])
            case .split(let regex, let behavior, let invert):
                written.append(["type": "Split", "pattern": ["Regex": regex.pattern], "behavior": behavior.rawValue, "invert": invert])
            case .digits(let individual):
                written.append(["type": "Digits", "individual_digits": individual])
            case .byteLevel(let addPrefixSpace, let useRegex):
                written.append(["type": "ByteLevel", "add_prefix_space": addPrefixSpace, "trim_offsets": true, "use_regex": useRegex])
            default:
                return nil
            }
        }
        return written
    }
}
