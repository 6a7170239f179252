import Foundation
import HoneKernels

/// Mixtral's, Qwen2-MoE's and Qwen3-MoE's sparse MLP: a router (a linear layer without bias) scores every expert
/// for each row; the row goes through its `expertsPerToken` most probable experts, each a SwiGLU MLP of its own,
/// and their outputs are summed weighted by the router's softmax probabilities (divided by their sum over the
/// chosen experts when `normalizesWeights`), plus, in Qwen2-MoE, a shared expert's output × a sigmoid gate. The experts are frozen in training: LoRA adapts the attention, and the gradient
/// reaches the block input through the experts and through the router's probabilities.
struct MixtureOfExperts {
    struct Expert {
        let inputs: LlamaModel.MLPProjections
        let down: Linear
    }

    /// Qwen2-MoE's shared expert: every row goes through it, its output × sigmoid(gate · x).
    struct SharedExpert {
        let expert: Expert
        /// [1, hidden]
        let gate: Linear
    }

    /// [experts, hidden]
    let router: Linear
    let experts: [Expert]
    let expertsPerToken: Int
    let normalizesWeights: Bool
    var shared: SharedExpert? = nil

    var hidden: Int { router.inFeatures }
    var intermediateSize: Int { experts[0].down.inFeatures }

    // MARK: - Routing

    /// Which experts each row goes through, and with what weight.
    struct Routing {
        /// [rows, expertsPerToken]: the chosen experts, most probable first (the lower index first among equals),
        /// and their weights.
        let chosen: [Int]
        let weights: [Float]
        /// Per expert, the (row, slot) pairs routed to it, rows ascending.
        let assignments: [[(row: Int, slot: Int)]]
    }

    /// The routing for `probabilities`: [rows, experts] (each row a softmax).
    func route(_ probabilities: UnsafePointer<Float>, rows: Int) -> Routing {
        let (count, k) = (experts.count, expertsPerToken)
        var chosen = [Int](repeating: 0, count: rows * k)
        var weights = [Float](repeating: 0, count: rows * k)
        var assignments = [[(row: Int, slot: Int)]](repeating: [], count: count)
        var taken = [Bool](repeating: false, count: count)
        for row in 0..<rows {
            let p = probabilities + row * count
            for index in taken.indices { taken[index] = false }
            var sum: Float = 0
            for slot in 0..<k {
                var best = -1
                for expert in 0..<count where !taken[expert] && (best < 0 || p[expert] > p[best]) { best = expert }
                taken[best] = true
                chosen[row * k + slot] = best
                weights[row * k + slot] = p[best]
                sum += p[best]
            }
            if normalizesWeights {
                for slot in 0..<k { weights[row * k + slot] /= sum }
            }
        }
        for row in 0..<rows {
            for slot in 0..<k { assignments[chosen[row * k + slot]].append((row, slot)) }
        }
        return Routing(chosen: chosen, weights: weights, assignments: assignments)
    }

    /// probabilities: [rows, experts] ← softmax(router(x)), in place over the router's logits.
    func routerProbabilities(_ input: UnsafePointer<Float>, rows: Int, into probabilities: UnsafeMutablePointer<Float>) {
        router.apply(input, rows: rows, into: probabilities)
        let count = experts.count
        for row in 0..<rows {
            let p = probabilities + row * count
            var largest = -Float.infinity
            for expert in 0..<count { largest = max(largest, p[expert]) }
            var sum: Float = 0
            for expert in 0..<count {
                p[expert] = expf(p[expert] - largest)
                sum += p[expert]
            }
            for expert in 0..<count { p[expert] /= sum }
        }
    }

    // MARK: - Forward

