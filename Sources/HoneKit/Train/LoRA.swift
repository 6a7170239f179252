import CBLAS
import Foundation
import HoneKernels

// MARK: - Configuration

/// LoRA hyper-parameters with PEFT's meaning (spec §5): h = W₀x + s·B(A(dropout(x))), s = alpha / r, or
/// alpha / √r with rsLoRA.
public struct LoRAConfiguration: Sendable, Equatable {
    public var rank: Int
    public var alpha: Double
    public var dropout: Double
    /// Module names as PEFT's `target_modules` spells them (q_proj, v_proj, ...).
    public var targetModules: [String]
    public var useRSLoRA: Bool

    public init(rank: Int = 8, alpha: Double = 16, dropout: Double = 0.05, targetModules: [String] = ["q_proj", "v_proj"],
                useRSLoRA: Bool = false) {
        self.rank = rank
        self.alpha = alpha
        self.dropout = dropout
        self.targetModules = targetModules
        self.useRSLoRA = useRSLoRA
    }

    public var scale: Float {
        Float(useRSLoRA ? alpha / Double(rank).squareRoot() : alpha / Double(rank))
    }
}

// MARK: - One adapted linear layer

/// The two LoRA factors of one linear layer, in f32, with their gradients and AdamW moments while training.
public final class LoRAAdapter: @unchecked Sendable {
    public let inFeatures: Int
    public let outFeatures: Int
    public let rank: Int
    public let scale: Float
    /// A: [rank, in]
    public let a: FloatBuffer
    /// B: [out, rank]
    public let b: FloatBuffer
    /// Gradients, same shapes as A and B; allocated when training starts.
    public private(set) var gradientA: FloatBuffer?
    public private(set) var gradientB: FloatBuffer?

    public init(inFeatures: Int, outFeatures: Int, rank: Int, scale: Float) {
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        self.rank = rank
        self.scale = scale
        a = FloatBuffer(zeros: rank * inFeatures)
        b = FloatBuffer(zeros: outFeatures * rank)
    }

    /// PEFT's default initialisation: A ~ U(−1/√in, 1/√in) (kaiming_uniform with a = √5), B = 0, so the adapter
    /// starts as an exact no-op.
    func initialise(using generator: inout SplitMix64) {
        let bound = 1 / Float(inFeatures).squareRoot()
        for index in 0..<a.count {
            let unit = Float(generator.next() >> 40) / Float(1 << 24)
            a[index] = (2 * unit - 1) * bound
        }
        b.pointer.update(repeating: 0, count: b.count)
    }

    func allocateGradients() {
        if gradientA == nil {
            gradientA = FloatBuffer(zeros: a.count)
            gradientB = FloatBuffer(zeros: b.count)
        }
    }

    func zeroGradients() {
        gradientA?.pointer.update(repeating: 0, count: a.count)
        gradientB?.pointer.update(repeating: 0, count: b.count)
    }

    // MARK: Forward and backward

    /// y: [rows, out] += s · (x' Aᵀ) Bᵀ, where x' is x with dropout applied; also returns u = x' Aᵀ: [rows, rank]
    /// in `projected`, which backward needs.
    func addForward(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>,
                    projected: UnsafeMutablePointer<Float>) {
        if rows <= Linear.rowKernelLimit {
            // Decoding: the row kernel gives each row the same bits whatever the batch, as the base layers do, so
            // batched greedy generation with an adapter equals generating each prompt alone.
            hk_matmul_rows_f32(a.pointer, x, projected, Int32(rows), Int32(inFeatures), Int32(rank))
            let branch = FloatBuffer(count: rows * outFeatures)
            hk_matmul_rows_f32(b.pointer, projected, branch.pointer, Int32(rows), Int32(rank), Int32(outFeatures))
            cblas_saxpy(Int32(rows * outFeatures), scale, branch.pointer, 1, y, 1)
            return
        }
        hk_sgemm_nt(x, a.pointer, projected, Int32(rows), Int32(inFeatures), Int32(rank), Int32(rank), 0)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(outFeatures), Int32(rank), scale,
                    projected, Int32(rank), b.pointer, Int32(rank), 1, y, Int32(outFeatures))
    }

    /// Given dy: [rows, out], the layer input x' (after dropout) and u = x' Aᵀ from forward: accumulates ∂L/∂A and
    /// ∂L/∂B, and writes the LoRA branch's input gradient (dy B s) A: [rows, in] into `inputGradient`
    /// (before dropout's mask, which the caller applies). `scratch`: [rows, rank].
    func backward(outputGradient dy: UnsafePointer<Float>, input x: UnsafePointer<Float>, projected u: UnsafePointer<Float>,
                  rows: Int, inputGradient: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>) {
        guard let gradientA, let gradientB else { preconditionFailure("gradients not allocated") }
        let (m, n, r) = (Int32(rows), Int32(inFeatures), Int32(rank))
        let out = Int32(outFeatures)
        // ∂B: [out, rank] += s · dyᵀ u
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, r, m, scale, dy, out, u, r, 1, gradientB.pointer, r)
        // du: [rows, rank] = s · dy B
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, r, out, scale, dy, out, b.pointer, r, 0, scratch, r)
        // ∂A: [rank, in] += duᵀ x'
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, r, n, m, 1, scratch, r, x, n, 1, gradientA.pointer, n)
        // dx': [rows, in] = du A
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, r, 1, scratch, r, a.pointer, n, 0, inputGradient, n)
    }

    /// W: [out, in] += s · B A, in f32 (PEFT's merge).
    func addDelta(into weight: UnsafeMutablePointer<Float>) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(outFeatures), Int32(inFeatures), Int32(rank), scale,
                    b.pointer, Int32(rank), a.pointer, Int32(inFeatures), 1, weight, Int32(inFeatures))
    }
}

