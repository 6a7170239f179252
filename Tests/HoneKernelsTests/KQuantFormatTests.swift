import Foundation
import Testing
import HoneKernels

/// The K, IQ and TQ formats beyond QuantFormatTests' generic ones: every dequantizer against gguf-py's on real
/// blocks (llama-quantize's for Q2_K, Q3_K, Q5_K, IQ4_XS, TQ1_0, TQ2_0; seeded random bytes with finite scales for
/// the codebook formats llama-quantize only makes with an importance matrix), and the products of the
/// dequantize-only formats (see tools/oracle/make_kquant_fixtures.py).
@Suite struct KQuantFormatTests {
    static let typeIDs: [String: hk_type] = [
        "q2_k": HK_TYPE_Q2_K, "q3_k": HK_TYPE_Q3_K, "q5_k": HK_TYPE_Q5_K, "iq4_xs": HK_TYPE_IQ4_XS,
        "tq1_0": HK_TYPE_TQ1_0, "tq2_0": HK_TYPE_TQ2_0, "iq2_xxs": HK_TYPE_IQ2_XXS, "iq2_xs": HK_TYPE_IQ2_XS,
        "iq2_s": HK_TYPE_IQ2_S, "iq3_xxs": HK_TYPE_IQ3_XXS, "iq3_s": HK_TYPE_IQ3_S, "iq1_s": HK_TYPE_IQ1_S,
        "iq1_m": HK_TYPE_IQ1_M,
    ]
    static let madeByLlamaQuantize = ["q2_k", "q3_k", "q5_k", "iq4_xs", "tq1_0", "tq2_0"]
    static let randomBlocks = ["iq2_xxs", "iq2_xs", "iq2_s", "iq3_xxs", "iq3_s", "iq1_s", "iq1_m"]

    private static func floats(_ bytes: [UInt8]) -> [Float] {
        bytes.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }

    /// hk_dequantize_row of `bytes` (whole rows of `columns` values).
    private static func dequantize(_ type: hk_type, _ bytes: [UInt8], rows: Int, columns: Int) -> [Float] {
        let id = Int32(type.rawValue)
        let rowBytes = Int(hk_quant_row_bytes(id, Int64(columns)))
        var out = [Float](repeating: .nan, count: rows * columns)
        bytes.withUnsafeBytes { raw in
            out.withUnsafeMutableBufferPointer { y in
                for r in 0..<rows {
                    let status = hk_dequantize_row(id, raw.baseAddress! + r * rowBytes, y.baseAddress! + r * columns, Int64(columns))
                    #expect(status == 0)
                }
            }
        }
        return out
    }

