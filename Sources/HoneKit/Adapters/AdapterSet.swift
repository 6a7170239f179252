import Foundation
import HoneKernels

// MARK: - The adapters of a model

/// All LoRA adapters attached to a model, keyed by layer and module name.
public final class AdapterSet: @unchecked Sendable {
    public let configuration: LoRAConfiguration
    public let modules: AdaptableModules
    public let layerCount: Int
    /// adapters[layer][name]
    public private(set) var adapters: [[String: LoRAAdapter]]
    /// Switched off, the model runs as its base (DPO's reference pass).
    public var isEnabled = true
    /// Set by the trainer: dropout is applied (and tapes are kept) only while training.
    public var isTraining = false
    /// Seeds dropout masks; the trainer sets it per micro-batch so masks regenerate identically in backward.
    public var dropoutSeed: UInt64 = 0
    /// For modules whose stored weight rows are in another order than HF's (Q and K in llama.cpp's GGUF files,
    /// permuted for its interleaved rotation): hfRow[storedRow]. B's rows follow the stored order in memory and
    /// HF's order in PEFT files, so adapters move between HF and GGUF bases.
    public var rowOrders: [String: [Int]] = [:]
    /// Modules trained in full and saved with the adapter (PEFT's `modules_to_save`: a reward model's score head).
    public var savedModules: [SavedModule] = []

    public init(configuration: LoRAConfiguration, modules: AdaptableModules, layerCount: Int) {
        self.configuration = configuration
        self.modules = modules
        self.layerCount = layerCount
        adapters = Array(repeating: [:], count: layerCount)
    }

    public func adapter(layer: Int, module: String) -> LoRAAdapter? {
        guard isEnabled, layer < adapters.count else { return nil }
        return adapters[layer][module]
    }

    func attach(_ adapter: LoRAAdapter, layer: Int, module: String) {
        adapters[layer][module] = adapter
    }

    /// Every adapter in a fixed order (layer, then the architecture's module order): the order of parameters for
    /// the optimizer, checkpoints and files.
    public var ordered: [(layer: Int, module: String, adapter: LoRAAdapter)] {
        var result: [(Int, String, LoRAAdapter)] = []
        for layer in 0..<adapters.count {
            for name in modules.names {
                if let adapter = adapters[layer][name] { result.append((layer, name, adapter)) }
            }
        }
        return result
    }

    /// The PEFT name of the first factor (in `ordered` order, A before B) whose gradient holds a NaN or an infinity;
    /// nil when every gradient is finite.
    public func firstNonFiniteGradient() -> String? {
        for (layer, module, adapter) in ordered {
            for (name, gradient) in [("lora_A", adapter.gradientA), ("lora_B", adapter.gradientB)] {
                guard let gradient, !hk_sum_squares(gradient.pointer, gradient.count).isFinite else { continue }
                return "\(peftPrefix(layer: layer, module: module)).\(name).weight"
            }
        }
        for module in savedModules {
            if let gradient = module.gradient, !hk_sum_squares(gradient.pointer, gradient.count).isFinite { return module.peftKey }
        }
        return nil
    }

    public var parameterCount: Int {
        ordered.reduce(0) { $0 + $1.adapter.a.count + $1.adapter.b.count } + savedModules.reduce(0) { $0 + $1.weight.count }
    }

    /// An independent copy of the factors (no gradients): a frozen snapshot, such as DPO's reference adapter.
    public func copy() -> AdapterSet {
        let copied = AdapterSet(configuration: configuration, modules: modules, layerCount: layerCount)
        for (layer, module, adapter) in ordered {
            let twin = LoRAAdapter(inFeatures: adapter.inFeatures, outFeatures: adapter.outFeatures, rank: adapter.rank,
                                   scale: adapter.scale)
            twin.a.pointer.update(from: adapter.a.pointer, count: adapter.a.count)
            twin.b.pointer.update(from: adapter.b.pointer, count: adapter.b.count)
            copied.attach(twin, layer: layer, module: module)
        }
        copied.savedModules = savedModules.map { $0.copy() }
        return copied
    }

    /// The PEFT key prefix of one adapted module ("base_model.model.model.layers.3.self_attn.q_proj").
    public func peftPrefix(layer: Int, module: String) -> String {
        "base_model.model." + modules.path(layer, module)
    }

    /// A seed for the dropout mask of one adapted module in the current micro-batch.
    func dropoutSeed(layer: Int, module: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325 ^ dropoutSeed
        for byte in "\(layer).\(module)".utf8 {
            hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01b3
        }
        return hash
    }

