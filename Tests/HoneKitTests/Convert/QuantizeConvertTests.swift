import Foundation
import HoneKernels
import Testing
@testable import HoneKit

// MARK: - Helpers

/// The checksum tools/oracle/make_quantize_fixtures.py records: sum over bytes of (i + 1) * byte, mod 2^64.
func weightedByteSum(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
    var sum: UInt64 = 0
    for (index, byte) in bytes.enumerated() { sum &+= UInt64(index + 1) &* UInt64(byte) }
    return sum
}

/// Log-probs of the golden rows of hone-tiny (tools/oracle/make_fixtures.py) scored by the model at `path`.
func honeTinyLogprobs(_ path: String) throws -> [[Double]] {
    let golden = try GoldenFile(name: "hone-tiny")
    let loaded = try LoadedModel.open(path)
    return try Scorer(model: loaded.model).score(golden.rows.map(\.tokens)).map { $0.map(Double.init) }
}

func deviations(_ a: [[Double]], _ b: [[Double]]) -> (max: Double, mean: Double) {
    let all = zip(a, b).flatMap { zip($0, $1).map { abs($0 - $1) } }
    return (all.max() ?? 0, all.reduce(0, +) / Double(max(all.count, 1)))
}

/// Hard strings for tokenizer round trips: the texts of the SentencePiece fixture's cases.
func hardStrings() throws -> [String] { try TokenizerFixture("spm-bpe").cases.map(\.text) }

// MARK: - Per-tensor types and bytes against llama-quantize

@Suite(.serialized) struct QuantizePlanTests {
    /// llama-quant.cpp's use_more_bits, worked out by hand: i < n/8, i >= 7n/8, or (i - n/8) % 3 == 2 (C remainder).
    @Test func moreBitsLayersFollowLlamaQuant() {
        func layers(_ n: Int) -> [Int] { (0..<n).filter { QuantizationPlanner.usesMoreBits(layer: $0, of: n) } }
        #expect(layers(8) == [0, 3, 6, 7])
        #expect(layers(22) == [0, 1, 4, 7, 10, 13, 16, 19, 20, 21])  // TinyLlama: 10 attn_v + 10 ffn_down in Q6_K
        #expect(layers(32) == [0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31])
        #expect(layers(4) == [2, 3])
    }

    /// TinyLlama's shapes: Q4_K_M gives 135 Q4_K, 21 Q6_K, 45 F32 (the counts of llama-quantize's
    /// tinyllama-Q4_K_M.gguf), token_embd Q4_K (untied), output Q6_K.
    @Test func tinyLlamaTable() throws {
        var tensors: [QuantizationPlanner.Tensor] = [
            .init(name: "output.weight", shape: [32000, 2048], type: .f16),
            .init(name: "output_norm.weight", shape: [2048], type: .f32),
            .init(name: "token_embd.weight", shape: [32000, 2048], type: .f16),
        ]
        for layer in 0..<22 {
            let shapes: [(String, [Int])] = [
                ("attn_k.weight", [256, 2048]), ("attn_norm.weight", [2048]), ("attn_output.weight", [2048, 2048]),
                ("attn_q.weight", [2048, 2048]), ("attn_v.weight", [256, 2048]), ("ffn_down.weight", [2048, 5632]),
                ("ffn_gate.weight", [5632, 2048]), ("ffn_norm.weight", [2048]), ("ffn_up.weight", [5632, 2048]),
            ]
            for (name, shape) in shapes {
                tensors.append(.init(name: "blk.\(layer).\(name)", shape: shape, type: shape.count == 1 ? .f32 : .f16))
            }
        }
        let choices = try QuantizationPlanner(scheme: .q4_K_M, layerCount: 22).choose(tensors)
        var counts: [DType: Int] = [:]
        for choice in choices { counts[choice.type, default: 0] += 1 }
        #expect(counts == [.q4_K: 135, .q6_K: 21, .f32: 45])
        let type = Dictionary(uniqueKeysWithValues: zip(tensors.map(\.name), choices.map(\.type)))
        #expect(type["output.weight"] == .q6_K && type["token_embd.weight"] == .q4_K)
        for layer in [0, 1, 4, 7, 10, 13, 16, 19, 20, 21] {
            #expect(type["blk.\(layer).attn_v.weight"] == .q6_K && type["blk.\(layer).ffn_down.weight"] == .q6_K)
        }
        #expect(type["blk.2.attn_v.weight"] == .q4_K && type["blk.2.ffn_down.weight"] == .q4_K)
        // Q4_0 and Q8_0: one type, output Q6_K (Q8_0 stays Q8_0).
        let q4 = try QuantizationPlanner(scheme: .q4_0, layerCount: 22).choose(tensors)
        #expect(q4[0].type == .q6_K && q4[2].type == .q4_0)
        let q8 = try QuantizationPlanner(scheme: .q8_0, layerCount: 22).choose(tensors)
        #expect(q8[0].type == .q8_0 && q8[2].type == .q8_0)
    }

    /// A 32-value type (Q8_0, Q4_0) on rows it cannot divide falls back to F16, as in llama.cpp (the bytes are
    /// checked against llama-quantize in `perTensorOptionsMatchLlamaQuantize`).
    @Test func rowsNoBlockDividesFallBackToF16() throws {
        let tensors = [QuantizationPlanner.Tensor(name: "blk.0.attn_q.weight", shape: [8, 40], type: .f32)]
        #expect(try QuantizationPlanner(scheme: .q8_0, layerCount: 1).choose(tensors) == [.init(type: .f16, fellBack: true)])
        // Q4_K → Q5_0 → (40 % 32 ≠ 0) F16.
        #expect(try QuantizationPlanner(scheme: .q4_K_M, layerCount: 1).choose(tensors).first?.type == .f16)
    }

