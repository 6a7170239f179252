import Foundation
import Testing
@testable import HoneKit

/// Log-probs of tiny random-weight models against transformers (fixtures from tools/oracle/make_fixtures.py).
@Suite struct GoldenLogprobTests {
    /// transformers computes in f32, and so does Hone; the differences are summation order only.
    static let f32Tolerance = 1e-4

    static let f32Models = [
        "llama-gqa", "llama-gqa-sharded", "llama-tied-llama3", "llama-linear-rope", "llama-dynamic-rope",
        "llama-attn-bias", "qwen2-bias", "mistral", "opt-preln", "opt-proj-postln", "hone-tiny",
        "neox-parallel", "neox-sequential", "qwen3-qknorm", "smollm3-nope", "granite-mult", "phi3-fused", "phi3-longrope",
        "qwen3-yarn", "gemma3-swa", "gemma3-legacy", "gemma2-softcap", "qwen3moe-experts", "qwen3moe-unnormalized",
        "mixtral-experts", "qwen2moe-shared", "olmo2-post", "olmo3-swa", "olmoe-experts",
        "gemma-geglu", "granitemoe-experts", "exaone4-hybrid", "exaone4-swa",
        "exaone4-dense",
    ]

    func score(_ modelPath: String, _ golden: GoldenFile, batchTokens: Int = 4096) throws -> [[Double]] {
        let loaded = try LoadedModel.open(modelPath)
        let scorer = Scorer(model: loaded.model, tokenBudget: batchTokens)
        return try scorer.score(golden.rows.map(\.tokens)).map { $0.map(Double.init) }
    }

    @Test(arguments: f32Models)
    func matchesTransformersInF32(name: String) throws {
        let golden = try GoldenFile(name: name)
        let scored = try score(golden.modelPath, golden)
        for (row, values) in zip(golden.rows, scored) {
            let difference = maxAbsDifference(values, row.logprobs)
            #expect(difference <= Self.f32Tolerance, "\(name), row of \(row.tokens.count) tokens: max |Δ| \(difference)")
        }
    }

