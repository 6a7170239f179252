import Foundation
import HoneKernels

// MARK: - Learning-rate schedules

/// transformers' schedules (optimization.py) as a multiplier of the peak rate at optimizer step `step`
/// (0-based: the first update uses step 0, so a warm-up starts at 0, as LambdaLR does).
public enum LearningRateSchedule: String, Sendable, CaseIterable {
    case linear, cosine, constant

    public func factor(step: Int, warmupSteps: Int, totalSteps: Int) -> Double {
        if step < warmupSteps { return Double(step) / Double(max(1, warmupSteps)) }
        switch self {
        case .constant:
            return 1
        case .linear:
            return max(0, Double(totalSteps - step) / Double(max(1, totalSteps - warmupSteps)))
        case .cosine:
            let progress = Double(step - warmupSteps) / Double(max(1, totalSteps - warmupSteps))
            return max(0, 0.5 * (1 + cos(Double.pi * 0.5 * 2 * progress)))
        }
    }
}

// MARK: - AdamW

/// torch.optim.AdamW over every LoRA factor, with the moments in f32 (decoupled weight decay, bias correction).
public final class AdamWOptimizer: @unchecked Sendable {
    public var beta1 = 0.9
    public var beta2 = 0.999
    public var epsilon = 1e-8
    public var weightDecay: Double
    /// Updates done so far (torch's `step` state, the same for every parameter).
    public internal(set) var step = 0
    /// First and second moments, one pair per parameter tensor in `AdapterSet.ordered` order (A then B).
    var moments: [(first: FloatBuffer, second: FloatBuffer)]
    let parameters: [(value: FloatBuffer, gradient: FloatBuffer)]

    public init(adapters: AdapterSet, weightDecay: Double) {
        self.weightDecay = weightDecay
        var parameters: [(FloatBuffer, FloatBuffer)] = []
        for (_, _, adapter) in adapters.ordered {
            adapter.allocateGradients()
            parameters.append((adapter.a, adapter.gradientA!))
            parameters.append((adapter.b, adapter.gradientB!))
        }
        // Fully trained modules (a reward model's score head) after every LoRA factor.
        for module in adapters.savedModules {
            module.allocateGradient()
            parameters.append((module.weight, module.gradient!))
        }
        self.parameters = parameters
        moments = parameters.map { (FloatBuffer(zeros: $0.0.count), FloatBuffer(zeros: $0.0.count)) }
    }

    /// √(Σ g²) over every gradient, as clip_grad_norm_ reports it.
    public func gradientNorm() -> Double {
        parameters.reduce(0) { $0 + hk_sum_squares($1.gradient.pointer, $1.gradient.count) }.squareRoot()
    }

    /// Scales gradients down so their global norm is at most `maxNorm` (torch: coefficient max/(norm + 1e-6),
    /// applied only when below 1). Returns the norm before clipping.
    @discardableResult
    public func clipGradients(maxNorm: Double) -> Double {
        let norm = gradientNorm()
        guard maxNorm > 0 else { return norm }
        let coefficient = maxNorm / (norm + 1e-6)
        if coefficient < 1 {
            for parameter in parameters { hk_scale(parameter.gradient.pointer, Float(coefficient), parameter.gradient.count) }
        }
        return norm
    }

    public func update(learningRate: Double) {
        step += 1
        for (parameter, moment) in zip(parameters, moments) {
            hk_adamw_step_f64(parameter.value.pointer, parameter.gradient.pointer, moment.first.pointer, moment.second.pointer,
                              parameter.value.count, learningRate, beta1, beta2, epsilon, weightDecay, Int32(step))
        }
    }

    /// Elements of every parameter tensor together.
    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.gradient.count } }

    /// Adds every gradient, in parameter order, into `sum` (parameterCount elements).
    func addGradients(into sum: inout [Float]) {
        sum.withUnsafeMutableBufferPointer { total in
            var offset = 0
            for parameter in parameters {
                let gradient = parameter.gradient.pointer
                for position in 0..<parameter.gradient.count { total[offset + position] += gradient[position] }
                offset += parameter.gradient.count
            }
        }
    }

    /// The gradients flattened in parameter order; the buffers are zeroed for the next micro-batch.
    func takeGradients() -> [Float] {
        var flat = [Float](repeating: 0, count: parameterCount)
        addGradients(into: &flat)
        zeroGradients()
        return flat
    }

    /// Sets every gradient from a flat array in parameter order.
    func setGradients(_ flat: [Float]) {
        var offset = 0
        for parameter in parameters {
            flat.withUnsafeBufferPointer { (parameter.gradient.pointer).update(from: $0.baseAddress! + offset, count: parameter.gradient.count) }
            offset += parameter.gradient.count
        }
    }

    public func zeroGradients() {
        for parameter in parameters { parameter.gradient.pointer.update(repeating: 0, count: parameter.gradient.count) }
    }
}