    /// Q5_0 (llama.cpp's fallback for Q4_K; its bytes are checked against llama-quantize above): dequantizing gives
    /// d · (q - 16), every value within half a step of the input except where ggml clamps (the side opposite the
    /// block's extreme has 15 levels, not 16), and values on the grid come back exactly.
    @Test func q5_0RoundTrip() throws {
        var values = (0..<256).map { Float(sin(Double($0) * 0.37)) * 0.8 }
        values[5] = -1.6  // the block's extreme maps to -16 exactly: d = 0.1
        var blocks = [UInt8](repeating: 0, count: DType.q5_0.byteCount(elements: values.count))
        #expect(hk_quantize(Int32(DType.q5_0.ggmlType), values, &blocks, 1, 256) == 0)
        var restored = [Float](repeating: 0, count: 256)
        #expect(hk_dequantize_row(6, blocks, &restored, 256) == 0)
        for block in 0..<8 {
            let slice = values[(block * 32)..<(block * 32 + 32)]
            let extreme = slice.max { abs($0) < abs($1) }!
            let step = abs(extreme) / 16
            for index in slice.indices {
                let clamped = values[index].sign != extreme.sign && abs(values[index]) > 15.5 * step
                let bound = clamped ? abs(values[index]) - 15 * step : step / 2
                #expect(abs(restored[index] - values[index]) <= bound * 1.01 + 1e-6, "\(index)")
            }
        }
        let grid = (0..<32).map { Float($0 - 16) * 0.125 }  // d = 2 / 16 with -2 the extreme
        var gridBlocks = [UInt8](repeating: 0, count: 22)
        var gridBack = [Float](repeating: 0, count: 32)
        #expect(hk_quantize(6, grid, &gridBlocks, 1, 32) == 0 && hk_dequantize_row(6, gridBlocks, &gridBack, 32) == 0)
        #expect(gridBack == grid)
    }

    /// Rebuilds tools/oracle/make_quantize_fixtures.py's input GGUF (same LCG values, loader order).
    static func writeLCGInput(_ spec: [String: Any], seed: UInt32, to path: String) throws -> [(String, [Int])] {
        let (layers, hidden, heads, kvHeads) = (spec["layers"] as! Int, spec["hidden"] as! Int, spec["heads"] as! Int, spec["kv_heads"] as! Int)
        let (ffn, vocab, tied) = (spec["ffn"] as! Int, spec["vocab"] as! Int, spec["tied"] as! Bool)
        let kv = kvHeads * (hidden / heads)
        var layout: [(String, [Int])] = [("output_norm.weight", [hidden]), ("token_embd.weight", [vocab, hidden])]
        if !tied { layout.insert(("output.weight", [vocab, hidden]), at: 0) }
        // A mixture of experts (Mixtral's tensors): the router and one 3-D tensor per role instead of the MLP.
        let experts = spec["experts"] as? Int ?? 0
        let mlp: [(String, [Int])] = experts == 0
            ? [("ffn_down.weight", [hidden, ffn]), ("ffn_gate.weight", [ffn, hidden]), ("ffn_up.weight", [ffn, hidden])]
            : [("ffn_down_exps.weight", [experts, hidden, ffn]), ("ffn_gate_exps.weight", [experts, ffn, hidden]),
               ("ffn_gate_inp.weight", [experts, hidden]), ("ffn_up_exps.weight", [experts, ffn, hidden])]
        for layer in 0..<layers {
            let block: [(String, [Int])] = [
                ("attn_k.weight", [kv, hidden]), ("attn_norm.weight", [hidden]), ("attn_output.weight", [hidden, hidden]),
                ("attn_q.weight", [hidden, hidden]), ("attn_v.weight", [kv, hidden]), ("ffn_norm.weight", [hidden]),
            ] + mlp
            layout += block.sorted { $0.0 < $1.0 }.map { ("blk.\(layer).\($0.0)", $0.1) }
        }
        let writer = GGUFWriter()
        writer.add("general.architecture", string: "llama")
        writer.add("llama.block_count", uint32: UInt32(layers))
        writer.add("llama.context_length", uint32: 256)
        writer.add("llama.embedding_length", uint32: UInt32(hidden))
        writer.add("llama.feed_forward_length", uint32: UInt32(ffn))
        writer.add("llama.attention.head_count", uint32: UInt32(heads))
        writer.add("llama.attention.head_count_kv", uint32: UInt32(kvHeads))
        writer.add("llama.rope.freq_base", float32: 10000)
        writer.add("llama.attention.layer_norm_rms_epsilon", float32: 1e-5)
        if experts > 0 {
            writer.add("llama.expert_count", uint32: UInt32(experts))
            writer.add("llama.expert_used_count", uint32: UInt32(spec["experts_used"] as! Int))
        }
        writer.add("general.file_type", uint32: 0)
        writer.add("llama.vocab_size", uint32: UInt32(vocab))
        writer.add("llama.rope.dimension_count", uint32: UInt32(hidden / heads))
        writer.add("tokenizer.ggml.model", string: "none")
        var state = seed
        for (name, shape) in layout {
            var values = [Float](repeating: 0, count: shape.reduce(1, *))
            for index in values.indices {
                state = 1_664_525 &* state &+ 1_013_904_223
                values[index] = Float(Int(state >> 8) - (1 << 23)) / Float(1 << 28)
                if shape.count == 1 { values[index] += 1 }
            }
            let data = values.withUnsafeBytes { Data($0) }
            writer.add(tensor: GGUFWriter.TensorEntry(name: name, shape: shape, dtype: .f32) { data })
        }
        try writer.write(to: path)
        return layout
    }

    /// Hone's quantize writes, tensor for tensor, the types and bytes llama-quantize wrote for the same input
    /// (fixture: tools/oracle/make_quantize_fixtures.py, from /work/llama.cpp's llama-quantize).
    @Test(arguments: ["deep8", "tied2"])
    func sameTypesAndBytesAsLlamaQuantize(model: String) throws {
        try compareWithLlamaQuantize(fixtureFile: "llama-quantize.json", model: model)
    }

    /// The K mixes (q2_k, q3_k_s/m/l, q4_k_s, q5_k_s/m, iq4_xs): names, shapes, types, bytes and file size as
    /// llama-quantize wrote them (tools/oracle/make_quantize_k_fixtures.py): deep8 (2 heads per KV head, ffn_down rows
    /// of 320 falling back to Q4_0 / Q5_0), gqa4 (4 heads per KV head: the n_gqa rules) and moe8 (8 experts: the
    /// n_expert rules, 3-D expert tensors, the router kept F32).
    @Test(arguments: ["deep8", "gqa4", "moe8"])
    func kMixesMatchLlamaQuantize(model: String) throws {
        try compareWithLlamaQuantize(fixtureFile: "llama-quantize-k.json", model: model)
    }

