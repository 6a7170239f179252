import Foundation

/// What `hone info` reports about a model: architecture, sizes, dtypes, tokenizer.
public struct ModelSummary: Sendable {
    public let path: String
    public let format: String
    public let architecture: String
    public let parameterCount: Int
    /// dtype name → (tensor count, bytes)
    public let dtypes: [(name: String, tensors: Int, bytes: Int)]
    public let fileBytes: Int
    public let tokenizer: String
    public let config: ModelConfig
    /// "causal LM" or a description of the sequence-classification head.
    public let head: String

    public init(_ loaded: LoadedModel) {
        path = loaded.path
        if let score = loaded.scoreHead {
            var reading = score.padTokenID.map { "read at the last token that is not pad \($0)" } ?? "read at the last token (no pad_token_id)"
            if score.pooling == .last { reading = "read at the last token" }
            if score.pooling == .mean { reading = "mean over the tokens" }
            head = "sequence classification (reward model when 1 label): \(loaded.config.scoreModule) [\(score.labels), \(score.width)]"
                + "\(score.bias == nil ? "" : " with bias"), \(reading)"
        } else {
            head = "causal LM"
        }
        config = loaded.config
        architecture = loaded.config.modelType
        var counts: [String: (Int, Int)] = [:]
        var parameters = 0
        if let gguf = loaded.gguf {
            format = gguf.parts.count == 1 ? "GGUF v\(gguf.version)" : "GGUF v\(gguf.version) (split in \(gguf.parts.count) parts)"
            for info in gguf.tensorInfos {
                parameters += info.shape.reduce(1, *)
                let name = ggmlTypeName(info.ggmlType)
                counts[name, default: (0, 0)].0 += 1
                counts[name, default: (0, 0)].1 += info.byteCount
            }
            fileBytes = gguf.totalBytes
            tokenizer = ModelSummary.describeTokenizer(gguf: gguf)
        } else {
            let store = loaded.weights as! SafetensorsStore
            format = store.files.count == 1 ? "HF safetensors" : "HF safetensors (\(store.files.count) shards)"
            for file in store.files {
                for tensor in file.tensors.values {
                    parameters += tensor.elementCount
                    counts[tensor.dtype.rawValue, default: (0, 0)].0 += 1
                    counts[tensor.dtype.rawValue, default: (0, 0)].1 += tensor.byteCount
                }
                for name in file.unsupported.keys { counts[file.unsupported[name]!, default: (0, 0)].0 += 1 }
            }
            fileBytes = store.files.reduce(0) { $0 + $1.file.size }
            tokenizer = ModelSummary.describeTokenizer(directory: loaded.path)
        }
        parameterCount = parameters
        dtypes = counts.keys.sorted().map { (name: $0, tensors: counts[$0]!.0, bytes: counts[$0]!.1) }
    }

    static func describeTokenizer(directory: String) -> String {
        let fileManager = FileManager.default
        let join = { (name: String) in (directory as NSString).appendingPathComponent(name) }
        if let data = fileManager.contents(atPath: join("tokenizer.json")),
           let json = try? parseJSON(data) as? [String: Any],
           let model = json["model"] as? [String: Any] {
            let type = model["type"] as? String ?? "unknown"
            // Added tokens count too (as len() of an HF tokenizer): a file may keep special tokens only there.
            var vocabulary: Int?
            if let vocab = model["vocab"] as? [String: Any] {
                var ids = Set(vocab.values.compactMap(jsonInteger))
                for added in json["added_tokens"] as? [[String: Any]] ?? [] { if let id = added["id"].flatMap(jsonInteger) { ids.insert(id) } }
                vocabulary = ids.count
            }
            let kind = (model["byte_fallback"] as? Bool == true) ? "SentencePiece-style BPE" :
                (type == "BPE" ? "byte-level BPE" : type)
            return "tokenizer.json (\(kind)\(vocabulary.map { ", \($0) tokens" } ?? ""))"
        }
        if fileManager.fileExists(atPath: join("tokenizer.model")) { return "tokenizer.model (SentencePiece)" }
        if fileManager.fileExists(atPath: join("vocab.json")), fileManager.fileExists(atPath: join("merges.txt")) {
            return "vocab.json + merges.txt (GPT-2 byte-level BPE)"
        }
        return "none found"
    }

    static func describeTokenizer(gguf: GGUFFile) -> String {
        guard let model = gguf.string("tokenizer.ggml.model") else { return "none in GGUF metadata" }
        let count = gguf.metadata["tokenizer.ggml.tokens"]?.arrayValue?.count ?? 0
        let kind = ["llama": "SentencePiece BPE", "gpt2": "byte-level BPE"][model] ?? model
        let pre = gguf.string("tokenizer.ggml.pre").map { ", pre \($0)" } ?? ""
        return "GGUF metadata (\(kind), \(count) tokens\(pre))"
    }

    /// Human-readable lines for `hone info`.
    public var lines: [String] {
        var lines = [
            "model:        \(path)",
            "format:       \(format), \(formatBytes(fileBytes))",
            "architecture: \(architecture)",
            "head:         \(head)",
            "parameters:   \(formatCount(parameterCount)) (\(parameterCount))",
            "dtypes:       " + dtypes.map { "\($0.name) ×\($0.tensors) (\(formatBytes($0.bytes)))" }.joined(separator: ", "),
            "layers:       \(config.layerCount), hidden \(config.hiddenSize), ffn \(config.intermediateSize)",
            "attention:    \(config.headCount) heads, \(config.keyValueHeadCount) kv heads, head_dim \(config.headDimension)",
            "vocabulary:   \(config.vocabularySize), context \(config.maxPositionEmbeddings)",
        ]
        lines += config.architecture.summaryLines(config)
        lines.append("tokens:       bos \(config.bosTokenID.map(String.init) ?? "none"), eos \(config.eosTokenIDs.isEmpty ? "none" : config.eosTokenIDs.map(String.init).joined(separator: ","))")
        lines.append("tokenizer:    \(tokenizer)")
        return lines
    }
}

public func formatBytes(_ bytes: Int) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var value = Double(bytes)
    var unit = 0
    while value >= 1024, unit < units.count - 1 {
        value /= 1024
        unit += 1
    }
    return unit == 0 ? "\(bytes) B" : String(format: "%.2f %@", value, units[unit])
}

public func formatCount(_ count: Int) -> String {
    switch count {
    case 1_000_000_000...: return String(format: "%.2f B", Double(count) / 1e9)
    case 1_000_000...: return String(format: "%.2f M", Double(count) / 1e6)
    case 1_000...: return String(format: "%.1f K", Double(count) / 1e3)
    default: return "\(count)"
    }
}
