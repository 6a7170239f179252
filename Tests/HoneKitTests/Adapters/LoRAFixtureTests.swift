import Foundation
import Testing
@testable import HoneKit

/// Checks of Fixtures/lora (tools/oracle/make_lora_fixtures.py) that need no trainer: the files parse with
/// Hone's readers, keys and shapes agree with adapter_config.json, and merging the adapter into the base
/// weights by hand (W + scaling·B·A, in Double) and scoring with Hone's forward pass reproduces PEFT's
/// `merged_logprobs`. That pins the key mapping (PEFT name → HF weight) and the scaling rules the trainer
/// relies on.
@Suite struct LoRAFixtureTests {
    static let cases = ["llama-gqa", "llama-gqa-qv", "qwen2-bias-rslora", "llama-tied-llama3-r2", "opt-preln", "qwen3-qknorm",
                        "smollm3-nope", "granite-mult", "phi3-fused", "phi3-longrope", "gemma3-swa", "gemma3-legacy",
                        "gemma2-softcap", "qwen3moe-experts", "qwen3moe-unnormalized", "mixtral-experts",
                        "qwen2moe-shared", "olmo2-post", "olmo3-swa", "olmoe-experts", "gemma-geglu",
                        "granitemoe-experts", "exaone4-swa"]

    struct Case {
        let directory: String
        let modelPath: String
        let r: Int
        let scaling: Double
        let targets: [String]
        let expected: [String: Any]
        let rows: [(ids: [Int32], labels: [Int32])]

        init(_ name: String) throws {
            directory = Repository.fixture("lora/\(name)")
            let config = try #require(try parseJSON(Data(contentsOf: URL(fileURLWithPath: directory + "/adapter/adapter_config.json"))) as? [String: Any])
            r = try #require(config["r"].flatMap(jsonInteger))
            let alpha = try #require(config["lora_alpha"].flatMap(jsonDouble))
            let rslora = config["use_rslora"] as? Bool ?? false
            // PEFT's rule (methods.md §5.1), computed here independently of the fixture's "scaling".
            scaling = rslora ? alpha / Double(r).squareRoot() : alpha / Double(r)
            targets = try #require(config["target_modules"] as? [String])
            #expect(config["lora_dropout"].flatMap(jsonDouble) == 0)
            #expect(config["bias"] as? String == "none")
            expected = try #require(try parseJSON(Data(contentsOf: URL(fileURLWithPath: directory + "/expected.json"))) as? [String: Any])
            #expect(expected["scaling"].flatMap(jsonDouble) == scaling)
            modelPath = Repository.fixture(try #require(expected["model"] as? String))
            let batch = try #require(try parseJSON(Data(contentsOf: URL(fileURLWithPath: directory + "/batch.json"))) as? [String: Any])
            rows = try #require(batch["rows"] as? [[String: Any]]).map { row in
                ((row["input_ids"] as! [Any]).map { Int32(jsonInteger($0)!) }, (row["labels"] as! [Any]).map { Int32(jsonInteger($0)!) })
            }
        }

        func logprobs(_ key: String) throws -> [[Double]] {
            try #require(expected[key] as? [[Any]]).map { $0.dropFirst().map { jsonDouble($0)! } }
        }
    }

    /// The base weight a PEFT key adapts: "base_model.model.X.lora_A.weight" → "X.weight".
    static func baseWeightName(_ key: String) -> (name: String, isA: Bool)? {
        let prefix = "base_model.model."
        guard key.hasPrefix(prefix) else { return nil }
        for (suffix, isA) in [(".lora_A.weight", true), (".lora_B.weight", false)] where key.hasSuffix(suffix) {
            return (String(key.dropFirst(prefix.count).dropLast(suffix.count)) + ".weight", isA)
        }
        return nil
    }

