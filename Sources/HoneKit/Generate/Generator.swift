import Foundation
import HoneKernels

/// One prompt to continue.
public struct GenerationRequest: Sendable {
    public var promptTokens: [Int32]
    public var maxNewTokens: Int
    public var sampling: SamplingParameters
    public var stopStrings: [String]
    /// Decode the new text after the prompt's last ids (a server's completion continues its prompt: " tak");
    /// false decodes it alone, as transformers' `decode` of the new ids does ("tak" with Llama's tokenizer).
    public var decodesAfterPrompt: Bool

    public init(promptTokens: [Int32], maxNewTokens: Int, sampling: SamplingParameters = SamplingParameters(),
                stopStrings: [String] = [], decodesAfterPrompt: Bool = false) {
        self.promptTokens = promptTokens
        self.maxNewTokens = maxNewTokens
        self.sampling = sampling
        self.stopStrings = stopStrings
        self.decodesAfterPrompt = decodesAfterPrompt
    }
}

public enum FinishReason: String, Sendable {
    /// An end-of-sequence id was generated (not part of the text).
    case endOfSequence = "eos"
    /// A stop string was generated (it and anything after it are not part of the text).
    case stopString = "stop"
    /// `maxNewTokens` were generated.
    case length
    /// The model's context is full.
    case contextFull = "context"
    /// The caller asked to stop (Ctrl-C in chat).
    case cancelled
}

public struct GenerationResult: Sendable {
    /// Generated ids, without a final EOS.
    public var tokens: [Int32]
    /// Generated text with special tokens skipped and stop strings cut.
    public var text: String
    public var finishReason: FinishReason

    public init(tokens: [Int32], text: String, finishReason: FinishReason) {
        self.tokens = tokens
        self.text = text
        self.finishReason = finishReason
    }
}

/// Generates continuations of many prompts with continuous batching: up to `batchSize` sequences decode
/// together, and a finished sequence's slot takes the next prompt at once. Each prompt is prefilled alone as one
/// block; decode steps run all active sequences in one forward pass (in groups of at most
/// `Linear.rowKernelLimit`, whose kernel gives each row bit-identical results whatever the group), so under greedy
/// decoding every output equals the batch-size-1 output.
public final class Generator {
    public let model: CausalLanguageModel
    public let tokenizer: Tokenizer
    /// Ids that end a sequence (generation_config.json may list several).
    public var endOfSequenceIDs: Set<Int32>
    /// Positions a sequence may use (prompt + generated); defaults to the model's max_position_embeddings.
    public var contextLimit: Int

    public init(model: CausalLanguageModel, tokenizer: Tokenizer) {
        self.model = model
        self.tokenizer = tokenizer
        var ends = Set(model.config.eosTokenIDs.map { Int32($0) })
        if let eos = tokenizer.eosTokenID { ends.insert(eos) }
        endOfSequenceIDs = ends
        contextLimit = model.config.maxPositionEmbeddings
    }

    /// An active sequence.
    /// NaN logits (a poisoned weight, an overflowing model) sample nothing meaningful (the answers came out empty
    /// and the run said done): stop, naming the request and the token, with what was finished already kept.
    private func requireFinite(_ row: UnsafePointer<Float>, count: Int, _ slot: Slot) throws {
        if let bad = (0..<count).first(where: { !row[$0].isFinite }) {
            throw HoneError.nonFinite(message: "generation stopped: request \(slot.index + 1), token \(slot.generated.count + 1): "
                + "the logit of token id \(bad) is \(row[bad]); the model produces non-finite numbers")
        }
    }

    private final class Slot {
        let index: Int
        let request: GenerationRequest
        let cache: KVCache
        var sampler: Sampler
        var history: [Int32]
        var generated: [Int32] = []
        let detokenizer: StreamingDetokenizer
        var stopMatcher: StopMatcher
        var text = ""
        var pending: Int32 = -1

        init(index: Int, request: GenerationRequest, cache: KVCache, tokenizer: Tokenizer) {
            self.index = index
            self.request = request
            self.cache = cache
            sampler = Sampler(parameters: request.sampling)
            history = request.promptTokens
            detokenizer = StreamingDetokenizer(tokenizer: tokenizer, context: request.decodesAfterPrompt ? request.promptTokens : [])
            stopMatcher = StopMatcher(stopStrings: request.stopStrings)
        }
    }

