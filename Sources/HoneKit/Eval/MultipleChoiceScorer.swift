import Foundation
import HoneKernels

/// Log-likelihood of every choice of multiple-choice requests, as lm-eval's `loglikelihood` computes them for a
/// causal model, but with each context run once: its KV state is shared by all of its choices, and a choice's
/// first token is scored from the context's last position (so one-token choices, as in MMLU, cost no forward of
/// their own). Documents are batched into forward passes of up to `tokenBudget` context tokens. The token prefix
/// that every context of a call shares (MMLU's description and `first_n` shots, TruthfulQA's six-question primer)
/// runs once, and each document's cache starts from a copy of its keys and values. The tokens that open every
/// choice of a document (PIQA's two solutions often differ in a word or two) run once, with its context.
public final class MultipleChoiceScorer {
    public struct ChoiceScore: Sendable, Equatable, Codable {
        /// Sum of log p(token | everything before it) over the continuation's tokens.
        public var loglikelihood: Double
        /// Every continuation token is the argmax of its logits (lm-eval's `is_greedy`).
        public var isGreedy: Bool
    }

    /// Token ids of a request, as lm-eval's `_encode_pair` makes them for a causal model: the context alone, and
    /// each continuation as the tail of encode(context + continuation) after the context's length.
    public struct TokenizedRequest: Sendable {
        public let context: [Int32]
        public let continuations: [[Int32]]
    }

    public let model: CausalLanguageModel
    public let tokenizer: Tokenizer
    /// Context tokens per forward pass.
    public var tokenBudget: Int
    /// Rows of logits computed at once; bounds memory to logitChunk × vocab floats.
    public var logitChunk = 64
    /// Under mpirun, each rank runs its share of the forward passes and every rank gets all the scores. Whole
    /// passes are shared out, so every number equals a single process's.
    public var processGroup = ProcessGroup.single
    /// A shared context prefix shorter than this is not worth a forward pass of its own.
    public var minimumSharedPrefix = 4
    /// Run the tokens that every choice of a document starts with once, as part of its context: their rows are the
    /// same for every choice (causal attention), so each choice's log-likelihood is the shared tokens' plus its own.
    public var shareChoicePrefixes = true
    /// Choice tokens scored once for all choices of their document by the last `score` call (see
    /// `shareChoicePrefixes`): forward rows saved = this × (choices − 1).
    public private(set) var sharedChoiceTokens = 0

    /// The text of the token lm-eval's HF backend calls the prefix token (BOS, else EOS).
    private let prefixTokenText: String?

    public init(model: CausalLanguageModel, tokenizer: Tokenizer, tokenBudget: Int = 2048) {
        self.model = model
        self.tokenizer = tokenizer
        self.tokenBudget = max(1, tokenBudget)
        prefixTokenText = (tokenizer.bosTokenID ?? tokenizer.eosTokenID).map { tokenizer.decode([$0], skipSpecialTokens: false) }
    }

    // MARK: - Tokens

    /// The tokenizer's own special-token policy applies (lm-eval's HF backend calls `tokenizer.encode` with its
    /// defaults: BOS where the tokenizer adds one; special tokens in the text are matched), except that a text
    /// already starting with the prefix token's text (a chat template that writes BOS) gets none added, as there.
    public func tokenize(_ request: MultipleChoiceTask.Request) -> TokenizedRequest {
        // (An empty text, which no HF tokenizer has, would match every context: such a tokenizer keeps its policy.)
        let addSpecialTokens = !(prefixTokenText.map { !$0.isEmpty && request.context.unicodeScalars.starts(with: $0.unicodeScalars) } ?? false)
        let context = tokenizer.encode(request.context, addSpecialTokens: addSpecialTokens, parseSpecial: true)
        let continuations = request.continuations.map { continuation -> [Int32] in
            let whole = tokenizer.encode(request.context + continuation, addSpecialTokens: addSpecialTokens, parseSpecial: true)
            return whole.count > context.count ? Array(whole[context.count...]) : []
        }
        return TokenizedRequest(context: context, continuations: continuations)
    }

    // MARK: - Scoring

