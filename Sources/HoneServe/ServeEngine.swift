import Foundation
import HoneKit

// MARK: - Requests and events

/// One sequence to generate, as the HTTP layer hands it to the engine (one per prompt and choice).
public struct EngineRequest: Sendable {
    public var prompt: [Int32]
    public var maxNewTokens: Int
    public var sampling: SamplingParameters
    /// OpenAI's penalties: logit -= count * frequency + (count > 0) * presence, where count is how often the token
    /// was generated so far in this answer. OpenAI counts sampled tokens only, and so does Hone; llama-server also
    /// counts the prompt's tokens within its last-64-token window, so its answers differ when penalties are set.
    public var frequencyPenalty: Float = 0
    public var presencePenalty: Float = 0
    /// OpenAI's `logit_bias`: added to a token's logit before the penalties and sampling; -100 bans the token.
    public var logitBias: [Int32: Float] = [:]
    public var stop: [String] = []
    /// False: the prompt is prefilled whole, whatever the slot's cache holds (llama-server's `cache_prompt`).
    public var cachePrompt = true
    /// Index into the engine's adapters; nil runs the base model.
    public var adapter: Int?
    /// Log-probabilities of each generated token with this many alternatives; nil: none.
    public var logprobs: Int?
    /// Log-probabilities of the prompt's tokens (echo) with this many alternatives; nil: none.
    public var promptLogprobs: Int?

    public init(prompt: [Int32], maxNewTokens: Int, sampling: SamplingParameters) {
        self.prompt = prompt
        self.maxNewTokens = maxNewTokens
        self.sampling = sampling
    }
}

/// A token's log-probability under the model (raw logits, before sampling settings) and the most likely alternatives.
public struct TokenLogprob: Sendable {
    public var token: Int32
    public var logprob: Float
    public var top: [TopLogprob]
}

public struct TopLogprob: Sendable {
    public var token: Int32
    public var logprob: Float
}

public enum EngineEvent: Sendable {
    /// The prompt's log-probabilities (nil for the first token, which has no context).
    case promptLogprobs([TokenLogprob?])
    /// A generated token and the text that became safe to show with it (possibly empty: a stop string may be
    /// starting, or a character is incomplete).
    case token(id: Int32, text: String, logprob: TokenLogprob?)
    /// The end: text still held back, why it ended, and token counts.
    case finished(text: String, reason: FinishReason, promptTokens: Int, completionTokens: Int, cachedTokens: Int)
    case failed(String)
}

// MARK: - Engine

/// Runs requests from many clients on one model with continuous batching: up to `parallel` slots decode together,
/// one forward pass per step over every active slot (grouped by adapter, in groups the row kernel handles, so a
/// row's greedy tokens never depend on its neighbours). A new request takes the free slot whose cached tokens share
/// the longest prefix with its prompt and prefills only the rest. Requests beyond the slots wait in a bounded queue.
///
/// The model runs on one thread of the engine's own; events reach callers through their `sink`, from that thread.
public final class ServeEngine: @unchecked Sendable {
    public let loaded: LoadedModel
    public let model: CausalLanguageModel
    public let tokenizer: Tokenizer
    public let endOfSequenceIDs: Set<Int32>
    public let contextLimit: Int
    public let parallel: Int
    public let queueLimit: Int
    /// Adapters by index (names live in the HTTP layer).
    private let adapterSets: [AdapterSet]

    /// A request in flight.
    public final class Job: @unchecked Sendable {
        let request: EngineRequest
        let sink: @Sendable (EngineEvent) -> Void
        private let lock = NSLock()
        private var cancelledFlag = false

        init(request: EngineRequest, sink: @escaping @Sendable (EngineEvent) -> Void) {
            self.request = request
            self.sink = sink
        }

        /// Frees the job's slot (or queue place) at the next step; no more events are sent.
        public func cancel() {
            lock.lock()
            cancelledFlag = true
            lock.unlock()
        }

        var isCancelled: Bool {
            lock.lock()
            defer { lock.unlock() }
            return cancelledFlag
        }
    }

    /// A slot: a KV cache and the tokens it holds, kept after a job ends for prefix reuse.
    private final class Slot {
        let cache: KVCache
        var cachedTokens: [Int32] = []
        var adapter: Int?
        var lastUsed: UInt64 = 0
        var active: Active?