    /// Runs every request to completion.
    /// - Parameters:
    ///   - onText: new text of request `index` as it is made (never part of a stop string, never half a character).
    ///   - onFinish: called once per request, in completion order.
    ///   - shouldCancel: polled between steps; returning true for an index ends that request as `.cancelled`.
    public func generate(_ requests: [GenerationRequest], batchSize: Int,
                         onText: ((Int, String) -> Void)? = nil,
                         onFinish: (Int, GenerationResult) throws -> Void,
                         shouldCancel: ((Int) -> Bool)? = nil) throws {
        let vocabulary = model.config.vocabularySize
        var queue = Array(requests.indices.reversed())
        var active: [Slot] = []
        let logits = FloatBuffer(count: Linear.rowKernelLimit * vocabulary)

        func finish(_ slot: Slot, _ reason: FinishReason) throws {
            // After a stop string nothing more is shown; otherwise flush what the detokenizer and the stop
            // matcher still hold back (an incomplete character, a possible start of a stop string).
            if reason != .stopString {
                let (emit, stopped) = slot.stopMatcher.push(slot.detokenizer.finish())
                let emitted = stopped ? emit : emit + slot.stopMatcher.finish()
                if !emitted.isEmpty {
                    slot.text += emitted
                    onText?(slot.index, emitted)
                }
            }
            try onFinish(slot.index, GenerationResult(tokens: slot.generated, text: slot.text, finishReason: reason))
        }

        /// Takes a freshly sampled id: returns false when the sequence is finished.
        func accept(_ slot: Slot, _ token: Int32) throws -> Bool {
            if endOfSequenceIDs.contains(token) {
                try finish(slot, .endOfSequence)
                return false
            }
            slot.generated.append(token)
            slot.history.append(token)
            let (emit, stopped) = slot.stopMatcher.push(slot.detokenizer.push(token))
            if !emit.isEmpty {
                slot.text += emit
                onText?(slot.index, emit)
            }
            if stopped {
                try finish(slot, .stopString)
                return false
            }
            if slot.generated.count >= slot.request.maxNewTokens {
                try finish(slot, .length)
                return false
            }
            // Prompt plus generated tokens fill the context (the last token would need one more position).
            if slot.history.count >= contextLimit {
                try finish(slot, .contextFull)
                return false
            }
            slot.pending = token
            return true
        }

        while !queue.isEmpty || !active.isEmpty {
            // Fill free slots: prefill each new prompt alone, as one block.
            while active.count < max(1, batchSize), let index = queue.popLast() {
                let request = requests[index]
                let slot = Slot(index: index, request: request, cache: model.makeCache(), tokenizer: tokenizer)
                guard !request.promptTokens.isEmpty else {
                    throw HoneError.invalidArgument("request \(index) has an empty prompt")
                }
                if request.promptTokens.count >= contextLimit {
                    throw HoneError.contextOverflow(needed: request.promptTokens.count + 1, limit: contextLimit)
                }
                if request.maxNewTokens <= 0 {
                    try finish(slot, .length)
                    continue
                }
                // Only the prompt's last row is sampled from.
                let hidden = try model.forward([SequenceInput(tokens: request.promptTokens, cache: slot.cache)],
                                               outputRows: [request.promptTokens.count - 1])
                model.projectToVocabulary(hidden.values.pointer, rows: 1, into: logits.pointer)
                try requireFinite(logits.pointer, count: vocabulary, slot)
                let token = slot.sampler.sample(logits: logits.pointer, vocabularySize: vocabulary, history: slot.history)
                if try accept(slot, token) { active.append(slot) }
            }
            if let shouldCancel {
                for slot in active where shouldCancel(slot.index) { try finish(slot, .cancelled) }
                active.removeAll { shouldCancel($0.index) }
            }
            if active.isEmpty { continue }

            // One decode step for every active sequence, in groups the row kernel handles.
            var survivors: [Slot] = []
            var start = 0
            while start < active.count {
                let group = Array(active[start..<min(active.count, start + Linear.rowKernelLimit)])
                let hidden = try model.forward(group.map { SequenceInput(tokens: [$0.pending], cache: $0.cache) })
                model.projectToVocabulary(hidden.values.pointer, rows: group.count, into: logits.pointer)
                for (row, slot) in group.enumerated() {
                    try requireFinite(logits.pointer + row * vocabulary, count: vocabulary, slot)
                    let token = slot.sampler.sample(logits: logits.pointer + row * vocabulary, vocabularySize: vocabulary,
                                                    history: slot.history)
                    if try accept(slot, token) { survivors.append(slot) }
                }
                start += group.count
            }
            active = survivors
        }
    }
}

extension LoadedModel {
    /// A generator over this model and its tokenizer that stops at every EOS id the model declares and at the end
    /// tokens of `template` (ChatML's `<|im_end|>`, say).
    public func makeGenerator(template: PromptTemplate? = nil) throws -> Generator {
        let tokenizer = try tokenizer()
        let generator = Generator(model: model, tokenizer: tokenizer)
        if let template { generator.endOfSequenceIDs.formUnion(template.endTokenIDs(for: tokenizer)) }
        return generator
    }
}
