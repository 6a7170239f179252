import Foundation

// MARK: - Entry points for fuzzing every parser
//
// One table of parsers, each fed arbitrary bytes, shared by the libFuzzer harness in tools/fuzz/ (a separate build
// with -sanitize=fuzzer,address) and by the regression test that replays every input kept under
// Tests/HoneKitTests/Fixtures/fuzz-regressions/<target>/. A target may throw a HoneError (bad input is refused with
// one line); anything else it does (a trap, an out-of-bounds read, a hang, another error type) is a finding.
//
// Most parsers take paths, so a target writes its input under `FuzzContext.scratch` with the name the parser
// expects. Readers from other branches (KTO, reward-model pairs, the server's request bodies) add one entry each to
// `FuzzTargets.all`.

/// What a target needs besides its input: a scratch directory it owns and the repository (for fixed companions
/// such as the small model an adapter is checked against).
public final class FuzzContext: @unchecked Sendable {
    public let scratch: String
    public let repositoryRoot: String
    private var models: [String: LoadedModel] = [:]

    public init(scratch: String, repositoryRoot: String) throws {
        self.scratch = scratch
        self.repositoryRoot = repositoryRoot
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
    }

    /// `name` inside the scratch directory.
    public func path(_ name: String) -> String { (scratch as NSString).appendingPathComponent(name) }

    /// Writes `data` to `name` in the scratch directory (replacing what a previous input left) and returns its path.
    @discardableResult
    public func write(_ data: Data, to name: String) throws -> String {
        let path = path(name)
        guard FileManager.default.createFile(atPath: path, contents: data) else {
            throw HoneError.io(path: path, message: "cannot write fuzz input")
        }
        return path
    }

    /// A file of the repository (fixtures), copied into the scratch directory under `name` once.
    func copyFixture(_ relative: String, to name: String) throws {
        let destination = path(name)
        if FileManager.default.fileExists(atPath: destination) { return }
        try FileManager.default.copyItem(atPath: (repositoryRoot as NSString).appendingPathComponent(relative), toPath: destination)
    }

    /// A fixture model, opened once per process.
    func model(_ relative: String) throws -> LoadedModel {
        if let model = models[relative] { return model }
        let model = try LoadedModel.open((repositoryRoot as NSString).appendingPathComponent(relative))
        models[relative] = model
        return model
    }
}

/// One parser under fuzzing.
public struct FuzzTarget: Sendable {
    public let name: String
    /// What the input is (for `tools/fuzz/run --list` and failures).
    public let input: String
    let body: @Sendable (Data, FuzzContext) throws -> Void

    /// A target defined outside HoneKit (the server's request bodies live in HoneServe).
    public init(name: String, input: String, body: @escaping @Sendable (Data, FuzzContext) throws -> Void) {
        self.name = name
        self.input = input
        self.body = body
    }

    /// Runs the parser on `data`; a HoneError means the input was refused properly.
    public func run(_ data: Data, in context: FuzzContext) throws { try body(data, context) }
}

public enum FuzzTargets {
    /// A fixed text that exercises spaces, newlines, digits, non-ASCII and special-token spellings.
    static let sampleText = "Hello world!\n  12345 héllo 世界 🙂 <s></s><|im_end|>\t end"

    static let sampleMessages: [JinjaValue] = [
        ["role": "system", "content": "Be brief."],
        ["role": "user", "content": "Hi there"],
        ["role": "assistant", "content": "Hello! How can I help?"],
        ["role": "user", "content": "Tell me a joke."],
    ]