    /// --type names: llama-quantize's aliases, and a refusal naming the reason for the types that need an
    /// importance matrix; fallbacks to formats of another part of Hone are named when missing.
    @Test func kSchemeNamesAndRefusals() throws {
        #expect(QuantizationScheme(name: "Q3_K") == .q3_K_M && QuantizationScheme(name: "q5_k") == .q5_K_M)
        #expect(QuantizationScheme(name: "q4_k_s") == .q4_K_S && QuantizationScheme(name: "IQ4_XS") == .iq4_xs)
        #expect(QuantizationScheme(name: "iq2_xxs") == nil)
        for name in ["iq2_xxs", "IQ1_S", "iq3_xxs", "q2_k_s"] {
            #expect(QuantizationScheme.refusal(name: name)?.contains("importance matrix") == true, "\(name)")
        }
        #expect(QuantizationScheme.refusal(name: "q7_k") == nil)
        let down = QuantizationPlanner.Tensor(name: "blk.0.ffn_down.weight", shape: [256, 320], type: .f32)
        let planner = QuantizationPlanner(scheme: .q5_K_S, layerCount: 1)
        if let q5_1 = DType(ggmlType: 7) {
            #expect(try planner.choose([down]) == [QuantizationPlanner.Choice(type: q5_1, fellBack: true)])
        } else {
            #expect(throws: HoneError.invalidArgument("tensor 'blk.0.ffn_down.weight' has rows of 320 values, not a multiple of 256: llama.cpp falls back to Q5_1, which this build of Hone cannot write")) {
                try planner.choose([down])
            }
        }
        #expect(try QuantizationPlanner(scheme: .q3_K_S, layerCount: 1).choose([down]) == [.init(type: .q4_0, fellBack: true)])
    }

    func compareWithLlamaQuantize(fixtureFile: String, model: String) throws {
        let fixture = try parseJSON(Data(contentsOf: URL(fileURLWithPath: Repository.fixture("quantize/\(fixtureFile)")))) as! [String: Any]
        let entry = (fixture["models"] as! [String: Any])[model] as! [String: Any]
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let input = directory.appendingPathComponent("\(model)-f32.gguf").path
        _ = try Self.writeLCGInput(entry["spec"] as! [String: Any], seed: UInt32(jsonInteger(fixture["seed"]!)!), to: input)
        // The rebuilt input is the oracle's input.
        let source = try GGUFFile(path: input)
        for (info, expected) in zip(source.tensorInfos, entry["input"] as! [[String: Any]]) {
            let bytes = UnsafeRawBufferPointer(start: source.file.bytes + source.dataOffset + info.offset, count: info.byteCount)
            #expect(info.name == expected["name"] as? String && String(weightedByteSum(bytes)) == expected["checksum"] as? String)
        }
        for (scheme, result) in entry["quantized"] as! [String: Any] {
            let output = directory.appendingPathComponent("\(model)-\(scheme).gguf").path
            _ = try GGUFExport.write(input: input, output: output, scheme: QuantizationScheme(name: scheme)!)
            try expectLlamaQuantizeFile(output, result as! [String: Any], label: "\(model) \(scheme)")
        }
    }

    /// The GGUF at `output` has the tensors (names, shapes, types, bytes) and the size of llama-quantize's file
    /// that `result` describes.
    func expectLlamaQuantizeFile(_ output: String, _ result: [String: Any], label: String) throws {
        let written = try GGUFFile(path: output)
        let expected = result["tensors"] as! [[String: Any]]
        #expect(written.tensorInfos.count == expected.count, "\(label)")
        var mismatches: [String] = []
        for (info, reference) in zip(written.tensorInfos, expected) {
            let bytes = UnsafeRawBufferPointer(start: written.file.bytes + written.dataOffset + info.offset, count: info.byteCount)
            let same = info.name == reference["name"] as? String && info.shape == (reference["shape"] as! [Any]).map { jsonInteger($0)! }
                && ggmlTypeName(info.ggmlType) == reference["type"] as? String
                && String(weightedByteSum(bytes)) == reference["checksum"] as? String
            if !same { mismatches.append("\(info.name) \(ggmlTypeName(info.ggmlType)) vs \(reference["name"]!) \(reference["type"]!)") }
        }
        #expect(mismatches.isEmpty, "\(label): \(mismatches.prefix(5))")
        // Metadata order is llama-quantize's too (input keys, then quantization version and file type), so
        // the whole file has llama-quantize's size.
        let size = try FileManager.default.attributesOfItem(atPath: output)[.size] as! Int
        #expect(size == jsonInteger(result["file_bytes"]!)!, "\(label)")
    }

    /// llama-quantize's per-tensor options through `hone quantize` itself, given as llama-quantize's command line
    /// (options, input, output, type): explicit output and embedding types (tied and untied), --leave-output-tensor,
    /// --tensor-type patterns (alternation, upper case, a pattern's type falling back, patterns on some attn_v tensors
    /// only, which shifts the Q4_K_M layers that get Q6_K, patterns ignored by an f16 run) and rows no 32-value block
    /// divides (Q8_0 and Q4_0 to F16): the same tensors and bytes as llama-quantize with the same arguments
    /// (tools/oracle/make_quantize_override_fixtures.py).
    @Test func perTensorOptionsMatchLlamaQuantize() throws {
        let fixture = try parseJSON(Data(contentsOf: URL(fileURLWithPath: Repository.fixture("quantize/llama-quantize-overrides.json")))) as! [String: Any]
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        var inputs: [String: String] = [:]
        for (name, spec) in fixture["models"] as! [String: Any] {
            inputs[name] = directory.appendingPathComponent("\(name)-f32.gguf").path
            _ = try Self.writeLCGInput(spec as! [String: Any], seed: UInt32(jsonInteger(fixture["seed"]!)!), to: inputs[name]!)
        }
        for (index, entry) in (fixture["cases"] as! [[String: Any]]).enumerated() {
            let output = directory.appendingPathComponent("case\(index).gguf").path
            let options = entry["options"] as! [String], type = entry["type"] as! String
            // The thread count after the type, as the fixture's llama-quantize command line has it.
            let run = try runProcess(Repository.honeExecutable, ["quantize"] + options + [inputs[entry["model"] as! String]!, output, type, "2"])
            let label = "\(entry["model"]!) \(type) \(options.joined(separator: " "))"
            #expect(run.status == 0, "\(label): \(run.stderr)")
            guard run.status == 0 else { continue }
            try expectLlamaQuantizeFile(output, entry, label: label)
            if let digest = entry["sha256"] as? String {
                // --override-kv: the whole file, metadata order and values included, is llama-quantize's.
                let bytes = try Data(contentsOf: URL(fileURLWithPath: output))
                #expect(SHA256.hash(bytes).map { String(format: "%02x", $0) }.joined() == digest, "\(label)")
                #expect(try GGUFFile(path: output).metadataKeys == entry["metadata_order"] as! [String], "\(label)")
            }
            // --dry-run names the same types, one line per tensor, and writes nothing.
            let planned = directory.appendingPathComponent("dry\(index).gguf").path
            let dry = try runProcess(Repository.honeExecutable, ["quantize", "--dry-run"] + options + [inputs[entry["model"] as! String]!, planned, type])
            let lines = dry.stdout.split(separator: "\n").filter { $0.contains(" -> ") }
            let types = lines.map { $0.components(separatedBy: " -> ")[1].split(separator: " ")[0] }.map(String.init)
            #expect(dry.status == 0 && types == (entry["tensors"] as! [[String: Any]]).map { $0["type"] as! String }, "\(label): \(dry.stdout)")
            #expect(!FileManager.default.fileExists(atPath: planned) && dry.stdout.contains("not written"))
        }
    }

    /// --override-kv values llama-quantize would not parse are refused in one line; what it parses is stored as it
    /// stores it.
    @Test func metadataOverrideParsing() throws {
        for argument in ["general.name", "=str:x", "k=text:x", "k=int:4x", "k=float:nan", "k=bool:yes",
                         "k=str:" + String(repeating: "a", count: 128), String(repeating: "k", count: 128) + "=int:1"] {
            #expect(throws: HoneError.self, "\(argument)") { try GGUFMetadataOverride(argument: argument) }
        }
        let stored = try GGUFMetadataOverride(argument: "llama.context_length=int:-4096")
        #expect(stored.value == .unsigned(4096) && stored.type == 4)
        #expect(try GGUFMetadataOverride(argument: "a.b=str:x=y:z").value == .string("x=y:z"))
        #expect(try GGUFMetadataOverride(argument: "a=float:0.1").value == .float(Double(Float(0.1))))
    }

    /// The per-tensor options refuse what llama-quantize would refuse or abort on, in one line each.
    @Test func perTensorOptionErrors() throws {
        #expect(throws: HoneError.invalidArgument("tensor_type 'attn_v' is not PATTERN=TYPE (as attn_v=q8_0)")) {
            try QuantizationOverrides.TensorTypeRule(argument: "attn_v")
        }
        #expect(throws: HoneError.self) { try QuantizationOverrides.TensorTypeRule(argument: "=q8_0") }
        #expect(throws: HoneError.self) { try QuantizationOverrides.TensorTypeRule(argument: "attn_v=") }
        #expect(throws: HoneError.self) { try QuantizationOverrides.TensorTypeRule(argument: "blk.(=q8_0") }
        #expect(try QuantizationOverrides.TensorTypeRule(argument: "ATTN_V=Q4_k") == .init(argument: "attn_v=q4_K"))
        for (name, reason) in [("iq2_xxs", "importance matrix"), ("tq1_0", "ternary"), ("q8_k", "unknown tensor type")] {
            #expect(throws: HoneError.self) { try QuantizationOverrides.writableType(name, option: "output_tensor_type") }
            do { _ = try QuantizationOverrides.writableType(name, option: "output_tensor_type") } catch {
                #expect("\(error)".contains(reason), "\(name): \(error)")
            }
        }
        // An explicit type has no fallback: rows its block does not divide are an error.
        let embedding = QuantizationPlanner.Tensor(name: "token_embd.weight", shape: [256, 96], type: .f32)
        let planner = QuantizationPlanner(scheme: .q4_0, layerCount: 1, overrides: .init(tokenEmbeddingType: .q4_K))
        #expect(throws: HoneError.invalidArgument("token_embedding_type q4_k: tensor 'token_embd.weight' has rows of 96 values, not a multiple of 256")) {
            try planner.choose([embedding])
        }
    }
}

