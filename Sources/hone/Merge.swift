import ArgumentParser
import Foundation
import HoneKit

struct Merge: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fold a LoRA adapter into its base model (W += s·B·A in f32).",
        discussion: """
        Writes an HF directory in the base's dtypes (tokenizer and config copied) or a GGUF. Rounding to a 16-bit \
        dtype can swallow a small adapter: the command reports, per tensor, how much of the change survives, and \
        refuses to write a model that would be nearly the base unless --force is given (so is an adapter whose \
        change is zero: lora_alpha 0, or an untrained one whose lora_B is still all zeros).

        With --format gguf, --type and the per-tensor options (--pure, --output-tensor-type, --tensor-type, ...) \
        choose the types as hone quantize does.

        Example:
          hone merge --base-model models/hone-tiny --adapter out --output-dir merged
          hone merge --base-model models/SmolLM2-135M-Instruct.Q4_1.gguf --adapter out --output-dir merged \\
              --format gguf --type q4_k_m --output-tensor-type q8_0
        """)

    @Option(name: [.customLong("base-model"), .customLong("base_model")], help: "The base model the adapter was trained on.")
    var baseModel: String

    @Option(name: .long, help: "A PEFT LoRA adapter directory.")
    var adapter: String

    @Option(name: [.customLong("output-dir"), .customLong("output_dir")], help: "Where to write the merged model.")
    var outputDir: String

    @Option(name: .long, help: "safetensors (an HF directory) or gguf (OUTPUT-DIR/model-TYPE.gguf).")
    var format = "safetensors"

    @Option(name: .long, help: "GGUF type: \(QuantizationScheme.accepted) (default f16).")
    var type = "f16"

    @OptionGroup(title: "GGUF tensor types (as hone quantize's)") var tensorTypes: TensorTypeOptions

    @Flag(name: .long, help: "Write even when rounding erased most of the adapter's change.")
    var force = false

    @Flag(name: .long, help: "Print every merged tensor's figures.")
    var verbose = false

    @OptionGroup var runtime: RuntimeOptions

    func run() throws {
        try runtime.apply()
        try reportingErrors {
            let base = try LoadedModel.open(baseModel)
            let (adapters, record) = try PEFTAdapter.load(directory: adapter, for: base.model)
            let progress = ProgressReporter(total: 100, label: "merge")
            let reports: [AdapterMerge.TensorReport]
            var written = outputDir
            switch format {
            case "safetensors":
                guard tensorTypes.isEmpty else {
                    throw HoneError.invalidArgument("--pure, --output-tensor-type, --token-embedding-type, --leave-output-tensor and --tensor-type apply to --format gguf only")
                }
                guard base.format == .huggingFace else {
                    throw HoneError.invalidArgument("\(baseModel) is a GGUF: merge it with --format gguf")
                }
                reports = try AdapterMerge.writeHuggingFace(base: base, adapters: adapters, to: outputDir, force: force, record: record) { done, total in
                    progress.update(done: total > 0 ? done * 100 / total : 100)
                }
            case "gguf":
                guard let scheme = QuantizationScheme(name: type) else {
                    throw HoneError.invalidArgument(QuantizationScheme.refusal(name: type)
                    ?? "unknown --type '\(type)' (expected \(QuantizationScheme.accepted))")
                }
                let (pure, overrides) = try tensorTypes.parsed()
                try createOutputDirectory(outputDir)
                written = (outputDir as NSString).appendingPathComponent("model-\(scheme.rawValue).gguf")
                reports = try AdapterMerge.writeGGUF(base: base, adapters: adapters, to: written, scheme: scheme, pure: pure,
                                                     overrides: overrides, metadataOverrides: try tensorTypes.metadataOverrides(),
                                                     force: force, record: record,
                                                     warn: { FileHandle.standardError.write(Data("warning: \($0)\n".utf8)) }) { done, total in
                    progress.update(done: total > 0 ? done * 100 / total : 100)
                }
            default:
                throw HoneError.invalidArgument("--format must be safetensors or gguf, not '\(format)'")
            }
            progress.update(done: 100)
            let log = FileHandle.standardError
            if verbose {
                for report in reports {
                    log.write(Data(String(format: "%@: |Δ|/|W| %.2e, kept %.1f%%, error %.1f%%\n", report.name,
                                          report.relativeSize, report.retained * 100, report.relativeError * 100).utf8))
                }
            }
            let worst = reports.min { $0.retained < $1.retained }
            let overall = AdapterMerge.overallRetained(reports)
            var line = String(format: "merged %d tensors; %.1f%% of the adapter's change survives rounding", reports.count, overall * 100)
            if let worst { line += String(format: " (least: %.1f%% in %@)", worst.retained * 100, worst.name) }
            log.write(Data("\(line); wrote \(written)\n".utf8))
        }
    }
}