    /// Scores of every choice of every request, in order. `progress` gets the number of requests done.
    ///
    /// A request longer than the model's context is cut on the left as lm-eval cuts it: each choice keeps the last
    /// max_length + 1 tokens of context + continuation, so such a document's choices are scored one by one.
    public func score(_ requests: [MultipleChoiceTask.Request], origins: [String]? = nil,
                      progress: ((Int) -> Void)? = nil) throws -> [[ChoiceScore]] {
        let limit = model.config.maxPositionEmbeddings
        var units: [TokenizedRequest] = []
        var owners: [(request: Int, choices: [Int])] = []
        for (index, request) in requests.map(tokenize).enumerated() {
            guard !request.context.isEmpty else {
                throw HoneError.invalidArgument("\(origins?[index] ?? "document \(index)"): the context is empty")
            }
            let longest = request.continuations.map(\.count).max() ?? 0
            if request.context.count + max(0, longest - 1) <= limit {
                units.append(request)
                owners.append((index, Array(request.continuations.indices)))
                continue
            }
            for (choice, continuation) in request.continuations.enumerated() {
                guard continuation.count <= limit else {
                    throw HoneError.invalidArgument("\(origins?[index] ?? "document \(index)"): choice \(choice) has \(continuation.count) tokens, more than the model's context (\(limit))")
                }
                units.append(TokenizedRequest(context: Array(request.context.suffix(limit + 1 - continuation.count)),
                                              continuations: [continuation]))
                owners.append((index, [choice]))
            }
        }
        // The tokens every choice opens with join the context (each choice keeps at least its last token).
        var sharedTokens = [Int](repeating: 0, count: units.count)
        if shareChoicePrefixes {
            for (index, unit) in units.enumerated() where unit.continuations.count > 1 {
                let shared = commonPrefixLength(unit.continuations, atMost: unit.continuations.map(\.count).min()! - 1)
                guard shared > 0 else { continue }
                units[index] = TokenizedRequest(context: unit.context + unit.continuations[0].prefix(shared),
                                                continuations: unit.continuations.map { Array($0.dropFirst(shared)) })
                sharedTokens[index] = shared
            }
        }
        sharedChoiceTokens = sharedTokens.reduce(0, +)
        // Each unit's row before its first shared token must be its own (it scores that token).
        let prefix = try sharedPrefix(units.map(\.context),
                                      atMost: zip(units, sharedTokens).map { $0.context.count - 1 - $1 }.min() ?? 0)
        let passes = forwardPasses(lengths: units.map { $0.context.count - prefix.length }, tokenBudget: tokenBudget)
        var scoredUnits: [Int: [ChoiceScore]] = [:]
        for (index, pass) in passes.enumerated() where processGroup.owns(index) {
            for (offset, scores) in try scoreGroup(Array(units[pass]), sharedTokens: Array(sharedTokens[pass]),
                                                   prefix: prefix).enumerated() {
                scoredUnits[pass.lowerBound + offset] = scores
            }
            progress?(pass.upperBound == units.count ? requests.count : owners[pass.upperBound].request)
        }
        scoredUnits = try processGroup.merge(scoredUnits)
        var results = requests.map { [ChoiceScore](repeating: ChoiceScore(loglikelihood: 0, isGreedy: true), count: $0.continuations.count) }
        for (unit, scores) in scoredUnits {
            let owner = owners[unit]
            for (choice, score) in zip(owner.choices, scores) { results[owner.request][choice] = score }
        }
        return results
    }

    /// Length of the longest prefix common to all `sequences`, at most `limit`.
    private func commonPrefixLength(_ sequences: [[Int32]], atMost limit: Int) -> Int {
        guard let first = sequences.first else { return 0 }
        var length = max(0, limit)
        for sequence in sequences.dropFirst() {
            var common = 0
            while common < length, sequence[common] == first[common] { common += 1 }
            length = common
        }
        return length
    }

