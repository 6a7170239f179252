import Foundation
import HoneKernels

/// Token rows and, for each row, the positions whose next token is a target: position p predicts targets[i]
/// = row[p + 1] (or, for an objective that scores other tokens, any id).
public struct TargetedRow: Sendable {
    public var tokens: [Int32]
    /// (position, target token) pairs.
    public var targets: [(position: Int, token: Int32)]

    public init(tokens: [Int32], targets: [(position: Int, token: Int32)]) {
        self.tokens = tokens
        self.targets = targets
    }

    /// HF's causal-LM convention: labels[t] = -100 masks token t; position t − 1 predicts labels[t].
    public init(tokens: [Int32], labels: [Int32]) {
        self.tokens = tokens
        var targets: [(Int, Int32)] = []
        for position in 1..<max(1, tokens.count) where labels[position] != -100 {
            targets.append((position - 1, labels[position]))
        }
        self.targets = targets
    }
}

/// The one forward/backward that every objective shares (DESIGN "How data flows" 4): objectives differ only
/// in which rows they run and how they combine the rows' target log-probabilities into a loss.
public final class TrainingEngine: @unchecked Sendable {
    let model: TrainableModel
    public let adapters: AdapterSet
    public var gradientCheckpointing = false
    /// Largest number of activation bytes a forward pass has held (for reports).
    public private(set) var peakActivationBytes = 0

    init(model: TrainableModel, adapters: AdapterSet) {
        self.model = model
        self.adapters = adapters
        model.adapters = adapters
    }

    public convenience init(loaded: LoadedModel, adapters: AdapterSet) throws {
        guard let trainable = loaded.model as? TrainableModel else {
            throw HoneError.invalidArgument("training \(loaded.config.modelType) models is not supported yet")
        }
        self.init(model: trainable, adapters: adapters)
    }

    public var config: ModelConfig { model.config }

    /// Target log-probabilities of each row without gradients (evaluation; DPO's reference with the adapter off).
    public func logProbabilities(_ rows: [TargetedRow], adapterEnabled: Bool = true) throws -> [[Float]] {
        let wasEnabled = adapters.isEnabled
        let wasTraining = adapters.isTraining
        adapters.isEnabled = adapterEnabled
        adapters.isTraining = false
        defer {
            adapters.isEnabled = wasEnabled
            adapters.isTraining = wasTraining
        }
        return try inferenceLogProbabilities(rows)
    }

    /// Target log-probabilities without gradients with `reference` attached in place of the trained adapters
    /// (nil: the base alone). DPO's reference when training continues from an adapter: the base plus a frozen
    /// copy of the starting adapter (TRL's "ref" adapter), while the trained one stays untouched.
    public func logProbabilities(_ rows: [TargetedRow], reference: AdapterSet?) throws -> [[Float]] {
        guard let reference else { return try logProbabilities(rows, adapterEnabled: false) }
        let attached = model.adapters
        let wasTraining = reference.isTraining
        model.adapters = reference
        reference.isTraining = false
        defer {
            model.adapters = attached
            reference.isTraining = wasTraining
        }
        return try inferenceLogProbabilities(rows)
    }

    private func inferenceLogProbabilities(_ rows: [TargetedRow]) throws -> [[Float]] {
        let hidden = try model.forward(rows.map { SequenceInput(tokens: $0.tokens, cache: model.makeCache()) })
        let (sources, targets) = flatten(rows, offsets: hidden.sequenceOffsets)
        let flat = TargetLogProbabilities(model: model).forward(hidden: hidden.values.pointer, width: hidden.width,
                                                                  rows: sources, targets: targets)
        return split(flat, like: rows)
    }

    /// Forward and backward of one micro-batch with the adapter training. `coefficients` receives the rows' target
    /// log-probabilities and returns ∂L/∂logp for each of them (same shape); `fixedCoefficients`, when the
    /// coefficients are known before the pass, saves computing the logits twice. The adapters' gradients are
    /// accumulated. Returns the log-probabilities.
    @discardableResult
    public func accumulateGradients(_ rows: [TargetedRow], fixedCoefficients: [[Float]]? = nil,
                                    coefficients: ([[Float]]) throws -> [[Float]] = { $0 }) throws -> [[Float]] {
        adapters.isTraining = true
        defer { adapters.isTraining = false }
        let layout = PassLayout(counts: rows.map(\.tokens.count), starts: Array(repeating: 0, count: rows.count))
        let pass = try model.trainingForward(tokens: rows.flatMap(\.tokens), layout: layout, checkpointing: gradientCheckpointing)
        peakActivationBytes = max(peakActivationBytes, pass.byteCount)
        let (sources, targets) = flatten(rows, offsets: layout.offsets)
        let head = TargetLogProbabilities(model: model)
        let width = pass.hidden.count / max(1, layout.total)
        let hiddenGradient = FloatBuffer(zeros: pass.hidden.count)
        let logprobs: [[Float]]
        if let fixedCoefficients {
            // Coefficients that do not depend on the log-probs (SFT): one pass over the logits.
            let flat = head.backward(hidden: pass.hidden.pointer, width: width, rows: sources, targets: targets,
                                     coefficients: fixedCoefficients.flatMap { $0 }, hiddenGradient: hiddenGradient.pointer)
            logprobs = split(flat, like: rows)
        } else {
            logprobs = split(head.forward(hidden: pass.hidden.pointer, width: width, rows: sources, targets: targets), like: rows)
            let flatCoefficients = try coefficients(logprobs).flatMap { $0 }
            precondition(flatCoefficients.count == sources.count, "one coefficient per target")
            _ = head.backward(hidden: pass.hidden.pointer, width: width, rows: sources, targets: targets,
                              coefficients: flatCoefficients, hiddenGradient: hiddenGradient.pointer)
        }
        model.trainingBackward(pass, hiddenGradient: hiddenGradient.pointer)
        return logprobs
    }

    private func flatten(_ rows: [TargetedRow], offsets: [Int]) -> ([Int], [Int32]) {
        var sources: [Int] = []
        var targets: [Int32] = []
        for (row, offset) in zip(rows, offsets) {
            for target in row.targets {
                sources.append(offset + target.position)
                targets.append(target.token)
            }
        }
        return (sources, targets)
    }

    private func split(_ flat: [Float], like rows: [TargetedRow]) -> [[Float]] {
        var result: [[Float]] = []
        var start = 0
        for row in rows {
            result.append(Array(flat[start..<(start + row.targets.count)]))
            start += row.targets.count
        }
        return result
    }
}
