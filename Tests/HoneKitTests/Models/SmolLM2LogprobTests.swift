import Foundation
import Testing
@testable import HoneKit

/// The default model's log-probs against transformers, which reads the same Q4_1 GGUF itself (gguf-py dequantizes
/// it) and runs its own forward pass (Fixtures/smollm2/transformers-logprobs.json, made by
/// tools/oracle/make_smollm2_logprob_fixtures.py). Skipped when the model file is absent.
@Suite(.serialized) struct SmolLM2LogprobTests {
    static func rows() throws -> [(tokens: [Int32], logprobs: [Double])] {
        let data = try Data(contentsOf: URL(fileURLWithPath: Repository.fixture("smollm2/transformers-logprobs.json")))
        let root = try JSONSerialization.jsonObject(with: data) as! [String: Any]
        return (root["rows"] as! [[String: Any]]).map { row in
            ((row["tokens"] as! [Int]).map(Int32.init), (row["logprobs"] as! [Any]).dropFirst().map { ($0 as! NSNumber).doubleValue })
        }
    }

    /// |Hone − transformers| over every scored token, with the products as `exact` says.
    func deviations(exact: Bool) throws -> [Double] {
        let loaded = try LoadedModel.open(SmolLM2Tests.modelPath)
        let rows = try Self.rows()
        let scored = try Linear.$exactQuantizedProducts.withValue(exact) {
            try Scorer(model: loaded.model).score(rows.map(\.tokens))
        }
        var result: [Double] = []
        for (row, values) in zip(rows, scored) {
            result += zip(values, row.logprobs).map { abs(Double($0) - $1) }
        }
        #expect(result.count > 60 && zip(rows, scored).allSatisfy { $0.logprobs.count == $1.count })
        return result
    }

    /// Dequantized products in f32: the Q4_1 blocks, the permuted Q/K rows and the forward pass agree with
    /// transformers to f32 rounding (measured: at most 1.9e-5, mean 6.8e-6, over 30 layers).
    @Test(.enabled(if: SmolLM2Tests.modelPresent, "models/SmolLM2-135M-Instruct.Q4_1.gguf is absent (tools/fetch-default-model)"))
    func dequantizedProductsEqualTransformers() throws {
        #expect(try deviations(exact: true).max()! <= 1e-4)
    }

    /// The integer kernels quantize activations to 8 bits, as llama.cpp does: within that error of transformers
    /// (measured: at most 0.25, mean 0.040; the bounds are twice that).
    @Test(.enabled(if: SmolLM2Tests.modelPresent, "models/SmolLM2-135M-Instruct.Q4_1.gguf is absent (tools/fetch-default-model)"))
    func integerKernelsStayWithinActivationQuantizationError() throws {
        let values = try deviations(exact: false)
        #expect(values.max()! <= 0.5)
        #expect(values.reduce(0, +) / Double(values.count) <= 0.081)
    }
}
