import Foundation

/// A model opened from an HF directory or a GGUF file, once, with everything that belongs to it: its config and
/// generation settings (EOS ids from generation_config.json), its mapped weights and the runnable model, its
/// tokenizer and its own chat template, all from the same parse (a GGUF's metadata is read once).
public final class LoadedModel: @unchecked Sendable {
    public enum Format: String, Sendable { case huggingFace = "HF safetensors", gguf = "GGUF" }

    public let path: String
    public let format: Format
    public let config: ModelConfig
    public let weights: WeightStore
    public let model: CausalLanguageModel
    /// Present for GGUF files, for metadata.
    public let gguf: GGUFFile?
    /// The score head of a sequence-classification (reward) model saved by transformers (`score.weight`).
    public let scoreHead: ScoreHead?

    private let tokenizerLock = NSLock()
    private var cachedTokenizer: Tokenizer?

    init(path: String, format: Format, config: ModelConfig, weights: WeightStore, model: CausalLanguageModel, gguf: GGUFFile?) throws {
        self.path = path
        self.format = format
        self.config = config
        self.weights = weights
        self.model = model
        self.gguf = gguf
        scoreHead = try ScoreHead.load(from: weights, config: config)
    }

    /// Opens `path`: a directory with `config.json` and safetensors, or a `.gguf` file. Nothing is read beyond
    /// headers and small tensors (norms, biases); large weights are used in place from the mapping.
    public static func open(_ path: String) throws -> LoadedModel {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw HoneError.fileNotFound(path: path)
        }
        if isDirectory.boolValue {
            let configPath = (path as NSString).appendingPathComponent("config.json")
            var config = try ModelConfig.fromHuggingFace(path: configPath)
            try config.applyGenerationConfig(path: (path as NSString).appendingPathComponent("generation_config.json"))
            let weights = try SafetensorsStore(directory: path)
            try checkLayerCount(config, weights)
            let model = try config.architecture.build(config, weights)
            return try LoadedModel(path: path, format: .huggingFace, config: model.config, weights: weights, model: model, gguf: nil)
        }
        // A file is read as a GGUF; a weights file of an HF model was reported as a GGUF with a bad magic.
        if [".safetensors", ".bin", ".pt", ".pth"].contains(where: { path.lowercased().hasSuffix($0) }) {
            throw HoneError.invalidArgument("\(path): a weights file alone is not a model; give its folder (config.json, tokenizer and safetensors) or a GGUF file")
        }
        let gguf = try GGUFFile(path: path)
        let config = try ModelConfig.fromGGUF(gguf)
        let weights = GGUFStore(file: gguf)
        try checkLayerCount(config, weights)
        let model = try config.architecture.build(config, weights)
        return try LoadedModel(path: path, format: .gguf, config: model.config, weights: weights, model: model, gguf: gguf)
    }

    /// Every layer has several tensors: a layer count beyond the tensor count is a lie the builder would otherwise
    /// find only after reserving memory for every declared layer (a fuzzed GGUF declared 67 million).
    private static func checkLayerCount(_ config: ModelConfig, _ weights: WeightStore) throws {
        let tensors = weights.tensorNames.count
        guard config.layerCount <= tensors else {
            throw HoneError.invalidConfig(path: weights.location, message: "the model declares \(config.layerCount) layers but has only \(tensors) tensors")
        }
    }

    // MARK: Tokenizer and chat template

    /// The model's tokenizer (tokenizer.json, tokenizer.model or vocab.json + merges.txt beside the weights, or the
    /// GGUF's own metadata), loaded on first use: commands that never tokenize (info, bench) work without one.
    public func tokenizer() throws -> Tokenizer {
        tokenizerLock.lock()
        defer { tokenizerLock.unlock() }
        if let cachedTokenizer { return cachedTokenizer }
        let loaded = try gguf.map { try TokenizerLoader.load(gguf: $0) } ?? TokenizerLoader.load(directory: path)
        cachedTokenizer = loaded
        return loaded
    }

    /// The model's own Jinja chat template: GGUF `tokenizer.chat_template`, or in an HF directory
    /// `chat_template.jinja`, else `tokenizer_config.json`'s `chat_template` (a string, or a list of named
    /// templates of which "default" is taken). nil when the model has none.
    public func chatTemplateSource() throws -> String? {
        if let gguf { return gguf.string("tokenizer.chat_template") }
        let join = { (name: String) in (self.path as NSString).appendingPathComponent(name) }
        if let data = FileManager.default.contents(atPath: join("chat_template.jinja")) {
            guard let text = String(data: data, encoding: .utf8) else {
                throw HoneError.malformedFile(path: join("chat_template.jinja"), message: "not valid UTF-8")
            }
            return text
        }
        guard FileManager.default.fileExists(atPath: join("tokenizer_config.json")) else { return nil }
        let config = try JSONConfig(path: join("tokenizer_config.json"))
        if let text = config.string("chat_template") { return text }
        if let named = config.values["chat_template"] as? [[String: Any]] {
            let entry = named.first { $0["name"] as? String == "default" } ?? named.first
            return entry?["template"] as? String
        }
        return nil
    }

    // MARK: Prompt templates

    /// The model's own chat template, parsed, with its tokenizer's BOS and EOS texts; nil when it has none.
    public func chatTemplate() throws -> ChatTemplate? {
        guard let source = try chatTemplateSource() else { return nil }
        let tokenizer = try tokenizer()
        let text = { (id: Int32?) in id.map { tokenizer.decode([$0], skipSpecialTokens: false) } }
        let origin = gguf != nil ? "\(path) (tokenizer.chat_template)" : path
        return try ChatTemplate(source: source, bosToken: text(tokenizer.bosTokenID), eosToken: text(tokenizer.eosTokenID),
                                origin: origin)
    }

    /// The prompt template a `template` option names: "auto" takes the template recorded with an adapter
    /// (`recorded`), else the one `hone merge` recorded in this model, else the model's own chat template, else alpaca; "chat_template" is the model's own; a path
    /// ending in `.jinja` is a Jinja chat template file; anything else a built-in name or a JSON template file.
    public func promptTemplate(_ nameOrPath: String, recorded: String? = nil) throws -> PromptTemplate {
        switch nameOrPath {
        case "auto":
            if let recorded = recorded ?? config.recordedPromptTemplate, recorded != "auto" { return try promptTemplate(recorded) }
            if let chat = try chatTemplate() { return .chat(chat) }
            return .alpaca
        case PromptTemplate.chatTemplateName:
            guard let chat = try chatTemplate() else {
                throw HoneError.invalidArgument("\(path) has no chat template (tokenizer.chat_template / chat_template)")
            }
            return .chat(chat)
        default:
            guard nameOrPath.hasSuffix(".jinja") else { return try PromptTemplate.resolve(nameOrPath) }
            guard let data = FileManager.default.contents(atPath: nameOrPath) else { throw HoneError.fileNotFound(path: nameOrPath) }
            guard let source = String(data: data, encoding: .utf8) else {
                throw HoneError.malformedFile(path: nameOrPath, message: "not valid UTF-8")
            }
            let tokenizer = try tokenizer()
            let text = { (id: Int32?) in id.map { tokenizer.decode([$0], skipSpecialTokens: false) } }
            return .chat(try ChatTemplate(source: source, bosToken: text(tokenizer.bosTokenID),
                                          eosToken: text(tokenizer.eosTokenID), origin: nameOrPath))
        }
    }
}