// MARK: - The adapters of a model

/// Where an architecture's linear layers live in HF's module tree, for PEFT's key names and `target_modules`.
public struct AdaptableModules: Sendable {
    /// Module names a user may target, as PEFT spells them, in the order of a block's forward pass.
    public let names: [String]
    /// HF module path of `name` in layer `layer`, e.g. "model.layers.3.self_attn.q_proj".
    public let path: @Sendable (_ layer: Int, _ name: String) -> String

    public static let llama = AdaptableModules(
        names: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        path: { layer, name in
            let group = ["gate_proj", "up_proj", "down_proj"].contains(name) ? "mlp" : "self_attn"
            return "model.layers.\(layer).\(group).\(name)"
        })

    public static let opt = AdaptableModules(
        names: ["q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"],
        path: { layer, name in
            let group = ["fc1", "fc2"].contains(name) ? "" : "self_attn."
            return "model.decoder.layers.\(layer).\(group)\(name)"
        })

    public static func forModelType(_ type: String) -> AdaptableModules {
        type == "opt" ? .opt : .llama
    }
}

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

    public var parameterCount: Int { ordered.reduce(0) { $0 + $1.adapter.a.count + $1.adapter.b.count } }

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
        let modules = AdaptableModules.forModelType(config.modelType)
        for target in configuration.targetModules where !modules.names.contains(target) {
            throw HoneError.invalidArgument(
                "unknown LoRA target module '\(target)' for \(config.modelType); choose from \(modules.names.joined(separator: ", "))")
        }
        guard configuration.rank > 0 else { throw HoneError.invalidArgument("--lora-r must be positive") }
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

/// A model whose linear layers can carry LoRA adapters.
public protocol AdaptableModel: CausalLanguageModel {
    var adapters: AdapterSet? { get set }
    /// The frozen linear layer `module` (PEFT's name) of layer `layer`.
    func baseLinear(layer: Int, module: String) -> Linear?
    /// Modules whose stored rows are permuted relative to HF's: hfRow[storedRow] (see AdapterSet.rowOrders).
    var storedRowOrders: [String: [Int]] { get }
}

extension AdaptableModel {
    public var storedRowOrders: [String: [Int]] { [:] }
}

/// llama.cpp's converter permutes each head's Q/K rows so that its rotation can pair neighbours: stored row
/// h·d + 2i + j holds HF row h·d + j·d/2 + i. Returns hfRow[storedRow] for `heads` heads of `headDimension`.
func interleavedRotaryRowOrder(heads: Int, headDimension: Int) -> [Int] {
    var order = [Int](repeating: 0, count: heads * headDimension)
    let half = headDimension / 2
    for head in 0..<heads {
        for i in 0..<half {
            for j in 0..<2 {
                order[head * headDimension + 2 * i + j] = head * headDimension + j * half + i
            }
        }
    }
    return order
}

// MARK: - Applying adapters in a forward pass

/// Runs a linear layer with its adapter, if any: y = x Wᵀ (+ b) + s·(dropout(x) Aᵀ) Bᵀ.
/// When `tape` is given, keeps the LoRA projection u there for backward.
func applyAdapted(_ linear: Linear, adapter: LoRAAdapter?, set: AdapterSet?, layer: Int, module: String,
                  _ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>, tape: LayerTape? = nil) {
    linear.apply(x, rows: rows, into: y)
    guard let adapter, let set else { return }
    let projected = tape?.projection(module, rows: rows, rank: adapter.rank) ?? FloatBuffer(count: rows * adapter.rank)
    let dropout = set.isTraining ? Float(set.configuration.dropout) : 0
    if dropout > 0 {
        let dropped = FloatBuffer(count: rows * adapter.inFeatures)
        hk_dropout(x, dropped.pointer, rows * adapter.inFeatures, dropout, set.dropoutSeed(layer: layer, module: module), 0)
        adapter.addForward(dropped.pointer, rows: rows, into: y, projected: projected.pointer)
    } else {
        adapter.addForward(x, rows: rows, into: y, projected: projected.pointer)
    }
}

/// Backward of `applyAdapted` for a frozen base: dx (+)= dy W + LoRA branch; accumulates the adapter's gradients.
/// `accumulate`: add into dx instead of overwriting it.
func backwardAdapted(_ linear: Linear, adapter: LoRAAdapter?, set: AdapterSet?, layer: Int, module: String,
                     input x: UnsafePointer<Float>, outputGradient dy: UnsafePointer<Float>, rows: Int,
                     inputGradient dx: UnsafeMutablePointer<Float>, accumulate: Bool, tape: LayerTape) {
    linear.backwardInput(dy, rows: rows, into: dx, accumulate: accumulate)
    guard let adapter, let set else { return }
    let count = rows * adapter.inFeatures
    let dropout = set.isTraining ? Float(set.configuration.dropout) : 0
    let seed = set.dropoutSeed(layer: layer, module: module)
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