        init(cache: KVCache) { self.cache = cache }
    }

    /// The generation state of the job a slot runs.
    private final class Active {
        let job: Job
        var sampler: Sampler
        var history: [Int32]
        var generated = 0
        let detokenizer: StreamingDetokenizer
        var stopMatcher: StopMatcher
        var pending: Int32 = -1
        var counts: [Int32: Int] = [:]
        /// Prompt tokens whose cached keys and values were reused.
        var cachedTokens = 0
        /// The job's last event was sent.
        var ended = false

        init(job: Job, tokenizer: Tokenizer) {
            self.job = job
            sampler = Sampler(parameters: job.request.sampling)
            history = job.request.prompt
            // Decoded after the prompt's last ids: a completion's text continues its prompt (" tak", not "tak").
            detokenizer = StreamingDetokenizer(tokenizer: tokenizer, context: job.request.prompt)
            stopMatcher = StopMatcher(stopStrings: job.request.stop)
        }
    }

    private let condition = NSCondition()
    private var waiting: [Job] = []
    private var stopping = false
    private var thread: Thread?
    private var slots: [Slot] = []
    private var clock: UInt64 = 0
    private let logits: FloatBuffer
    private let exitSemaphore = DispatchSemaphore(value: 0)

    /// - Parameters:
    ///   - adapters: LoRA adapters served by index, each loaded for `loaded.model`.
    ///   - template: the prompt template whose end tokens also end generation.
    public init(loaded: LoadedModel, adapters: [AdapterSet], template: PromptTemplate?, parallel: Int,
                contextLimit: Int?, queueLimit: Int) throws {
        self.loaded = loaded
        model = loaded.model
        let generator = try loaded.makeGenerator(template: template)
        tokenizer = generator.tokenizer
        endOfSequenceIDs = generator.endOfSequenceIDs
        self.contextLimit = min(contextLimit ?? generator.contextLimit, generator.contextLimit)
        self.parallel = max(1, parallel)
        self.queueLimit = max(0, queueLimit)
        adapterSets = adapters
        if !adapters.isEmpty, !(model is AdaptableModel) {
            throw HoneError.invalidArgument("\(model.config.modelType) models cannot take LoRA adapters yet")
        }
        slots = (0..<self.parallel).map { _ in Slot(cache: loaded.model.makeCache()) }
        logits = FloatBuffer(count: Linear.rowKernelLimit * model.config.vocabularySize)
    }

    // MARK: Submitting

    /// Queues a job; nil when the queue is full (the caller answers 503).
    public func submit(_ request: EngineRequest, sink: @escaping @Sendable (EngineEvent) -> Void) -> Job? {
        submit([request], sink: { _, event in sink(event) })?.first
    }

    /// Queues several jobs at once, all or none; nil when they do not fit in the queue.
    public func submit(_ requests: [EngineRequest], sink: @escaping @Sendable (Int, EngineEvent) -> Void) -> [Job]? {
        let jobs = requests.enumerated().map { index, request in Job(request: request, sink: { sink(index, $0) }) }
        condition.lock()
        defer { condition.unlock() }
        // Free slots take jobs at the next step, so they count as queue room too.
        let busy = slots.filter { $0.active != nil }.count
        let room = queueLimit + (parallel - busy) - waiting.count
        guard !stopping, jobs.count <= max(room, 0) || (waiting.isEmpty && busy == 0) else { return nil }
        waiting.append(contentsOf: jobs)
        condition.signal()
        return jobs
    }

    /// Jobs waiting for a slot and slots in use, for /health.
    public var load: (waiting: Int, busy: Int) {
        condition.lock()
        defer { condition.unlock() }
        return (waiting.count, slots.filter { $0.active != nil }.count)
    }

    /// Jobs ended so far: run to their end, and cancelled while running or waiting (their client went away).
    public var counts: (finished: Int, cancelled: Int) {
        condition.lock()
        defer { condition.unlock() }
        return (finishedCount, cancelledCount)
    }
    private var finishedCount = 0
    private var cancelledCount = 0

    // MARK: Running