// MARK: - HF ↔ GGUF and quantized models end to end

@Suite(.serialized) struct QuantizeConvertTests {
    static let tiny = Repository.root.appendingPathComponent("models/hone-tiny").path

    /// HF → GGUF (f32) gives the HF log-probs (the same weights, GGML's rope on permuted rows); f16 within the
    /// rounding bound; GGUF → HF → the GGUF's log-probs.
    @Test func convertRoundTripKeepsLogprobs() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let reference = try honeTinyLogprobs(Self.tiny)
        let golden = try GoldenFile(name: "hone-tiny").rows.map(\.logprobs)
        #expect(deviations(reference, golden).max <= 1e-4)

        let f32 = directory.appendingPathComponent("tiny-f32.gguf").path
        let summary = try GGUFExport.write(input: Self.tiny, output: f32, scheme: .f32)
        #expect(summary.tensors.allSatisfy { $0.type == .f32 })
        #expect(deviations(try honeTinyLogprobs(f32), golden).max <= 1e-4)

        let f16 = directory.appendingPathComponent("tiny-f16.gguf").path
        _ = try GGUFExport.write(input: Self.tiny, output: f16, scheme: .f16)
        let fromF16 = try honeTinyLogprobs(f16)
        // Rounding the weights to f16 moves these log-probs (random tokens, -6 to -19) by 0.0088 at most, measured.
        #expect(deviations(fromF16, golden).max <= 0.02)

