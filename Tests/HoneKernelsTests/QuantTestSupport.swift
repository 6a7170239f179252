import Foundation
import Testing
import HoneKernels

/// The block formats the quantized matrix kernels take as weights.
enum QuantType: String, CaseIterable, Sendable, CustomStringConvertible {
    case q8_0, q4_0, q4_k, q6_k
    case q4_1, q5_0, q5_1, iq4_nl
    case q2_k, q3_k, q5_k, iq4_xs

    var id: Int32 {
        switch self {
        case .q8_0: return Int32(HK_TYPE_Q8_0.rawValue)
        case .q4_0: return Int32(HK_TYPE_Q4_0.rawValue)
        case .q4_k: return Int32(HK_TYPE_Q4_K.rawValue)
        case .q6_k: return Int32(HK_TYPE_Q6_K.rawValue)
        case .q4_1: return Int32(HK_TYPE_Q4_1.rawValue)
        case .q5_0: return Int32(HK_TYPE_Q5_0.rawValue)
        case .q5_1: return Int32(HK_TYPE_Q5_1.rawValue)
        case .iq4_nl: return Int32(HK_TYPE_IQ4_NL.rawValue)
        case .q2_k: return Int32(HK_TYPE_Q2_K.rawValue)
        case .q3_k: return Int32(HK_TYPE_Q3_K.rawValue)
        case .q5_k: return Int32(HK_TYPE_Q5_K.rawValue)
        case .iq4_xs: return Int32(HK_TYPE_IQ4_XS.rawValue)
        }
    }

    var blockSize: Int { Int(hk_quant_block_size(id)) }
    var blockBytes: Int { Int(hk_quant_block_bytes(id)) }
    /// Values per activation block in the kernels (A32 for the 32-value types, Q8_K for the K formats and IQ4_XS).
    var activationBlock: Int { blockSize == 32 ? 32 : 256 }
    /// Types whose kernels Q8_K activations feed.
    var usesQ8K: Bool { activationBlock == 256 }
    /// Q4_1, Q5_0, Q5_1, IQ4_NL (quant_legacy.c; fixtures in Fixtures/quant32).
    var isLegacy: Bool { [.q4_1, .q5_0, .q5_1, .iq4_nl].contains(self) }
    var description: String { rawValue }

    func rowBytes(_ values: Int) -> Int { Int(hk_quant_row_bytes(id, Int64(values))) }

    /// The single-row quantizer.
    func quantizeRow(_ x: UnsafePointer<Float>, _ y: UnsafeMutableRawPointer, _ n: Int) {
        switch self {
        case .q8_0: hk_quantize_row_q8_0(x, y, Int64(n))
        case .q4_0: hk_quantize_row_q4_0(x, y, Int64(n))
        case .q4_k: hk_quantize_row_q4_k(x, y, Int64(n))
        case .q6_k: hk_quantize_row_q6_k(x, y, Int64(n))
        case .q4_1: hk_quantize_row_q4_1(x, y, Int64(n))
        case .q5_0: hk_quantize_row_q5_0(x, y, Int64(n))
        case .q5_1: hk_quantize_row_q5_1(x, y, Int64(n))
        case .iq4_nl: hk_quantize_row_iq4_nl(x, y, Int64(n))
        case .q2_k: hk_quantize_row_q2_k(x, y, Int64(n))
        case .q3_k: hk_quantize_row_q3_k(x, y, Int64(n))
        case .q5_k: hk_quantize_row_q5_k(x, y, Int64(n))
        case .iq4_xs: hk_quantize_row_iq4_xs(x, y, Int64(n))
        }
    }
}

/// A random [out, in] weight matrix quantized with hk_quantize, and what it dequantizes to.
struct QuantizedMatrix {
    let type: QuantType
    let rows: Int
    let columns: Int
    var bytes: [UInt8]
    var values: [Float]

    init(_ type: QuantType, rows: Int, columns: Int, generator: inout SeededGenerator) {
        self.init(type, rows: rows, columns: columns, floats: generator.floats(rows * columns))
    }

    init(_ type: QuantType, rows: Int, columns: Int, floats: [Float]) {
        var bytes = [UInt8](repeating: 0, count: rows * type.rowBytes(columns))
        let status = bytes.withUnsafeMutableBytes {
            hk_quantize(type.id, floats, $0.baseAddress, Int64(rows), Int64(columns))
        }
        precondition(status == 0)
        self.init(type, rows: rows, columns: columns, bytes: bytes)
    }

