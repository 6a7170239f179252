import ArgumentParser
import Foundation
import HoneKit

struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Convert between an HF model directory and a GGUF file (either way).",
        discussion: """
        HF directory → GGUF: the file llama.cpp's convert_hf_to_gguf.py would write (llama.cpp tensor names, Q/K rows \
        permuted for Llama/Mistral, Llama 3 rope factors, hyper-parameters and the full tokenizer: tokens, scores, \
        types, merges, special ids, chat template). --type defaults to the checkpoint's own float type. \
        GGUF → HF directory: model.safetensors (Q/K rows back in HF order; quantized tensors dequantized), \
        config.json, generation_config.json, tokenizer.json and tokenizer_config.json. --type defaults to the \
        GGUF's float type (F16 for quantized files). The output directory must not exist or be empty. \
        Architectures: llama, mistral, qwen2 (OPT has no GGUF form in llama.cpp).

        Example:
          hone convert models/hone-tiny hone-tiny-f16.gguf --type f16
          hone convert hone-tiny-f16.gguf hone-tiny-hf
        """)

    @Argument(help: "An HF model directory or a GGUF file.")
    var input: String

    @Argument(help: "The GGUF file (from a directory) or the directory (from a GGUF) to write.")
    var output: String

    @Option(name: .long, help: "f16, bf16 or f32.")
    var type: String?

    @OptionGroup var runtime: RuntimeOptions

    func run() throws {
        try runtime.apply()
        try reportingErrors {
            var dtype: DType? = nil
            if let type {
                guard let parsed = ["f16": DType.f16, "bf16": .bf16, "f32": .f32][type.lowercased()] else {
                    throw HoneError.invalidArgument("unknown --type '\(type)' for convert (expected f16, bf16 or f32; hone quantize makes quantized files)")
                }
                dtype = parsed
            }
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: input, isDirectory: &isDirectory) else {
                throw HoneError.fileNotFound(path: input)
            }
            if isDirectory.boolValue {
                let scheme = try dtype.map { QuantizationScheme(name: $0.rawValue.lowercased())! }
                    ?? QuantizationScheme(name: GGUFExport.checkpointFloatType(directory: input).rawValue.lowercased())!
                print(try writeGGUF(input: input, output: output, scheme: scheme))
            } else {
                // A GGUF's other form is a directory; a second GGUF is what quantize writes (it copies or requantizes).
                if output.lowercased().hasSuffix(".gguf") {
                    throw HoneError.invalidArgument("\(output): a GGUF converts to an HF model directory, not to another GGUF (hone quantize \(input) \(output) --type TYPE writes one)")
                }
                var reporter: ProgressReporter? = nil
                let summary = try HuggingFaceExport.write(gguf: input, to: output, dtype: dtype, warn: { line in
                    printWarning(line)
                }, progress: { done, total, bytes in
                    if reporter == nil { reporter = ProgressReporter(total: total, label: "writing \(output)") }
                    reporter?.update(done: done, extra: String(format: "%.1f MB", Double(bytes) / 1e6))
                })
                let tokenizer = summary.tokenizerFiles.isEmpty ? "no tokenizer" : summary.tokenizerFiles.joined(separator: ", ")
                print("\(output): \(summary.tensorCount) tensors (\(summary.dtype.rawValue)), config.json, \(tokenizer)")
            }
        }
    }
}
