import Foundation
import HoneKernels

/// Consecutive items packed into forward passes of up to `tokenBudget` tokens (an item longer than that runs
/// alone). Every batch scorer packs this way, and under mpirun whole passes are dealt to ranks, so a row's numbers
/// never depend on how a job was split.
public func forwardPasses(lengths: [Int], tokenBudget: Int) -> [Range<Int>] {
    var passes: [Range<Int>] = []
    var start = 0
    while start < lengths.count {
        var end = start
        var tokens = 0
        while end < lengths.count, end == start || tokens + lengths[end] <= tokenBudget {
            tokens += lengths[end]
            end += 1
        }
        passes.append(start..<end)
        start = end
    }
    return passes
}

/// Per-token log-probabilities of given token rows: lp_i = log p(token_i | tokens_<i), for i ≥ 1.
/// Rows are packed into forward passes of up to `tokenBudget` tokens, so scoring many short rows is batched.
public final class Scorer {
    public let model: CausalLanguageModel
    public var tokenBudget: Int
    /// Rows of logits computed at once; bounds memory to logitChunk × vocab floats.
    public var logitChunk = 64

    public init(model: CausalLanguageModel, tokenBudget: Int = 2048) {
        self.model = model
        self.tokenBudget = max(1, tokenBudget)
    }

    /// One array per row: n − 1 log-probabilities for a row of n tokens (none for n ≤ 1).
    public func score(_ rows: [[Int32]], progress: ((Int) -> Void)? = nil) throws -> [[Float]] {
        var results = [[Float]](repeating: [], count: rows.count)
        var done = 0
        for pass in passes(for: rows) {
            for (index, row) in try score(rows, passes: [pass]) { results[index] = row }
            done += pass.count
            progress?(done)
        }
        return results
    }

    /// The row indices of each forward pass, in order: consecutive rows up to `tokenBudget` tokens (a longer row
    /// alone). A row's log-probabilities depend on the pass it runs in only through rounding, so a job split across
    /// processes hands out whole passes to give the numbers one process gives.
    public func passes(for rows: [[Int32]]) -> [[Int]] {
        forwardPasses(lengths: rows.map(\.count), tokenBudget: tokenBudget).map { Array($0) }
    }

    /// The rows of the given passes, keyed by row index.
    public func score(_ rows: [[Int32]], passes: [[Int]]) throws -> [Int: [Float]] {
        var results: [Int: [Float]] = [:]
        for pass in passes {
            for index in pass { results[index] = [] }
            let nonEmpty = pass.filter { !rows[$0].isEmpty }
            guard !nonEmpty.isEmpty else { continue }
            for (index, row) in zip(nonEmpty, try scoreGroup(nonEmpty.map { rows[$0] })) { results[index] = row }
        }
        return results
    }

    private func scoreGroup(_ rows: [[Int32]]) throws -> [[Float]] {
        let batch = rows.map { SequenceInput(tokens: $0, cache: model.makeCache()) }
        let hidden = try model.forward(batch)
        let vocabulary = model.config.vocabularySize
        // Position p of a row predicts token p + 1; the last position predicts nothing.
        var sources: [Int] = []
        var targets: [Int32] = []
        for (index, row) in rows.enumerated() where row.count > 1 {
            for position in 0..<(row.count - 1) {
                sources.append(hidden.sequenceOffsets[index] + position)
                targets.append(row[position + 1])
            }
        }
        var logprobs = [Float](repeating: 0, count: targets.count)
        let chunk = max(1, logitChunk)
        let gathered = FloatBuffer(count: chunk * hidden.width)
        let logits = FloatBuffer(count: chunk * vocabulary)
        var begin = 0
        while begin < sources.count {
            let count = min(chunk, sources.count - begin)
            for row in 0..<count {
                (gathered.pointer + row * hidden.width).update(from: hidden.values.pointer + sources[begin + row] * hidden.width,
                                                                count: hidden.width)
            }
            model.projectToVocabulary(gathered.pointer, rows: count, into: logits.pointer)
            targets.withUnsafeBufferPointer { targetPointer in
                logprobs.withUnsafeMutableBufferPointer { output in
                    hk_log_softmax_gather(logits.pointer, targetPointer.baseAddress! + begin, output.baseAddress! + begin,
                                          Int32(count), Int32(vocabulary))
                }
            }
            begin += count
        }
        var results: [[Float]] = []
        var cursor = 0
        for row in rows {
            let count = max(0, row.count - 1)
            results.append(Array(logprobs[cursor..<(cursor + count)]))
            cursor += count
        }
        return results
    }

    /// The output line of `hone score`: {"tokens": [...], "logprobs": [null, ...], "sum": s, "mean": m}.
    public static func jsonLine(tokens: [Int32], logprobs: [Float]) -> String {
        let sum = logprobs.reduce(0.0) { $0 + Double($1) }
        let mean = logprobs.isEmpty ? "null" : jsonNumber(sum / Double(logprobs.count))
        let tokenList = tokens.map { String($0) }.joined(separator: ",")
        let values = (tokens.isEmpty ? [] : ["null"] + logprobs.map { jsonNumber($0) }).joined(separator: ",")
        return "{\"tokens\":[\(tokenList)],\"logprobs\":[\(values)],\"sum\":\(jsonNumber(sum)),\"mean\":\(mean)}"
    }
}

/// Token rows from JSONL records `{"tokens": [ids]}` or `{"text": "..."}` (encoded with the tokenizer, BOS/EOS as
/// its config says), with errors that name the line.
public func tokenRows(from records: [JSONLRecord], path: String, vocabularySize: Int,
                      tokenizer: (() throws -> Tokenizer)? = nil) throws -> [[Int32]] {
    var loaded: Tokenizer? = nil
    return try records.map { record in
        if let text = record.object["text"], record.object["tokens"] == nil {
            guard let text = text as? String else {
                throw HoneError.malformedRecord(path: path, line: record.line, message: "\"text\" must be a string")
            }
            guard let tokenizer else {
                throw HoneError.malformedRecord(path: path, line: record.line, message: "\"text\" records need a tokenizer; give \"tokens\"")
            }
            if loaded == nil { loaded = try tokenizer() }
            return loaded!.encode(text, addSpecialTokens: true, parseSpecial: false)
        }
        guard let list = record.object["tokens"] as? [Any] else {
            throw HoneError.malformedRecord(path: path, line: record.line, message: "expected a \"tokens\" array of integers or a \"text\" string")
        }
        return try list.map { item in
            guard let id = jsonInteger(item) else {
                throw HoneError.malformedRecord(path: path, line: record.line, message: "\"tokens\" must hold integers")
            }
            guard id >= 0, id < vocabularySize else {
                throw HoneError.tokenOutOfRange(token: id, vocabularySize: vocabularySize, location: "\(path):\(record.line)")
            }
            return Int32(id)
        }
    }
}