    /// Each row alone, and all rows in one forward pass, give the same numbers (packing is exact up to
    /// summation order: the many-row path uses sgemm, the single-row path the matrix-vector kernel).
    @Test(arguments: ["llama-gqa", "opt-proj-postln", "qwen2-bias"])
    func batchingDoesNotChangeResults(name: String) throws {
        let golden = try GoldenFile(name: name)
        let together = try score(golden.modelPath, golden, batchTokens: 4096)
        let alone = try score(golden.modelPath, golden, batchTokens: 1)
        for (a, b) in zip(together, alone) { #expect(maxAbsDifference(a, b) <= 1e-5) }
    }

    /// f16 and bf16 weights: Hone computes in f32 on the stored values, so it must match transformers run in f32
    /// on the same rounded weights to the f32 bound. Against the original f32 model the bound is the rounding
    /// itself, which the oracle measured (max_abs_diff_vs_f32); we allow twice that plus the f32 tolerance.
    @Test(arguments: ["llama-gqa-f16", "llama-gqa-bf16"])
    func halfPrecisionWeights(name: String) throws {
        let golden = try GoldenFile(name: name)
        let scored = try score(golden.modelPath, golden)
        let roundingBound = 2 * (golden.maxAbsDiffVersusF32 ?? 0) + Self.f32Tolerance
        for (row, values) in zip(golden.rows, scored) {
            #expect(maxAbsDifference(values, row.logprobs) <= Self.f32Tolerance)
            if let original = row.originalLogprobs {
                #expect(maxAbsDifference(values, original) <= roundingBound)
            }
        }
    }

    /// A GGUF written the way llama.cpp's converter writes it (permuted Q/K, GGML rope) gives the HF numbers.
    @Test(arguments: [
        ("gguf/llama-gqa-f32.gguf", "llama-gqa"), ("gguf/llama-gqa-f16.gguf", "gguf-llama-gqa-f16"),
        ("gguf/qwen2-bias-f32.gguf", "qwen2-bias"), ("gguf/llama-tied-llama3-f32.gguf", "llama-tied-llama3"),
        ("gguf/qwen3-qknorm-f32.gguf", "qwen3-qknorm"), ("gguf/smollm3-nope-f32.gguf", "smollm3-nope"),
        ("gguf/granite-mult-f32.gguf", "granite-mult"), ("gguf/phi3-fused-f32.gguf", "phi3-fused"),
        ("gguf/phi3-longrope-f32.gguf", "phi3-longrope"), ("gguf/qwen3-yarn-f32.gguf", "qwen3-yarn"),
        ("gguf/gemma3-swa-f32.gguf", "gemma3-swa"), ("gguf/gemma2-softcap-f32.gguf", "gemma2-softcap"),
        ("gguf/qwen3moe-experts-f32.gguf", "qwen3moe-experts"), ("gguf/mixtral-experts-f32.gguf", "mixtral-experts"),
        ("gguf/qwen2moe-shared-f32.gguf", "qwen2moe-shared"), ("gguf/olmo2-post-f32.gguf", "olmo2-post"),
        ("gguf/olmo3-swa-f32.gguf", "olmo3-swa"), ("gguf/olmoe-experts-f32.gguf", "olmoe-experts"),
        ("gguf/gemma-geglu-f32.gguf", "gemma-geglu"), ("gguf/granitemoe-experts-f32.gguf", "granitemoe-experts"),
        ("gguf/exaone4-hybrid-f32.gguf", "exaone4-hybrid"), ("gguf/exaone4-dense-f32.gguf", "exaone4-dense"),
    ])
    func ggufMatchesHuggingFaceDirectory(file: String, name: String) throws {
        let golden = try GoldenFile(name: name)
        let scored = try score(Repository.fixture(file), golden)
        for (row, values) in zip(golden.rows, scored) {
            #expect(maxAbsDifference(values, row.logprobs) <= Self.f32Tolerance, "\(file)")
        }
    }

    /// Decoding with the KV cache (a prefill, then one token at a time) equals transformers' cached decoding.
    @Test(arguments: ["llama-gqa", "llama-tied-llama3", "qwen2-bias", "opt-preln", "opt-proj-postln", "neox-parallel",
                       "neox-sequential", "qwen3-qknorm", "smollm3-nope", "granite-mult", "phi3-fused", "phi3-longrope", "qwen3-yarn",
                       "gemma3-swa", "gemma3-legacy", "gemma2-softcap", "qwen3moe-experts", "qwen3moe-unnormalized",
                       "mixtral-experts", "qwen2moe-shared", "olmo2-post", "olmo3-swa", "olmoe-experts", "gemma-geglu",
                       "granitemoe-experts", "exaone4-hybrid", "exaone4-swa", "exaone4-dense"])
    func cachedDecodingMatches(name: String) throws {
        let golden = try GoldenFile(name: name)
        let incremental = try #require(golden.incremental)
        let loaded = try LoadedModel.open(golden.modelPath)
        let model = loaded.model
        let cache = model.makeCache()
        var logprobs: [Double] = []
        var position = 0
        let vocabulary = model.config.vocabularySize
        let logits = FloatBuffer(count: incremental.tokens.count * vocabulary)
        while position < incremental.tokens.count - 1 {
            let step = position == 0 ? incremental.prefill : 1
            let tokens = Array(incremental.tokens[position..<(position + step)])
            let hidden = try model.forward([SequenceInput(tokens: tokens, cache: cache)])
            model.projectToVocabulary(hidden.values.pointer, rows: hidden.rows, into: logits.pointer)
            for row in 0..<hidden.rows where position + row + 1 < incremental.tokens.count {
                let target = Int(incremental.tokens[position + row + 1])
                let values = Array(UnsafeBufferPointer(start: logits.pointer + row * vocabulary, count: vocabulary))
                let maximum = Double(values.max()!)
                let total = values.reduce(0.0) { $0 + exp(Double($1) - maximum) }
                logprobs.append(Double(values[target]) - maximum - log(total))
            }
            position += step
        }
        #expect(cache.length == incremental.tokens.count - 1)
        #expect(maxAbsDifference(logprobs, incremental.logprobs) <= Self.f32Tolerance)
    }

    /// forward(outputRows:) keeps the chosen rows of a full pass (Llama skips the last layer's projection and MLP
    /// for the others; OPT and GPT-NeoX select after the pass) and fills the caches the same way: the next token
    /// decoded on either cache gives the same numbers. No rows at all is allowed (a shared prefix).
    @Test(arguments: ["llama-gqa", "qwen2-bias", "llama-tied-llama3", "opt-preln", "neox-parallel", "qwen3-qknorm",
                      "smollm3-nope", "granite-mult", "phi3-fused", "phi3-longrope", "gemma3-swa",
                      "gemma2-softcap", "qwen3moe-experts", "mixtral-experts", "qwen2moe-shared", "olmo2-post",
                      "olmo3-swa", "olmoe-experts", "gemma-geglu", "granitemoe-experts",
                      "exaone4-hybrid"])
    func selectedRowsMatchTheFullPass(name: String) throws {
        let golden = try GoldenFile(name: name)
        let model = try LoadedModel.open(golden.modelPath).model
        let tokens = golden.rows.map(\.tokens).filter { $0.count > 3 }.prefix(2).map { Array($0.dropLast()) }
        try #require(tokens.count == 2)
        let total = tokens[0].count + tokens[1].count
        for selection in [[tokens[0].count - 1, total - 1], [0, 2, tokens[0].count, total - 1], []] {
            let fullCaches = tokens.map { _ in model.makeCache() }
            let keptCaches = tokens.map { _ in model.makeCache() }
            let full = try model.forward(zip(tokens, fullCaches).map { SequenceInput(tokens: $0, cache: $1) })
            let kept = try model.forward(zip(tokens, keptCaches).map { SequenceInput(tokens: $0, cache: $1) },
                                         outputRows: selection)
            #expect(kept.rows == selection.count && kept.width == full.width)
            let expected = selection.flatMap { row in
                Array(UnsafeBufferPointer(start: full.values.pointer + row * full.width, count: full.width)).map(Double.init)
            }
            let actual = Array(UnsafeBufferPointer(start: kept.values.pointer, count: kept.rows * kept.width)).map(Double.init)
            #expect(maxAbsDifference(actual, expected) <= 1e-5, "\(name) rows \(selection)")
            for (index, sequence) in tokens.enumerated() {
                #expect(keptCaches[index].length == sequence.count)
                let next = [golden.rows[index].tokens.last!]
                let a = try model.forward([SequenceInput(tokens: next, cache: fullCaches[index])])
                let b = try model.forward([SequenceInput(tokens: next, cache: keptCaches[index])])
                let difference = maxAbsDifference(
                    Array(UnsafeBufferPointer(start: a.values.pointer, count: a.width)).map(Double.init),
                    Array(UnsafeBufferPointer(start: b.values.pointer, count: b.width)).map(Double.init))
                #expect(difference <= 1e-5, "\(name) rows \(selection): next token after sequence \(index)")
            }
        }
    }
}
