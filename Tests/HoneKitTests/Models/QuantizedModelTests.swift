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
    @Test(arguments: ["q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "iq4_nl"])
    func weightsAreReadExactly(type: String) throws {
        // A task-local switch: tests running in parallel keep the integer kernels.
        let deviations = try Linear.$exactQuantizedProducts.withValue(true) { try self.deviations(type) }
        #expect(deviations.max()! <= 1e-4)
    }

    /// The integer kernels quantize activations to 8 bits, as llama.cpp does. On this tiny random model (log-prob
    /// spread ~2) that moves log-probs by at most 0.071 / 0.096 and 0.027 / 0.030 on average (Q8_0 / Q4_0),
    /// measured; Q4_1, Q5_0, Q5_1, IQ4_NL (files by llama-quantize, make_quantized_model_fixtures32.py): at most
    /// 0.140 / 0.104 / 0.100 / 0.114, on average 0.029 / 0.026 / 0.026 / 0.026. The bounds are twice that.
    @Test(arguments: [("q8_0", 0.14, 0.055), ("q4_0", 0.19, 0.06), 
                      ("q4_1", 0.28, 0.06), ("q5_0", 0.21, 0.052), ("q5_1", 0.2, 0.052), ("iq4_nl", 0.23, 0.053)])
    func integerKernelsStayWithinActivationQuantizationError(type: String, maxBound: Double, meanBound: Double) throws {
        let values = try deviations(type)
        #expect(values.max()! <= maxBound)
        #expect(values.reduce(0, +) / Double(values.count) <= meanBound)
    }
}