    public static let all: [FuzzTarget] = [
        FuzzTarget(name: "safetensors", input: "a .safetensors file", body: safetensors),
        FuzzTarget(name: "safetensors-index", input: "model.safetensors.index.json (shards fixed)", body: safetensorsIndex),
        FuzzTarget(name: "gguf", input: "a .gguf file (header, metadata, tensor table, rows of every type)", body: gguf),
        FuzzTarget(name: "gguf-tokenizer", input: "a .gguf file whose tokenizer.ggml.* metadata is loaded", body: ggufTokenizer),
        FuzzTarget(name: "gguf-model", input: "a GGUF opened as a model and run on two tokens", body: ggufModel),
        FuzzTarget(name: "tokenizer-json", input: "tokenizer.json", body: tokenizerJSON),
        FuzzTarget(name: "tokenizer-model", input: "tokenizer.model (SentencePiece protobuf)", body: tokenizerModel),
        FuzzTarget(name: "jinja", input: "a Jinja chat template (parsed, then rendered with fixed messages)", body: jinja),
        FuzzTarget(name: "prompt-template", input: "a prompt template JSON file", body: promptTemplate),
        FuzzTarget(name: "model-config", input: "config.json, then the same bytes as generation_config.json", body: modelConfig),
        FuzzTarget(name: "peft-config", input: "adapter_config.json (weights and model fixed)", body: peftConfig),
        FuzzTarget(name: "peft-weights", input: "adapter_model.safetensors (config and model fixed)", body: peftWeights),
        FuzzTarget(name: "json-records", input: "a JSON array or JSON Lines data file, gzip or not", body: jsonRecords),
        FuzzTarget(name: "alpaca", input: "Alpaca instruction data", body: alpaca),
        FuzzTarget(name: "dpo", input: "DPO pairs (TRL layout or raw HH-RLHF dialogues)", body: dpo),
        FuzzTarget(name: "cut", input: "CUT judgments (and the raw judgment schemas)", body: cut),
        FuzzTarget(name: "pro", input: "PRO rankings", body: pro),
        FuzzTarget(name: "hh-rlhf", input: "raw HH-RLHF chosen/rejected dialogues, converted", body: hhRLHF),
        FuzzTarget(name: "kto", input: "KTO data (unpaired {prompt, completion, label} or pairs to split)", body: kto),
        FuzzTarget(name: "reward-model", input: "reward-model pairs with margins or Llama 2 ratings", body: rewardModel),
        // The server's request bodies: `ServeFuzzTargets` in HoneServe (HoneKit does not depend on the server).
    ]

    public static func named(_ name: String) -> FuzzTarget? { all.first { $0.name == name } }

    // MARK: - Weights

    static func safetensors(_ data: Data, _ context: FuzzContext) throws {
        let file = try SafetensorsFile(path: context.write(data, to: "fuzz.safetensors"))
        for tensor in file.tensors.values { touch(tensor) }
        _ = file.entries()
    }

    static func safetensorsIndex(_ data: Data, _ context: FuzzContext) throws {
        try context.copyFixture("Tests/HoneKitTests/Fixtures/models/llama-gqa-sharded/model-00001-of-00003.safetensors", to: "model-00001-of-00003.safetensors")
        try context.copyFixture("Tests/HoneKitTests/Fixtures/models/llama-gqa-sharded/model-00002-of-00003.safetensors", to: "model-00002-of-00003.safetensors")
        try context.copyFixture("Tests/HoneKitTests/Fixtures/models/llama-gqa-sharded/model-00003-of-00003.safetensors", to: "model-00003-of-00003.safetensors")
        try context.write(data, to: "model.safetensors.index.json")
        let store = try SafetensorsStore(directory: context.scratch)
        for name in store.tensorNames { touch(try store.tensor(name)) }
    }

    static func gguf(_ data: Data, _ context: FuzzContext) throws {
        let file = try GGUFFile(path: context.write(data, to: "fuzz.gguf"))
        for info in file.tensorInfos {
            guard let view = try? file.tensorView(info) else { continue }
            touch(view)
        }
        _ = try? ModelConfig.fromGGUF(file)
        _ = try? TokenizerLoader.load(gguf: file)
    }

