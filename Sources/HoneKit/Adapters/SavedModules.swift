import Foundation
import HoneKernels

// MARK: - Fully trained modules beside the LoRA factors

/// A module PEFT trains in full beside the LoRA factors and saves with the adapter (`modules_to_save`): a reward
/// model's score head. Its weight is a trained copy; the base's own (if any) stays untouched.
public final class SavedModule: @unchecked Sendable {
    /// PEFT's module name ("score"); the saved key is `base_model.model.<name>.weight`.
    public let name: String
    /// Shape of the weight, [out, in].
    public let shape: [Int]
    public let weight: FloatBuffer
    public private(set) var gradient: FloatBuffer?

    public init(name: String, shape: [Int], weight: FloatBuffer) {
        precondition(shape.reduce(1, *) == weight.count, "the weight must match its shape")
        self.name = name
        self.shape = shape
        self.weight = weight
    }

    /// The key PEFT's `save_pretrained` writes for this module's weight.
    public var peftKey: String { "base_model.model.\(name).weight" }

    func allocateGradient() {
        if gradient == nil { gradient = FloatBuffer(zeros: weight.count) }
    }

    /// An independent copy of the weight (no gradient).
    func copy() -> SavedModule {
        let twin = FloatBuffer(count: weight.count)
        twin.pointer.update(from: weight.pointer, count: weight.count)
        return SavedModule(name: name, shape: shape, weight: twin)
    }
}

extension AdapterSet {
    /// The fully trained module `name`, if the adapter has one.
    public func savedModule(_ name: String) -> SavedModule? {
        savedModules.first { $0.name == name }
    }

    /// The score head of a sequence-classification base, with this adapter's trained copy of its weight when it
    /// has one (`modules_to_save = ["score"]`). The copy must have the base head's shape (an adapter from
    /// elsewhere may not).
    public func scoreHead(over base: ScoreHead) throws -> ScoreHead {
        guard isEnabled, let module = savedModule(ScoreHead.moduleName) else { return base }
        try requireScoreShape(module, [base.labels, base.width])
        return base.with(weight: module.weight)
    }

    /// Refuses a saved score head whose shape is not the model's (`expected`: [labels, hidden width]).
    func requireScoreShape(_ module: SavedModule, _ expected: [Int]) throws {
        guard module.shape == expected else {
            throw HoneError.invalidArgument("the adapter's score head is [\(module.shape.map(String.init).joined(separator: ", "))]; "
                                            + "the model needs [\(expected.map(String.init).joined(separator: ", "))]")
        }
    }
}