    /// The longest token prefix of all contexts, at most `limit` long (so that each context keeps the rows it
    /// scores from), run once; empty when shorter than `minimumSharedPrefix` or when there is a single context.
    private func sharedPrefix(_ contexts: [[Int32]], atMost limit: Int) throws -> (length: Int, cache: KVCache?) {
        guard contexts.count > 1 else { return (0, nil) }
        let length = commonPrefixLength(contexts, atMost: limit)
        guard length >= max(1, minimumSharedPrefix) else { return (0, nil) }
        let first = contexts[0]
        let cache = model.makeCache()
        _ = try model.forward([SequenceInput(tokens: Array(first.prefix(length)), cache: cache)], outputRows: [])
        return (length, cache)
    }

    /// `sharedTokens[i]`: how many of request i's context tokens are the opening of all its choices (scored here
    /// once and added to each choice).
    private func scoreGroup(_ requests: [TokenizedRequest], sharedTokens: [Int],
                            prefix: (length: Int, cache: KVCache?)) throws -> [[ChoiceScore]] {
        let caches = requests.map { _ -> KVCache in
            let cache = model.makeCache()
            if let shared = prefix.cache { cache.copyPrefix(of: shared, count: prefix.length) }
            return cache
        }
        var scores = requests.map { request in
            [ChoiceScore](repeating: ChoiceScore(loglikelihood: 0, isGreedy: true), count: request.continuations.count)
        }
        // 1. Every context once (after the shared prefix); its last row predicts the first token of every choice,
        //    the rows before it the choices' shared opening tokens, and only those rows are kept.
        var outputRows: [Int] = []
        var targets: [[Int32]] = []
        var passRows = 0
        for (request, shared) in zip(requests, sharedTokens) {
            passRows += request.context.count - prefix.length
            outputRows.append(contentsOf: (passRows - 1 - shared)..<passRows)
            targets.append(contentsOf: request.context.suffix(shared).map { [$0] })
            targets.append(request.continuations.map { $0.first ?? -1 })
        }
        let contextHidden = try model.forward(zip(requests, caches).map {
            SequenceInput(tokens: Array($0.context[prefix.length...]), cache: $1)
        }, outputRows: outputRows)
        let first = evaluate(contextHidden, rows: Array(outputRows.indices), targets: targets)
        var cursor = 0
        for (index, shared) in sharedTokens.enumerated() {
            var opening = ChoiceScore(loglikelihood: 0, isGreedy: true)
            for value in first[cursor..<(cursor + shared)].map({ $0[0] }) {
                opening.loglikelihood += Double(value.logprob)
                opening.isGreedy = opening.isGreedy && value.isGreedy
            }
            for (choice, value) in first[cursor + shared].enumerated() where requests[index].continuations[choice].count > 0 {
                scores[index][choice] = ChoiceScore(loglikelihood: opening.loglikelihood + Double(value.logprob),
                                                    isGreedy: opening.isGreedy && value.isGreedy)
            }
            cursor += shared + 1
        }
        // 2. Longer choices: round r runs choice r of every document on top of its context's cache (then forgets it),
        //    so documents stay batched and no cache is copied.
        let rounds = requests.map(\.continuations.count).max() ?? 0
        for round in 0..<rounds {
            var batch: [SequenceInput] = []
            var members: [Int] = []
            for (index, request) in requests.enumerated()
            where round < request.continuations.count && request.continuations[round].count > 1 {
                batch.append(SequenceInput(tokens: Array(request.continuations[round].dropLast()), cache: caches[index]))
                members.append(index)
            }
            guard !batch.isEmpty else { continue }
            let hidden = try model.forward(batch)
            var rows: [Int] = []
            targets = []
            for (slot, index) in members.enumerated() {
                let continuation = requests[index].continuations[round]
                for position in 0..<(continuation.count - 1) {
                    rows.append(hidden.sequenceOffsets[slot] + position)
                    targets.append([continuation[position + 1]])
                }
            }
            let values = evaluate(hidden, rows: rows, targets: targets)
            var cursor = 0
            for index in members {
                let continuation = requests[index].continuations[round]
                for _ in 0..<(continuation.count - 1) {
                    scores[index][round].loglikelihood += Double(values[cursor][0].logprob)
                    scores[index][round].isGreedy = scores[index][round].isGreedy && values[cursor][0].isGreedy
                    cursor += 1
                }
                caches[index].truncate(to: requests[index].context.count)
            }
        }
        return scores
    }