    /// y: [rows, hidden] ← the sparse MLP of x: [rows, hidden]; `probabilities`: [rows, experts] receives the
    /// router's softmax (training's backward reads it).
    func apply(_ x: UnsafePointer<Float>, rows: Int, probabilities: UnsafeMutablePointer<Float>,
               into y: UnsafeMutablePointer<Float>) {
        routerProbabilities(x, rows: rows, into: probabilities)
        let routing = route(probabilities, rows: rows)
        y.update(repeating: 0, count: rows * hidden)
        for (index, assigned) in routing.assignments.enumerated() where !assigned.isEmpty {
            let pass = ExpertPass(expert: experts[index], input: x, rows: assigned.map(\.row), hidden: hidden)
            for (position, entry) in assigned.enumerated() {
                let weight = routing.weights[entry.row * expertsPerToken + entry.slot]
                let source = pass.output.pointer + position * hidden
                let destination = y + entry.row * hidden
                for column in 0..<hidden { destination[column] += weight * source[column] }
            }
        }
        if let shared {
            let pass = ExpertPass(expert: shared.expert, input: x, rows: Array(0..<rows), hidden: hidden)
            let gates = sharedGates(shared, x, rows: rows)
            for row in 0..<rows {
                for column in 0..<hidden { y[row * hidden + column] += gates[row] * pass.output.pointer[row * hidden + column] }
            }
        }
    }

    /// sigmoid(gate · x) per row.
    func sharedGates(_ shared: SharedExpert, _ x: UnsafePointer<Float>, rows: Int) -> [Float] {
        var gates = [Float](repeating: 0, count: rows)
        gates.withUnsafeMutableBufferPointer { shared.gate.apply(x, rows: rows, into: $0.baseAddress!) }
        return gates.map { 1 / (1 + expf(-$0)) }
    }

    /// One expert on the rows routed to it: their inputs gathered, and what backward needs of its inside.
    struct ExpertPass {
        let input, gate, up, output: FloatBuffer

        init(expert: Expert, input x: UnsafePointer<Float>, rows: [Int], hidden: Int) {
            let count = rows.count
            let width = expert.down.inFeatures
            input = FloatBuffer(count: count * hidden)
            for (position, row) in rows.enumerated() {
                (input.pointer + position * hidden).update(from: x + row * hidden, count: hidden)
            }
            gate = FloatBuffer(count: count * width)
            up = FloatBuffer(count: count * width)
            switch expert.inputs {
            case .separate(let gateProjection, let upProjection):
                gateProjection.apply(input.pointer, rows: count, into: gate.pointer)
                upProjection.apply(input.pointer, rows: count, into: up.pointer)
            case .fused(let gateUp):
                let fused = FloatBuffer(count: count * 2 * width)
                gateUp.apply(input.pointer, rows: count, into: fused.pointer)
                splitColumns(fused.pointer, rows: count, into: [(gate.pointer, width), (up.pointer, width)])
            }
            let activated = FloatBuffer(count: count * width)
            hk_silu_mul(gate.pointer, up.pointer, activated.pointer, count * width)
            output = FloatBuffer(count: count * hidden)
            expert.down.apply(activated.pointer, rows: count, into: output.pointer)
        }

        /// ∂L/∂(gathered input): [rows, hidden] for dy: [rows, hidden] on the expert's output (frozen weights).
        func inputGradient(_ expert: Expert, outputGradient dy: UnsafePointer<Float>, hidden: Int) -> FloatBuffer {
            let width = expert.down.inFeatures
            let count = input.count / hidden
            let dActivated = FloatBuffer(count: count * width)
            expert.down.backwardInput(dy, rows: count, into: dActivated.pointer, accumulate: false)
            let dGate = FloatBuffer(count: count * width)
            let dUp = FloatBuffer(count: count * width)
            hk_silu_mul_backward(gate.pointer, up.pointer, dActivated.pointer, dGate.pointer, dUp.pointer, count * width)
            let dInput = FloatBuffer(count: count * hidden)
            switch expert.inputs {
            case .separate(let gateProjection, let upProjection):
                gateProjection.backwardInput(dGate.pointer, rows: count, into: dInput.pointer, accumulate: false)
                upProjection.backwardInput(dUp.pointer, rows: count, into: dInput.pointer, accumulate: true)
            case .fused(let gateUp):
                let dFused = FloatBuffer(count: count * 2 * width)
                joinColumns([(dGate.pointer, width), (dUp.pointer, width)], rows: count, into: dFused.pointer)
                gateUp.backwardInput(dFused.pointer, rows: count, into: dInput.pointer, accumulate: false)
            }
            return dInput
        }
    }