    @Test(arguments: cases)
    func filesAgreeWithTheConfig(name: String) throws {
        let fixture = try Case(name)
        let adapter = try SafetensorsFile(path: fixture.directory + "/adapter/adapter_model.safetensors")
        let base = try SafetensorsFile(path: fixture.modelPath + "/model.safetensors")
        var others = [try SafetensorsFile(path: fixture.directory + "/gradients.safetensors")]
        if FileManager.default.fileExists(atPath: fixture.directory + "/final_adapter.safetensors") {
            others.append(try SafetensorsFile(path: fixture.directory + "/final_adapter.safetensors"))
        }
        let layers = Set(base.tensors.keys.compactMap { name -> Int? in
            let parts = name.split(separator: ".")
            guard let index = parts.firstIndex(of: "layers"), index + 1 < parts.count else { return nil }
            return Int(parts[index + 1])
        })
        #expect(adapter.tensors.count == 2 * fixture.targets.count * layers.count)
        for (key, tensor) in adapter.tensors {
            #expect(tensor.dtype == .f32)
            let mapped = try #require(Self.baseWeightName(key), "\(key)")
            let weight = try #require(base.tensors[mapped.name], "\(key) adapts \(mapped.name), which the model lacks")
            #expect(fixture.targets.contains { mapped.name.hasSuffix(".\($0).weight") })
            // A: [r, in]; B: [out, r]; W: [out, in].
            #expect(tensor.shape == (mapped.isA ? [fixture.r, weight.shape[1]] : [weight.shape[0], fixture.r]), "\(key)")
            for other in others {
                #expect(other.tensors[key]?.shape == tensor.shape, "\(other.path): \(key)")
            }
            #expect(tensor.floats().contains { $0 != 0 }, "\(key) is all zeros")
        }
        for other in others { #expect(other.tensors.count == adapter.tensors.count) }
    }

    /// `loss` is the token mean of −logprobs over the trained positions (labels ≠ -100, t ≥ 1).
    @Test(arguments: cases)
    func lossIsTheTokenMeanOfTheLogprobs(name: String) throws {
        let fixture = try Case(name)
        let logprobs = try fixture.logprobs("logprobs")
        var total = 0.0
        var count = 0
        for (row, values) in zip(fixture.rows, logprobs) {
            for t in 1..<row.ids.count where row.labels[t] != -100 {
                #expect(row.labels[t] == row.ids[t])
                total -= values[t - 1]
                count += 1
            }
        }
        #expect(count == fixture.expected["label_tokens"].flatMap(jsonInteger))
        #expect(abs(total / Double(count) - fixture.expected["loss"].flatMap(jsonDouble)!) < 1e-5)
    }

    @Test(arguments: cases)
    func mergingByHandReproducesPEFT(name: String) throws {
        let fixture = try Case(name)
        let adapter = try SafetensorsFile(path: fixture.directory + "/adapter/adapter_model.safetensors")
        let original = try SafetensorsFile(path: fixture.modelPath + "/model.safetensors")
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let merged = directory.appendingPathComponent("merged").path
        try FileManager.default.copyItem(atPath: fixture.modelPath, toPath: merged)

        var updated: [String: [Float]] = [:]
        for key in adapter.tensors.keys.sorted() {
            guard let (weightName, isA) = Self.baseWeightName(key), isA else { continue }
            let a = adapter.tensors[key]!, b = try #require(adapter.tensors[key.replacingOccurrences(of: "lora_A", with: "lora_B")])
            let weight = try #require(original.tensors[weightName])
            let (rows, columns, r) = (weight.shape[0], weight.shape[1], a.shape[0])
            let (av, bv) = (a.floats(), b.floats())
            var w = weight.floats()
            for i in 0..<rows {
                for j in 0..<columns {
                    var sum = 0.0
                    for k in 0..<r { sum += Double(bv[i * r + k]) * Double(av[k * columns + j]) }
                    w[i * columns + j] = Float(Double(w[i * columns + j]) + fixture.scaling * sum)
                }
            }
            updated[weightName] = w
        }
        let entries = original.entries().map { entry in
            guard let values = updated[entry.name] else { return entry }
            return SafetensorsEntry(name: entry.name, dtype: entry.dtype, shape: entry.shape,
                                    bytes: values.withUnsafeBufferPointer { Data(buffer: $0) })
        }
        try SafetensorsWriter.write(entries, metadata: original.metadata, to: merged + "/model.safetensors")

        for (path, key) in [(merged, "merged_logprobs"), (merged, "logprobs"), (fixture.modelPath, "base_logprobs")] {
            let loaded = try LoadedModel.open(path)
            let scored = try Scorer(model: loaded.model).score(fixture.rows.map(\.ids))
            for (values, want) in zip(scored, try fixture.logprobs(key)) {
                let difference = maxAbsDifference(values.map(Double.init), want)
                #expect(difference <= 1e-4, "\(name) \(key): max |Δ| \(difference)")
            }
        }
    }
}
