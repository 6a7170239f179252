import Foundation

/// A multiple-choice task with lm-evaluation-harness's definitions: its documents, its few-shot source and sampler,
/// its description, and the metrics it reports.
public struct MultipleChoiceTask: Sendable {
    public enum Metric: String, Sendable {
        /// argmax of the log-likelihoods is the gold choice.
        case acc
        /// argmax of log-likelihood ÷ character length of the choice.
        case accNorm = "acc_norm"
    }

    /// How few-shot examples are chosen.
    public enum Sampler: Sendable, Equatable {
        /// The first n examples in file order (MMLU's `first_n` on `dev`).
        case firstN
        /// lm-eval's default sampler: `random.Random(seed).sample(pool, n)`, one generator per task consumed in
        /// document order; when the pool is the evaluation split, n + 1 are drawn and the document itself removed.
        case seeded(Int)
    }

    public let name: String
    public var documents: [MultipleChoiceDocument]
    /// Few-shot examples; nil = the evaluation documents themselves (each document excluded from its own shots).
    public var fewShotPool: [MultipleChoiceDocument]?
    public var sampler: Sampler
    /// Put before everything (MMLU: "The following are multiple choice questions (with answers) about ...\n\n").
    public var description: String
    public var metrics: [Metric]
    /// TruthfulQA mc2: the metric "acc" is the normalised probability mass of the true answers.
    public var isMC2: Bool
    /// MMLU subject group (stem, humanities, social_sciences, other), nil for other tasks.
    public var group: String?
    /// A remark printed with the results (e.g. HellaSwag's text rendering).
    public var note: String?
    /// lm-eval's `num_fewshot` fixed in the task (TruthfulQA: 0), used when no count is asked for.
    public var defaultFewShot: Int

    public static let targetDelimiter = " "
    public static let fewShotDelimiter = "\n\n"
    public static let defaultSeed = 1234

    public init(name: String, documents: [MultipleChoiceDocument], fewShotPool: [MultipleChoiceDocument]? = nil,
                sampler: Sampler = .seeded(MultipleChoiceTask.defaultSeed), description: String = "",
                metrics: [Metric] = [.acc, .accNorm], isMC2: Bool = false, group: String? = nil, note: String? = nil,
                defaultFewShot: Int = 0) {
        self.name = name
        self.documents = documents
        self.fewShotPool = fewShotPool
        self.sampler = sampler
        self.description = description
        self.metrics = metrics
        self.isMC2 = isMC2
        self.group = group
        self.note = note
        self.defaultFewShot = defaultFewShot
    }

    // MARK: - Prompts

    /// One scored request: the context (description + shots + query) and one continuation per choice, split as
    /// lm-eval's `_encode_pair` does: trailing whitespace of the context moves to the front of every continuation.
    public struct Request: Sendable, Equatable {
        public let context: String
        public let continuations: [String]
        /// The whitespace moved (lm-eval logs the context and continuations before the move).
        public var movedWhitespace = ""

        /// The context and continuations as lm-eval's requests hold them, before the whitespace moved.
        public var unsplit: (context: String, continuations: [String]) {
            let moved = movedWhitespace.unicodeScalars.count
            return (context + movedWhitespace,
                    continuations.map { String(String.UnicodeScalarView($0.unicodeScalars.dropFirst(moved))) })
        }
    }

    /// lm-eval's instruct formatting (`--system_instruction`, `--apply_chat_template`, `--fewshot_as_multiturn`).
    /// The prompt is a list of messages: a system message (the instruction and the task description), each shot as
    /// a user turn (query) and an assistant turn (answer), the document as the last user turn. Without a chat
    /// template their texts are joined (each user turn followed by the target delimiter, each answer by the few-shot
    /// delimiter: the plain prompt, after the instruction). With one, the template renders them (opened for the
    /// assistant; all turns but the system message joined into one user message unless `fewShotAsMultiturn`; if
    /// the template raises, again without the system message) and each choice follows with no delimiter.
    public struct PromptFormat: Sendable {
        public var systemInstruction: String?
        public var chatTemplate: ChatTemplate?
        public var fewShotAsMultiturn: Bool

        public init(systemInstruction: String? = nil, chatTemplate: ChatTemplate? = nil, fewShotAsMultiturn: Bool = false) {
            self.systemInstruction = systemInstruction
            self.chatTemplate = chatTemplate
            self.fewShotAsMultiturn = fewShotAsMultiturn
        }

        public static let plain = PromptFormat()
    }