    // MARK: - Backward

    /// dx: [rows, hidden] ← ∂L/∂x for dy = ∂L/∂y (overwritten), given the forward's input x and `probabilities`.
    /// y = Σ_k w_k · expert_k(x), so dx = Σ_k w_k · J_k(x)ᵀ dy through each chosen expert, plus the path through
    /// the weights: ∂L/∂w_k = dy · expert_k(x), then through the renormalization and the softmax to the router's
    /// logits, and through the router to x.
    func backward(input x: UnsafePointer<Float>, probabilities: UnsafePointer<Float>, rows: Int,
                  outputGradient dy: UnsafePointer<Float>, into dx: UnsafeMutablePointer<Float>) {
        let routing = route(probabilities, rows: rows)
        let k = expertsPerToken
        dx.update(repeating: 0, count: rows * hidden)
        if let shared {
            // y_s = σ(g·x) S(x): dx = σ J_Sᵀ dy + (dy · S(x)) σ(1 − σ) g.
            let pass = ExpertPass(expert: shared.expert, input: x, rows: Array(0..<rows), hidden: hidden)
            let gates = sharedGates(shared, x, rows: rows)
            let scaled = FloatBuffer(count: rows * hidden)
            var gateGradient = [Float](repeating: 0, count: rows)
            for row in 0..<rows {
                var dot: Float = 0
                for column in 0..<hidden {
                    let index = row * hidden + column
                    dot += dy[index] * pass.output.pointer[index]
                    scaled.pointer[index] = gates[row] * dy[index]
                }
                gateGradient[row] = dot * gates[row] * (1 - gates[row])
            }
            let dInput = pass.inputGradient(shared.expert, outputGradient: scaled.pointer, hidden: hidden)
            dx.update(from: dInput.pointer, count: rows * hidden)
            gateGradient.withUnsafeBufferPointer {
                shared.gate.backwardInput($0.baseAddress!, rows: rows, into: dx, accumulate: true)
            }
        }
        var weightGradient = [Float](repeating: 0, count: rows * k)
        for (index, assigned) in routing.assignments.enumerated() where !assigned.isEmpty {
            let expert = experts[index]
            let count = assigned.count
            let width = expert.down.inFeatures
            let pass = ExpertPass(expert: expert, input: x, rows: assigned.map(\.row), hidden: hidden)
            let scaled = FloatBuffer(count: count * hidden)
            for (position, entry) in assigned.enumerated() {
                let weight = routing.weights[entry.row * k + entry.slot]
                let gradient = dy + entry.row * hidden
                let output = pass.output.pointer + position * hidden
                var dot: Float = 0
                for column in 0..<hidden {
                    dot += gradient[column] * output[column]
                    scaled.pointer[position * hidden + column] = weight * gradient[column]
                }
                weightGradient[entry.row * k + entry.slot] = dot
            }
            let dInput = pass.inputGradient(expert, outputGradient: scaled.pointer, hidden: hidden)
            for (position, entry) in assigned.enumerated() {
                let source = dInput.pointer + position * hidden
                let destination = dx + entry.row * hidden
                for column in 0..<hidden { destination[column] += source[column] }
            }
        }

        // Weights → probabilities → router logits. With w_k = p_k / s, s = Σ_chosen p:
        // ∂L/∂p_k = (∂L/∂w_k − Σ_j ∂L/∂w_j · w_j) / s; then the softmax: ∂L/∂z_i = p_i (∂L/∂p_i − Σ_j ∂L/∂p_j p_j).
        let count = experts.count
        let logitGradient = FloatBuffer(zeros: rows * count)
        for row in 0..<rows {
            let p = probabilities + row * count
            var probabilityGradient = [Float](repeating: 0, count: k)
            if normalizesWeights {
                var sum: Float = 0
                var weighted: Float = 0
                for slot in 0..<k {
                    sum += p[routing.chosen[row * k + slot]]
                    weighted += weightGradient[row * k + slot] * routing.weights[row * k + slot]
                }
                for slot in 0..<k { probabilityGradient[slot] = (weightGradient[row * k + slot] - weighted) / sum }
            } else {
                for slot in 0..<k { probabilityGradient[slot] = weightGradient[row * k + slot] }
            }
            var dot: Float = 0
            for slot in 0..<k { dot += probabilityGradient[slot] * p[routing.chosen[row * k + slot]] }
            let gradient = logitGradient.pointer + row * count
            for expert in 0..<count { gradient[expert] = -p[expert] * dot }
            for slot in 0..<k {
                let expert = routing.chosen[row * k + slot]
                gradient[expert] += p[expert] * probabilityGradient[slot]
            }
        }
        router.backwardInput(logitGradient.pointer, rows: rows, into: dx, accumulate: true)
    }
}

