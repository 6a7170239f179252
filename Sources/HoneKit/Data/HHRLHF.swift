import Foundation

// MARK: - Dialogue text helpers (byte level: the markers are ASCII, so every cut is a character boundary)

/// Anthropic HH-RLHF dialogues: `"\n\nHuman: …\n\nAssistant: …"` strings, and their conversion to DPO pairs
/// (TRL's `{prompt, chosen, rejected}`) and PRO ranking records (`{prefix, suffix, reward, meta, sft_index}`).
public enum HHRLHF {
    public static let assistantMarker = "\n\nAssistant:"
    public static let humanMarker = "\n\nHuman:"
    /// PRO's role tags (methods.md §2.1).
    public static let prompterTag = "<|prompter|>"
    public static let assistantTag = "<|assistant|>"

    /// The shared prompt of a chosen/rejected pair: the longest common prefix, backed off to the end of the last
    /// `"\n\nAssistant:"` that lies wholly inside it (the marker is part of the prompt); nil when there is none.
    ///
    /// TRL's `extract_prompt` takes the character-level longest common prefix and moves one space before the first
    /// difference into the completions. On HH that prefix usually runs into the replies ("…Assistant: I" when both
    /// replies start with "I"), so it is backed off to the turn boundary instead; the space after the colon then
    /// starts each completion, as in TRL. Cutting at the *last* marker of `chosen` would be wrong for the few
    /// records whose reply itself goes on with invented Human/Assistant turns (shared/data/README.md).
    public static func sharedPrompt(chosen: String, rejected: String) -> String? {
        let a = Array(chosen.utf8), b = Array(rejected.utf8)
        var common = 0
        let limit = min(a.count, b.count)
        while common < limit, a[common] == b[common] { common += 1 }
        guard let end = lastMarkerEnd(in: a[..<common], marker: Array(assistantMarker.utf8)) else { return nil }
        return String(decoding: a[..<end], as: UTF8.self)
    }

    /// The end offset of the last whole occurrence of `marker` in `bytes`.
    static func lastMarkerEnd(in bytes: ArraySlice<UInt8>, marker: [UInt8]) -> Int? {
        guard bytes.count >= marker.count else { return nil }
        var start = bytes.endIndex - marker.count
        while start >= bytes.startIndex {
            if bytes[start..<start + marker.count].elementsEqual(marker) { return start + marker.count }
            start -= 1
        }
        return nil
    }

    /// A turn of a dialogue: who speaks and the text, stripped of surrounding whitespace as PRO does.
    public struct Turn: Equatable, Sendable {
        public enum Role: Sendable { case human, assistant }
        public var role: Role
        public var text: String

        public init(role: Role, text: String) {
            self.role = role
            self.text = text
        }
    }

    /// Splits a dialogue at `"\n\nHuman:"` / `"\n\nAssistant:"` (or `"Human:"` / `"Assistant:"` at the very start).
    /// Returns nil when there is non-blank text before the first marker or the first turn is not Human's.
    ///
    /// PRO's own splitter cuts at every `"\n\n"` and drops paragraphs that do not start with a role, and it merges
    /// consecutive turns of one speaker with "\n"; this one keeps multi-paragraph turns whole and every turn as
    /// written, so the dialogue text rebuilt from the turns equals the original up to whitespace around turns.
    public static func turns(of dialogue: String) -> [Turn]? {
        let bytes = Array(dialogue.utf8)
        let markers: [(bytes: [UInt8], role: Turn.Role)] = [(Array(humanMarker.utf8), .human), (Array(assistantMarker.utf8), .assistant)]
        let bareMarkers: [(bytes: [UInt8], role: Turn.Role)] = [(Array("Human:".utf8), .human), (Array("Assistant:".utf8), .assistant)]
        var found: [(start: Int, end: Int, role: Turn.Role)] = []
        for marker in bareMarkers where bytes.starts(with: marker.bytes) {
            found.append((0, marker.bytes.count, marker.role))
        }
        var index = found.first?.end ?? 0
        while index < bytes.count {
            var matched = false
            if bytes[index] == 0x0A {
                for marker in markers where bytes[index...].starts(with: marker.bytes) {
                    found.append((index, index + marker.bytes.count, marker.role))
                    index += marker.bytes.count
                    matched = true
                    break
                }
            }
            if !matched { index += 1 }
        }
        guard let first = found.first, first.role == .human,
              strippedPythonWhitespace(String(decoding: bytes[..<first.start], as: UTF8.self)).isEmpty else { return nil }
        return found.enumerated().map { offset, marker in
            let end = offset + 1 < found.count ? found[offset + 1].start : bytes.count
            return Turn(role: marker.role, text: strippedPythonWhitespace(String(decoding: bytes[marker.end..<end], as: UTF8.self)))
        }
    }