    /// Blocks given as bytes.
    init(_ type: QuantType, rows: Int, columns: Int, bytes: [UInt8]) {
        precondition(bytes.count == rows * type.rowBytes(columns))
        self.type = type
        self.rows = rows
        self.columns = columns
        self.bytes = bytes
        values = [Float](repeating: 0, count: rows * columns)
        let rowBytes = type.rowBytes(columns)
        bytes.withUnsafeBytes { raw in
            values.withUnsafeMutableBufferPointer { out in
                for r in 0..<rows {
                    let row = raw.baseAddress! + r * rowBytes
                    _ = hk_dequantize_row(type.id, row, out.baseAddress! + r * columns, Int64(columns))
                }
            }
        }
    }
}

/// Which matrix product to run.
enum QuantProduct: Sendable { case rows, rowsReference, integerReference, many, manySgemm, manyReference }

func quantMultiply(_ product: QuantProduct, _ w: QuantizedMatrix, _ x: [Float], rows: Int) -> [Float] {
    var y = [Float](repeating: .nan, count: rows * w.rows)
    let (r, i, o) = (Int32(rows), Int32(w.columns), Int32(w.rows))
    let status = w.bytes.withUnsafeBytes { raw -> Int32 in
        let p = raw.baseAddress
        switch product {
        case .rows: return hk_matmul_rows_quant(w.type.id, p, x, &y, r, i, o)
        case .rowsReference: return hk_matmul_rows_quant_ref(w.type.id, p, x, &y, r, i, o)
        case .integerReference: return hk_matmul_quant_int_ref(w.type.id, p, x, &y, r, i, o)
        case .many: return hk_matmul_many_quant(w.type.id, p, x, &y, r, i, o)
        case .manySgemm: return hk_matmul_many_quant_sgemm(w.type.id, p, x, &y, r, i, o)
        case .manyReference: return hk_matmul_many_quant_ref(w.type.id, p, x, &y, r, i, o)
        }
    }
    #expect(status == 0, "\(product) \(w.type) status")
    return y
}

/// Per output: sum_i |w[o, i] * x[r, i]| (the scale of f32 rounding errors).
func quantMagnitudes(_ w: QuantizedMatrix, _ x: [Float], rows: Int) -> [Float] {
    var result = [Float](repeating: 0, count: rows * w.rows)
    for r in 0..<rows {
        for o in 0..<w.rows {
            var sum: Float = 0
            for i in 0..<w.columns { sum += abs(w.values[o * w.columns + i] * x[r * w.columns + i]) }
            result[r * w.rows + o] = sum
        }
    }
    return result
}

/// Worst-case effect of quantizing the activations: each value moves by at most half a step, amax / 254 of
/// its activation block (32 values for Q8_0/Q4_0, 256 for the K formats), so the product moves by at most
/// sum over blocks of amax / 254 * sum |w| (plus f32 rounding, covered by the caller's relative term).
func activationQuantizationBounds(_ w: QuantizedMatrix, _ x: [Float], rows: Int) -> [Float] {
    let block = w.type.activationBlock
    var result = [Float](repeating: 0, count: rows * w.rows)
    for r in 0..<rows {
        for o in 0..<w.rows {
            var bound: Float = 0
            for b in stride(from: 0, to: w.columns, by: block) {
                var amax: Float = 0, weights: Float = 0
                for i in b..<(b + block) {
                    amax = max(amax, abs(x[r * w.columns + i]))
                    weights += abs(w.values[o * w.columns + i])
                }
                bound += amax / 254 * weights
            }
            result[r * w.rows + o] = bound * 1.001
        }
    }
    return result
}

// MARK: - Fixtures

/// Tests/HoneKernelsTests/Fixtures/quant, made by tools/oracle/make_quant_fixtures.py; Fixtures/quant32 (the
/// 32-value types), made by tools/oracle/make_quant32_fixtures.py; and quant_k (the same inputs as quant through
/// llama-quantize to Q2_K, Q3_K, Q5_K, IQ4_XS, TQ1_0, TQ2_0), made by make_kquant_fixtures.py.
enum QuantFixtures {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures").appendingPathComponent("quant")
    static let legacyDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures").appendingPathComponent("quant32")
    static let kDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures").appendingPathComponent("quant_k")