    /// The contexts of the first `limit` documents with `fewShot` examples each, in document order (the seeded
    /// sampler's draws depend on that order, as in lm-eval).
    public func requests(fewShot: Int, limit: Int? = nil, format: PromptFormat = .plain) throws -> [Request] {
        let count = min(limit ?? documents.count, documents.count)
        var random = PythonRandom(seed: UInt64(seedValue))
        let pool = fewShotPool ?? documents
        let poolIsEvaluation = fewShotPool == nil
        if fewShot > 0 {
            let available = poolIsEvaluation ? pool.count - 1 : pool.count
            guard available >= fewShot else {
                throw HoneError.invalidArgument("\(name): \(OptionName("num_fewshot")) \(fewShot) but only \(available) few-shot examples are available")
            }
        }
        var result: [Request] = []
        result.reserveCapacity(count)
        for index in 0..<count {
            let document = documents[index]
            var shots: [MultipleChoiceDocument] = []
            if fewShot > 0 {
                switch sampler {
                case .firstN:
                    shots = Array(pool.prefix(fewShot))
                case .seeded:
                    if poolIsEvaluation {
                        // lm-eval compares documents by content, so duplicates of the document go too; when that
                        // leaves too few, it draws again from the pool without them.
                        let drawn = random.sample(Array(pool.indices), count: fewShot + 1)
                        shots = drawn.filter { !pool[$0].sameContent(as: document) }.prefix(fewShot).map { pool[$0] }
                        if shots.count < fewShot {
                            let rest = pool.filter { !$0.sameContent(as: document) }
                            guard rest.count >= fewShot else {
                                throw HoneError.invalidArgument("\(name): \(OptionName("num_fewshot")) \(fewShot) but only \(rest.count) distinct few-shot examples are available")
                            }
                            shots = random.sample(rest, count: fewShot)
                        }
                    } else {
                        shots = random.sample(pool, count: fewShot)
                    }
                }
            }
            if format.systemInstruction == nil, format.chatTemplate == nil {
                var context = description
                for shot in shots {
                    context += shot.query + Self.targetDelimiter + shot.choices[shot.gold] + Self.fewShotDelimiter
                }
                context += document.query
                result.append(Self.split(context: context, continuations: document.choices.map { Self.targetDelimiter + $0 }))
                continue
            }
            result.append(try formattedRequest(document: document, shots: shots, format: format))
        }
        return result
    }

    // MARK: - Instruct formatting

    private struct Turn {
        let role: String
        var content: String
        /// Follows the content when turns are joined as text.
        var delimiter: String
    }

    private func formattedRequest(document: MultipleChoiceDocument, shots: [MultipleChoiceDocument],
                                  format: PromptFormat) throws -> Request {
        var turns: [Turn] = []
        let system = Self.joined(format.systemInstruction ?? "", description, delimiter: Self.fewShotDelimiter)
        if !system.isEmpty { turns.append(Turn(role: "system", content: system, delimiter: "")) }
        for shot in shots {
            turns.append(Turn(role: "user", content: shot.query, delimiter: Self.targetDelimiter))
            turns.append(Turn(role: "assistant", content: shot.choices[shot.gold], delimiter: Self.fewShotDelimiter))
        }
        turns.append(Turn(role: "user", content: document.query, delimiter: ""))
        guard let template = format.chatTemplate else {
            return Self.split(context: turns.map { $0.content + $0.delimiter }.joined(),
                              continuations: document.choices.map { Self.targetDelimiter + $0 })
        }
        if !format.fewShotAsMultiturn {
            // One user message of every non-system turn's text.
            let start = turns.first?.role == "system" ? 1 : 0
            let user = Turn(role: "user", content: turns[start...].map { $0.content + $0.delimiter }.joined(), delimiter: "")
            turns = Array(turns[..<start]) + [user]
        }
        func render(_ turns: [Turn]) throws -> String {
            try template.render(messages: turns.map { ["role": .string($0.role), "content": .string($0.content)] },
                                addGenerationPrompt: true)
        }
        let context: String
        do {
            context = try render(turns)
        } catch HoneError.template {
            // lm-eval retries a template that rejects the system role without it.
            context = try render(turns.filter { $0.role != "system" })
        }
        return Self.split(context: context, continuations: document.choices)
    }

    /// lm-eval's `maybe_delimit`: prefix + delimiter + suffix, without the delimiter when either side is empty or
    /// has whitespace at the join.
    static func joined(_ prefix: String, _ suffix: String, delimiter: String) -> String {
        guard let last = prefix.unicodeScalars.last else { return suffix }
        guard let first = suffix.unicodeScalars.first else { return prefix }
        return pythonIsSpace(last) || pythonIsSpace(first) ? prefix + suffix : prefix + delimiter + suffix
    }

    private var seedValue: Int {
        if case .seeded(let seed) = sampler { return seed }
        return Self.defaultSeed
    }

    /// lm-eval's `_encode_pair` string step: n trailing whitespace characters of the context move to the front of
    /// each continuation.
    public static func split(context: String, continuations: [String]) -> Request {
        let scalars = context.unicodeScalars
        var end = scalars.endIndex
        while end > scalars.startIndex, pythonIsSpace(scalars[scalars.index(before: end)]) { end = scalars.index(before: end) }
        let trailing = String(scalars[end...])
        return Request(context: String(scalars[..<end]), continuations: continuations.map { trailing + $0 },
                       movedWhitespace: trailing)
    }
}

extension MultipleChoiceDocument {
    /// Equality of what lm-eval's document holds (not where it came from).
    func sameContent(as other: MultipleChoiceDocument) -> Bool {
        query == other.query && choices == other.choices && gold == other.gold && labels == other.labels
    }
}