    /// PRO's prefix list for a prompt that ends with the Assistant marker: `["<|prompter|>q1", "<|assistant|>a1", …,
    /// "<|assistant|>"]`, the last element the bare tag (methods.md §2.1).
    public static func proPrefix(prompt: String) -> [String]? {
        guard var turns = turns(of: prompt), turns.last?.role == .assistant, turns.last?.text.isEmpty == true else { return nil }
        turns.removeLast()
        return turns.map { ($0.role == .human ? prompterTag : assistantTag) + $0.text } + [assistantTag]
    }
}

/// Python's `str.strip()`: removes leading and trailing characters for which `str.isspace()` holds (Unicode
/// White_Space plus the information separators U+001C–U+001F).
public func strippedPythonWhitespace(_ text: String) -> String {
    let scalars = text.unicodeScalars
    func isSpace(_ scalar: Unicode.Scalar) -> Bool { scalar.properties.isWhitespace || (0x1C...0x1F).contains(scalar.value) }
    guard let first = scalars.firstIndex(where: { !isSpace($0) }) else { return "" }
    let last = scalars.lastIndex(where: { !isSpace($0) })!
    return String(scalars[first...last])
}

/// Python's `str.rstrip()`.
public func rightStrippedPythonWhitespace(_ text: String) -> String {
    let scalars = text.unicodeScalars
    guard let last = scalars.lastIndex(where: { !($0.properties.isWhitespace || (0x1C...0x1F).contains($0.value)) }) else { return "" }
    return String(scalars[...last])
}

// MARK: - Conversion

/// One converted HH-RLHF record.
public struct PreferencePair: Equatable, Sendable {
    /// The shared prompt, ending with `"\n\nAssistant:"`.
    public var prompt: String
    /// The rest of each dialogue after the prompt (starts with the space after the colon, as TRL's would).
    public var chosen: String
    public var rejected: String
    /// PRO's prefix turns (see `HHRLHF.proPrefix`).
    public var proPrefix: [String]
    /// 1-based line of the source record.
    public var line: Int
}

public struct HHRLHFConversion {
    public enum DropReason: String, CaseIterable, Sendable {
        case noSharedPrompt = "no shared prompt ending in \"\\n\\nAssistant:\""
        case notHumanFirst = "dialogue does not start with a Human: turn"
    }

    public var recordsIn = 0
    public var pairs: [PreferencePair] = []
    /// Dropped records by reason, each with the 1-based lines.
    public var dropped: [DropReason: [Int]] = [:]
    /// Pairs kept whose two dialogues are identical (zero margin) or whose chosen/rejected reply is blank.
    public var identicalPairs = 0
    public var blankResponses = 0
    /// Pairs whose prompt differs from a cut at the last "\n\nAssistant:" of `chosen` or of `rejected` (a reply
    /// goes on with invented turns): the cases the longest-common-prefix rule exists for.
    public var repliesWithExtraTurns = 0

    public var droppedCount: Int { dropped.values.reduce(0) { $0 + $1.count } }

    /// Converts `{chosen, rejected}` records. Missing or non-string fields are errors naming the line; records that
    /// cannot give a pair are dropped and counted by reason, never silently.
    public static func convert(_ records: [DataRecord]) throws -> HHRLHFConversion {
        var result = HHRLHFConversion()
        for record in records {
            result.recordsIn += 1
            let chosen = try record.string("chosen")
            let rejected = try record.string("rejected")
            let line: Int
            switch record.location {
            case .line(let number): line = number
            case .arrayIndex(let index): line = index
            }
            guard let prompt = HHRLHF.sharedPrompt(chosen: chosen, rejected: rejected) else {
                result.dropped[.noSharedPrompt, default: []].append(line)
                continue
            }
            guard let prefix = HHRLHF.proPrefix(prompt: prompt) else {
                result.dropped[.notHumanFirst, default: []].append(line)
                continue
            }
            let pair = PreferencePair(prompt: prompt, chosen: String(chosen.utf8.dropFirst(prompt.utf8.count))!,
                                      rejected: String(rejected.utf8.dropFirst(prompt.utf8.count))!, proPrefix: prefix, line: line)
            if chosen == rejected { result.identicalPairs += 1 }
            if strippedPythonWhitespace(pair.chosen).isEmpty || strippedPythonWhitespace(pair.rejected).isEmpty { result.blankResponses += 1 }
            // Either reply may go on with invented turns (counting only chosen's missed 7 of helpful-base's 9).
            let marker = Array(HHRLHF.assistantMarker.utf8)
            let cuts = [chosen, rejected].map { HHRLHF.lastMarkerEnd(in: Array($0.utf8)[...], marker: marker) }
            if cuts.contains(where: { $0 != nil && $0 != prompt.utf8.count }) {
                result.repliesWithExtraTurns += 1
            }
            result.pairs.append(pair)
        }
        return result
    }

    // MARK: Output

    /// TRL's preference format, one `{"prompt", "chosen", "rejected"}` per line.
    public func dpoJSONL() -> String {
        pairs.map { pair in
            jsonObjectLine([("prompt", jsonString(pair.prompt)), ("chosen", jsonString(pair.chosen)),
                            ("rejected", jsonString(pair.rejected))]) + "\n"
        }.joined()
    }

