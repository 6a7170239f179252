import Foundation
import Testing
@testable import HoneKit

/// `hone quantize --type q4_1 | q5_0 | q5_1 | iq4_nl` (and --pure): llama-quantize's per-tensor choices, and the
/// bytes of llama-quantize --pure on the same input.
@Suite struct QuantizeLegacyTests {
    /// SmolLM2-135M's shapes (tied embeddings, rows of 576 and 1536, 9 heads on 3 KV heads).
    static func smolLM2Tensors() -> [QuantizationPlanner.Tensor] {
        var tensors: [QuantizationPlanner.Tensor] = [
            .init(name: "output_norm.weight", shape: [576], type: .f32),
            .init(name: "token_embd.weight", shape: [49152, 576], type: .f16),
        ]
        for layer in 0..<30 {
            let shapes: [(String, [Int])] = [
                ("attn_k.weight", [192, 576]), ("attn_norm.weight", [576]), ("attn_output.weight", [576, 576]),
                ("attn_q.weight", [576, 576]), ("attn_v.weight", [192, 576]), ("ffn_down.weight", [576, 1536]),
                ("ffn_gate.weight", [1536, 576]), ("ffn_norm.weight", [576]), ("ffn_up.weight", [1536, 576]),
            ]
            for (name, shape) in shapes {
                tensors.append(.init(name: "blk.\(layer).\(name)", shape: shape, type: shape.count == 1 ? .f32 : .f16))
            }
        }
        return tensors
    }

    /// Q4_1, Q5_0, Q5_1: one type for every matrix; the tied embedding takes the output rule (Q6_K, which 576
    /// does not divide: Q8_0), as llama-quantize's SmolLM2 files have it. --pure: the embedding too.
    @Test(arguments: [QuantizationScheme.q4_1, .q5_0, .q5_1])
    func smolLM2Choices(scheme: QuantizationScheme) throws {
        let tensors = Self.smolLM2Tensors()
        let choices = try QuantizationPlanner(scheme: scheme, layerCount: 30, headsPerKeyValueHead: 3).choose(tensors)
        var counts: [DType: Int] = [:]
        for choice in choices { counts[choice.type, default: 0] += 1 }
        #expect(counts == [scheme.baseType: 210, .q8_0: 1, .f32: 61])
        #expect(choices[1].type == .q8_0 && choices[1].fellBack)
        let pure = try QuantizationPlanner(scheme: scheme, layerCount: 30, pure: true).choose(tensors)
        #expect(pure.filter { $0.type == scheme.baseType }.count == 211)
    }

    /// IQ4_NL's mix puts ffn_down of the first eighth of the layers (and attn_v with 4+ query heads per KV head) in
    /// Q5_K, as llama-quantize does; --pure gives IQ4_NL everywhere.
    @Test func iq4NLMixUsesQ5KUnlessPure() throws {
        let tensors = Self.smolLM2Tensors()
        let choices = try QuantizationPlanner(scheme: .iq4_NL, layerCount: 30, headsPerKeyValueHead: 3).choose(tensors)
        let type = Dictionary(uniqueKeysWithValues: zip(tensors.map(\.name), choices.map(\.type)))
        #expect(type["blk.2.ffn_down.weight"] == .q5_K && type["blk.3.ffn_down.weight"] == .iq4_NL)
        #expect(type["blk.0.attn_v.weight"] == .iq4_NL) // 3 query heads per KV head: not Q5_K
        let gqa4 = try QuantizationPlanner(scheme: .iq4_NL, layerCount: 30, headsPerKeyValueHead: 4).choose(tensors)
        // attn_v gets Q5_K, whose 256-value blocks do not divide rows of 576: llama.cpp's fallback Q5_1.
        #expect(gqa4[tensors.firstIndex { $0.name == "blk.0.attn_v.weight" }!] == .init(type: .q5_1, fellBack: true))
        let pure = try QuantizationPlanner(scheme: .iq4_NL, layerCount: 30, pure: true).choose(tensors)
        #expect(pure.filter { $0.type == .iq4_NL }.count == 211)
    }

    /// Rows that 32 does not divide fall back to F16 (the llama.cpp these fixtures come from).
    @Test func rowsNotOfWholeBlocksFallBackToF16() throws {
        let tensors = [QuantizationPlanner.Tensor(name: "blk.0.attn_q.weight", shape: [8, 40], type: .f32)]
        for scheme in [QuantizationScheme.q4_1, .q5_0, .q5_1, .iq4_NL] {
            let choice = try QuantizationPlanner(scheme: scheme, layerCount: 1, pure: true).choose(tensors)[0]
            #expect(choice.type == .f16 && choice.fellBack, "\(scheme)")
        }
        #expect(QuantizationScheme(name: "IQ4_NL") == .iq4_NL && QuantizationScheme(name: "q5_1") == .q5_1)
    }

    /// `hone quantize --pure` of llama-gqa-f32.gguf writes every tensor with the bytes llama-quantize --pure wrote
    /// (Fixtures/gguf/llama-gqa-<type>.gguf, tools/oracle/make_quantized_model_fixtures32.py).
    @Test(arguments: [QuantizationScheme.q4_1, .q5_0, .q5_1, .iq4_NL])
    func pureBytesMatchLlamaQuantize(scheme: QuantizationScheme) throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = directory.appendingPathComponent("out.gguf").path
        _ = try GGUFExport.write(input: Repository.fixture("gguf/llama-gqa-f32.gguf"), output: output, scheme: scheme,
                                 pure: true)
        let ours = try GGUFFile(path: output)
        let theirs = try GGUFFile(path: Repository.fixture("gguf/llama-gqa-\(scheme.rawValue).gguf"))
        #expect(ours.tensorInfos.map(\.name).sorted() == theirs.tensorInfos.map(\.name).sorted())
        #expect(ours.integer("general.file_type") == theirs.integer("general.file_type"))
        for info in theirs.tensorInfos {
            let expected = try theirs.tensorView(info)
            let actual = try ours.tensorView(try #require(ours.tensorInfos.first { $0.name == info.name }))
            #expect(actual.dtype == expected.dtype, "\(info.name)")
            let same = actual.byteCount == expected.byteCount && memcmp(actual.data, expected.data, expected.byteCount) == 0
            #expect(same, "\(scheme) \(info.name): bytes differ from llama-quantize's")
        }
    }
}
