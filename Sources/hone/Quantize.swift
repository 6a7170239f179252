import ArgumentParser
import Foundation
import HoneKit

struct Quantize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a GGUF with quantized (or f16/bf16/f32) weights that llama.cpp loads.",
        discussion: """
        IN is an HF model directory (config.json, safetensors, tokenizer) or a GGUF file. Types follow llama-quantize \
        (given as --type or, as llama-quantize takes it, after OUT; its numbers, such as 15 for q4_k_m, work too):
          q8_0, q4_0, q4_1,  one type for the weight matrices (output.weight: Q6_K, or Q8_0 for q8_0)
          q5_0, q5_1, q6_k
          q2_k, q3_k_s, q3_k_m (q3_k), q3_k_l, q4_k_s, q4_k_m (q4_k), q5_k_s, q5_k_m (q5_k), iq4_xs, iq4_nl
                             llama-quantize's mixes (no importance matrix): the base type, with more bits for
                             output.weight (Q6_K) and, per mix, attn_v, attn_output and ffn_down on the layers
                             llama.cpp picks; the same bytes as llama-quantize from the same input
          f16, bf16, f32     plain types
        The IQ1/IQ2/IQ3_XXS types and q2_k_s need an importance matrix and are refused. --pure gives every \
        weight matrix the one type, as llama-quantize --pure. Norms, biases and other 1-D tensors stay F32; rows \
        that a block size does not divide fall back as in llama.cpp (Q2_K, Q3_K → Q4_0, Q4_K → Q5_0, Q5_K → Q5_1, \
        Q6_K → Q8_0, IQ4_XS → IQ4_NL, the 32-value types → F16). Tensors already of the chosen type are copied; \
        other quantized tensors are dequantized and quantized again, with a warning unless --allow-requantize. \
        OUT is written to OUT.tmp and renamed when complete.

        Per-tensor options, as llama-quantize's: --output-tensor-type and --token-embedding-type set those two \
        tensors' types (with tied embeddings --output-tensor-type reaches token_embd too); --leave-output-tensor \
        keeps output.weight as it is; --tensor-type PATTERN=TYPE (repeatable, or listed in --tensor-type-file) gives \
        the tensors whose names contain a match of the regular expression PATTERN that type, the first matching \
        rule winning, when --type is a quantized one. Tensor types: f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, \
        iq4_nl, q2_k, q3_k, q4_k, q5_k, q6_k, iq4_xs. --prune-layers L0,L1,... leaves those blocks out and renumbers \
        the rest; --override-kv KEY=TYPE:VALUE (int, float, bool, str) sets a metadata key. --dry-run prints each \
        tensor's type and the sizes and writes nothing. As with llama-quantize, a thread count may follow the type.

        Example:
          hone quantize models/hone-tiny hone-tiny-q8_0.gguf --type q8_0
          hone quantize tinyllama-f16.gguf tinyllama-q4_k_m.gguf q4_k_m 8
          hone quantize tinyllama-f16.gguf tinyllama-q4_k_l.gguf --type q4_k_m \\
              --output-tensor-type q8_0 --token-embedding-type q8_0 --tensor-type 'blk\\.[0-3]\\.ffn_down=q6_k'
        """)

    @Argument(help: "An HF model directory or a GGUF file.")
    var input: String

    @Argument(help: "The GGUF file to write.")
    var output: String

    @Argument(help: ArgumentHelp("The type, as llama-quantize takes it (instead of --type).", valueName: "type"))
    var positionalType: String?

    @Argument(help: ArgumentHelp("Threads, as llama-quantize's nthreads after the type (instead of --threads).",
                                 valueName: "nthreads"))
    var positionalThreads: Int?

    @Option(name: .long, help: "One of \(QuantizationScheme.accepted).")
    var type: String?

    @OptionGroup var tensorTypes: TensorTypeOptions

    @Flag(name: [.customLong("allow-requantize"), .customLong("allow_requantize")],
          help: "Requantize already quantized tensors without the warning.")
    var allowRequantize = false

    @Flag(name: [.customLong("dry-run"), .customLong("dry_run")], help: "Print each tensor's type and the sizes; write nothing.")
    var dryRun = false

    @OptionGroup var runtime: RuntimeOptions

    func run() throws {
        var runtime = self.runtime
        if let positionalThreads {
            if let threads = runtime.threads, threads != positionalThreads {
                throw ValidationError("two thread counts given: \(positionalThreads) after the type and --threads \(threads)")
            }
            runtime.threads = positionalThreads
        }
        try runtime.apply()
        try reportingErrors {
            let scheme = try parsedScheme()
            let (pure, overrides) = try tensorTypes.parsed()
            let metadataOverrides = try tensorTypes.metadataOverrides()
            if dryRun {
                let plan = try GGUFExport.plan(input: input, scheme: scheme, pure: pure, overrides: overrides, warn: { printWarning($0) })
                for tensor in plan {
                    let shape = tensor.shape.reversed().map(String.init).joined(separator: ", ")
                    let name = tensor.name.count < 36 ? tensor.name.padding(toLength: 36, withPad: " ", startingAt: 0) : tensor.name
                    let types = "\(tensor.inputType.rawValue) -> \(tensor.type.rawValue)\(tensor.fellBack ? " (fallback)" : "")"
                    print("\(name) [\(shape)] \(types)  " + String(format: "%.3f MiB", Double(tensor.bytes) / 1_048_576))
                }
                let before = plan.reduce(0) { $0 + $1.inputBytes }, after = plan.reduce(0) { $0 + $1.bytes }
                print(String(format: "model size = %.2f MiB, quantized size = %.2f MiB (tensor data; %@ not written)",
                             Double(before) / 1_048_576, Double(after) / 1_048_576, output as NSString))
                return
            }
            print(try writeGGUF(input: input, output: output, scheme: scheme, pure: pure, overrides: overrides,
                                allowRequantize: allowRequantize, metadataOverrides: metadataOverrides))
        }
    }

    /// --type or the positional type (a name, or llama-quantize's number of the file type).
    private func parsedScheme() throws -> QuantizationScheme {
        if let type, let positionalType, type.lowercased() != positionalType.lowercased() {
            throw HoneError.invalidArgument("two types given: '\(positionalType)' after the output and \(OptionName("type")) \(type)")
        }
        guard let name = type ?? positionalType else {
            throw HoneError.invalidArgument("no type: give \(OptionName("type")) TYPE or the type after the output file (one of \(QuantizationScheme.accepted))")
        }
        if let number = UInt32(name), let scheme = QuantizationScheme.allCases.first(where: { $0.fileType == number }) { return scheme }
        guard let scheme = QuantizationScheme(name: name) else {
            throw HoneError.invalidArgument(QuantizationScheme.refusal(name: name)
                ?? "unknown type '\(name)' (expected \(QuantizationScheme.accepted))")
        }
        return scheme
    }
}

