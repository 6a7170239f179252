import Foundation
import Testing
@testable import HoneKit

/// Every bad input gets a typed error naming the file, tensor or record, never a crash.
@Suite struct BadInputTests {
    func editConfig(_ directory: URL, file: String = "config.json", _ edit: (inout [String: Any]) -> Void) throws {
        let path = directory.appendingPathComponent(file)
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: path)) as! [String: Any]
        edit(&json)
        try JSONSerialization.data(withJSONObject: json).write(to: path)
    }

    func rewriteWeights(_ directory: URL, _ edit: ([SafetensorsEntry]) -> [SafetensorsEntry]) throws {
        let path = directory.appendingPathComponent("model.safetensors").path
        let entries = try SafetensorsFile(path: path).entries()
        try SafetensorsWriter.write(edit(entries), to: path)
    }

    @Test func missingConfigKey() throws {
        let directory = try copyFixtureModel("llama-gqa")
        try editConfig(directory) { $0.removeValue(forKey: "hidden_size") }
        #expect(throws: HoneError.missingConfigKey(path: directory.appendingPathComponent("config.json").path, key: "hidden_size")) {
            try LoadedModel.open(directory.path)
        }
    }

    @Test func unknownModelType() throws {
        let directory = try copyFixtureModel("llama-gqa")
        try editConfig(directory) { $0["model_type"] = "falcon" }
        #expect(throws: HoneError.unsupportedArchitecture(name: "falcon", path: directory.appendingPathComponent("config.json").path)) {
            try LoadedModel.open(directory.path)
        }
    }

    @Test func missingTensor() throws {
        let directory = try copyFixtureModel("llama-gqa")
        try rewriteWeights(directory) { $0.filter { $0.name != "model.layers.1.mlp.up_proj.weight" } }
        #expect(throws: HoneError.missingTensor(name: "model.layers.1.mlp.up_proj.weight", path: directory.path)) {
            try LoadedModel.open(directory.path)
        }
    }

    /// Hyper-parameters no weight's shape pins down are checked before a kernel trusts them.
    @Test func inconsistentHyperParameters() throws {
        let directory = try copyFixtureModel("llama-gqa")
        let config = directory.appendingPathComponent("config.json").path
        try editConfig(directory) { $0["num_key_value_heads"] = 3 }
        #expect(throws: HoneError.invalidConfig(path: config, message: "num_attention_heads (4) must be a multiple of num_key_value_heads (3)")) {
            try LoadedModel.open(directory.path)
        }
        try editConfig(directory) { $0["num_key_value_heads"] = 2; $0["rope_parameters"] = ["rope_theta": -1.0, "rope_type": "default"] }
        #expect(throws: HoneError.invalidConfig(path: config, message: "the rope base -1.0 must be positive")) {
            try LoadedModel.open(directory.path)
        }
        // A rotary fraction of 1e300 made head_dim × fraction too large for an Int: the conversion trapped.
        for (edit, message) in [
            ({ (json: inout [String: Any]) in json["partial_rotary_factor"] = 1e300 }, "'partial_rotary_factor' must be between 0 and 1, not 1e+300"),
            ({ (json: inout [String: Any]) in json["partial_rotary_factor"] = -0.5 }, "'partial_rotary_factor' must be between 0 and 1, not -0.5"),
        ] {
            try editConfig(directory) { $0["rope_parameters"] = ["rope_theta": 10000.0, "rope_type": "default"]; edit(&$0) }
            #expect(throws: HoneError.invalidConfig(path: config, message: message)) { try LoadedModel.open(directory.path) }
            try editConfig(directory) { $0["partial_rotary_factor"] = nil }
        }
        let neox = try copyFixtureModel("neox-parallel")
        try editConfig(neox) { $0["rotary_pct"] = -1e300; $0["rope_parameters"] = nil }
        #expect(throws: HoneError.invalidConfig(path: neox.appendingPathComponent("config.json").path,
                                                message: "'rotary_pct' must be between 0 and 1, not -1e+300")) {
            try LoadedModel.open(neox.path)
        }
        // Rope scaling factors that make every logit NaN (perplexity printed "nan" and exited 0).
        for (parameters, message) in [
            (["rope_type": "linear", "factor": 0.0] as [String: Any], "the rope scaling factor 0.0 must be positive"),
            (["rope_type": "dynamic", "factor": -3.0], "the rope scaling factor -3.0 must be positive"),
            (["rope_type": "llama3", "factor": 8.0, "low_freq_factor": 0.0, "high_freq_factor": 4.0,
              "original_max_position_embeddings": 8192], "the rope scaling low_freq_factor 0.0 must be positive"),
            (["rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
              "original_max_position_embeddings": 0], "the rope scaling original_max_position_embeddings 0 must be positive"),
        ] {
            try editConfig(directory) { $0["rope_parameters"] = parameters.merging(["rope_theta": 10000.0]) { a, _ in a } }
            #expect(throws: HoneError.invalidConfig(path: config, message: message)) { try LoadedModel.open(directory.path) }
        }
        try editConfig(directory) { $0["rope_parameters"] = ["rope_type": "llama3", "rope_theta": 10000.0, "factor": 8.0, "low_freq_factor": 1.0,
                                                            "high_freq_factor": 4.0, "original_max_position_embeddings": 8192] }
        _ = try LoadedModel.open(directory.path)
        // Found by the gguf-model fuzzer: llama.rope.dimension_count 27 with 16-feature heads sent RoPE past each
        // head (a heap overflow under AddressSanitizer).
        let gguf = Repository.fixture("fuzz-regressions/gguf-model/rope-dimension-past-the-head")
        #expect(throws: HoneError.invalidConfig(path: gguf, message: "the rotary dimension 27 must be even and at most the head dimension 16")) {
            try LoadedModel.open(gguf)
        }
        // Also found by it: llama.block_count 67,108,864 in a file of 12 tensors made the builder reserve 36 GB.
        let layers = Repository.fixture("fuzz-regressions/gguf-model/layer-count-beyond-the-tensors")
        #expect(throws: HoneError.invalidConfig(path: layers, message: "the model declares 67108864 layers but has only 12 tensors")) {
            try LoadedModel.open(layers)
        }
    }

    /// Special token ids that are no token of the model: a negative one means none (transformers never matches it),
    /// one past the vocabulary is dropped as llama.cpp drops it. `hone generate` trapped making an eos id of 10^11
    /// an Int32.
    @Test func specialTokenIDsOutsideTheVocabulary() throws {
        let directory = try copyFixtureModel("llama-gqa")
        try editConfig(directory) { $0["eos_token_id"] = [99_999_999_999, 2, 256]; $0["pad_token_id"] = -1; $0["bos_token_id"] = 1_000_000 }
        var config = try LoadedModel.open(directory.path).config
        #expect(config.eosTokenIDs == [2] && config.padTokenID == nil)
        #expect(config.bosTokenID == 1, "generation_config.json's bos replaces the dropped one")
        try editConfig(directory, file: "generation_config.json") { $0["eos_token_id"] = [255, 99_999_999_999]; $0["bos_token_id"] = -1 }
        config = try LoadedModel.open(directory.path).config
        #expect(config.eosTokenIDs == [255] && config.bosTokenID == nil)
        let generator = Generator(model: try LoadedModel.open(directory.path).model,
                                  tokenizer: try TokenizerLoader.load(directory: Repository.fixture("tokenizers/spm-bpe")))
        #expect(generator.endOfSequenceIDs.contains(255))
    }

    /// A size GGUF stores in 32 bits is refused when it does not fit, instead of being cut to its low bits
    /// (a context of 10^12 became 3,567,587,328 in the converted file).
    @Test func convertRefusesSizesPastGGUFsIntegers() throws {
        let directory = try copyFixtureModel("llama-gqa")
        try editConfig(directory) { $0["max_position_embeddings"] = 1_000_000_000_000 }
        let output = directory.appendingPathComponent("out.gguf").path
        #expect(throws: HoneError.invalidConfig(path: directory.appendingPathComponent("config.json").path,
                                                message: "1000000000000 does not fit GGUF's 32-bit llama.context_length")) {
            try GGUFExport.write(input: directory.path, output: output, scheme: .f32)
        }
        #expect(!FileManager.default.fileExists(atPath: output))
    }

    /// A reward adapter whose saved score head is not the model's shape: `hone reward` crashed (the head's size
    /// precondition), and a merge wrote a head the merged model could not use.
    @Test func rewardAdapterScoreHeadOfAnotherShape() throws {
        let adapter = try makeTemporaryDirectory().appendingPathComponent("rm_adapter")
        try FileManager.default.copyItem(atPath: Repository.fixture("reward/rm_adapter"), toPath: adapter.path)
        let weights = adapter.appendingPathComponent("adapter_model.safetensors").path
        let entries = try SafetensorsFile(path: weights).entries().map { entry in
            entry.name == "base_model.model.score.weight"
                ? SafetensorsEntry(name: entry.name, dtype: "F32", shape: [1, 8], bytes: Data(count: 32)) : entry
        }
        try SafetensorsWriter.write(entries, to: weights)
        let message = "the adapter's score head is [1, 8]; the model needs [1, 64]"
        let classifier = try LoadedModel.open(Repository.fixture("reward/models/llama-seqcls"))
        _ = try classifier.attachAdapter(directory: adapter.path)
        #expect(throws: HoneError.invalidArgument(message)) { try RewardScorer(loaded: classifier) }
        let base = try LoadedModel.open(Repository.fixture("models/llama-gqa"))
        let (adapters, _) = try PEFTAdapter.load(directory: adapter.path, for: base.model)
        let output = try makeTemporaryDirectory().appendingPathComponent("merged").path
        #expect(throws: HoneError.invalidArgument(message)) {
            try AdapterMerge.writeHuggingFace(base: base, adapters: adapters, to: output, force: true)
        }
        #expect(!FileManager.default.fileExists(atPath: output))
    }

    /// adapter_config.json values that are present but unusable are named, not replaced by a default
    /// (`lora_alpha: "x"` used to merge with alpha = r; `r: 0` was reported as a missing key).
    @Test func adapterConfigValues() throws {
        let model = try LoadedModel.open(Repository.fixture("eval/tiny-llama"))
        for (key, value, message) in [("r", 0 as Any, "'r' must be a positive integer, not 0"),
                                      ("r", -4, "'r' must be a positive integer, not -4"),
                                      ("r", "4", "'r' must be a positive integer, not 4"),
                                      ("lora_alpha", "x", "'lora_alpha' must be a finite number, not x"),
                                      ("lora_dropout", [0.1], "'lora_dropout' must be a finite number, not [0.1]")] {
            let directory = try makeTemporaryDirectory().appendingPathComponent("adapter")
            try FileManager.default.copyItem(atPath: Repository.fixture("eval/tiny-llama-adapter"), toPath: directory.path)
            try editConfig(directory, file: "adapter_config.json") { $0[key] = value }
            let path = directory.appendingPathComponent("adapter_config.json").path
            #expect(throws: HoneError.invalidConfig(path: path, message: message), "\(key) \(value)") {
                try PEFTAdapter.load(directory: directory.path, for: model.model)
            }
        }
    }

    /// An adapter factor holding a NaN is refused at load, naming the tensor: `hone merge` wrote NaN weights and
    /// reported "100.0% of the adapter's change survives rounding".
    @Test func adapterFactorHoldingANaN() throws {
        let name = "base_model.model.model.layers.0.mlp.down_proj.lora_B.weight"
        let directory = try poisonedCopy(of: Repository.fixture("eval/tiny-llama-adapter"), tensor: name, index: 3,
                                         file: "adapter_model.safetensors")
        let model = try LoadedModel.open(Repository.fixture("eval/tiny-llama"))
        let path = directory.appendingPathComponent("adapter_model.safetensors").path
        #expect(throws: HoneError.malformedFile(path: path, message: "tensor '\(name)' holds nan at index 3")) {
            try PEFTAdapter.load(directory: directory.path, for: model.model)
        }
        let output = try makeTemporaryDirectory().appendingPathComponent("merged").path
        let result = try runProcess(Repository.honeExecutable, ["merge", "--base-model", Repository.fixture("eval/tiny-llama"),
                                                                "--adapter", directory.path, "--output-dir", output])
        #expect(result.status == 1)
        #expect(result.stderr.contains("holds nan at index 3"), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: output))
    }

    /// A NaN weight is not rounded into a new file as if it were a weight: quantize and convert stop, naming it.
    @Test func quantizeAndConvertStopOnANaNWeight() throws {
        let model = try NonFiniteTrainingTests.poisonedModel("model.layers.1.mlp.down_proj.weight")
        let directory = try makeTemporaryDirectory()
        for arguments in [["quantize", model.path, directory.path + "/q8.gguf", "--type", "q8_0"],
                          ["quantize", model.path, directory.path + "/q4km.gguf", "--type", "q4_k_m"],
                          ["convert", model.path, directory.path + "/f16.gguf", "--type", "f16"]] {
            let result = try runProcess(Repository.honeExecutable, arguments)
            #expect(result.status == 1, "\(arguments)")
            #expect(result.stderr.split(separator: "\n").last == "hone: error: stopped: tensor 'model.layers.1.mlp.down_proj.weight' holds nan at row 0, column 0; nothing was written",
                    "\(arguments): \(result.stderr)")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path).isEmpty)
    }

    /// A base weight holding a NaN where an adapter changes it: the merge stops before writing, for both outputs.
    @Test func mergeOntoANaNBaseWeight() throws {
        let name = "model.layers.0.mlp.down_proj.weight"
        let base = try poisonedCopy(of: Repository.fixture("eval/tiny-llama"), tensor: name, index: 2)
        for format in ["safetensors", "gguf"] {
            let output = try makeTemporaryDirectory().appendingPathComponent("merged").path
            let result = try runProcess(Repository.honeExecutable, ["merge", "--base-model", base.path, "--adapter",
                                                                    Repository.fixture("eval/tiny-llama-adapter"), "--output-dir", output,
                                                                    "--format", format])
            #expect(result.status == 1, "\(format)")
            #expect(result.stderr.contains("merge stopped: the merged weight '\(name)' holds nan at index 2; nothing was written"),
                    "\(format): \(result.stderr)")
            // (--format gguf makes the output directory first; nothing is written into it.)
            #expect(((try? FileManager.default.contentsOfDirectory(atPath: output)) ?? []).isEmpty, "\(format)")
        }
    }

    @Test func tensorOfWrongShape() throws {
        let directory = try copyFixtureModel("llama-gqa")
        try rewriteWeights(directory) { entries in
            entries.map { entry in
                guard entry.name == "model.layers.0.self_attn.k_proj.weight" else { return entry }
                // Same bytes, shape transposed: a classic conversion mistake.
                return SafetensorsEntry(name: entry.name, dtype: entry.dtype, shape: entry.shape.reversed(), bytes: entry.bytes)
            }
        }
        let path = directory.appendingPathComponent("model.safetensors").path
        #expect(throws: HoneError.tensorShape(name: "model.layers.0.self_attn.k_proj.weight", expected: [32, 64], actual: [64, 32], path: path)) {
            try LoadedModel.open(directory.path)
        }
    }

    @Test func safetensorsHeaderPointsPastTheEnd() throws {
        let directory = try copyFixtureModel("llama-gqa")
        let path = directory.appendingPathComponent("model.safetensors").path
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        try data.prefix(data.count - 100).write(to: URL(fileURLWithPath: path))
        do {
            _ = try LoadedModel.open(directory.path)
            Issue.record("a truncated safetensors file opened")
        } catch let error as HoneError {
            guard case .malformedFile(let file, let message) = error else { Issue.record("wrong error \(error)"); return }
            #expect(file == path)
            #expect(message.contains("points past the end"))
        }
    }

    @Test func safetensorsHeaderLengthBeyondFile() throws {
        let directory = try makeTemporaryDirectory()
        let path = directory.appendingPathComponent("model.safetensors").path
        var bytes = Data([0xFF, 0xFF, 0, 0, 0, 0, 0, 0])
        bytes.append(Data("{}".utf8))
        try bytes.write(to: URL(fileURLWithPath: path))
        #expect(throws: HoneError.self) { try SafetensorsFile(path: path) }
    }

    /// A zero dimension makes a tensor empty, but the other dimensions must still fit together: a row length or a
    /// product in another order would overflow (found by the GGUF fuzzer: [2^40, 0, 2^40, 2^32]).
    @Test func zeroDimensionDoesNotHideAnOverflowingShape() throws {
        #expect(TensorView.checkedElementCount([1 << 40, 0, 1 << 40, 1 << 32]) == nil)
        #expect(TensorView.checkedElementCount([0, 1 << 31, 1 << 31], bytesPerElement: 4) == nil)
        #expect(TensorView.checkedElementCount([0, 1 << 30, 1 << 30], bytesPerElement: 4) == 0)
        #expect(TensorView.checkedElementCount([3, 4], bytesPerElement: 4) == 12)
        #expect(TensorView.checkedElementCount([3, -4]) == nil)
        #expect(TensorView.checkedElementCount([]) == 1)

        let path = try makeTemporaryDirectory().appendingPathComponent("model.safetensors").path
        let header = Data(#"{"w":{"dtype":"F32","shape":[0,1099511627776,1099511627776],"data_offsets":[0,0]}}"#.utf8)
        var bytes = withUnsafeBytes(of: UInt64(header.count).littleEndian) { Data($0) }
        bytes.append(header)
        try bytes.write(to: URL(fileURLWithPath: path))
        #expect(throws: HoneError.malformedFile(path: path, message: "tensor 'w' has an impossible shape [0, 1099511627776, 1099511627776] (too many elements)")) {
            try SafetensorsFile(path: path)
        }
        let gguf = Repository.fixture("fuzz-regressions/gguf/zero-dimension-hides-overflow")
        #expect(throws: HoneError.malformedFile(path: gguf, message: "tensor 't' has an impossible shape [4294967295, 1099511627775, 0, 1099511627775] (too many elements)")) {
            try GGUFFile(path: gguf)
        }
    }

    @Test(arguments: [0.5, 0.05, 0.001])
    func truncatedGGUF(fraction: Double) throws {
        let source = Repository.fixture("gguf/llama-gqa-f32.gguf")
        let data = try Data(contentsOf: URL(fileURLWithPath: source))
        let path = try makeTemporaryDirectory().appendingPathComponent("truncated.gguf").path
        try data.prefix(Int(Double(data.count) * fraction)).write(to: URL(fileURLWithPath: path))
        do {
            _ = try LoadedModel.open(path)
            Issue.record("a truncated GGUF opened")
        } catch let error as HoneError {
            guard case .malformedFile(let file, let message) = error else { Issue.record("wrong error \(error)"); return }
            #expect(file == path)
            #expect(message.contains("truncated") || message.contains("magic"), "\(message)")
        }
    }

    @Test func notAGGUF() throws {
        let path = try makeTemporaryDirectory().appendingPathComponent("text.gguf").path
        try Data("hello world, not a model".utf8).write(to: URL(fileURLWithPath: path))
        #expect(throws: HoneError.malformedFile(path: path, message: "not a GGUF file (bad magic)")) {
            try LoadedModel.open(path)
        }
    }

    /// A tokenizer.json whose ids leave a vast range unused (a lone id of 10^17 or 2^31 − 1) is refused in one line:
    /// the tokenizers size id-indexed tables by the largest id (found by the tokenizer-json fuzz target: an
    /// allocation of 10^18 bytes). A few holes still load.
    @Test(arguments: [("spm-bpe", "100000000000000000"), ("spm-bpe", "2147483647"), ("gpt2-bpe", "2147483647")])
    func tokenIDsFarBeyondTheVocabulary(fixture: String, id: String) throws {
        let original = try String(contentsOfFile: Repository.fixture("tokenizers/\(fixture)/tokenizer.json"), encoding: .utf8)
        let directory = try makeTemporaryDirectory()
        func write(_ extraID: String) throws -> String {
            let path = directory.appendingPathComponent("tokenizer-\(extraID).json").path
            let text = original.replacingOccurrences(of: "\"vocab\": {", with: "\"vocab\": {\"far-away\": \(extraID), ")
            #expect(text != original, "the fixture's vocab was not found")
            try Data(text.utf8).write(to: URL(fileURLWithPath: path))
            return path
        }
        let path = try write(id)
        do {
            _ = try TokenizerLoader.load(tokenizerJSON: path, tokenizerConfig: nil)
            Issue.record("loaded a vocabulary with token id \(id)")
        } catch let error as HoneError {
            #expect(error.description.hasPrefix(path + ": "), "\(error)")
            #expect(error.description.contains("token id \(id)"), "\(error)")
            #expect(!error.description.contains("\n"))
        }
        // The converter reads the same ids (HF → GGUF).
        #expect(throws: HoneError.self) { try GGUFVocabulary.fromByteLevelJSON(ByteLevelBPETokenizer.readJSONObject(path), path: path) }
        // Ten unused ids load.
        let holes = try write("1010")
        #expect(try TokenizerLoader.load(tokenizerJSON: holes, tokenizerConfig: nil).vocabularySize == 1011)
    }

    @Test func tokenOutsideVocabulary() throws {
        let loaded = try LoadedModel.open(Repository.fixture("models/llama-gqa"))
        let vocabulary = loaded.config.vocabularySize
        #expect(throws: HoneError.tokenOutOfRange(token: vocabulary, vocabularySize: vocabulary, location: "sequence 0")) {
            try loaded.model.forward([SequenceInput(tokens: [1, Int32(vocabulary)], cache: loaded.model.makeCache())])
        }
        let directory = try makeTemporaryDirectory()
        let input = directory.appendingPathComponent("rows.jsonl").path
        try Data("{\"tokens\": [1, 2]}\n{\"tokens\": [1, -4]}\n".utf8).write(to: URL(fileURLWithPath: input))
        #expect(throws: HoneError.tokenOutOfRange(token: -4, vocabularySize: vocabulary, location: "\(input):2")) {
            try tokenRows(from: readJSONLines(path: input), path: input, vocabularySize: vocabulary)
        }
    }

    @Test(arguments: [
        ("{\"tokens\": [1, 2]}\n{\"tokens\": [1, 2\n", 2, "not valid JSON"),
        ("[1, 2, 3]\n", 1, "expected a JSON object"),
        ("{\"tokens\": [1, 2]}\n\n{\"ids\": [1]}\n", 3, "expected a \"tokens\" array of integers or a \"text\" string"),
        ("{\"tokens\": [1, 2.5]}\n", 1, "\"tokens\" must hold integers"),
        ("{\"tokens\": [1, true]}\n", 1, "\"tokens\" must hold integers"),
    ])
    func malformedJSONLines(text: String, line: Int, message: String) throws {
        let input = try makeTemporaryDirectory().appendingPathComponent("rows.jsonl").path
        try Data(text.utf8).write(to: URL(fileURLWithPath: input))
        #expect(throws: HoneError.malformedRecord(path: input, line: line, message: message)) {
            try tokenRows(from: readJSONLines(path: input), path: input, vocabularySize: 256)
        }
    }

    @Test func invalidUTF8InJSONLines() throws {
        let input = try makeTemporaryDirectory().appendingPathComponent("rows.jsonl").path
        var bytes = Data("{\"text\": \"fine\"}\n{\"text\": \"caf".utf8)
        bytes.append(contentsOf: [0xE9, 0x22, 0x7D, 0x0A])  // Latin-1 é: not UTF-8
        try bytes.write(to: URL(fileURLWithPath: input))
        #expect(throws: HoneError.malformedRecord(path: input, line: 2, message: "not valid UTF-8 text")) {
            try readJSONLines(path: input)
        }
    }

    // MARK: - GGUF tensor types

    /// A copy of llama-k256-q5_k.gguf with token_embd.weight's GGML type id replaced (the u32 after its name,
    /// dimension count and two u64 dimensions in the tensor infos).
    func ggufWithTensorType(_ id: UInt32) throws -> String {
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Repository.fixture("gguf/llama-k256-q5_k.gguf"))))
        let name = Array("token_embd.weight".utf8)
        let start = try #require((0...(bytes.count - name.count)).first { Array(bytes[$0..<($0 + name.count)]) == name })
        let typeOffset = start + name.count + 4 + 2 * 8
        #expect(bytes[typeOffset] == 13, "the fixture's token_embd is Q5_K")
        withUnsafeBytes(of: id.littleEndian) { for (k, byte) in $0.enumerated() { bytes[typeOffset + k] = byte } }
        let path = try makeTemporaryDirectory().appendingPathComponent("typed.gguf").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// One error line naming the tensor and the type id: for an id no GGML version defines, and for a known type
    /// Hone cannot compute with (Q8_K, the activation format).
    @Test(arguments: [(UInt32(99), "unknown GGML type id 99"), (UInt32(15), "unsupported dtype Q8_K (GGML type id 15)")])
    func ggufTensorTypeErrorsNameTensorAndId(id: UInt32, message: String) throws {
        let path = try ggufWithTensorType(id)
        do {
            _ = try LoadedModel.open(path)
            Issue.record("type \(id) loaded")
        } catch {
            let text = String(describing: error)
            #expect(text.contains("'token_embd.weight'") && text.contains(message), "\(text)")
            #expect(!text.contains("\n"), "one line: \(text)")
        }
    }
}
