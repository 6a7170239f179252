import Foundation
import Testing
@testable import HoneKit

/// EXAONE 4 settings from config.json (layer_types, a period, an "LLLG" string, no window) and from llama.cpp's
/// GGUF files, which run the window for 64-layer models only. Log-probs, LoRA gradients and conversion are checked
/// with the other families (GoldenLogprobTests, LoRATrainingTests, QuantizeConvertTests).
@Suite struct EXAONE4Tests {
    static let hybridPath = Repository.fixture("models/exaone4-hybrid/config.json")

    @Test func hybridLayers() throws {
        let hf = try ModelConfig.fromHuggingFace(path: Self.hybridPath)
        let gguf = try ModelConfig.fromGGUF(GGUFFile(path: Repository.fixture("gguf/exaone4-hybrid-f32.gguf")))
        let global = Set(stride(from: 3, to: 64, by: 4))
        for config in [hf, gguf] {
            #expect(config.modelType == "exaone4" && config.queryKeyNorm && !config.queryKeyNormAcrossHeads)
            #expect(config.sandwichNorms && !config.inputNorms && !config.localLayersOwnRope)
            #expect(config.slidingWindow == 8 && config.slidingWindowLayers == Set(0..<64).subtracting(global))
            #expect(config.layersWithoutRotation == global && !config.ropeInterleaved)
        }
        guard case .llama3(let factor, _, _, let original) = hf.ropeScaling else {
            Issue.record("\(hf.ropeScaling) is not llama3")
            return
        }
        #expect(factor == 8 && original == 32)
    }

    /// A period, the Hub's "LLLG" string, and sliding_window null (every layer global and rotated).
    @Test func patterns() throws {
        var values = try JSONConfig(path: Self.hybridPath).values
        values.removeValue(forKey: "layer_types")
        values["num_hidden_layers"] = 8
        values["sliding_window_pattern"] = "LLGG"
        let letters = try EXAONE4Config.configFromHuggingFace(JSONConfig(values: values, path: Self.hybridPath), modelType: "exaone4")
        #expect(letters.slidingWindowLayers == [0, 1, 4, 5] && letters.layersWithoutRotation == [2, 3, 6, 7])
        values["sliding_window_pattern"] = 2
        let period = try EXAONE4Config.configFromHuggingFace(JSONConfig(values: values, path: Self.hybridPath), modelType: "exaone4")
        #expect(period.slidingWindowLayers == [0, 2, 4, 6] && period.layersWithoutRotation == [1, 3, 5, 7])
        values["sliding_window"] = NSNull()
        let dense = try EXAONE4Config.configFromHuggingFace(JSONConfig(values: values, path: Self.hybridPath), modelType: "exaone4")
        #expect(dense.slidingWindow == nil && dense.slidingWindowLayers.isEmpty && dense.layersWithoutRotation.isEmpty)
        values["sliding_window"] = 8
        values["sliding_window_pattern"] = "LXG"
        #expect(throws: HoneError.self) {
            try EXAONE4Config.configFromHuggingFace(JSONConfig(values: values, path: Self.hybridPath), modelType: "exaone4")
        }
    }

    /// `hone convert` of the hybrid model writes the converter's file: the Llama 3 factors as rope_freqs, the
    /// window and the per-layer list, the same tensors; and scores as transformers does. (The dense fixture goes
    /// HF → GGUF → HF in QuantizeConvertTests; rope_freqs has no exact config.json form to go back to.)
    @Test func convertsLikeTheConverter() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = directory.appendingPathComponent("exaone4.gguf").path
        _ = try GGUFExport.write(input: Repository.fixture("models/exaone4-hybrid"), output: output, scheme: .f32)
        let reference = try GGUFFile(path: Repository.fixture("gguf/exaone4-hybrid-f32.gguf"))
        let written = try GGUFFile(path: output)
        #expect(Set(written.tensorInfos.map(\.name)) == Set(reference.tensorInfos.map(\.name)))
        for info in reference.tensorInfos {
            let ours = try written.tensorView(written.tensorInfos.first { $0.name == info.name }!).floats()
            let theirs = try reference.tensorView(info).floats()
            #expect(zip(ours, theirs).allSatisfy { abs($0 - $1) <= 1e-6 * abs($1) }, "\(info.name)")
        }
        for key in reference.metadataKeys where key.hasPrefix("exaone4.") {
            #expect(written.metadata[key] == reference.metadata[key], "\(key)")
        }
        let golden = try GoldenFile(name: "exaone4-hybrid")
        let scored = try Scorer(model: LoadedModel.open(output).model).score(golden.rows.map(\.tokens))
        for (row, values) in zip(golden.rows, scored) {
            #expect(maxAbsDifference(values.map(Double.init), row.logprobs) <= 1e-4)
        }
    }

    /// The dense fixture (no window) and its GGUF: every layer global and rotated.
    @Test func dense() throws {
        let hf = try ModelConfig.fromHuggingFace(path: Repository.fixture("models/exaone4-dense/config.json"))
        let gguf = try ModelConfig.fromGGUF(GGUFFile(path: Repository.fixture("gguf/exaone4-dense-f32.gguf")))
        for config in [hf, gguf] {
            #expect(config.slidingWindow == nil && config.layersWithoutRotation.isEmpty && config.tieWordEmbeddings)
            #expect(config.architecture.summaryLines(config).joined().contains("none (every layer global)"))
        }
    }
}