    /// Metadata that disagrees with the tensors (sizes, head counts, vocabulary, rope settings) must be refused
    /// when the model is built, before a kernel reads past a weight: the class of GGUF bugs llama.cpp keeps fixing.
    static func ggufModel(_ data: Data, _ context: FuzzContext) throws {
        let threads = Runtime.threads
        Runtime.setThreads(1)  // one core per fuzzer; the replaying test process gets its setting back
        defer { Runtime.setThreads(threads) }
        let loaded = try LoadedModel.open(context.write(data, to: "model.gguf"))
        let vocabulary = loaded.model.config.vocabularySize
        guard vocabulary > 0 else { return }
        let tokens: [Int32] = [0, Int32(min(1, vocabulary - 1))]
        let hidden = try loaded.model.forward([SequenceInput(tokens: tokens, cache: loaded.model.makeCache())])
        let logits = UnsafeMutablePointer<Float>.allocate(capacity: hidden.rows * vocabulary)
        defer { logits.deallocate() }
        loaded.model.projectToVocabulary(hidden.values.pointer, rows: hidden.rows, into: logits)
    }

    static func ggufTokenizer(_ data: Data, _ context: FuzzContext) throws {
        let file = try GGUFFile(path: context.write(data, to: "fuzz.gguf"))
        exercise(try TokenizerLoader.load(gguf: file))
    }

    /// Reads the first row (or the first few thousand values) of a tensor, through the same conversion the model uses.
    static func touch(_ tensor: TensorView) {
        let block = tensor.dtype.blockSize
        let count = min(tensor.elementCount, max(block, 4096 / block * block)) / block * block
        guard count > 0 else { return }
        let buffer = UnsafeMutablePointer<Float>.allocate(capacity: count)
        defer { buffer.deallocate() }
        tensor.convert(offset: 0, count: count, into: buffer)
    }

    // MARK: - Tokenizers

    static func tokenizerJSON(_ data: Data, _ context: FuzzContext) throws {
        exercise(try TokenizerLoader.load(tokenizerJSON: context.write(data, to: "tokenizer.json"), tokenizerConfig: nil))
    }

    static func tokenizerModel(_ data: Data, _ context: FuzzContext) throws {
        exercise(try SentencePieceTokenizer.load(modelFile: context.write(data, to: "tokenizer.model"), tokenizerConfig: nil))
    }

    /// Encodes and decodes a fixed text, and decodes the first ids of the vocabulary one by one.
    static func exercise(_ tokenizer: Tokenizer) {
        for parseSpecial in [false, true] {
            let ids = tokenizer.encode(sampleText, addSpecialTokens: true, parseSpecial: parseSpecial)
            _ = tokenizer.decode(ids, skipSpecialTokens: false)
            _ = tokenizer.decode(ids, skipSpecialTokens: true)
        }
        let firstIDs = (0..<Int32(min(tokenizer.vocabularySize, 300))).map { $0 }
        _ = tokenizer.decode(firstIDs, skipSpecialTokens: false)
        for id in firstIDs.prefix(64) {
            _ = tokenizer.tokenBytes(id, includeSpecial: true)
            if let piece = tokenizer.piece(for: id) { _ = tokenizer.id(forPiece: piece) }
        }
        // Ids outside the vocabulary must be refused or skipped, never read out of bounds.
        _ = tokenizer.piece(for: Int32(tokenizer.vocabularySize))
        _ = tokenizer.piece(for: -1)
    }

    // MARK: - Templates

    static func jinja(_ data: Data, _ context: FuzzContext) throws {
        let template = try ChatTemplate(source: String(decoding: data, as: UTF8.self), bosToken: "<s>", eosToken: "</s>",
                                        origin: "fuzz.jinja")
        _ = try template.render(messages: sampleMessages, addGenerationPrompt: true)
        _ = try template.render(messages: Array(sampleMessages.prefix(2)), addGenerationPrompt: false)
    }

    static func promptTemplate(_ data: Data, _ context: FuzzContext) throws {
        let template = try PromptTemplate.load(path: context.write(data, to: "template.json"))
        _ = try template.render(messages: sampleMessages, addGenerationPrompt: true, origin: "fuzz")
    }

    // MARK: - Configs

