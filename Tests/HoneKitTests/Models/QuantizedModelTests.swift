import Foundation
import Testing
@testable import HoneKit

/// Block-quantized GGUFs (ggml's layouts, written by the gguf package's reference quantizer) run end to end.
/// Serialized: one test switches the process-wide choice of quantized product.
@Suite(.serialized) struct QuantizedModelTests {
    func deviations(_ type: String, model: String = "llama-gqa") throws -> [Double] {
        let golden = try GoldenFile(name: "gguf-\(model)-\(type)")
        let loaded = try LoadedModel.open(golden.modelPath)
        if type != "iq-mix" {
            #expect(try loaded.weights.tensor("blk.0.ffn_up.weight").dtype.rawValue == type.uppercased())
        } else {
            #expect(try loaded.weights.tensor("blk.0.ffn_up.weight").dtype == .iq1_s)
            #expect(try loaded.weights.tensor("output.weight").dtype == .tq1_0)
        }
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

    // MARK: - K, IQ and TQ formats (llama-k256: widths of 256; tools/oracle/make_kquant_model_fixtures.py)

    /// llama-quantize's Q2_K, Q3_K, Q5_K and IQ4_XS files, and one file with a weight of each codebook / ternary
    /// format: with the reference product Hone equals transformers on gguf-py's dequantized weights.
    @Test(arguments: ["q2_k", "q3_k", "q5_k", "iq4_xs", "iq-mix"])
    func kFormatWeightsAreReadExactly(type: String) throws {
        let deviations = try Linear.$exactQuantizedProducts.withValue(true) { try self.deviations(type, model: "llama-k256") }
        #expect(deviations.max()! <= 1e-4)
    }

    /// The integer kernels (Q8_K activations, as llama.cpp) move log-probs by the activation rounding only. Blocks of
    /// 256 activations round more coarsely than llama-gqa's A32 blocks, and this model's log-probs are spread wider:
    /// measured max / mean 0.129 / 0.038 (Q2_K), 0.110 / 0.034 (Q3_K), 0.152 / 0.034 (Q5_K), 0.104 / 0.032 (IQ4_XS);
    /// the bounds are twice the max and 1.5 times the mean. The IQ/TQ mix dequantizes (no activation rounding):
    /// measured 4.8e-7, bound 1e-4.
    @Test(arguments: [("q2_k", 0.26, 0.06), ("q3_k", 0.22, 0.055), ("q5_k", 0.3, 0.055), ("iq4_xs", 0.21, 0.05),
                      ("iq-mix", 1e-4, 1e-4)])
    func kFormatKernelsStayWithinActivationQuantizationError(type: String, maxBound: Double, meanBound: Double) throws {
        let values = try deviations(type, model: "llama-k256")
        #expect(values.max()! <= maxBound)
        #expect(values.reduce(0, +) / Double(values.count) <= meanBound)
    }
}