    public func start() {
        let thread = Thread { [self] in
            run()
            exitSemaphore.signal()
        }
        thread.name = "hone-serve-engine"
        thread.stackSize = 16 << 20
        self.thread = thread
        thread.start()
    }

    /// Ends every job (as cancelled) and stops the engine thread.
    public func stop() {
        condition.lock()
        let wasRunning = thread != nil && !stopping
        stopping = true
        condition.signal()
        condition.unlock()
        if wasRunning { exitSemaphore.wait() }
    }

    private func run() {
        while true {
            // Take waiting jobs into free slots.
            condition.lock()
            dropCancelledWaiting()
            while !stopping && waiting.isEmpty && !slots.contains(where: { $0.active != nil }) {
                condition.wait()
                dropCancelledWaiting()
            }
            if stopping {
                let pending = waiting
                waiting.removeAll()
                condition.unlock()
                for job in pending { job.sink(.failed("the server is shutting down")) }
                for slot in slots { if let active = slot.active { active.job.sink(.failed("the server is shutting down")) } }
                return
            }
            var admitted: [(Slot, Job)] = []
            for job in waiting {
                guard let slot = chooseSlot(for: job.request, excluding: admitted.map(\.0)) else { break }
                admitted.append((slot, job))
            }
            waiting.removeFirst(admitted.count)
            for (slot, job) in admitted { slot.active = Active(job: job, tokenizer: tokenizer) }
            condition.unlock()

            for (slot, job) in admitted {
                do {
                    try prefill(slot, job)
                } catch {
                    job.sink(.failed("\(error)"))
                    slot.active?.ended = true
                    slot.cachedTokens = []
                    slot.cache.truncate(to: 0)
                    release(slot)
                }
            }
            for slot in slots where slot.active?.job.isCancelled == true { release(slot) }
            do {
                try decodeStep()
            } catch {
                for slot in slots {
                    if let active = slot.active {
                        active.job.sink(.failed("\(error)"))
                        active.ended = true
                    }
                    release(slot)
                    slot.cachedTokens = []
                    slot.cache.truncate(to: 0)
                }
            }
        }
    }

    /// Ends waiting jobs whose clients went away. Call with the lock held.
    private func dropCancelledWaiting() {
        for job in waiting where job.isCancelled {
            cancelledCount += 1
            job.sink(Self.cancelledEvent(job))
        }
        waiting.removeAll { $0.isCancelled }
    }

    /// The last event of a cancelled job, so that whoever still reads its events stops waiting.
    private static func cancelledEvent(_ job: Job) -> EngineEvent {
        .finished(text: "", reason: .cancelled, promptTokens: job.request.prompt.count, completionTokens: 0, cachedTokens: 0)
    }

    /// The free slot sharing the longest prefix with the prompt (same adapter), else the least recently used.
    /// Call with the lock held.
    private func chooseSlot(for request: EngineRequest, excluding taken: [Slot]) -> Slot? {
        var best: Slot?
        var bestShared = -1
        for slot in slots where slot.active == nil && !taken.contains(where: { $0 === slot }) {
            let shared = slot.adapter == request.adapter ? commonPrefix(slot.cachedTokens, request.prompt) : 0
            if shared > bestShared || (shared == bestShared && slot.lastUsed < best!.lastUsed) {
                best = slot
                bestShared = shared
            }
        }
        return best
    }

    private func commonPrefix(_ a: [Int32], _ b: [Int32]) -> Int {
        var count = 0
        let limit = min(a.count, b.count)
        while count < limit && a[count] == b[count] { count += 1 }
        return count
    }

    private func release(_ slot: Slot) {
        condition.lock()
        if let active = slot.active, active.job.isCancelled, !active.ended {
            cancelledCount += 1
            active.job.sink(Self.cancelledEvent(active.job))
        } else {
            finishedCount += 1
        }
        slot.active = nil
        clock += 1
        slot.lastUsed = clock
        condition.unlock()
    }

    /// Runs `inputs` through the model with the adapter of `adapter` switched on.
    private func forward(_ inputs: [SequenceInput], adapter: Int?) throws -> HiddenStates {
        if let adaptable = model as? AdaptableModel {
            adaptable.adapters = adapter.map { adapterSets[$0] }
        }
        return try model.forward(inputs)
    }