    /// For each hidden row, the log-softmax at each of its targets and whether the target is the argmax (the first
    /// maximum, as torch's argmax). Rows are projected to the vocabulary `logitChunk` at a time.
    private func evaluate(_ hidden: HiddenStates, rows: [Int], targets: [[Int32]]) -> [[(logprob: Float, isGreedy: Bool)]] {
        if let fused = evaluateWithoutLogits(hidden, rows: rows, targets: targets) { return fused }
        let vocabulary = model.config.vocabularySize
        let chunk = max(1, logitChunk)
        let gathered = FloatBuffer(count: chunk * hidden.width)
        let logits = FloatBuffer(count: chunk * vocabulary)
        var results: [[(logprob: Float, isGreedy: Bool)]] = []
        results.reserveCapacity(rows.count)
        var begin = 0
        while begin < rows.count {
            let count = min(chunk, rows.count - begin)
            for row in 0..<count {
                (gathered.pointer + row * hidden.width).update(from: hidden.values.pointer + rows[begin + row] * hidden.width,
                                                                count: hidden.width)
            }
            model.projectToVocabulary(gathered.pointer, rows: count, into: logits.pointer)
            // The argmax of each row, then the kernel's log-softmax at it: lp(t) = x_t − x_best + lp(best).
            var best = [Int32](repeating: 0, count: count)
            for row in 0..<count {
                let values = logits.pointer + row * vocabulary
                var index = 0
                var maximum = values[0]
                for candidate in 1..<vocabulary where values[candidate] > maximum {
                    maximum = values[candidate]
                    index = candidate
                }
                best[row] = Int32(index)
            }
            var atBest = [Float](repeating: 0, count: count)
            best.withUnsafeBufferPointer { targets in
                atBest.withUnsafeMutableBufferPointer { output in
                    hk_log_softmax_gather(logits.pointer, targets.baseAddress!, output.baseAddress!, Int32(count), Int32(vocabulary))
                }
            }
            for row in 0..<count {
                let values = logits.pointer + row * vocabulary
                let top = values[Int(best[row])]
                results.append(targets[begin + row].map { target in
                    target < 0 ? (0, true) : (values[Int(target)] - top + atBest[row], target == best[row])
                })
            }
            begin += count
        }
        return results
    }

    /// The same numbers without a logits matrix (hk_vocab_scores: log-normaliser and argmax per row, the target
    /// logits one dot product each), for an unbiased f32/f16/bf16 vocabulary head on AVX-512; nil otherwise.
    private func evaluateWithoutLogits(_ hidden: HiddenStates, rows: [Int],
                                       targets: [[Int32]]) -> [[(logprob: Float, isGreedy: Bool)]]? {
        guard model.config.finalLogitSoftcap == nil, let head = (model as? TrainableModel)?.vocabularyProjection, head.bias == nil,
              [.f32, .f16, .bf16].contains(head.weight.dtype), !rows.isEmpty else { return nil }
        let width = hidden.width
        let gathered = hidden.selecting(rows).values
        var best = [Int32](repeating: 0, count: rows.count)
        var bestLogit = [Float](repeating: 0, count: rows.count)
        var normalizer = [Double](repeating: 0, count: rows.count)
        let type = Int32(head.weight.dtype.ggmlType)
        let (inputs, vocabulary) = (Int32(head.inFeatures), Int32(head.outFeatures))
        guard hk_vocab_scores(head.weight.data, type, gathered.pointer, Int32(rows.count), inputs, vocabulary,
                              &best, &bestLogit, &normalizer) == 0 else { return nil }
        return rows.indices.map { row in
            targets[row].map { target in
                guard target >= 0 else { return (0, true) }
                let logit = hk_vocab_logit(head.weight.data, type, gathered.pointer + row * width, inputs, target)
                return (Float(Double(logit) - normalizer[row]), target == best[row])
            }
        }
    }
}