    /// Bit for bit: gguf-py evaluates ggml's formulas in numpy float32, in the same order.
    @Test(arguments: madeByLlamaQuantize)
    func dequantizeMatchesGgufPyOnLlamaQuantizeBlocks(name: String) throws {
        let entry = try #require(try QuantFixtures.kIndexTensor("ffn_down"))
        let rows = try #require(try QuantFixtures.kIndex()["dequant_rows"] as? Int)
        let llama = try #require(entry["llama"] as? [String: String]), dequant = try #require(entry["dequant"] as? [String: String])
        let type = try #require(Self.typeIDs[name])
        let columns = try #require(entry["cols"] as? Int)
        let bytes = try QuantFixtures.kBytes(try #require(llama[name]))
        let rowBytes = Int(hk_quant_row_bytes(Int32(type.rawValue), Int64(columns)))
        let actual = Self.dequantize(type, Array(bytes.prefix(rows * rowBytes)), rows: rows, columns: columns)
        let expected = Self.floats(try QuantFixtures.kBytes(try #require(dequant[name])))
        #expect(expected.count == rows * columns)
        expectBitwiseEqual(actual, expected, "\(name) vs gguf-py")
    }

    @Test(arguments: randomBlocks)
    func dequantizeMatchesGgufPyOnRandomCodebookBlocks(name: String) throws {
        let random = try #require(try QuantFixtures.kIndex()["random"] as? [String: [String: Any]])
        let entry = try #require(random[name])
        let blocks = try #require(entry["blocks"] as? Int)
        let type = try #require(Self.typeIDs[name])
        let bytes = try QuantFixtures.kBytes(try #require(entry["bytes"] as? String))
        #expect(bytes.count == blocks * Int(hk_quant_block_bytes(Int32(type.rawValue))))
        let actual = Self.dequantize(type, bytes, rows: 1, columns: 256 * blocks)
        let expected = Self.floats(try QuantFixtures.kBytes(try #require(entry["dequant"] as? String)))
        expectBitwiseEqual(actual, expected, "\(name) vs gguf-py")
        #expect(expected.contains { $0 != 0 }, "\(name): the fixture has non-zero values")
    }

    /// The dequantize-only formats: the sgemm prefill and the reference agree to f32 rounding, the decode path
    /// (hk_matmul_rows_quant) refuses them, and hk_quantize refuses to make them.
    @Test(arguments: randomBlocks + ["tq1_0", "tq2_0"])
    func dequantizeOnlyProducts(name: String) throws {
        let type = try #require(Self.typeIDs[name])
        let id = Int32(type.rawValue)
        let (outputs, inputs, rows) = (5, 512, 7)
        var generator = SeededGenerator(seed: 330)
        let (_, bytes) = try fixtureBlockMatrix(name, rows: outputs, columns: inputs)
        let weights = Self.dequantize(type, bytes, rows: outputs, columns: inputs)
        let x = generator.floats(rows * inputs)
        var reference = [Float](repeating: .nan, count: rows * outputs), many = reference, decode = reference
        #expect(hk_matmul_rows_quant_ref(id, bytes, x, &reference, Int32(rows), Int32(inputs), Int32(outputs)) == 0)
        #expect(hk_matmul_many_quant_sgemm(id, bytes, x, &many, Int32(rows), Int32(inputs), Int32(outputs)) == 0)
        #expect(hk_matmul_rows_quant(id, bytes, x, &decode, Int32(rows), Int32(inputs), Int32(outputs)) == -1)
        var bounds = [Float](repeating: 0, count: rows * outputs)
        for r in 0..<rows {
            for o in 0..<outputs {
                var sum: Float = 0
                for i in 0..<inputs { sum += abs(weights[o * inputs + i] * x[r * inputs + i]) }
                bounds[r * outputs + o] = 1e-5 * sum + 1e-30
            }
        }
        expectWithin(many, reference, bounds: bounds, "\(name) sgemm vs reference")
        var out = [UInt8](repeating: 0, count: bytes.count)
        #expect(hk_quantize(id, x, &out, 1, 256) == -1, "\(name) is not made by hk_quantize")
    }
}

/// Weights every path must multiply exactly (QuantMatmulTests.quantMatmulExactIntegers): d = 1 (and dmin = 1),
/// every sub-block scale 1, so value = level - offset: Q2_K level - 2 (min 2), Q3_K level - 4, Q5_K level - 8
/// (min 8), IQ4_XS the non-linear level itself.
func exactKMoreMatrix(_ type: QuantType, outputs: Int, inputs: Int) -> (QuantizedMatrix, [Float]) {
    let iq4Levels: [Float] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113]
    var bytes = [UInt8](), w = [Float](repeating: 0, count: outputs * inputs)
    let one: [UInt8] = [0x00, 0x3C] // f16 1.0
    for o in 0..<outputs {
        for b in 0..<(inputs / 256) {
            let top = [QuantType.q2_k: 3, .q3_k: 7, .q5_k: 31, .iq4_xs: 15][type]!
            let levels = (0..<256).map { UInt8((o * 5 + (256 * b + $0) * 3) % (top + 1)) }
            for v in 0..<256 {
                let level = Float(levels[v])
                w[o * inputs + 256 * b + v] = type == .q2_k ? level - 2 : type == .q3_k ? level - 4
                    : type == .q5_k ? level - 8 : iq4Levels[Int(levels[v])]
            }
            func twoBits(_ l: [UInt8]) -> [UInt8] {
                (0..<64).map { i in
                    let (h, j) = (i / 32, i % 32)
                    return (0..<4).reduce(UInt8(0)) { $0 | (l[128 * h + 32 * $1 + j] & 3) << (2 * $1) }
                }
            }
            switch type {
            case .q2_k:
                bytes += [UInt8](repeating: 1 | 2 << 4, count: 16) + twoBits(levels) + one + one
            case .q3_k:
                var hmask = [UInt8](repeating: 0, count: 32)
                for v in 0..<256 where levels[v] > 3 { hmask[v % 32] |= UInt8(1 << (v / 32)) }
                // Scale 33 (stored) = 1: low nibbles 1, top bits 2.
                bytes += hmask + twoBits(levels) + [UInt8](repeating: 0x11, count: 8) + [UInt8](repeating: 0xAA, count: 4) + one
            case .q5_k:
                var qh = [UInt8](repeating: 0, count: 32), qs = [UInt8](repeating: 0, count: 128)
                for c in 0..<4 {
                    for l in 0..<32 {
                        let (low, high) = (levels[64 * c + l], levels[64 * c + 32 + l])
                        qs[32 * c + l] = (low & 0x0F) | (high & 0x0F) << 4
                        qh[l] |= (low >> 4) << (2 * c) | (high >> 4) << (2 * c + 1)
                    }
                }
                bytes += one + one + [UInt8](repeating: 1, count: 4) + [UInt8](repeating: 8, count: 4)
                bytes += [UInt8](repeating: 0x01 | 0x08 << 4, count: 4) + qh + qs
            default: // IQ4_XS: scale 33 = 1 (low nibbles 1, top bits 2)
                var qs = [UInt8](repeating: 0, count: 128)
                for s in 0..<8 {
                    for j in 0..<16 { qs[16 * s + j] = levels[32 * s + j] | levels[32 * s + 16 + j] << 4 }
                }
                bytes += one + [0xAA, 0xAA] + [UInt8](repeating: 0x11, count: 4) + qs
            }
        }
    }
    return (QuantizedMatrix(type, rows: outputs, columns: inputs, bytes: bytes), w)
}

/// A [rows, columns] matrix of a codebook or ternary format made of the fixtures' blocks, repeated in order (real
/// scales and layouts): the seeded random blocks for the IQ formats, llama-quantize's for TQ1_0/TQ2_0.
func fixtureBlockMatrix(_ name: String, rows: Int, columns: Int) throws -> (Int32, [UInt8]) {
    let type = try #require(KQuantFormatTests.typeIDs[name])
    let id = Int32(type.rawValue)
    let fixture: [UInt8]
    if KQuantFormatTests.randomBlocks.contains(name) {
        let random = try #require(try QuantFixtures.kIndex()["random"] as? [String: [String: Any]])
        fixture = try QuantFixtures.kBytes(try #require(random[name]?["bytes"] as? String))
    } else {
        let llama = try #require(try QuantFixtures.kIndexTensor("ffn_up")?["llama"] as? [String: String])
        fixture = try QuantFixtures.kBytes(try #require(llama[name]))
    }
    let count = rows * Int(hk_quant_row_bytes(id, Int64(columns)))
    return (id, (0..<count).map { fixture[$0 % fixture.count] })
}
