import Foundation
import Testing
@testable import HoneKit

/// Mixtral's and Qwen3-MoE's settings from both config.json layouts and from GGUF files, the configs refused, the
/// routing worked by hand, the sparse MLP's input gradient against finite differences, and LoRA targets on a model
/// whose MLPs are experts. (Log-probs and LoRA gradients against transformers and PEFT are in GoldenLogprobTests,
/// LoRAFixtureTests and LoRATrainingTests.)
@Suite struct MixtureOfExpertsTests {
    static func config(_ fixture: String) throws -> ModelConfig {
        try ModelConfig.fromHuggingFace(path: Repository.fixture("models/\(fixture)/config.json"))
    }

    // MARK: - Settings

    @Test func configs() throws {
        // transformers 5 writes num_local_experts for Qwen3-MoE; the Hub's files say num_experts.
        let qwen = try Self.config("qwen3moe-experts")
        #expect(qwen.modelType == "qwen3_moe" && qwen.queryKeyNorm && qwen.isMixtureOfExperts)
        #expect(qwen.expertCount == 4 && qwen.expertsPerToken == 2 && qwen.expertIntermediateSize == 32)
        #expect(qwen.normalizesExpertWeights && qwen.intermediateSize == 96)
        let unnormalized = try Self.config("qwen3moe-unnormalized")
        #expect(unnormalized.expertCount == 3 && !unnormalized.normalizesExpertWeights)
        let mixtral = try Self.config("mixtral-experts")
        #expect(mixtral.modelType == "mixtral" && !mixtral.queryKeyNorm && mixtral.expertCount == 4)
        #expect(mixtral.expertIntermediateSize == 48 && mixtral.normalizesExpertWeights)

        let path = Repository.fixture("models/qwen3moe-experts/config.json")
        var values = try JSONConfig(path: path).values
        values.removeValue(forKey: "num_local_experts")
        values["num_experts"] = 6
        values.removeValue(forKey: "norm_topk_prob")  // transformers' default: the probabilities as they are
        let hub = try LlamaConfig.configFromHuggingFace(JSONConfig(values: values, path: path), modelType: "qwen3_moe")
        #expect(hub.expertCount == 6 && !hub.normalizesExpertWeights)
    }

    /// llama.cpp's files: qwen3moe with its expert keys, and Mixtral's, which say llama (read back as mixtral); both
    /// always renormalize.
    @Test func fromGGUF() throws {
        let qwen = try ModelConfig.fromGGUF(GGUFFile(path: Repository.fixture("gguf/qwen3moe-experts-f32.gguf")))
        #expect(qwen.modelType == "qwen3_moe" && !qwen.ropeInterleaved && qwen.queryKeyNorm)
        #expect(qwen.expertCount == 4 && qwen.expertsPerToken == 2 && qwen.expertIntermediateSize == 32)
        let mixtral = try ModelConfig.fromGGUF(GGUFFile(path: Repository.fixture("gguf/mixtral-experts-f32.gguf")))
        #expect(mixtral.modelType == "mixtral" && mixtral.ropeInterleaved && mixtral.expertIntermediateSize == 48)
        #expect(mixtral.normalizesExpertWeights && mixtral.expertsPerToken == 2)
    }

    /// Granite-MoE: Granite's four multipliers, experts stacked in the checkpoint, always renormalized; GGUF
    /// granitemoe with its multiplier keys and Llama's permuted Q/K rows.
    @Test func graniteMoE() throws {
        let hf = try Self.config("granitemoe-experts")
        let gguf = try ModelConfig.fromGGUF(GGUFFile(path: Repository.fixture("gguf/granitemoe-experts-f32.gguf")))
        for config in [hf, gguf] {
            #expect(config.modelType == "granitemoe" && config.expertCount == 4 && config.expertsPerToken == 2)
            #expect(config.expertIntermediateSize == 32 && config.normalizesExpertWeights)
            #expect(config.embeddingMultiplier == 12 && config.residualMultiplier == 0.22 && config.logitsScaling == 8)
            #expect(config.attentionMultiplier == 0.0078125)
        }
        #expect(!hf.ropeInterleaved && gguf.ropeInterleaved)
        #expect(hf.architecture.summaryLines(hf).joined().contains("multipliers:  embedding 12.0"))
    }

