import Foundation
import HoneKernels

/// Throughput figures in llama-bench's terms: pp = prompt processing (one forward over N tokens),
/// tg = text generation (N forwards of one token each, with the KV cache).
public struct BenchmarkResult: Sendable {
    public let promptTokens: Int
    public let generatedTokens: Int
    /// Tokens per second of each repetition.
    public let promptRates: [Double]
    public let generationRates: [Double]

    public static func mean(_ values: [Double]) -> Double { values.isEmpty ? 0 : values.reduce(0, +) / Double(values.count) }
    public static func standardDeviation(_ values: [Double]) -> Double {
        guard values.count > 1 else { return 0 }
        let average = mean(values)
        return (values.map { ($0 - average) * ($0 - average) }.reduce(0, +) / Double(values.count - 1)).squareRoot()
    }
}

public enum Benchmark {
    /// Runs `repetitions` pp and tg measurements on random token ids (seeded), after one warm-up of each.
    /// - Parameter batch: sequences decoding together in tg (aggregate tokens/s is reported); each starts from
    ///   a one-token prompt.
    /// - Parameter depth: tokens already in each cache before pp and tg start (llama-bench's `-d`), written by an
    ///   untimed forward: decode then reads that many keys and values per layer besides the weights.
    public static func run(model: CausalLanguageModel, promptTokens: Int, generatedTokens: Int, repetitions: Int,
                           batch: Int = 1, depth: Int = 0, seed: UInt64 = 1) throws -> BenchmarkResult {
        var generator = SplitMix64(seed: seed)
        let vocabulary = UInt64(model.config.vocabularySize)
        func randomTokens(_ count: Int) -> [Int32] { (0..<count).map { _ in Int32(generator.next() % vocabulary) } }
        func filledCache() throws -> KVCache {
            let cache = model.makeCache()
            if depth > 0 { _ = try model.forward([SequenceInput(tokens: randomTokens(depth), cache: cache)], outputRows: []) }
            return cache
        }
        var promptRates: [Double] = []
        var generationRates: [Double] = []
        for repetition in 0...repetitions {
            if promptTokens > 0 {
                let tokens = randomTokens(promptTokens)
                let cache = try filledCache()
                let start = DispatchTime.now()
                // llama-bench's pp includes the logits of the last position, the only row llama.cpp's last layer
                // runs past attention.
                let hidden = try model.forward([SequenceInput(tokens: tokens, cache: cache)],
                                               outputRows: [tokens.count - 1])
                let logits = FloatBuffer(count: model.config.vocabularySize)
                model.projectToVocabulary(hidden.values.pointer, rows: 1, into: logits.pointer)
                let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
                if repetition > 0 { promptRates.append(Double(promptTokens) / seconds) }
            }
            if generatedTokens > 0 {
                let caches = try (0..<max(1, batch)).map { _ in try filledCache() }
                let logits = FloatBuffer(count: caches.count * model.config.vocabularySize)
                var tokens = randomTokens(caches.count)
                let start = DispatchTime.now()
                for _ in 0..<generatedTokens {
                    let hidden = try model.forward(zip(tokens, caches).map { SequenceInput(tokens: [$0], cache: $1) })
                    model.projectToVocabulary(hidden.values.pointer, rows: caches.count, into: logits.pointer)
                    tokens = randomTokens(caches.count)
                }
                let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
                if repetition > 0 { generationRates.append(Double(generatedTokens * caches.count) / seconds) }
            }
        }
        return BenchmarkResult(promptTokens: promptTokens, generatedTokens: generatedTokens,
                               promptRates: promptRates, generationRates: generationRates)
    }
}

/// Tokenizer throughput: every text encoded without special tokens, best time of several passes.
public enum TokenizerBenchmark {
    public struct Result: Sendable {
        public let bytes: Int
        public let seconds: Double
        /// FNV-1a over every id of every text, -1 after each text: equal digests mean equal tokenizations.
        public let digest: String
    }

    public static func run(tokenizer: Tokenizer, texts: [String], repetitions: Int) -> Result {
        var best = Double.infinity
        var digest: UInt64 = 0
        for _ in 0..<max(1, repetitions) {
            var all: [[Int32]] = []
            all.reserveCapacity(texts.count)
            let start = DispatchTime.now()
            for text in texts { all.append(tokenizer.encode(text, addSpecialTokens: false, parseSpecial: false)) }
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9)
            digest = 0xcbf2_9ce4_8422_2325
            for ids in all {
                for id in ids + [-1] {
                    digest ^= UInt64(UInt32(bitPattern: id))
                    digest = digest &* 0x100_0000_01b3
                }
            }
        }
        let bytes = texts.reduce(0) { $0 + $1.utf8.count }
        return Result(bytes: bytes, seconds: best, digest: String(format: "%016llx", digest))
    }
}

/// Memory read bandwidth in bytes/s: the best of `repetitions` passes over a buffer of `bytes` (far larger than the
/// caches) read by the kernel threads with wide loads — what decoding, which streams every weight once per token,
/// can reach at most.
public func measureReadBandwidth(bytes: Int = 1 << 30, repetitions: Int = 5) -> Double {
    let count = bytes / 4
    let buffer = FloatBuffer(count: count)
    buffer.pointer.update(repeating: 1, count: count)
    var best = 0.0
    var sink = 0.0
    for _ in 0..<repetitions {
        let start = DispatchTime.now()
        sink += hk_read_sum(buffer.pointer, count)
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
        best = max(best, Double(count * 4) / seconds)
    }
    precondition(sink > 0)
    return best
}