    /// New adapters on `targetModules` of every layer with PEFT's initialisation, seeded.
    public static func makeNew(configuration: LoRAConfiguration, model: CausalLanguageModel, seed: UInt64) throws -> AdapterSet {
        let config = model.config
        let modules = config.architecture.adaptableModules
        for target in configuration.targetModules where !modules.names.contains(target) {
            throw HoneError.invalidArgument(
                "unknown LoRA target module '\(target)' for \(config.modelType); choose from \(modules.names.joined(separator: ", "))")
        }
        // B·A has rank at most min(in, out): a rank past the model's widest matrix only allocates (2^31 asked for
        // a terabyte; 2^63 overflowed).
        let widest = max(config.hiddenSize, config.intermediateSize)
        guard (1...widest).contains(configuration.rank) else {
            throw HoneError.invalidArgument("the LoRA rank (lora_r) must be between 1 and \(widest), the model's widest matrix, not \(configuration.rank)")
        }
        guard configuration.alpha.isFinite else {
            throw HoneError.invalidArgument("lora_alpha must be a finite number, not \(configuration.alpha)")
        }
        guard configuration.dropout.isFinite, (0...1).contains(configuration.dropout) else {
            throw HoneError.invalidArgument("lora_dropout must be between 0 and 1, not \(configuration.dropout)")
        }
        let set = AdapterSet(configuration: configuration, modules: modules, layerCount: config.layerCount)
        set.rowOrders = (model as? AdaptableModel)?.storedRowOrders ?? [:]
        var generator = SplitMix64(seed: seed)
        for layer in 0..<config.layerCount {
            for name in modules.names where configuration.targetModules.contains(name) {
                let (outFeatures, inFeatures) = try linearShape(model: model, layer: layer, module: name)
                let adapter = LoRAAdapter(inFeatures: inFeatures, outFeatures: outFeatures, rank: configuration.rank,
                                          scale: configuration.scale)
                adapter.initialise(using: &generator)
                set.attach(adapter, layer: layer, module: name)
            }
        }
        return set
    }

    /// [out, in] of a module's base weight.
    static func linearShape(model: CausalLanguageModel, layer: Int, module: String) throws -> (Int, Int) {
        guard let adaptable = model as? AdaptableModel, let linear = adaptable.baseLinear(layer: layer, module: module) else {
            throw HoneError.invalidArgument("\(model.config.modelType) has no module '\(module)' in layer \(layer)")
        }
        return (linear.outFeatures, linear.inFeatures)
    }
}

// MARK: - Applying adapters in forward and backward passes

extension AdapterSet: LinearAdapters {
    /// y += s·(dropout(x) Aᵀ) Bᵀ for the adapter of `module`, if any. With a tape, keeps the LoRA projection u there.
    public func addForward(layer: Int, module: String, input x: UnsafePointer<Float>, rows: Int,
                           into y: UnsafeMutablePointer<Float>, tape: LayerTape?) {
        guard let adapter = adapter(layer: layer, module: module) else { return }
        let projected = tape?.projection(module, rows: rows, rank: adapter.rank) ?? FloatBuffer(count: rows * adapter.rank)
        let dropout = isTraining ? Float(configuration.dropout) : 0
        if dropout > 0 {
            let dropped = FloatBuffer(count: rows * adapter.inFeatures)
            hk_dropout(x, dropped.pointer, rows * adapter.inFeatures, dropout, dropoutSeed(layer: layer, module: module), 0)
            adapter.addForward(dropped.pointer, rows: rows, into: y, projected: projected.pointer)
        } else {
            adapter.addForward(x, rows: rows, into: y, projected: projected.pointer)
        }
    }

    /// dx += the LoRA branch's input gradient (through the same dropout mask); accumulates ∂A and ∂B.
    public func addBackward(layer: Int, module: String, input x: UnsafePointer<Float>, outputGradient dy: UnsafePointer<Float>,
                            rows: Int, inputGradient dx: UnsafeMutablePointer<Float>, tape: LayerTape) {
        guard let adapter = adapter(layer: layer, module: module) else { return }
        let count = rows * adapter.inFeatures
        let dropout = isTraining ? Float(configuration.dropout) : 0
        let seed = dropoutSeed(layer: layer, module: module)
        let scratch = FloatBuffer(count: rows * adapter.rank)
        let branch = FloatBuffer(count: count)
        guard let projected = tape.projections[module] else { preconditionFailure("no LoRA projection kept for \(module)") }
        if dropout > 0 {
            let dropped = FloatBuffer(count: count)
            hk_dropout(x, dropped.pointer, count, dropout, seed, 0)
            adapter.backward(outputGradient: dy, input: dropped.pointer, projected: projected.pointer, rows: rows,
                             inputGradient: branch.pointer, scratch: scratch.pointer)
            // The same mask scales the branch's gradient on its way back to x.
            hk_dropout(branch.pointer, branch.pointer, count, dropout, seed, 0)
        } else {
            adapter.backward(outputGradient: dy, input: x, projected: projected.pointer, rows: rows,
                             inputGradient: branch.pointer, scratch: scratch.pointer)
        }
        hk_add(dx, branch.pointer, count)
    }
}