        // Back to HF: f32 exactly; f16 also rounds the norms (F32 in the GGUF) to f16, measured 0.0072.
        for (gguf, name, bound) in [(f32, "hf-f32", 1e-4), (f16, "hf-f16", 0.015)] {
            let back = directory.appendingPathComponent(name).path
            let written = try HuggingFaceExport.write(gguf: gguf, to: back, dtype: nil)
            #expect(written.tokenizerFiles == ["tokenizer.json", "tokenizer_config.json"])
            let roundTrip = try honeTinyLogprobs(back)
            #expect(deviations(roundTrip, try honeTinyLogprobs(gguf)).max <= bound, "\(name)")
        }
        // f32 all the way: the tensors come back bit for bit (Q/K un-permuted).
        let original = try SafetensorsStore(directory: Self.tiny)
        let back = try SafetensorsStore(directory: directory.appendingPathComponent("hf-f32").path)
        for name in original.tensorNames {
            let (a, b) = (try original.tensor(name), try back.tensor(name))
            #expect(a.shape == b.shape && memcmp(a.data, b.data, a.byteCount) == 0, "\(name)")
        }
        let config = try parseJSON(Data(contentsOf: directory.appendingPathComponent("hf-f32/config.json"))) as! [String: Any]
        #expect(config["rms_norm_eps"] as? Double == 1e-5 && config["tie_word_embeddings"] as? Bool == true)
    }

    /// Each type, from the HF directory: per-tensor types as planned, each weight's bytes equal to the kernel
    /// quantizer on the (permuted) HF values, and log-probs within the type's error. hone-tiny's logits are large
    /// (the golden rows are random tokens scored -6 to -19), so weight rounding shows: measured max / mean |Δ| vs
    /// f32 were 0.28 / 0.075 (all Q8_0), 3.34 / 0.86 (Q4_0), 1.14 / 0.39 (Q5_0 + Q8_0 of q4_k_m); the exact
    /// reference product gives nearly the same (0.24 / 0.064 for Q8_0), so it is the weights, not the kernels.
    /// The bounds are about 1.6 times those, and keep the types in their order of precision.
    @Test(arguments: [
        ("q8_0", 0.45, 0.12), ("q6_k", 0.45, 0.12), ("q4_0", 5.5, 1.4), ("q4_k_m", 1.9, 0.62),
    ])
    func quantizedFromHuggingFace(scheme name: String, maxBound: Double, meanBound: Double) throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let scheme = QuantizationScheme(name: name)!
        let output = directory.appendingPathComponent("tiny-\(name).gguf").path
        let summary = try GGUFExport.write(input: Self.tiny, output: output, scheme: scheme)
        let gguf = try GGUFFile(path: output)
        let store = try SafetensorsStore(directory: Self.tiny)
        let config = try ModelConfig.fromHuggingFace(path: Self.tiny + "/config.json")
        for info in gguf.tensorInfos {
            let type = DType(ggmlType: info.ggmlType)!
            guard let hfName = LlamaTensorNames.huggingFace(fromGGUF: info.name) else { Issue.record("no HF name for \(info.name)"); continue }
            let source = try store.tensor(hfName)
            var values = source.floats()
            // The converter's permutation, written out independently: [heads, 2, half, in] → [heads, half, 2, in].
            let heads = info.name.contains("attn_q") ? config.headCount : info.name.contains("attn_k") ? config.keyValueHeadCount : 0
            if heads > 0 {
                let (rows, width) = (source.shape[0], source.shape[1])
                let half = rows / heads / 2
                var permuted = values
                for h in 0..<heads { for side in 0..<2 { for i in 0..<half {
                    let from = (h * 2 * half + side * half + i) * width
                    let to = (h * 2 * half + i * 2 + side) * width
                    permuted.replaceSubrange(to..<(to + width), with: values[from..<(from + width)])
                } } }
                values = permuted
            }
            if info.shape.count == 1 {
                #expect(type == .f32, "\(info.name)")
                continue
            }
            var expected = [UInt8](repeating: 0, count: info.byteCount)
            if type.isQuantized {
                #expect(hk_quantize(Int32(type.ggmlType), values, &expected, Int64(info.shape[0]), Int64(info.shape[1])) == 0)
            } else {
                Issue.record("\(info.name) is \(type.rawValue)")
            }
            let actual = UnsafeRawBufferPointer(start: gguf.file.bytes + gguf.dataOffset + info.offset, count: info.byteCount)
            #expect(Array(actual) == expected, "\(info.name)")
        }
        // hone-tiny: hidden 128, ffn 352, tied. Only Q8_0 and Q4_0 keep one type (token_embd by the output rule);
        // the K types fall back (Q4_K → Q5_0, Q6_K → Q8_0) since no row is a multiple of 256.
        let types = Set(summary.tensors.filter { $0.shape.count == 2 }.map(\.type))
        switch scheme {
        case .q8_0: #expect(types == [.q8_0])
        case .q4_0: #expect(types == [.q4_0, .q8_0] && summary.tensors.first { $0.name == "token_embd.weight" }?.type == .q8_0)
        case .q6_K: #expect(types == [.q8_0] && summary.fallbackCount == 28)  // token_embd: the output rule, no fallback
        default: #expect(types == [.q5_0, .q8_0])
        }
        let (worst, mean) = deviations(try honeTinyLogprobs(output), try GoldenFile(name: "hone-tiny").rows.map(\.logprobs))
        #expect(worst <= maxBound && mean <= meanBound, "\(name): max \(worst), mean \(mean)")
    }

    /// Quantizing a quantized GGUF: tensors of the target type are copied, others dequantized and requantized
    /// with a warning.
    @Test func requantizingWarnsAndCopiesSameType() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let q8 = directory.appendingPathComponent("q8.gguf").path
        let again = directory.appendingPathComponent("q8-again.gguf").path
        let q4 = directory.appendingPathComponent("q4.gguf").path
        _ = try GGUFExport.write(input: Repository.fixture("models/llama-gqa"), output: q8, scheme: .q8_0)
        var warnings: [String] = []
        _ = try GGUFExport.write(input: q8, output: again, scheme: .q8_0, warn: { warnings.append($0) })
        #expect(warnings.isEmpty)
        let (first, second) = (try GGUFFile(path: q8), try GGUFFile(path: again))
        for info in first.tensorInfos {
            let other = second.tensorInfos.first { $0.name == info.name }!
            #expect(other.ggmlType == info.ggmlType && memcmp(first.file.bytes + first.dataOffset + info.offset,
                                                                 second.file.bytes + second.dataOffset + other.offset, info.byteCount) == 0)
        }
        let summary = try GGUFExport.write(input: q8, output: q4, scheme: .q4_0, warn: { warnings.append($0) })
        #expect(warnings.filter { $0.contains("dequantized and quantized again") }.count == 1)
        #expect(summary.requantized.count == summary.tensors.filter { $0.type == .q4_0 }.count)
        // To a float type nothing is quantized again (merge on a quantized base writes f16 this way): no warning.
        warnings.removeAll()
        let f16 = try GGUFExport.write(input: q8, output: directory.appendingPathComponent("f16.gguf").path, scheme: .f16, warn: { warnings.append($0) })
        #expect(warnings.isEmpty && f16.requantized.isEmpty, "\(warnings)")
    }

    /// Metadata llama.cpp needs: hyper-parameters, rope, tokenizer (hone-tiny has tokenizer.model).
    @Test func convertedMetadata() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = directory.appendingPathComponent("tiny.gguf").path
        _ = try GGUFExport.write(input: Self.tiny, output: output, scheme: .f16)
        let gguf = try GGUFFile(path: output)
        #expect(gguf.string("general.architecture") == "llama")
        #expect(gguf.integer("llama.block_count") == 4 && gguf.integer("llama.embedding_length") == 128)
        #expect(gguf.integer("llama.attention.head_count_kv") == 2 && gguf.integer("llama.attention.key_length") == 32)
        #expect(gguf.integer("llama.context_length") == 1024 && gguf.integer("general.file_type") == 1)
        #expect(gguf.string("tokenizer.ggml.model") == "llama" && gguf.integer("tokenizer.ggml.bos_token_id") == 1)
        #expect(gguf.metadata["tokenizer.ggml.tokens"]?.arrayValue?.count == 2048)
        #expect(gguf.metadata["tokenizer.ggml.add_bos_token"]?.boolValue == true)
        #expect(!gguf.tensorInfos.contains { $0.name == "output.weight" })  // tied
        // Llama 3 scaling becomes rope_freqs (the converter's factors, checked against transformers by the oracle
        // in make_fixtures.py for llama-tied-llama3).
        let llama3 = directory.appendingPathComponent("llama3.gguf").path
        _ = try GGUFExport.write(input: Repository.fixture("models/llama-tied-llama3"), output: llama3, scheme: .f32)
        let reference = try GGUFFile(path: Repository.fixture("gguf/llama-tied-llama3-f32.gguf"))
        let written = try GGUFFile(path: llama3)
        let factors = try written.tensorView(written.tensorInfos.first { $0.name == "rope_freqs.weight" }!).floats()
        let expected = try reference.tensorView(reference.tensorInfos.first { $0.name == "rope_freqs.weight" }!).floats()
        #expect(zip(factors, expected).allSatisfy { abs($0 - $1) <= 1e-6 * abs($1) })
        // Every tensor of the oracle's converter-made GGUF has the same values here.
        for info in reference.tensorInfos {
            let ours = try written.tensorView(written.tensorInfos.first { $0.name == info.name }!).floats()
            #expect(ours == (try reference.tensorView(info).floats()), "\(info.name)")
        }
        let golden = try GoldenFile(name: "llama-tied-llama3")
        let scored = try Scorer(model: LoadedModel.open(llama3).model).score(golden.rows.map(\.tokens))
        #expect(deviations(scored.map { $0.map(Double.init) }, golden.rows.map(\.logprobs)).max <= 1e-4)
    }

    /// Qwen2 (no permutation, q/k/v biases), Qwen3 (no permutation, per-head q/k norms, head_dim keys), SmolLM3
    /// (Llama's permutation, NoPE layers), Granite (its four multipliers as GGUF keys) and Phi-3 (fused projections;
    /// LongRoPE's factor tensors and attention factor, a partial rotation), YaRN (its GGUF keys) and Gemma 3 (norm
    /// weights stored as 1 + w, the local layers' rope base, window and layer list): HF → GGUF has the oracle's
    /// converter-made file's tensors and metadata values; back to HF scores as transformers does.
    @Test(arguments: ["qwen2-bias", "qwen3-qknorm", "smollm3-nope", "granite-mult", "phi3-fused", "phi3-longrope", "qwen3-yarn",
                      "gemma3-swa", "gemma2-softcap", "qwen3moe-experts", "mixtral-experts",
                      "qwen2moe-shared", "olmo2-post", "olmo3-swa", "olmoe-experts", "gemma-geglu",
                      "granitemoe-experts", "exaone4-dense"])
    func familyRoundTrip(name: String) throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = directory.appendingPathComponent("\(name).gguf").path
        _ = try GGUFExport.write(input: Repository.fixture("models/\(name)"), output: output, scheme: .f32)
        let reference = try GGUFFile(path: Repository.fixture("gguf/\(name)-f32.gguf"))
        let written = try GGUFFile(path: output)
        #expect(Set(written.tensorInfos.map(\.name)) == Set(reference.tensorInfos.map(\.name)))
        for info in reference.tensorInfos {
            let ours = try written.tensorView(written.tensorInfos.first { $0.name == info.name }!).floats()
            #expect(ours == (try reference.tensorView(info).floats()), "\(info.name)")
        }
        // The hyper-parameters llama.cpp reads (the vocabulary aside: the fixture has none).
        for key in reference.metadataKeys where key.hasPrefix(reference.architecture! + ".") || key == "general.architecture" {
            #expect(written.metadata[key] == reference.metadata[key], "\(name): \(key)")
        }
        let back = directory.appendingPathComponent("\(name)-hf").path
        _ = try HuggingFaceExport.write(gguf: output, to: back, dtype: nil)
        let golden = try GoldenFile(name: name)
        let scored = try Scorer(model: LoadedModel.open(back).model).score(golden.rows.map(\.tokens))
        #expect(deviations(scored.map { $0.map(Double.init) }, golden.rows.map(\.logprobs)).max <= 1e-4)
    }

    // MARK: Tokenizers

    /// hone-tiny's tokenizer: HF files, the converted GGUF's metadata, and the tokenizer.json written back from
    /// that GGUF give the same ids on hard strings.
    @Test func tokenizerIdsSurviveBothDirections() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let gguf = directory.appendingPathComponent("tiny.gguf").path
        _ = try GGUFExport.write(input: Self.tiny, output: gguf, scheme: .q8_0)
        let back = directory.appendingPathComponent("back").path
        _ = try HuggingFaceExport.write(gguf: gguf, to: back, dtype: .f32)
        let original = try TokenizerLoader.load(directory: Self.tiny)
        let fromGGUF = try TokenizerLoader.load(modelPath: gguf)
        let roundTrip = try TokenizerLoader.load(directory: back)
        #expect(roundTrip is SentencePieceTokenizer)
        var failures = 0
        for text in try hardStrings() + ["Hello world", "  two  spaces", "日本語のテキスト", "emoji 🤖 and \u{0}"] {
            let expected = original.encode(text, addSpecialTokens: true, parseSpecial: false)
            for (name, tokenizer) in [("gguf", fromGGUF), ("round trip", roundTrip)] {
                let ids = tokenizer.encode(text, addSpecialTokens: true, parseSpecial: false)
                if ids != expected {
                    failures += 1
                    if failures <= 5 { Issue.record("\(name) \(text.debugDescription): \(ids) vs \(expected)") }
                }
            }
        }
        #expect(failures == 0)
        #expect(fromGGUF.bosTokenID == original.bosTokenID && roundTrip.eosTokenID == original.eosTokenID)
    }

    /// HF tokenizer directories → GGUF vocabulary: the metadata equals what the oracle's converter emulation wrote
    /// (the fixture's vocab.gguf), and Hone's GGUF loader on it gives the reference ids.
    @Test(arguments: [("spm-bpe", "spm-bpe-gguf"), ("llama3-bpe", "llama3-gguf"), ("qwen2-bpe", "qwen2-gguf"), ("gpt2-bpe", "gpt2-gguf")])
    func vocabularyMetadataLikeTheConverter(hf: String, ggufFixture: String) throws {
        let fixture = try TokenizerFixture(hf)
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let source = directory.appendingPathComponent(hf)
        try FileManager.default.copyItem(atPath: fixture.directory, toPath: source.path)
        if hf == "qwen2-bpe" {
            // As in real Qwen2 checkpoints (and the oracle's vocab.gguf): config.json names <|endoftext|> as BOS.
            let bos = try TokenizerLoader.load(directory: fixture.directory).id(forPiece: "<|endoftext|>")!
            try Data("{\"bos_token_id\": \(bos)}".utf8).write(to: source.appendingPathComponent("config.json"))
        }
        let entries = try GGUFVocabulary.metadata(directory: source.path, vocabularySize: nil)!
        let reference = try GGUFFile(path: Repository.fixture("tokenizers/\(ggufFixture)/vocab.gguf"))
        let ours = Dictionary(entries.map { ($0.key, $0.value) }, uniquingKeysWith: { first, _ in first })
        // add_sep_token = false is llama.cpp's default, which Hone leaves implicit.
        for key in reference.metadataKeys where key.hasPrefix("tokenizer.") && key != "tokenizer.ggml.add_sep_token" {
            #expect(ours[key] == reference.metadata[key], "\(hf): \(key)")
        }
        let writer = GGUFWriter()
        writer.add("general.architecture", string: "llama")
        for entry in entries { writer.add(entry.key, value: entry.value, type: entry.type, arrayType: entry.arrayType) }
        let path = directory.appendingPathComponent("vocab.gguf").path
        try writer.write(to: path)
        let tokenizer = try TokenizerLoader.load(gguf: GGUFFile(path: path))
        var failures = 0
        for item in fixture.cases {
            let ids = tokenizer.encode(item.text, addSpecialTokens: true, parseSpecial: false)
            if ids != item.idsWithSpecial {
                failures += 1
                if failures <= 5 { Issue.record("\(hf) \(item.text.debugDescription): \(ids) vs \(item.idsWithSpecial)") }
            }
        }
        #expect(failures == 0)
    }

    /// GGUF vocabularies (the fixtures' vocab.gguf) → tokenizer.json + tokenizer_config.json that Hone's HF
    /// loaders read with the reference ids.
    @Test(arguments: ["spm-bpe-gguf", "llama3-gguf", "qwen2-gguf", "gpt2-gguf"])
    func tokenizerFilesFromGGUF(name: String) throws {
        let fixture = try TokenizerFixture(name)
        let gguf = try GGUFFile(path: fixture.directory + "/vocab.gguf")
        let files = gguf.string("tokenizer.ggml.model") == "llama"
            ? try HuggingFaceTokenizerFiles.sentencePiece(gguf, contextLength: 256)
            : try HuggingFaceTokenizerFiles.byteLevel(gguf, contextLength: 256)
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        for (file, object) in files { try HuggingFaceExport.writeJSON(object, to: directory.appendingPathComponent(file).path) }
        let tokenizer = try TokenizerLoader.load(directory: directory.path)
        var failures = 0
        for item in fixture.cases {
            let plain = tokenizer.encode(item.text, addSpecialTokens: false, parseSpecial: false)
            let withSpecial = tokenizer.encode(item.text, addSpecialTokens: true, parseSpecial: false)
            if plain != item.ids || withSpecial != item.idsWithSpecial {
                failures += 1
                if failures <= 5 { Issue.record("\(name) \(item.text.debugDescription): \(withSpecial) vs \(item.idsWithSpecial)") }
            }
        }
        #expect(failures == 0)
    }

    static let smolLM2 = Repository.root.appendingPathComponent("models/SmolLM2-135M-Instruct.Q4_1.gguf").path

    /// SmolLM2's special tokens come first (ids 0-16). Written only in added_tokens, HF tokenizers renumbered them
    /// after the vocab, onto 17 ordinary tokens (' Siri' decoded as '<|im_start|>', EOS became 'Maya'): every added
    /// token must be in model.vocab under its id. Checked with HF `tokenizers` itself when a venv has it.
    @Test(.enabled(if: FileManager.default.fileExists(atPath: smolLM2), "models/SmolLM2-135M-Instruct.Q4_1.gguf is absent (tools/fetch-default-model)"))
    func specialTokensKeepTheirIDsInHFTokenizers() throws {
        let files = try HuggingFaceTokenizerFiles.byteLevel(try GGUFFile(path: Self.smolLM2), contextLength: 2048)
        let directory = try makeTemporaryDirectory()
        for (file, object) in files { try HuggingFaceExport.writeJSON(object, to: directory.appendingPathComponent(file).path) }
        let path = directory.appendingPathComponent("tokenizer.json").path
        let json = try #require(try parseJSON(Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
        let vocab = try #require((json["model"] as? [String: Any])?["vocab"] as? [String: Any])
        let added = json["added_tokens"] as? [[String: Any]] ?? []
        #expect(added.count == 17)
        for token in added {
            #expect(vocab[token["content"] as? String ?? ""].flatMap(jsonInteger) == token["id"].flatMap(jsonInteger), "\(token)")
        }
        let text = "<|im_start|>user\nhi Siri, Maya<|im_end|>"
        let expected = try LoadedModel.open(Self.smolLM2).tokenizer().encode(text, addSpecialTokens: false, parseSpecial: true)
        #expect(expected.first == 1 && expected.last == 2)
        #expect(try TokenizerLoader.load(directory: directory.path).encode(text, addSpecialTokens: false, parseSpecial: true) == expected)
        let python = ["tools/serve/.venv", "tools/oracle/.venv"].map { Repository.root.appendingPathComponent($0 + "/bin/python").path }
            .first { FileManager.default.isExecutableFile(atPath: $0) && (try? runProcess($0, ["-c", "import tokenizers"]))?.status == 0 }
        guard let python else {
            print("skipped the HF check: no venv with tokenizers (tools/serve/setup makes one)")
            return
        }
        let script = "import json, sys, tokenizers; t = tokenizers.Tokenizer.from_file(sys.argv[1]); print(json.dumps(t.encode(sys.argv[2], add_special_tokens=False).ids))"
        let hf = try runProcess(python, ["-c", script, path, text])
        #expect(hf.status == 0, "\(hf.stderr)")
        #expect((try? parseJSON(Data(hf.stdout.utf8)) as? [Int])?.map(Int32.init) == expected, "\(hf.stdout) vs \(expected)")
    }

    // MARK: Oracle read-back of a Hone-written GGUF

    static let readBackGGUF = "quantize/hone-llama-gqa-q4_k_m.gguf"

    /// Hone still writes the committed file byte for byte, and gguf-py's reading of it (the JSON summary from
    /// tools/oracle/make_quantize_fixtures.py) agrees with Hone's on every tensor and key.
    @Test func honeWrittenGGUFReadByGGUFPy() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = directory.appendingPathComponent("llama-gqa.gguf").path
        let input = directory.appendingPathComponent("llama-gqa").path
        // A fixed directory name, since general.name is the directory's name.
        try FileManager.default.copyItem(atPath: Repository.fixture("models/llama-gqa"), toPath: input)
        _ = try GGUFExport.write(input: input, output: output, scheme: .q4_K_M)
        let committed = Repository.fixture(Self.readBackGGUF)
        #expect(try Data(contentsOf: URL(fileURLWithPath: output)) == Data(contentsOf: URL(fileURLWithPath: committed)))

        let summary = try parseJSON(Data(contentsOf: URL(fileURLWithPath: Repository.fixture("quantize/hone-llama-gqa-q4_k_m.json")))) as! [String: Any]
        let gguf = try GGUFFile(path: committed)
        let tensors = summary["tensors"] as! [[String: Any]]
        #expect(tensors.count == gguf.tensorInfos.count)
        for (info, reference) in zip(gguf.tensorInfos, tensors) {
            let bytes = UnsafeRawBufferPointer(start: gguf.file.bytes + gguf.dataOffset + info.offset, count: info.byteCount)
            #expect(info.name == reference["name"] as? String)
            #expect(info.shape == (reference["shape"] as! [Any]).map { jsonInteger($0)! })
            #expect(ggmlTypeName(info.ggmlType) == reference["type"] as? String)
            #expect(String(weightedByteSum(bytes)) == reference["checksum"] as? String, "\(info.name)")
        }
        #expect(gguf.metadataKeys == (summary["metadata_order"] as! [String]))
        let metadata = summary["metadata"] as! [String: Any]
        for key in gguf.metadataKeys {
            let value = (metadata[key] as! [String: Any])["value"]!
            switch gguf.metadata[key]! {
            case .string(let text): #expect(value as? String == text, "\(key)")
            case .float(let number): #expect(jsonDouble(value) == number, "\(key)")
            case .unsigned, .signed: #expect(jsonInteger(value) == gguf.integer(key), "\(key)")
            case .bool(let flag): #expect(value as? Bool == flag, "\(key)")
            case .array(let items): #expect(jsonInteger((value as! [String: Any])["count"]!) == items.count, "\(key)")
            }
        }
    }

    // MARK: Bad input

    func expectFailure(_ arguments: [String], output: String, message: String) throws {
        let result = try runProcess(Repository.honeExecutable, arguments)
        #expect(result.status == 1, "\(arguments): \(result.stderr)")
        let lines = result.stderr.split(separator: "\n").filter { $0.hasPrefix("hone: error:") }
        #expect(lines.count == 1 && lines[0].contains(message), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: output) && !FileManager.default.fileExists(atPath: output + ".tmp"))
    }

    @Test func badInputGivesOneLineAndNoOutput() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let out = directory.appendingPathComponent("out.gguf").path
        try expectFailure(["quantize", Self.tiny, out, "--type", "q7_k"], output: out, message: "unknown type 'q7_k'")
        try expectFailure(["quantize", Self.tiny, out, "--type", "iq2_xxs"], output: out,
                          message: "--type iq2_xxs needs an importance matrix")
        try expectFailure(["quantize", Self.tiny, out], output: out, message: "no type: give --type TYPE")
        try expectFailure(["quantize", Self.tiny, out, "q4_0", "--type", "q8_0"], output: out, message: "two types given")
        try expectFailure(["quantize", Self.tiny, out, "q8_0", "--tensor-type", "attn_v"], output: out,
                          message: "--tensor-type 'attn_v' is not PATTERN=TYPE")
        try expectFailure(["quantize", Self.tiny, out, "q8_0", "--output-tensor-type", "iq1_s"], output: out,
                          message: "--output-tensor-type iq1_s: IQ1_S needs an importance matrix")
        try expectFailure(["quantize", Self.tiny, out, "q8_0", "--tensor-type-file", directory.appendingPathComponent("none.txt").path],
                          output: out, message: "none.txt")
        try expectFailure(["quantize", Self.tiny, out, "q8_0", "--prune-layers", "0,99"], output: out, message: "99: the model has")
        try expectFailure(["quantize", Self.tiny, out, "q8_0", "--prune-layers", "1,x"], output: out, message: "'x' is not a layer number")
        try expectFailure(["quantize", Self.tiny, out, "q8_0", "--override-kv", "general.name=text:x"], output: out,
                          message: "unknown type 'text'")
        try expectFailure(["quantize", directory.appendingPathComponent("missing").path, out, "--type", "q8_0"], output: out,
                          message: "no such file or directory")
        try expectFailure(["quantize", Repository.fixture("models/opt-preln"), out, "--type", "q8_0"], output: out,
                          message: "model_type 'opt' has no GGUF form")
        try expectFailure(["convert", Repository.fixture("models/opt-preln"), out], output: out, message: "model_type 'opt'")
        try expectFailure(["convert", Self.tiny, out, "--type", "q8_0"], output: out, message: "unknown --type 'q8_0' for convert")
        // A truncated GGUF.
        let data = try Data(contentsOf: URL(fileURLWithPath: Repository.fixture("gguf/llama-gqa-f16.gguf")))
        let truncated = directory.appendingPathComponent("truncated.gguf").path
        try data.prefix(data.count * 2 / 3).write(to: URL(fileURLWithPath: truncated))
        try expectFailure(["quantize", truncated, out, "--type", "q4_0"], output: out, message: "truncated")
        let hf = directory.appendingPathComponent("hf").path
        try expectFailure(["convert", truncated, hf], output: hf, message: "truncated")
        // A truncated safetensors file.
        let model = try copyFixtureModel("llama-gqa")
        let weights = model.appendingPathComponent("model.safetensors")
        let full = try Data(contentsOf: weights)
        try full.prefix(full.count / 2).write(to: weights)
        try expectFailure(["quantize", model.path, out, "--type", "q8_0"], output: out, message: "points past the end")
        // An unsupported GGUF architecture.
        let writer = GGUFWriter()
        writer.add("general.architecture", string: "mamba")
        let mamba = directory.appendingPathComponent("mamba.gguf").path
        try writer.write(to: mamba)
        try expectFailure(["quantize", mamba, out, "--type", "q8_0"], output: out, message: "unsupported architecture 'mamba'")
        try expectFailure(["convert", mamba, hf], output: hf, message: "unsupported architecture 'mamba'")
        // GGUF → HF refuses to write into a directory with files.
        try expectFailure(["convert", Repository.fixture("gguf/llama-gqa-f16.gguf"), Repository.fixture("models")],
                          output: directory.appendingPathComponent("none").path, message: "already exists")
    }

}
