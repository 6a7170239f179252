import Foundation

/// A model opened from an HF directory or a GGUF file: its config, its mapped weights, and the runnable model.
public final class LoadedModel: @unchecked Sendable {
    public enum Format: String, Sendable { case huggingFace = "HF safetensors", gguf = "GGUF" }

    public let path: String
    public let format: Format
    public let config: ModelConfig
    public let weights: WeightStore
    public let model: CausalLanguageModel
    /// Present for GGUF files, for metadata.
    public let gguf: GGUFFile?

    init(path: String, format: Format, config: ModelConfig, weights: WeightStore, model: CausalLanguageModel, gguf: GGUFFile?) {
        self.path = path
        self.format = format
        self.config = config
        self.weights = weights
        self.model = model
        self.gguf = gguf
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
            let model = try config.architecture.build(config, weights)
            return LoadedModel(path: path, format: .huggingFace, config: model.config, weights: weights, model: model, gguf: nil)
        }
        let gguf = try GGUFFile(path: path)
        let config = try ModelConfig.fromGGUF(gguf)
        let weights = GGUFStore(file: gguf)
        let model = try config.architecture.build(config, weights)
        return LoadedModel(path: path, format: .gguf, config: model.config, weights: weights, model: model, gguf: gguf)
    }
}