// MARK: - Loading

/// Where the router and the experts of a block are stored: HF checkpoints one matrix per expert (Qwen3-MoE's
/// `mlp.experts.E.gate_proj`, Mixtral's `block_sparse_moe.experts.E.w1`), or transformers 5's stacked
/// `mlp.experts.gate_up_proj` [experts, 2 × ffn, hidden] and `down_proj`, or Granite-MoE's stacked
/// `block_sparse_moe.input_linear` (the same layout) and `output_linear` behind `router.layer`; GGUF files one 3-D
/// tensor per role (`ffn_gate_exps` [experts, ffn, hidden], ...) or gate and up stacked as `ffn_gate_up_exps`.
enum ExpertNames {
    static func load(layer: Int, config: ModelConfig, weights: WeightStore) throws -> MixtureOfExperts {
        let (hidden, width, count) = (config.hiddenSize, config.expertIntermediateSize, config.expertCount)
        func matrix(_ name: String, _ shape: [Int]) throws -> Linear {
            let weight = try weights.tensor(name)
            try weight.expectShape(shape)
            return try Linear(weight: weight, bias: nil)
        }
        func stacked(_ name: String, _ shape: [Int]) throws -> [Linear] {
            let weight = try weights.tensor(name)
            try weight.expectShape([count] + shape)
            return try (0..<count).map { try Linear(weight: weight.matrix($0), bias: nil) }
        }
        // [1, hidden] as the converter writes it, [hidden] as llama-quantize does (ggml_n_dims drops the 1).
        func sharedGate(_ name: String) throws -> Linear {
            let weight = try weights.tensor(name)
            guard weight.shape == [hidden] else { return try matrix(name, [1, hidden]) }
            return try Linear(weight: TensorView(name: weight.name, dtype: weight.dtype, shape: [1, hidden], data: weight.data,
                                                 source: weight.source, owner: weight.owner), bias: nil)
        }
        func experts(inputs: [LlamaModel.MLPProjections], downs: [Linear]) -> [MixtureOfExperts.Expert] {
            zip(inputs, downs).map { MixtureOfExperts.Expert(inputs: $0, down: $1) }
        }
        let router: Linear
        let list: [MixtureOfExperts.Expert]
        if weights.isGGUF {
            let block = "blk.\(layer)"
            router = try matrix("\(block).ffn_gate_inp.weight", [count, hidden])
            let downs = try stacked("\(block).ffn_down_exps.weight", [hidden, width])
            if weights.contains("\(block).ffn_gate_up_exps.weight") {
                let fused = try stacked("\(block).ffn_gate_up_exps.weight", [2 * width, hidden])
                list = experts(inputs: fused.map { .fused($0) }, downs: downs)
            } else {
                let gates = try stacked("\(block).ffn_gate_exps.weight", [width, hidden])
                let ups = try stacked("\(block).ffn_up_exps.weight", [width, hidden])
                list = experts(inputs: zip(gates, ups).map { .separate(gate: $0, up: $1) }, downs: downs)
            }
        } else if weights.contains(GraniteMoENames.inputs(layer: layer)) {
            router = try matrix(GraniteMoENames.router(layer: layer), [count, hidden])
            let fused = try stacked(GraniteMoENames.inputs(layer: layer), [2 * width, hidden])
            let downs = try stacked(GraniteMoENames.outputs(layer: layer), [hidden, width])
            list = experts(inputs: fused.map { .fused($0) }, downs: downs)
        } else {
            let mixtral = "model.layers.\(layer).block_sparse_moe"
            let module = weights.contains("\(mixtral).gate.weight") ? mixtral : "model.layers.\(layer).mlp"
            router = try matrix("\(module).gate.weight", [count, hidden])
            if weights.contains("\(module).experts.gate_up_proj") {
                let fused = try stacked("\(module).experts.gate_up_proj", [2 * width, hidden])
                let downs = try stacked("\(module).experts.down_proj", [hidden, width])
                list = experts(inputs: fused.map { .fused($0) }, downs: downs)
            } else {
                let (gate, up, down) = module == mixtral ? ("w1", "w3", "w2") : ("gate_proj", "up_proj", "down_proj")
                list = try (0..<count).map { expert in
                    let name = "\(module).experts.\(expert)"
                    return MixtureOfExperts.Expert(
                        inputs: .separate(gate: try matrix("\(name).\(gate).weight", [width, hidden]),
                                          up: try matrix("\(name).\(up).weight", [width, hidden])),
                        down: try matrix("\(name).\(down).weight", [hidden, width]))
                }
            }
        }
        var shared: MixtureOfExperts.SharedExpert? = nil
        let sharedWidth = config.sharedExpertIntermediateSize
        if sharedWidth > 0 {
            let names = weights.isGGUF ? LlamaModel.TensorNames.gguf : LlamaModel.TensorNames.huggingFace
            func part(_ role: String) -> String { names.layer(layer, role) + ".weight" }
            shared = MixtureOfExperts.SharedExpert(
                expert: MixtureOfExperts.Expert(
                    inputs: .separate(gate: try matrix(part("shared_gate"), [sharedWidth, hidden]),
                                      up: try matrix(part("shared_up"), [sharedWidth, hidden])),
                    down: try matrix(part("shared_down"), [hidden, sharedWidth])),
                gate: try sharedGate(part("shared_expert_gate")))
        }
        return MixtureOfExperts(router: router, experts: list, expertsPerToken: config.expertsPerToken,
                                normalizesWeights: config.normalizesExpertWeights, shared: shared)
    }
}