    struct Tensor {
        let name: String
        let rows: Int
        let columns: Int
        let input: [Float]
        /// Type name -> bytes written by llama.cpp's llama-quantize.
        let llama: [String: [UInt8]]
        /// Type name -> bytes written by the gguf Python package (Q8_0, Q4_0).
        let ggufPy: [String: [UInt8]]
        /// Type name -> gguf-py's dequantization of the llama.cpp bytes (quant32 only).
        var dequantized: [String: [Float]] = [:]
    }

    /// The fixtures that hold `type`.
    static func load(for type: QuantType) throws -> [Tensor] {
        try load(from: type.isLegacy ? legacyDirectory : directory)
    }

    static func load(from directory: URL = directory) throws -> [Tensor] {
        func bytes(_ file: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: directory.appendingPathComponent(file))) }
        let data = try Data(contentsOf: directory.appendingPathComponent("index.json"))
        let index = try JSONSerialization.jsonObject(with: data)
        guard let root = index as? [String: Any], let tensors = root["tensors"] as? [[String: Any]] else {
            throw FixtureError.malformed
        }
        return try tensors.map { entry in
            guard let name = entry["name"] as? String, let rows = entry["rows"] as? Int,
                  let columns = entry["cols"] as? Int, let input = entry["input"] as? String,
                  let llama = entry["llama"] as? [String: String], let ggufPy = entry["gguf_py"] as? [String: String] else {
                throw FixtureError.malformed
            }
            let floats = try bytes(input).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            guard floats.count == rows * columns else { throw FixtureError.malformed }
            var llamaBytes = try llama.mapValues(bytes)
            if directory == QuantFixtures.directory {
                // quant_k holds llama-quantize's bytes of the same inputs in the K formats.
                for (type, file) in try kIndexTensor(name)?["llama"] as? [String: String] ?? [:] {
                    llamaBytes[type] = try kBytes(file)
                }
            }
            var tensor = Tensor(name: name, rows: rows, columns: columns, input: floats,
                                llama: llamaBytes, ggufPy: try ggufPy.mapValues(bytes))
            for (type, file) in entry["dequant"] as? [String: String] ?? [:] {
                tensor.dequantized[type] = try bytes(file).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            }
            return tensor
        }
    }

    /// quant_k/index.json.
    static func kIndex() throws -> [String: Any] {
        let data = try Data(contentsOf: kDirectory.appendingPathComponent("index.json"))
        guard let root = try JSONSerialization.jsonObject(with: data) as? [String: Any] else { throw FixtureError.malformed }
        return root
    }

    /// quant_k's entry for a tensor ("ffn_down", "ffn_up").
    static func kIndexTensor(_ name: String) throws -> [String: Any]? {
        (try kIndex()["tensors"] as? [[String: Any]])?.first { $0["name"] as? String == name }
    }

    static func kBytes(_ file: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: kDirectory.appendingPathComponent(file)))
    }

    static func bytes(_ file: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: directory.appendingPathComponent(file)))
    }

    enum FixtureError: Error { case malformed }
}

/// Expects equal bytes, reporting the count and the first difference (block index and offset in it).
func expectSameBytes(_ actual: [UInt8], _ expected: [UInt8], blockBytes: Int, _ context: @autoclosure () -> String,
                     sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(actual.count == expected.count, "\(context()): length", sourceLocation: sourceLocation)
    let differing = zip(actual, expected).enumerated().filter { $0.element.0 != $0.element.1 }
    if let first = differing.first {
        let message = "\(context()): \(differing.count) of \(expected.count) bytes differ; first in block "
            + "\(first.offset / blockBytes) at byte \(first.offset % blockBytes): "
            + "\(first.element.0) instead of \(first.element.1)"
        Issue.record(Comment(rawValue: message), sourceLocation: sourceLocation)
    }
}

/// IEEE half bits to Float, independently of the kernels (Swift's Float16 is not available on every platform).
func halfToFloat(_ bits: UInt16) -> Float {
    let sign: Float = bits & 0x8000 != 0 ? -1 : 1
    let exponent = Int((bits >> 10) & 0x1F), mantissa = Float(bits & 0x3FF)
    if exponent == 0 { return sign * mantissa * Float(sign: .plus, exponent: -24, significand: 1) }
    if exponent == 31 { return mantissa == 0 ? sign * .infinity : .nan }
    return sign * (1 + mantissa / 1024) * Float(sign: .plus, exponent: exponent - 15, significand: 1)
}
