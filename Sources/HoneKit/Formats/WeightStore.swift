import Foundation

/// Named tensors of a model, mapped from one or more files.
public protocol WeightStore: AnyObject, Sendable {
    /// The directory or file the weights come from.
    var location: String { get }
    /// GGUF files use llama.cpp's tensor names; HF directories use transformers' names.
    var isGGUF: Bool { get }
    var tensorNames: [String] { get }
    func contains(_ name: String) -> Bool
    func tensor(_ name: String) throws -> TensorView
}

extension WeightStore {
    /// The linear layer `name` (`name.weight`, and `name.bias` when `bias`), its weight checked to be `shape`.
    func linear(_ name: String, shape: [Int], bias: Bool) throws -> Linear {
        let weight = try tensor("\(name).weight")
        try weight.expectShape(shape)
        return try Linear(weight: weight, bias: bias ? try tensor("\(name).bias") : nil)
    }
}

/// The tensors of an HF model directory: `model.safetensors`, or shards listed in `model.safetensors.index.json`.
public final class SafetensorsStore: WeightStore, @unchecked Sendable {
    public let location: String
    public let files: [SafetensorsFile]
    private var index: [String: SafetensorsFile] = [:]
    public var isGGUF: Bool { false }

    public init(directory: String) throws {
        location = directory
        let single = (directory as NSString).appendingPathComponent("model.safetensors")
        let indexPath = (directory as NSString).appendingPathComponent("model.safetensors.index.json")
        if FileManager.default.fileExists(atPath: indexPath) {
            let json = try JSONConfig(path: indexPath)
            guard let weightMap = json.values["weight_map"] as? [String: String] else {
                throw HoneError.missingConfigKey(path: indexPath, key: "weight_map")
            }
            var opened: [String: SafetensorsFile] = [:]
            for shard in Set(weightMap.values).sorted() {
                guard !shard.contains("/") else {
                    throw HoneError.malformedFile(path: indexPath, message: "shard name '\(shard)' must be a file in the model directory")
                }
                opened[shard] = try SafetensorsFile(path: (directory as NSString).appendingPathComponent(shard))
            }
            files = opened.keys.sorted().map { opened[$0]! }
            for (name, shard) in weightMap {
                guard let file = opened[shard], file.tensors[name] != nil || file.unsupported[name] != nil else {
                    throw HoneError.missingTensor(name: name, path: (directory as NSString).appendingPathComponent(shard))
                }
                index[name] = file
            }
        } else if FileManager.default.fileExists(atPath: single) {
            files = [try SafetensorsFile(path: single)]
            for name in files[0].tensors.keys { index[name] = files[0] }
            for name in files[0].unsupported.keys { index[name] = files[0] }
        } else {
            throw HoneError.fileNotFound(path: single)
        }
    }

    public var tensorNames: [String] { index.keys.sorted() }
    public func contains(_ name: String) -> Bool { index[name] != nil }

    public func tensor(_ name: String) throws -> TensorView {
        guard let file = index[name] else { throw HoneError.missingTensor(name: name, path: location) }
        if let dtype = file.unsupported[name] {
            throw HoneError.unsupportedDType(name: name, dtype: dtype, path: file.path)
        }
        return file.tensors[name]!
    }
}

/// The tensors of a GGUF file.
public final class GGUFStore: WeightStore, @unchecked Sendable {
    public let file: GGUFFile
    private let infos: [String: GGUFTensorInfo]
    public var location: String { file.path }
    public var isGGUF: Bool { true }

    public init(file: GGUFFile) {
        self.file = file
        infos = Dictionary(file.tensorInfos.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
    }

    public var tensorNames: [String] { file.tensorInfos.map(\.name) }
    public func contains(_ name: String) -> Bool { infos[name] != nil }

    public func tensor(_ name: String) throws -> TensorView {
        guard let info = infos[name] else { throw HoneError.missingTensor(name: name, path: location) }
        return try file.tensorView(info)
    }
}