    static func modelConfig(_ data: Data, _ context: FuzzContext) throws {
        let path = try context.write(data, to: "config.json")
        var config = (try? ModelConfig.fromHuggingFace(path: path))
            ?? ModelConfig(modelType: "llama", vocabularySize: 8, hiddenSize: 8, intermediateSize: 8, layerCount: 1,
                           headCount: 1, keyValueHeadCount: 1, headDimension: 8, maxPositionEmbeddings: 8,
                           normEpsilon: 1e-5, tieWordEmbeddings: false)
        try config.applyGenerationConfig(path: context.write(data, to: "generation_config.json"))
    }

    static func peftConfig(_ data: Data, _ context: FuzzContext) throws {
        let directory = context.path("adapter")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try context.copyFixture("Tests/HoneKitTests/Fixtures/lora/llama-gqa/adapter/adapter_model.safetensors", to: "adapter/adapter_model.safetensors")
        try context.write(data, to: "adapter/adapter_config.json")
        _ = try PEFTAdapter.load(directory: directory, for: context.model("Tests/HoneKitTests/Fixtures/models/llama-gqa").model)
    }

    static func peftWeights(_ data: Data, _ context: FuzzContext) throws {
        let directory = context.path("adapter-weights")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try context.copyFixture("Tests/HoneKitTests/Fixtures/lora/llama-gqa/adapter/adapter_config.json", to: "adapter-weights/adapter_config.json")
        try context.write(data, to: "adapter-weights/adapter_model.safetensors")
        _ = try PEFTAdapter.load(directory: directory, for: context.model("Tests/HoneKitTests/Fixtures/models/llama-gqa").model)
    }

    // MARK: - Training data

    static func jsonRecords(_ data: Data, _ context: FuzzContext) throws {
        let records = try readDataRecords(path: context.write(data, to: "records.jsonl"))
        for record in records {
            for key in record.object.keys.sorted().prefix(4) {
                _ = try? record.optionalString(key)
                _ = try? record.optionalNumber(key)
            }
        }
    }

    static func alpaca(_ data: Data, _ context: FuzzContext) throws {
        let path = try context.write(data, to: "alpaca.json")
        // `train sft` first asks whether the file is token ids (`input_ids` records), then reads it as Alpaca.
        _ = try? PretokenizedData.read(path: path, cutoffLength: 16, vocabularySize: 100)
        _ = try AlpacaData.read(path: path)
    }

    static func kto(_ data: Data, _ context: FuzzContext) throws {
        _ = try UnpairedPreferenceData.read(path: context.write(data, to: "kto.jsonl"))
    }

    static func rewardModel(_ data: Data, _ context: FuzzContext) throws {
        let path = try context.write(data, to: "rm.jsonl")
        for scale in RewardMarginScale.allCases { _ = try RewardData.read(path: path, scale: scale) }
    }

    static func dpo(_ data: Data, _ context: FuzzContext) throws {
        _ = try PreferenceData.read(path: context.write(data, to: "pairs.jsonl"))
    }

    static func cut(_ data: Data, _ context: FuzzContext) throws {
        let path = try context.write(data, to: "judgments.json")
        _ = try? JudgmentData.read(path: path)
        let records = try readDataRecords(path: path)
        for schema in JudgmentSchema.allCases {
            guard let conversion = try? JudgmentConversion.convert(records, schema: schema) else { continue }
            _ = conversion.trainingJSON()
            _ = conversion.summary(input: path, schema: schema, output: "out.json")
        }
    }

    static func pro(_ data: Data, _ context: FuzzContext) throws {
        let path = try context.write(data, to: "rankings.jsonl")
        _ = try? RankingData.read(path: path, rankingLength: 2)
        _ = try RankingData.read(path: path, rankingLength: nil)
    }

    static func hhRLHF(_ data: Data, _ context: FuzzContext) throws {
        let path = try context.write(data, to: "hh.jsonl")
        let conversion = try HHRLHFConversion.convert(readDataRecords(path: path))
        _ = conversion.dpoJSONL()
        _ = conversion.proJSONL(sourcePath: path)
        _ = conversion.summary(input: path, outputs: ["dpo.jsonl", "pro.jsonl"])
    }
}