    /// PRO's ranking-2 training records (methods.md §2.1): the prefix list once per response, the responses
    /// stripped as PRO strips them, the human preference as rewards (see `HHRLHFConversion.rewards`), the
    /// source in `meta` as PRO's preprocessing records it, and `sft_index` 0 (the best response).
    public func proJSONL(sourcePath: String) -> String {
        pairs.map { pair in
            let prefix = jsonStringArray(pair.proPrefix)
            let meta = jsonObjectLine([("path", jsonString(sourcePath)), ("line_num", String(pair.line)), ("task", jsonString("dialogue"))])
            return jsonObjectLine([
                ("prefix", "[\(prefix), \(prefix)]"),
                ("suffix", jsonStringArray([strippedPythonWhitespace(pair.chosen), strippedPythonWhitespace(pair.rejected)])),
                ("reward", "[" + Self.rewards.map { "\($0)" }.joined(separator: ", ") + "]"),
                ("meta", meta),
                ("sft_index", "0"),
            ]) + "\n"
        }.joined()
    }

    /// Rewards written for (chosen, rejected) when no reward model has scored them. PRO's preprocessing writes
    /// 1.0 for every response in that case, but PRO's loss uses reward differences as temperatures, so equal
    /// rewards make every ranking term a constant (log 2) with no gradient. The human label is the only ranking
    /// signal there is: chosen 1.0, rejected 0.0, a temperature of 1 (PRO's `--temperature 1`).
    public static let rewards: [Double] = [1, 0]

    public struct Means: Sendable {
        public var promptCharacters = 0.0, chosenCharacters = 0.0, rejectedCharacters = 0.0, promptTurns = 0.0
    }

    /// Mean lengths in characters (grapheme clusters) and mean prompt turns (Human and Assistant, the open
    /// Assistant turn not counted).
    public var means: Means {
        var means = Means()
        guard !pairs.isEmpty else { return means }
        let count = Double(pairs.count)
        means.promptCharacters = pairs.reduce(0.0) { $0 + Double($1.prompt.count) } / count
        means.chosenCharacters = pairs.reduce(0.0) { $0 + Double($1.chosen.count) } / count
        means.rejectedCharacters = pairs.reduce(0.0) { $0 + Double($1.rejected.count) } / count
        means.promptTurns = pairs.reduce(0.0) { $0 + Double($1.proPrefix.count - 1) } / count
        return means
    }

    /// The summary table printed by `hone data hh-rlhf`.
    public func summary(input: String, outputs: [String]) -> String {
        var table = SummaryTable(title: "hh-rlhf: \(input)")
        table.add("records in", recordsIn)
        table.add("pairs out", pairs.count, note: outputs.joined(separator: ", "))
        table.add("dropped", droppedCount)
        for reason in DropReason.allCases {
            let lines = dropped[reason] ?? []
            if !lines.isEmpty {
                let shown = lines.prefix(10).map(String.init).joined(separator: ", ") + (lines.count > 10 ? ", …" : "")
                table.add("  " + reason.rawValue, lines.count, note: "lines " + shown)
            }
        }
        table.add("identical chosen and rejected", identicalPairs, note: "kept (zero margin)")
        table.add("blank chosen or rejected reply", blankResponses, note: "kept")
        table.add("replies with invented turns", repliesWithExtraTurns, note: "prompt from the common prefix")
        let means = self.means
        table.add("mean prompt length (chars)", String(format: "%.1f", means.promptCharacters))
        table.add("mean chosen length (chars)", String(format: "%.1f", means.chosenCharacters))
        table.add("mean rejected length (chars)", String(format: "%.1f", means.rejectedCharacters))
        table.add("mean turns in prompt", String(format: "%.2f", means.promptTurns))
        return table.render()
    }
}

// MARK: - Summary tables

/// A two- or three-column table for the data tools' summaries: label, right-aligned value, optional note.
public struct SummaryTable {
    public var title: String
    var rows: [(label: String, value: String, note: String)] = []

    public init(title: String) { self.title = title }

    public mutating func add(_ label: String, _ value: Int, note: String = "") { rows.append((label, String(value), note)) }
    public mutating func add(_ label: String, _ value: String, note: String = "") { rows.append((label, value, note)) }

    public func render() -> String {
        let labelWidth = rows.map(\.label.count).max() ?? 0
        let valueWidth = rows.map(\.value.count).max() ?? 0
        var text = title + "\n"
        for row in rows {
            let label = row.label.padding(toLength: labelWidth, withPad: " ", startingAt: 0)
            let value = String(repeating: " ", count: valueWidth - row.value.count) + row.value
            text += "  \(label)  \(value)" + (row.note.isEmpty ? "" : "  \(row.note)") + "\n"
        }
        return text
    }
}
