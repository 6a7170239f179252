import ArgumentParser
import Foundation
import HoneKit

struct Quantize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a GGUF with quantized (or f16/bf16/f32) weights that llama.cpp loads.",
        discussion: """
        IN is an HF model directory (config.json, safetensors, tokenizer) or a GGUF file. Types follow llama-quantize:
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
        other quantized tensors are dequantized and quantized again, with a warning (llama-quantize refuses that \
        without --allow-requantize). OUT is written to OUT.tmp and renamed when complete.

        Example:
          hone quantize models/hone-tiny hone-tiny-q8_0.gguf --type q8_0
          hone quantize tinyllama-f16.gguf tinyllama-q4_k_m.gguf --type q4_k_m
        """)

    @Argument(help: "An HF model directory or a GGUF file.")
    var input: String

    @Argument(help: "The GGUF file to write.")
    var output: String

    @Option(name: .long, help: "One of \(QuantizationScheme.accepted).")
    var type: String

    @Flag(name: .long, help: "Every weight matrix of the --type's base type (no per-tensor mixture), as llama-quantize --pure.")
    var pure = false

    @OptionGroup var runtime: RuntimeOptions

    func run() throws {
        try runtime.apply()
        try reportingErrors {
            guard let scheme = QuantizationScheme(name: type) else {
                throw HoneError.invalidArgument(QuantizationScheme.refusal(name: type)
                    ?? "unknown --type '\(type)' (expected \(QuantizationScheme.accepted))")
            }
            let summary = try writeGGUF(input: input, output: output, scheme: scheme, pure: pure)
            print(summary)
        }
    }
}

/// Shared by quantize and convert: streams the GGUF with a progress bar and returns the summary line.
func writeGGUF(input: String, output: String, scheme: QuantizationScheme, pure: Bool = false) throws -> String {
    // Checked before the work: a directory there was found only when the finished file was moved into place.
    var isDirectory: ObjCBool = false
    if FileManager.default.fileExists(atPath: output, isDirectory: &isDirectory), isDirectory.boolValue {
        throw HoneError.io(path: output, message: "is a directory; the output is a GGUF file")
    }
    var reporter: ProgressReporter? = nil
    let summary = try GGUFExport.write(input: input, output: output, scheme: scheme, pure: pure, warn: { line in
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