/// llama-quantize's options that choose single tensors' types (`hone quantize`, `hone merge --format gguf`).
struct TensorTypeOptions: ParsableArguments {
    @Flag(name: .long, help: "Every weight matrix of the --type's base type (no per-tensor mixture), as llama-quantize --pure.")
    var pure = false

    @Option(name: [.customLong("output-tensor-type"), .customLong("output_tensor_type")],
            help: "The type of output.weight (and of tied token embeddings).")
    var outputTensorType: String?

    @Option(name: [.customLong("token-embedding-type"), .customLong("token_embedding_type")],
            help: "The type of token_embd.weight.")
    var tokenEmbeddingType: String?

    @Flag(name: [.customLong("leave-output-tensor"), .customLong("leave_output_tensor")],
          help: "Keep output.weight as the input has it.")
    var leaveOutputTensor = false

    @Option(name: [.customLong("tensor-type"), .customLong("tensor_type")],
            help: "PATTERN=TYPE: tensors whose names contain a match of PATTERN (a regular expression) get TYPE. Repeatable.")
    var tensorType: [String] = []

    @Option(name: [.customLong("tensor-type-file"), .customLong("tensor_type_file")],
            help: "A file of PATTERN=TYPE rules separated by spaces or newlines.")
    var tensorTypeFile: String?