// MARK: - Names in converted files

extension ExpertNames {
    /// HF role → GGUF stack: Qwen3-MoE's names, then Mixtral's.
    static let roles: [(huggingFace: [String], gguf: String)] = [
        (["gate_proj", "w1"], "ffn_gate_exps"), (["up_proj", "w3"], "ffn_up_exps"), (["down_proj", "w2"], "ffn_down_exps"),
    ]

    /// "model.layers.3.mlp.experts.5.gate_proj.weight" (or Mixtral's "block_sparse_moe.experts.5.w1") → the GGUF
    /// stack it goes into, "blk.3.ffn_gate_exps.weight", and its place there (5); nil for other names.
    static func ggufStack(forHuggingFace name: String) -> (name: String, expert: Int)? {
        let parts = name.split(separator: ".").map(String.init)
        guard parts.count == 8, parts[0] == "model", parts[1] == "layers", let layer = Int(parts[2]),
              ["mlp", "block_sparse_moe"].contains(parts[3]), parts[4] == "experts", let expert = Int(parts[5]),
              parts[7] == "weight", let role = roles.first(where: { $0.huggingFace.contains(parts[6]) }) else { return nil }
        return ("blk.\(layer).\(role.gguf).weight", expert)
    }

    /// The HF names of a GGUF router or expert stack for `modelType` (Mixtral's, or Qwen's): one name for the
    /// router, one per expert for a stack (and for gate_up_exps, whose rows are gate's then up's, the gate names;
    /// `fusedUpNames` gives the up names); nil for other tensors.
    static func huggingFaceNames(forGGUF name: String, modelType: String, experts: Int) -> [String]? {
        let parts = name.split(separator: ".").map(String.init)
        guard parts.count == 4, parts[0] == "blk", let layer = Int(parts[1]), parts[3] == "weight" else { return nil }
        let mixtral = modelType == "mixtral"
        let module = "model.layers.\(layer).\(mixtral ? "block_sparse_moe" : "mlp")"
        if parts[2] == "ffn_gate_inp" { return ["\(module).gate.weight"] }
        let stack = parts[2] == "ffn_gate_up_exps" ? "ffn_gate_exps" : parts[2]
        guard let role = roles.first(where: { $0.gguf == stack }) else { return nil }
        return (0..<experts).map { "\(module).experts.\($0).\(role.huggingFace[mixtral ? 1 : 0]).weight" }
    }

