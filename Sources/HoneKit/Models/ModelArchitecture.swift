import Foundation

// MARK: - One entry per architecture

/// Everything Hone knows about one architecture, in one place: the names it goes by in HF configs and GGUF files,
/// how to read its config, how to build the runnable model, which linear layers LoRA may adapt, and how its tensors
/// are named on export. `ModelArchitectures.all` lists the entries; every other part of Hone asks the registry.
/// Adding an architecture = a folder in Models/ with its entry + one line in `all` (docs/adding-a-model.md).
public struct ModelArchitecture: Sendable {
    /// The entry's name, for messages: "llama", "opt".
    public let name: String
    /// HF `model_type` values read by this entry, each with the transformers class written to config.json
    /// `architectures` on export (`"mistral": "MistralForCausalLM"`).
    public let huggingFaceModelTypes: [String: String]
    /// GGUF `general.architecture` values read by this entry ([] when llama.cpp has no such architecture).
    public let ggufArchitectures: [String]
    /// config.json → ModelConfig; the second argument is the `model_type` found.
    let configFromHuggingFace: @Sendable (JSONConfig, String) throws -> ModelConfig
    /// GGUF metadata → ModelConfig; the second argument is `general.architecture`.
    let configFromGGUF: (@Sendable (GGUFFile, String) throws -> ModelConfig)?
    /// The runnable model over mapped weights.
    let build: @Sendable (ModelConfig, WeightStore) throws -> any CausalLanguageModel
    /// The linear layers LoRA may adapt.
    public let adaptableModules: AdaptableModules
    /// HF ↔ GGUF tensor names for `hone convert` and `hone quantize` from HF; nil when there is no GGUF form.
    let ggufNames: GGUFTensorNames?
    /// Lines `hone info` adds about this architecture's own settings.
    let summaryLines: @Sendable (ModelConfig) -> [String]
}

/// How an architecture's tensors are named in llama.cpp's GGUF files, and what its converter does to them.
struct GGUFTensorNames: Sendable {
    /// The GGUF `general.architecture` an HF `model_type` is written as ("mistral" → "llama").
    let architecture: @Sendable (_ modelType: String) -> String
    /// "model.layers.3.self_attn.q_proj.weight" → "blk.3.attn_q.weight"; nil for names without a counterpart.
    let gguf: @Sendable (_ huggingFaceName: String) -> String?
    /// The inverse of `gguf`.
    let huggingFace: @Sendable (_ ggufName: String) -> String?
    /// The heads whose rows the converter permutes for GGML's adjacent-pair rotation (Q: attention heads, K: KV
    /// heads), by GGUF tensor-name stem ("attn_q", "attn_k") — for the GGUF architecture given; empty if none.
    let permutedRows: @Sendable (_ ggufArchitecture: String, _ config: ModelConfig) -> [String: Int]
    /// What the converter adds to every norm weight ("….norm.weight", "…_norm.weight", "…layernorm.weight"):
    /// Gemma's checkpoints store w for norms that multiply by 1 + w, its GGUFs store 1 + w.
    var normWeightOffset: Float = 0
}

// MARK: - The registry

public enum ModelArchitectures {
    /// Every architecture Hone runs.
    public static let all: [ModelArchitecture] = [.llama, .phi3, .gemma, .gemma2, .gemma3, .olmo2, .olmoe, .exaone4, .opt, .gptNeoX]

    /// The entry for an HF `model_type` (also what `ModelConfig.modelType` holds).
    public static func forModelType(_ type: String) -> ModelArchitecture? {
        all.first { $0.huggingFaceModelTypes[type] != nil }
    }

    /// The entry for a GGUF `general.architecture`.
    public static func forGGUF(_ name: String) -> ModelArchitecture? {
        all.first { $0.ggufArchitectures.contains(name) }
    }

    /// Every HF `model_type` and GGUF architecture name Hone reads, for messages.
    public static var supportedNames: [String] {
        var names: [String] = []
        for entry in all {
            for name in entry.huggingFaceModelTypes.keys.sorted() + entry.ggufArchitectures where !names.contains(name) {
                names.append(name)
            }
        }
        return names
    }
}

extension ModelConfig {
    /// The registry entry this config was read by.
    public var architecture: ModelArchitecture {
        guard let entry = ModelArchitectures.forModelType(modelType) else {
            preconditionFailure("model_type '\(modelType)' came from no registry entry")
        }
        return entry
    }
}

// MARK: - Adaptable linear layers

/// Where an architecture's linear layers live in HF's module tree, for PEFT's key names and `target_modules`.
public struct AdaptableModules: Sendable {
    /// Module names a user may target, as PEFT spells them, in the order of a block's forward pass.
    public let names: [String]
    /// Short spellings users may write in `--lora-target-modules` ("q" for "q_proj", "up" for "fc1" in OPT).
    public let shortNames: [String: String]
    /// HF module path of `name` in layer `layer`, e.g. "model.layers.3.self_attn.q_proj".
    public let path: @Sendable (_ layer: Int, _ name: String) -> String

    /// Module names from a list as users write it: "[q_proj,v_proj]", "q,v", "'q_proj', 'k_proj'" (alpaca-lora's
    /// fire syntax), "q_proj v_proj", PEFT's "all-linear" (every adaptable module), short names resolved, duplicates
    /// dropped; an unknown name is an error listing the choices.
    /// `unavailable`: modules this model lacks (a mixture of experts has no single MLP to adapt).
    public func resolve(_ text: String, architecture: String, unavailable: Set<String> = []) throws -> [String] {
        let cleaned = text.filter { !"[]'\"".contains($0) }
        let requested = cleaned.split(whereSeparator: { $0 == "," || $0 == " " }).map(String.init).filter { !$0.isEmpty }
        let available = names.filter { !unavailable.contains($0) }
        if requested == ["all-linear"] { return available }
        guard !requested.isEmpty else { throw HoneError.invalidArgument("the list of LoRA target modules is empty") }
        var result: [String] = []
        for name in requested {
            let full = shortNames[name] ?? name
            if unavailable.contains(full) {
                throw HoneError.invalidArgument(
                    "LoRA target module '\(name)': this \(architecture) model's MLPs are mixtures of frozen experts; choose from \(available.joined(separator: ", "))")
            }
            guard names.contains(full) else {
                throw HoneError.invalidArgument(
                    "unknown LoRA target module '\(name)' for \(architecture); choose from \(available.joined(separator: ", "))")
            }
            if !result.contains(full) { result.append(full) }
        }
        return result
    }
}