    @Option(name: [.customLong("prune-layers"), .customLong("prune_layers")],
            help: "L0,L1,...: leave out these layers (numbered from 0) and renumber the rest, as llama-quantize.")
    var pruneLayers: String?

    @Option(name: [.customLong("override-kv"), .customLong("override_kv")],
            help: "KEY=TYPE:VALUE (TYPE int, float, bool or str): set a metadata key in the output, as llama-quantize. Repeatable.")
    var overrideKV: [String] = []

    /// Whether none of these options was given.
    var isEmpty: Bool {
        !pure && outputTensorType == nil && tokenEmbeddingType == nil && !leaveOutputTensor && tensorType.isEmpty && tensorTypeFile == nil
            && overrideKV.isEmpty && pruneLayers == nil
    }

    /// --override-kv, checked.
    func metadataOverrides() throws -> [GGUFMetadataOverride] { try overrideKV.map { try GGUFMetadataOverride(argument: $0) } }

    /// --pure and the per-tensor overrides, checked.
    func parsed() throws -> (pure: Bool, overrides: QuantizationOverrides) {
        var rules = tensorType
        if let tensorTypeFile {
            guard let text = FileManager.default.contents(atPath: tensorTypeFile).flatMap({ String(data: $0, encoding: .utf8) }) else {
                throw HoneError.fileNotFound(path: tensorTypeFile)
            }
            rules += text.split(whereSeparator: { $0.isWhitespace }).map(String.init)
        }
        let overrides = QuantizationOverrides(
            outputTensorType: try outputTensorType.map { try QuantizationOverrides.writableType($0, option: "output_tensor_type") },
            tokenEmbeddingType: try tokenEmbeddingType.map { try QuantizationOverrides.writableType($0, option: "token_embedding_type") },
            leaveOutputTensor: leaveOutputTensor,
            tensorTypes: try rules.map { try QuantizationOverrides.TensorTypeRule(argument: $0) },
            pruneLayers: try pruneLayers.map(QuantizationOverrides.pruneLayers) ?? [])
        return (pure, overrides)
    }
}

/// Shared by quantize and convert: streams the GGUF with a progress bar and returns the summary line.
func writeGGUF(input: String, output: String, scheme: QuantizationScheme, pure: Bool = false,
               overrides: QuantizationOverrides = QuantizationOverrides(), allowRequantize: Bool = false,
               metadataOverrides: [GGUFMetadataOverride] = []) throws -> String {
    // Checked before the work: a directory there was found only when the finished file was moved into place.
    var isDirectory: ObjCBool = false
    if FileManager.default.fileExists(atPath: output, isDirectory: &isDirectory), isDirectory.boolValue {
        throw HoneError.io(path: output, message: "is a directory; the output is a GGUF file")
    }
    var reporter: ProgressReporter? = nil
    let summary = try GGUFExport.write(input: input, output: output, scheme: scheme, pure: pure, overrides: overrides,
                                       allowRequantize: allowRequantize, metadataOverrides: metadataOverrides, warn: { line in
        printWarning(line)
    }, progress: { done, total, bytes in
        if reporter == nil { reporter = ProgressReporter(total: total, label: "writing \(output)") }
        reporter?.update(done: done, extra: String(format: "%.1f MB", Double(bytes) / 1e6))
    })
    var counts: [String: Int] = [:]
    for tensor in summary.tensors { counts[tensor.type.rawValue, default: 0] += 1 }
    let types = counts.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
    return "\(output): \(summary.tensors.count) tensors (\(types)), \(summary.bytes) bytes"
}