    /// Qwen2-MoE: q/k/v biases, a gated shared expert, and (as llama.cpp's qwen2moe always) no renormalization.
    @Test func qwen2MoE() throws {
        let hf = try Self.config("qwen2moe-shared")
        #expect(hf.modelType == "qwen2_moe" && hf.queryKeyValueBias && !hf.outputBias && !hf.queryKeyNorm)
        #expect(hf.expertCount == 4 && hf.expertIntermediateSize == 32 && hf.sharedExpertIntermediateSize == 40)
        #expect(!hf.normalizesExpertWeights)
        let gguf = try ModelConfig.fromGGUF(GGUFFile(path: Repository.fixture("gguf/qwen2moe-shared-f32.gguf")))
        #expect(gguf.modelType == "qwen2_moe" && gguf.queryKeyValueBias && !gguf.ropeInterleaved)
        #expect(gguf.sharedExpertIntermediateSize == 40 && !gguf.normalizesExpertWeights && gguf.expertIntermediateSize == 32)
    }

    /// The converter writes routers and the shared expert's gate in F32 whatever the output type, and
    /// llama-quantize leaves them so (routers by name; the [1, hidden] gate is a vector to ggml).
    @Test func routersStayF32() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        // An f16 checkpoint (the fixture's weights rounded), so that keeping F32 is a choice.
        let half = directory.appendingPathComponent("half").path
        _ = try HuggingFaceExport.write(gguf: Repository.fixture("gguf/qwen2moe-shared-f32.gguf"), to: half, dtype: .f16)
        for scheme in [QuantizationScheme.f16, .q8_0] {
            let output = directory.appendingPathComponent("\(scheme).gguf").path
            let summary = try GGUFExport.write(input: half, output: output, scheme: scheme)
            for tensor in summary.tensors where tensor.name.contains("ffn_gate_inp") {
                #expect(tensor.type == .f32, "\(scheme): \(tensor.name)")
            }
            let stacks = summary.tensors.filter { $0.name.hasSuffix("_exps.weight") }
            #expect(stacks.count == 6 && stacks.allSatisfy { $0.shape.count == 3 && $0.shape[0] == 4 && $0.type == scheme.baseType })
        }
    }

    /// The other stored layouts of the same experts give transformers' log-probs: transformers 5's stacked
    /// `experts.gate_up_proj` / `down_proj`, the converter's `--fuse-gate-up-exps` GGUF (`ffn_gate_up_exps`), and
    /// that GGUF written back to HF (gate's and up's rows split into one matrix per expert).
    @Test func stackedLayouts() throws {
        let golden = try GoldenFile(name: "qwen3moe-experts")
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let fused = Repository.fixture("gguf/qwen3moe-experts-fused-f32.gguf")
        let back = directory.appendingPathComponent("back").path
        _ = try HuggingFaceExport.write(gguf: fused, to: back, dtype: .f32)
        for path in [Repository.fixture("models/qwen3moe-stacked"), fused, back] {
            let scored = try Scorer(model: LoadedModel.open(path).model).score(golden.rows.map(\.tokens))
            for (row, values) in zip(golden.rows, scored) {
                #expect(maxAbsDifference(values.map(Double.init), row.logprobs) <= GoldenLogprobTests.f32Tolerance, "\(path)")
            }
        }
        #expect(try SafetensorsStore(directory: back).contains("model.layers.1.mlp.experts.3.up_proj.weight"))
    }

    /// From a GGUF, `hone quantize` writes Qwen2-MoE's shared-expert gate as llama-quantize does, with ggml_n_dims
    /// dimensions ([hidden]); that file, and the HF directory written back from it ([1, hidden] again), give
    /// transformers' log-probs.
    @Test func sharedGateAsLlamaQuantizeWritesIt() throws {
        let golden = try GoldenFile(name: "qwen2moe-shared")
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let requantized = directory.appendingPathComponent("f32.gguf").path
        let summary = try GGUFExport.write(input: Repository.fixture("gguf/qwen2moe-shared-f32.gguf"), output: requantized, scheme: .f32)
        let gate = try #require(try GGUFFile(path: requantized).tensorInfos.first { $0.name == "blk.0.ffn_gate_inp_shexp.weight" })
        #expect(gate.shape == [64] && summary.tensors.contains { $0.name == gate.name && $0.type == .f32 })
        let back = directory.appendingPathComponent("back").path
        _ = try HuggingFaceExport.write(gguf: requantized, to: back, dtype: .f32)
        #expect(try SafetensorsStore(directory: back).tensor("model.layers.0.mlp.shared_expert_gate.weight").shape == [1, 64])
        for path in [requantized, back] {
            let scored = try Scorer(model: LoadedModel.open(path).model).score(golden.rows.map(\.tokens))
            for (row, values) in zip(golden.rows, scored) {
                #expect(maxAbsDifference(values.map(Double.init), row.logprobs) <= GoldenLogprobTests.f32Tolerance, "\(path)")
            }
        }
    }

    @Test func refusals() throws {
        let path = Repository.fixture("models/qwen3moe-experts/config.json")
        let values = try JSONConfig(path: path).values
        for (key, value) in [("mlp_only_layers", [0] as Any), ("decoder_sparse_step", 2 as Any)] {
            var changed = values
            changed[key] = value
            #expect(throws: HoneError.self) {
                try LlamaConfig.configFromHuggingFace(JSONConfig(values: changed, path: path), modelType: "qwen3_moe")
            }
        }
        var config = try Self.config("qwen3moe-experts")
        config.expertsPerToken = 5
        do {
            try config.checkConsistency(path: path)
            Issue.record("five of four experts per token was accepted")
        } catch {
            #expect("\(error)".contains("1 to 4 experts"))
        }
    }

    /// all-linear means the attention on a model whose MLPs are experts; naming an MLP module says why it is refused.
    @Test func loraTargets() throws {
        let config = try Self.config("qwen3moe-experts")
        let modules = config.architecture.adaptableModules
        #expect(try modules.resolve("all-linear", architecture: config.modelType, unavailable: config.modulesWithoutAdapters)
                == ["q_proj", "k_proj", "v_proj", "o_proj"])
        do {
            _ = try modules.resolve("q,gate", architecture: config.modelType, unavailable: config.modulesWithoutAdapters)
            Issue.record("gate_proj was accepted on a mixture of experts")
        } catch {
            #expect("\(error)".contains("mixtures of frozen experts"))
        }
    }

    // MARK: - Routing and gradients

    /// A sparse MLP of `experts` random experts on `hidden` features, in f32.
    static func randomExperts(experts: Int, perToken: Int, hidden: Int, width: Int, normalizes: Bool,
                              routerScale: Float, seed: UInt64) throws -> MixtureOfExperts {
        var generator = SplitMix64(seed: seed)
        func linear(_ rows: Int, _ columns: Int, scale: Float) throws -> Linear {
            let values = (0..<(rows * columns)).map { _ in (Float(generator.next() % 2001) / 1000 - 1) * scale }
            let buffer = FloatBuffer(values)
            let view = TensorView(name: "w", dtype: .f32, shape: [rows, columns], data: UnsafeRawPointer(buffer.pointer),
                                  source: "test", owner: buffer)
            return try Linear(weight: view, bias: nil)
        }
        let list = try (0..<experts).map { _ in
            MixtureOfExperts.Expert(inputs: .separate(gate: try linear(width, hidden, scale: 0.5),
                                                      up: try linear(width, hidden, scale: 0.5)),
                                    down: try linear(hidden, width, scale: 0.5))
        }
        return MixtureOfExperts(router: try linear(experts, hidden, scale: routerScale), experts: list,
                                expertsPerToken: perToken, normalizesWeights: normalizes)
    }

    /// The top-k, the order of the chosen experts and the weights, worked by hand from the probabilities.
    @Test func routingByHand() throws {
        for normalizes in [true, false] {
            let moe = try Self.randomExperts(experts: 4, perToken: 2, hidden: 3, width: 2, normalizes: normalizes,
                                             routerScale: 1, seed: 1)
            let probabilities: [Float] = [0.1, 0.4, 0.2, 0.3,
                                          0.5, 0.1, 0.1, 0.3]
            let routing = probabilities.withUnsafeBufferPointer { moe.route($0.baseAddress!, rows: 2) }
            #expect(routing.chosen == [1, 3, 0, 3])
            let expected: [Float] = normalizes ? [0.4 / 0.7, 0.3 / 0.7, 0.5 / 0.8, 0.3 / 0.8] : [0.4, 0.3, 0.5, 0.3]
            #expect(zip(routing.weights, expected).allSatisfy { abs($0 - $1) < 1e-6 })
            #expect(routing.assignments[0].map(\.row) == [1] && routing.assignments[2].isEmpty)
            #expect(routing.assignments[3].map(\.row) == [0, 1] && routing.assignments[3].map(\.slot) == [1, 1])
        }
    }

    /// The input gradient (through the experts and the router's softmax and renormalization) equals central
    /// differences of L = Σ c ⊙ y; the router is scaled so that no small step changes which experts are chosen.
    @Test(arguments: [true, false])
    func inputGradientMatchesFiniteDifferences(normalizes: Bool) throws {
        let (rows, hidden) = (3, 6)
        let moe = try Self.randomExperts(experts: 5, perToken: 2, hidden: hidden, width: 4, normalizes: normalizes,
                                         routerScale: 3, seed: 7)
        var generator = SplitMix64(seed: 11)
        let input = FloatBuffer((0..<(rows * hidden)).map { _ in Float(generator.next() % 2001) / 1000 - 1 })
        let weights = (0..<(rows * hidden)).map { _ in Float(generator.next() % 2001) / 1000 - 1 }
        func loss(_ x: UnsafePointer<Float>) -> Double {
            let probabilities = FloatBuffer(count: rows * 5)
            let y = FloatBuffer(count: rows * hidden)
            moe.apply(x, rows: rows, probabilities: probabilities.pointer, into: y.pointer)
            return (0..<(rows * hidden)).reduce(0.0) { $0 + Double(weights[$1] * y.pointer[$1]) }
        }
        let probabilities = FloatBuffer(count: rows * 5)
        let output = FloatBuffer(count: rows * hidden)
        moe.apply(input.pointer, rows: rows, probabilities: probabilities.pointer, into: output.pointer)
        let chosen = moe.route(probabilities.pointer, rows: rows).chosen
        let gradient = FloatBuffer(count: rows * hidden)
        let outputGradient = FloatBuffer(weights)
        moe.backward(input: input.pointer, probabilities: probabilities.pointer, rows: rows,
                     outputGradient: outputGradient.pointer, into: gradient.pointer)
        let step: Float = 1e-3
        for index in 0..<(rows * hidden) {
            let saved = input.pointer[index]
            input.pointer[index] = saved + step
            moe.routerProbabilities(input.pointer, rows: rows, into: probabilities.pointer)
            #expect(moe.route(probabilities.pointer, rows: rows).chosen == chosen, "a step changed the experts chosen")
            let plus = loss(input.pointer)
            input.pointer[index] = saved - step
            let minus = loss(input.pointer)
            input.pointer[index] = saved
            let numeric = (plus - minus) / Double(2 * step)
            let analytic = Double(gradient.pointer[index])
            #expect(abs(numeric - analytic) <= 2e-3 + 1e-2 * abs(numeric), "x[\(index)]: \(analytic) vs \(numeric)")
        }
    }
}