    // MARK: Prefill

    private func prefill(_ slot: Slot, _ job: Job) throws {
        let request = job.request
        let prompt = request.prompt
        guard !prompt.isEmpty else { throw HoneError.invalidArgument("the prompt is empty") }
        // Reuse the cached prefix, leaving at least one token to run (its logits pick the first new token). The
        // prompt's log-probabilities need every position's hidden state, so those requests start from scratch.
        var shared = slot.adapter == request.adapter ? commonPrefix(slot.cachedTokens, prompt) : 0
        shared = min(shared, prompt.count - 1)
        if request.promptLogprobs != nil || !request.cachePrompt { shared = 0 }
        slot.cache.truncate(to: shared)
        slot.cachedTokens.removeSubrange(shared...)
        slot.adapter = request.adapter
        let active = slot.active!
        active.cachedTokens = shared

        let hidden = try forward([SequenceInput(tokens: Array(prompt[shared...]), cache: slot.cache)], adapter: request.adapter)
        slot.cachedTokens = prompt
        if let top = request.promptLogprobs {
            job.sink(.promptLogprobs(promptLogprobs(hidden, prompt: prompt, top: top)))
        }
        if request.maxNewTokens <= 0 {
            finish(slot, .length)
            return
        }
        model.projectToVocabulary(hidden.values.pointer + (hidden.rows - 1) * hidden.width, rows: 1, into: logits.pointer)
        let token = try sample(active, logits: logits.pointer)
        _ = accept(slot, token.id, logprob: token.logprob)
    }

    /// Log-probabilities of prompt[1...] from the hidden states of every prompt position, a few rows at a time.
    private func promptLogprobs(_ hidden: HiddenStates, prompt: [Int32], top: Int) -> [TokenLogprob?] {
        let vocabulary = model.config.vocabularySize
        var result: [TokenLogprob?] = [nil]
        var row = 0
        let chunk = Linear.rowKernelLimit
        while row < prompt.count - 1 {
            let rows = min(chunk, prompt.count - 1 - row)
            model.projectToVocabulary(hidden.values.pointer + row * hidden.width, rows: rows, into: logits.pointer)
            for offset in 0..<rows {
                result.append(Self.logprob(of: prompt[row + offset + 1], logits: logits.pointer + offset * vocabulary,
                                           vocabularySize: vocabulary, top: top))
            }
            row += rows
        }
        return result
    }

    // MARK: Decoding

    /// One decode step for every active slot.
    private func decodeStep() throws {
        let running = slots.filter { $0.active != nil }
        guard !running.isEmpty else { return }
        let vocabulary = model.config.vocabularySize
        // Group by adapter (each group is one forward pass with its adapter on), keeping slot order.
        var groups: [(adapter: Int?, slots: [Slot])] = []
        for slot in running {
            if let index = groups.firstIndex(where: { $0.adapter == slot.adapter }) {
                groups[index].slots.append(slot)
            } else {
                groups.append((slot.adapter, [slot]))
            }
        }
        for group in groups {
            var start = 0
            while start < group.slots.count {
                let part = Array(group.slots[start..<min(group.slots.count, start + Linear.rowKernelLimit)])
                let hidden = try forward(part.map { SequenceInput(tokens: [$0.active!.pending], cache: $0.cache) },
                                         adapter: group.adapter)
                model.projectToVocabulary(hidden.values.pointer, rows: part.count, into: logits.pointer)
                for (row, slot) in part.enumerated() {
                    let active = slot.active!
                    slot.cachedTokens.append(active.pending)
                    if active.job.isCancelled {
                        release(slot)
                        continue
                    }
                    let token = try sample(active, logits: logits.pointer + row * vocabulary)
                    _ = accept(slot, token.id, logprob: token.logprob)
                }
                start += part.count
            }
        }
    }

