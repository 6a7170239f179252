import ArgumentParser
import HoneKit

/// Sampling flags shared by generate and chat (HF generate's names and semantics).
struct SamplingOptions: ParsableArguments {
    @Option(name: .long, help: "Sampling temperature; 0 means greedy.")
    var temperature: Float = 0

    @Option(name: [.customLong("top-k"), .customLong("top_k")], help: "Keep the k most likely tokens (0: off).")
    var topK = 0

    @Option(name: [.customLong("top-p"), .customLong("top_p")], help: "Keep the smallest set with this much probability (1: off).")
    var topP: Float = 1

    @Option(name: [.customLong("min-p"), .customLong("min_p")], help: "Drop tokens below this fraction of the top probability (0: off).")
    var minP: Float = 0

    @Option(name: [.customLong("repetition-penalty"), .customLong("repetition_penalty")], help: "HF repetition penalty (1: off).")
    var repetitionPenalty: Float = 1

    @Option(name: .long, help: "Random seed: the same seed gives the same text.")
    var seed: UInt64 = 0

    @Option(name: [.customLong("max-new-tokens"), .customLong("max_new_tokens")], help: "Most tokens to generate per answer.")
    var maxNewTokens: Int?

    @Option(name: .long, help: "Stop when this text is generated (repeatable; it is not printed).")
    var stop: [String] = []

    func validate() throws {
        guard temperature >= 0, topK >= 0, topP > 0, topP <= 1, minP >= 0, minP <= 1, repetitionPenalty > 0 else {
            throw ValidationError("sampling options out of range (temperature ≥ 0, top-k ≥ 0, 0 < top-p ≤ 1, 0 ≤ min-p ≤ 1, repetition-penalty > 0)")
        }
        // The library's own checks (finite temperature and penalty), as the server applies them.
        do { try parameters.validate() } catch let error as HoneError { throw ValidationError(error.description) }
        if let maxNewTokens, maxNewTokens < 1 { throw ValidationError("--max-new-tokens must be at least 1") }
    }

    var parameters: SamplingParameters {
        var parameters = SamplingParameters()
        parameters.temperature = temperature
        parameters.topK = topK
        parameters.topP = topP
        parameters.minP = minP
        parameters.repetitionPenalty = repetitionPenalty
        parameters.seed = seed
        return parameters
    }
}
