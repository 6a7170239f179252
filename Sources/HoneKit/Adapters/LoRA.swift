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
