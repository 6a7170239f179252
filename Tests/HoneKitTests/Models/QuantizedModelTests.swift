import Foundation
import Testing
@testable import HoneKit

/// Block-quantized GGUFs (ggml's layouts, written by the gguf package's reference quantizer) run end to end.
/// Serialized: one test switches the process-wide choice of quantized product.
@Suite(.serialized) struct QuantizedModelTests {
    func deviations(_ type: String) throws -> [Double] {
        let golden = try GoldenFile(name: "gguf-llama-gqa-\(type)")
        let loaded = try LoadedModel.open(golden.modelPath)
        #expect(try loaded.weights.tensor("blk.0.ffn_up.weight").dtype.rawValue == type.uppercased())
        let scored = try Scorer(model: loaded.model).score(golden.rows.map(\.tokens))
        var result: [Double] = []
        for (row, values) in zip(golden.rows, scored) { result += zip(values, row.logprobs).map { abs(Double($0) - $1) } }
        #expect(result.count > 50)
        return result
    }

    /// With the reference product (dequantize, f32), Hone equals transformers on the dequantized weights: the
    /// blocks are read exactly.
    @Test(arguments: ["q8_0", "q4_0"])
    func weightsAreReadExactly(type: String) throws {
        // A task-local switch: tests running in parallel keep the integer kernels.
        let deviations = try Linear.$exactQuantizedProducts.withValue(true) { try self.deviations(type) }
        #expect(deviations.max()! <= 1e-4)
    }

    /// The integer kernels quantize activations to 8 bits, as llama.cpp does. On this tiny random model (log-prob
    /// spread ~2) that moves log-probs by at most 0.071 / 0.096 and 0.027 / 0.030 on average (Q8_0 / Q4_0),
    /// measured; the bounds are twice that.
    @Test(arguments: [("q8_0", 0.14, 0.055), ("q4_0", 0.19, 0.06)])
    func integerKernelsStayWithinActivationQuantizationError(type: String, maxBound: Double, meanBound: Double) throws {
        let values = try deviations(type)
        #expect(values.max()! <= maxBound)
        #expect(values.reduce(0, +) / Double(values.count) <= meanBound)
    }
}