    /// The up projections' names for a GGUF `ffn_gate_up_exps`.
    static func fusedUpNames(forGGUF name: String, modelType: String, experts: Int) -> [String]? {
        huggingFaceNames(forGGUF: name.replacingOccurrences(of: "ffn_gate_up_exps", with: "ffn_up_exps"),
                         modelType: modelType, experts: experts)
    }
}

/// Granite-MoE's HF names: per layer a router, and the experts stacked (as transformers holds them in memory, and as
/// the Hub's files have them).
enum GraniteMoENames {
    static func module(_ layer: Int) -> String { "model.layers.\(layer).block_sparse_moe" }
    /// [experts, hidden]
    static func router(layer: Int) -> String { module(layer) + ".router.layer.weight" }
    /// [experts, 2 × ffn, hidden]: each expert's gate rows, then its up rows.
    static func inputs(layer: Int) -> String { module(layer) + ".input_linear.weight" }
    /// [experts, hidden, ffn]
    static func outputs(layer: Int) -> String { module(layer) + ".output_linear.weight" }

    /// The layer and role of an HF name: "inputs" or "outputs"; nil for other names.
    static func stack(_ name: String) -> (layer: Int, role: String)? {
        let parts = name.split(separator: ".").map(String.init)
        guard parts.count == 6, parts[0] == "model", parts[1] == "layers", let layer = Int(parts[2]),
              parts[3] == "block_sparse_moe", parts[5] == "weight" else { return nil }
        switch parts[4] {
        case "input_linear": return (layer, "inputs")
        case "output_linear": return (layer, "outputs")
        default: return nil
        }
    }
}

// MARK: - Views of stacked tensors

extension TensorView {
    /// The `index`-th matrix of a 3-D tensor [count, rows, columns], as a 2-D view of the same bytes.
    func matrix(_ index: Int) -> TensorView {
        let elements = shape[1] * shape[2]
        return TensorView(name: "\(name)[\(index)]", dtype: dtype, shape: [shape[1], shape[2]],
                          data: data + dtype.byteCount(elements: index * elements), source: source, owner: owner)
    }

    /// Rows `range` of a 2-D tensor, as a view of the same bytes.
    func rows(_ range: Range<Int>) -> TensorView {
        TensorView(name: name, dtype: dtype, shape: [range.count, shape[1]],
                   data: data + dtype.byteCount(elements: range.lowerBound * shape[1]), source: source, owner: owner)
    }
}
