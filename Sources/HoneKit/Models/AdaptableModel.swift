import Foundation

// MARK: - Hooks for adapters

/// Terms added to a model's linear layers: LoRA adapters. A model calls these hooks for every adaptable linear
/// layer and knows nothing else about adapters, so Models does not depend on Adapters (`AdapterSet` in Adapters/
/// implements this protocol).
public protocol LinearAdapters: AnyObject {
    /// y: [rows, out] += the adapter term of `module` in layer `layer` for input x: [rows, in]; nothing when that
    /// module has no adapter (or adapters are switched off). With a tape, keeps there what `addBackward` reads.
    func addForward(layer: Int, module: String, input x: UnsafePointer<Float>, rows: Int,
                    into y: UnsafeMutablePointer<Float>, tape: LayerTape?)
    /// Backward of `addForward`: dx: [rows, in] += the adapter term's input gradient for dy: [rows, out], and the
    /// adapter's own gradients accumulate. x is the layer input of the forward pass; the tape is the one forward filled.
    func addBackward(layer: Int, module: String, input x: UnsafePointer<Float>, outputGradient dy: UnsafePointer<Float>,
                     rows: Int, inputGradient dx: UnsafeMutablePointer<Float>, tape: LayerTape)
}

/// A model whose linear layers can carry adapters.
public protocol AdaptableModel: CausalLanguageModel {
    /// Applied in every forward pass when attached.
    var adapters: (any LinearAdapters)? { get set }
    /// The frozen linear layer `module` (PEFT's name) of layer `layer`.
    func baseLinear(layer: Int, module: String) -> Linear?
    /// Modules whose stored rows are permuted relative to HF's: hfRow[storedRow] (llama.cpp stores Llama's Q and K
    /// rows permuted for its interleaved rotation). Adapters keep B's rows in the stored order in memory and in HF's
    /// order in files, so they move between HF and GGUF bases.
    var storedRowOrders: [String: [Int]] { get }
}

extension AdaptableModel {
    public var storedRowOrders: [String: [Int]] { [:] }

    /// y: [rows, out] = x Wᵀ (+ b) + the adapter term of `module`, if any.
    func applyAdapted(_ linear: Linear, layer: Int, module: String, _ x: UnsafePointer<Float>, rows: Int,
                      into y: UnsafeMutablePointer<Float>, tape: LayerTape?) {
        linear.apply(x, rows: rows, into: y)
        adapters?.addForward(layer: layer, module: module, input: x, rows: rows, into: y, tape: tape)
    }

    /// Backward of `applyAdapted` for a frozen base: dx: [rows, in] (+)= dy W + the adapter's input gradient.
    /// `accumulate`: add into dx instead of overwriting it.
    func backwardAdapted(_ linear: Linear, layer: Int, module: String, input x: UnsafePointer<Float>,
                         outputGradient dy: UnsafePointer<Float>, rows: Int, inputGradient dx: UnsafeMutablePointer<Float>,
                         accumulate: Bool, tape: LayerTape) {
        linear.backwardInput(dy, rows: rows, into: dx, accumulate: accumulate)
        adapters?.addBackward(layer: layer, module: module, input: x, outputGradient: dy, rows: rows, inputGradient: dx,
                              tape: tape)
    }
}