    /// Picks the next token of a sequence (its logits are changed in place), with its log-probability if asked.
    /// NaN logits (a poisoned weight) sample nothing meaningful: the request fails with that reason instead.
    private func sample(_ active: Active, logits row: UnsafeMutablePointer<Float>) throws -> (id: Int32, logprob: TokenLogprob?) {
        let request = active.job.request
        let vocabulary = model.config.vocabularySize
        if let bad = (0..<vocabulary).first(where: { !row[$0].isFinite }) {
            throw HoneError.nonFinite(message: "generation stopped: token \(active.generated + 1): the logit of token id \(bad) is "
                + "\(row[bad]); the model produces non-finite numbers")
        }
        // Log-probabilities are the model's own, before bias, penalties and sampling settings (as OpenAI reports them).
        var snapshot: [Float]?
        if request.logprobs != nil { snapshot = Array(UnsafeBufferPointer(start: row, count: vocabulary)) }
        // -100 is a ban whatever the logits' scale (OpenAI: "should result in a ban"), so it is -inf, not a shift.
        for (token, bias) in request.logitBias where Int(token) < vocabulary {
            row[Int(token)] = bias <= -100 ? -.infinity : row[Int(token)] + bias
        }
        if request.frequencyPenalty != 0 || request.presencePenalty != 0 {
            for (token, count) in active.counts where Int(token) < vocabulary {
                row[Int(token)] -= Float(count) * request.frequencyPenalty + request.presencePenalty
            }
        }
        let id = active.sampler.sample(logits: row, vocabularySize: vocabulary, history: active.history)
        guard let snapshot, let top = request.logprobs else { return (id, nil) }
        let logprob = snapshot.withUnsafeBufferPointer {
            Self.logprob(of: id, logits: $0.baseAddress!, vocabularySize: vocabulary, top: top)
        }
        return (id, logprob)
    }

    /// Takes a sampled token: sends its text, or ends the job. Returns whether the job goes on.
    private func accept(_ slot: Slot, _ token: Int32, logprob: TokenLogprob?) -> Bool {
        let active = slot.active!
        if endOfSequenceIDs.contains(token) {
            finish(slot, .endOfSequence)
            return false
        }
        active.generated += 1
        active.history.append(token)
        active.counts[token, default: 0] += 1
        let (emit, stopped) = active.stopMatcher.push(active.detokenizer.push(token))
        active.job.sink(.token(id: token, text: emit, logprob: logprob))
        if stopped {
            finish(slot, .stopString)
            return false
        }
        if active.generated >= active.job.request.maxNewTokens {
            finish(slot, .length)
            return false
        }
        if active.history.count >= contextLimit {
            finish(slot, .contextFull)
            return false
        }
        active.pending = token
        return true
    }

    private func finish(_ slot: Slot, _ reason: FinishReason) {
        let active = slot.active!
        var rest = ""
        if reason != .stopString {
            let (emit, stopped) = active.stopMatcher.push(active.detokenizer.finish())
            rest = stopped ? emit : emit + active.stopMatcher.finish()
        }
        active.job.sink(.finished(text: rest, reason: reason, promptTokens: active.job.request.prompt.count,
                                  completionTokens: active.generated, cachedTokens: active.cachedTokens))
        active.ended = true
        release(slot)
    }

    // MARK: Log-probabilities

    /// log softmax(logits)[token] and the `top` most likely tokens, in double for the normaliser.
    static func logprob(of token: Int32, logits: UnsafePointer<Float>, vocabularySize: Int, top: Int) -> TokenLogprob {
        var maximum = -Float.infinity
        for index in 0..<vocabularySize where logits[index] > maximum { maximum = logits[index] }
        var sum = 0.0
        for index in 0..<vocabularySize { sum += Foundation.exp(Double(logits[index] - maximum)) }
        let normaliser = Double(maximum) + Foundation.log(sum)
        let value = { (index: Int) in Float(Double(logits[index]) - normaliser) }
        var best: [TopLogprob] = []
        if top > 0 {
            // A small sorted list: top is at most 20.
            for index in 0..<vocabularySize {
                let score = logits[index]
                if best.count == top, let last = best.last, !(score > logits[Int(last.token)]) { continue }
                let entry = TopLogprob(token: Int32(index), logprob: 0)
                let position = best.firstIndex { score > logits[Int($0.token)] } ?? best.count
                best.insert(entry, at: position)
                if best.count > top { best.removeLast() }
            }
            best = best.map { TopLogprob(token: $0.token, logprob: value(Int($0.token))) }
        }
        return TokenLogprob(token: token, logprob: value(Int(token)), top: best)
    }
}
