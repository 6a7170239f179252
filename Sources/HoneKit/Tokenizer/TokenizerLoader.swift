import Foundation

/// Finds and loads the tokenizer of a model: `tokenizer.json`, `tokenizer.model`, or `vocab.json` + `merges.txt`
/// in an HF directory, or the `tokenizer.ggml.*` metadata of a GGUF file.
public enum TokenizerLoader {
    public static func load(modelPath path: String) throws -> Tokenizer {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw HoneError.fileNotFound(path: path)
        }
        if isDirectory.boolValue { return try load(directory: path) }
        return try load(gguf: GGUFFile(path: path))
    }

    public static func load(directory: String) throws -> Tokenizer {
        let join = { (name: String) in (directory as NSString).appendingPathComponent(name) }
        let fileManager = FileManager.default
        let config = fileManager.fileExists(atPath: join("tokenizer_config.json")) ? join("tokenizer_config.json") : nil
        if fileManager.fileExists(atPath: join("tokenizer.json")) {
            return try load(tokenizerJSON: join("tokenizer.json"), tokenizerConfig: config)
        }
        if fileManager.fileExists(atPath: join("tokenizer.model")) {
            return try SentencePieceTokenizer.load(modelFile: join("tokenizer.model"), tokenizerConfig: config)
        }
        if fileManager.fileExists(atPath: join("vocab.json")), fileManager.fileExists(atPath: join("merges.txt")) {
            return try ByteLevelBPETokenizer.load(vocabJSON: join("vocab.json"), mergesTXT: join("merges.txt"), tokenizerConfig: config)
        }
        throw HoneError.io(path: directory, message: "no tokenizer found (tokenizer.json, tokenizer.model, or vocab.json with merges.txt)")
    }

    /// HF `tokenizer.json`: SentencePiece-style BPE (byte fallback, "▁") or byte-level BPE (GPT-2, Llama 3, Qwen2).
    public static func load(tokenizerJSON path: String, tokenizerConfig: String?) throws -> Tokenizer {
        let file = try TokenizerJSONFile(path: path)
        let json = file.values
        guard let model = json["model"] as? [String: Any] else {
            throw HoneError.malformedFile(path: path, message: "not a tokenizer.json: it has no \"model\" object")
        }
        let type = model["type"] as? String ?? "BPE"
        guard type == "BPE" else {
            throw HoneError.malformedFile(path: path, message: "tokenizer model type '\(type)' is not supported (BPE is)")
        }
        let description = String(describing: json["pre_tokenizer"] ?? "") + String(describing: json["decoder"] ?? "")
        let sentencePieceStyle = model["byte_fallback"] as? Bool == true || description.contains("Metaspace")
            || SentencePieceTokenizer.prefixPolicy(json) != .never
        if sentencePieceStyle {
            return try SentencePieceTokenizer.load(tokenizerJSON: file, path: path, tokenizerConfig: tokenizerConfig)
        }
        return try ByteLevelBPETokenizer.load(tokenizerJSON: file, path: path, tokenizerConfig: tokenizerConfig)
    }

    public static func load(gguf: GGUFFile) throws -> Tokenizer {
        guard let kind = gguf.string("tokenizer.ggml.model") else {
            throw HoneError.malformedFile(path: gguf.path, message: "GGUF file has no tokenizer metadata (tokenizer.ggml.model)")
        }
        switch kind {
        case "llama":
            return try SentencePieceTokenizer.load(gguf: gguf)
        case "gpt2":
            return try ByteLevelBPETokenizer.load(gguf: gguf)
        case "none":
            throw HoneError.malformedFile(path: gguf.path, message: "GGUF file has no tokenizer (tokenizer.ggml.model = none)")
        default:
            throw HoneError.malformedFile(path: gguf.path, message: "GGUF tokenizer type '\(kind)' is not supported (llama, gpt2 are)")
        }
    }
}
