import ArgumentParser
import Foundation
import HoneKit

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure prompt processing (pp) and generation (tg) speed, like llama-bench.",
        discussion: """
        Prints open time, pp (one forward over --prompt-tokens tokens) and tg (--gen-tokens single-token steps \
        with the KV cache) in tokens per second, mean ± standard deviation over --repetitions, and peak RSS, with \
        the instruction-set level the kernels ran at (HONE_ISA=avx2 or scalar in the environment runs a lower one). \
        With --depth N both start after N tokens of context, as llama-bench's "tg128 @ d1024".

        With --tokenize FILE (JSONL lines {"text": ...}), measures the tokenizer instead: every text encoded \
        without special tokens, on the calling thread, best of --repetitions; prints MB/s and a digest of the ids.

        Examples:
          hone bench --model tinyllama-f16.gguf -p 512 -n 128 --threads 2
          hone bench --model smollm2-135m-Q4_0.gguf -p 0 -n 128 -d 1024
          hone bench --model models/hone-tiny --tokenize texts.jsonl
        """)

    @Option(name: [.customShort("m"), .long], help: "An HF model directory or a GGUF file.")
    var model: String = ""

    @Option(name: [.customShort("p"), .customLong("prompt-tokens"), .customLong("prompt_tokens")], help: "Prompt tokens for pp.")
    var promptTokens = 512

    @Option(name: [.customShort("n"), .customLong("gen-tokens"), .customLong("gen_tokens")], help: "Generated tokens for tg.")
    var generatedTokens = 128

    @Option(name: [.customShort("b"), .long], help: "Sequences decoding together in tg (aggregate tokens/s).")
    var batch = 1

    @Option(name: [.customShort("d"), .long], help: "Tokens in the KV cache before pp and tg start (llama-bench's -d).")
    var depth = 0

    @Option(name: [.customShort("r"), .long], help: "Measured repetitions (after one warm-up).")
    var repetitions = 3

    @Option(name: .long, help: "Benchmark the tokenizer on this JSONL file of {\"text\": ...} lines.")
    var tokenize: String?

    @Flag(name: .long, help: "Print one JSON object instead of a table.")
    var json = false

    @Flag(name: [.customLong("memory-bandwidth"), .customLong("memory_bandwidth")],
          help: "Measure the memory read bandwidth with --threads threads (the decode limit) instead; needs no model.")
    var memoryBandwidth = false

    @OptionGroup var runtime: RuntimeOptions

    func run() throws {
        try runtime.apply()
        try reportingErrors {
            guard promptTokens >= 0, generatedTokens >= 0, depth >= 0, repetitions >= 1, batch >= 1 else {
                throw HoneError.invalidArgument("token counts and --depth must be non-negative, --repetitions and --batch at least 1")
            }
            // llama.cpp's most sequences in one batch; a larger count only allocated caches until memory ran out.
            guard batch <= 256 else { throw HoneError.invalidArgument("--batch must be at most 256, not \(batch)") }
            if memoryBandwidth {
                let rate = measureReadBandwidth()
                print(json ? "{\"read_bytes_per_s\": \(jsonNumber(rate)), \"threads\": \(Runtime.threads)}"
                           : String(format: "memory read bandwidth: %.1f GB/s with %d thread(s)", rate / 1e9, Runtime.threads))
                return
            }
            guard !model.isEmpty else { throw HoneError.invalidArgument("--model is required (or --memory-bandwidth)") }
            if let tokenize {
                try benchmarkTokenizer(file: tokenize)
                return
            }
            let start = DispatchTime.now()
            let loaded = try LoadedModel.open(model)
            let openSeconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
            let openRSS = peakResidentBytes()
            // pp and tg each run one sequence of that many tokens: within the model's context, or the caches
            // grow without bound.
            let context = loaded.config.maxPositionEmbeddings
            guard depth <= context else {
                throw HoneError.invalidArgument("--depth \(depth) is past the model's context of \(context) tokens")
            }
            for (name, count) in [("--prompt-tokens", promptTokens), ("--gen-tokens", generatedTokens)] where count > context - depth {
                let what = depth > 0 ? "--depth \(depth) + \(name) \(count)" : "\(name) \(count)"
                throw HoneError.invalidArgument("\(what) is past the model's context of \(context) tokens")
            }
            let result = try Benchmark.run(model: loaded.model, promptTokens: promptTokens,
                                           generatedTokens: generatedTokens, repetitions: repetitions, batch: batch,
                                           depth: depth)
            let (ppMean, ppDeviation) = (BenchmarkResult.mean(result.promptRates), BenchmarkResult.standardDeviation(result.promptRates))
            let (tgMean, tgDeviation) = (BenchmarkResult.mean(result.generationRates), BenchmarkResult.standardDeviation(result.generationRates))
            if json {
                print("{\"model\":\"\(model)\",\"threads\":\(Runtime.threads),\"kernels\":\"\(Runtime.kernelLevel)\",\"open_s\":\(openSeconds),\"rss_after_open\":\(openRSS),"
                      + "\"depth\":\(depth),\"pp\":\(promptTokens),\"pp_tps\":\(ppMean),\"pp_sd\":\(ppDeviation),"
                      + "\"tg\":\(generatedTokens),\"batch\":\(batch),\"tg_tps\":\(tgMean),\"tg_sd\":\(tgDeviation),\"peak_rss\":\(peakResidentBytes())}")
            } else {
                let summary = ModelSummary(loaded)
                print("model: \(model) (\(summary.format), \(formatCount(summary.parameterCount)) parameters), threads \(Runtime.threads), "
                      + "kernels \(Runtime.kernelLevel), OpenBLAS \(Runtime.blasCore)")
                print(String(format: "open:  %.3f s, RSS after open %@", openSeconds, formatBytes(openRSS)))
                let at = depth > 0 ? " @ d\(depth)" : ""  // llama-bench's test names
                if promptTokens > 0 { print(String(format: "pp%d%@: %.2f ± %.2f tokens/s", promptTokens, at, ppMean, ppDeviation)) }
                if generatedTokens > 0 {
                    let label = (batch > 1 ? String(format: "tg%d ×%d sequences", generatedTokens, batch) : "tg\(generatedTokens)") + at
                    print(String(format: "%@: %.2f ± %.2f tokens/s%@", label, tgMean, tgDeviation, batch > 1 ? " (aggregate)" : ""))
                }
                print("peak RSS: \(formatBytes(peakResidentBytes()))")
            }
        }
    }

    func benchmarkTokenizer(file: String) throws {
        let tokenizer = try TokenizerLoader.load(modelPath: model)
        let texts = try readJSONLines(path: file).map { record -> String in
            guard let text = record.object["text"] as? String else {
                throw HoneError.malformedRecord(path: file, line: record.line, message: "expected a \"text\" string")
            }
            return text
        }
        let result = TokenizerBenchmark.run(tokenizer: tokenizer, texts: texts, repetitions: repetitions)
        if json {
            print("{\"documents\":\(texts.count),\"bytes\":\(result.bytes),\"seconds\":\(result.seconds),\"ids_digest\":\"\(result.digest)\"}")
        } else {
            print(String(format: "%d documents, %.2f MB: %.1f MB/s (best of %d), ids digest %@", texts.count,
                         Double(result.bytes) / 1e6, Double(result.bytes) / 1e6 / result.seconds, repetitions, result.digest))
        }
    }
}
