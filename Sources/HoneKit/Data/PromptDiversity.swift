import Foundation

// MARK: - Prompt diversity (ScalingAlignment, arXiv 2403.11124; methods.md §2.4)

/// Token-bigram statistics of a set of prompts: N prompts, U distinct bigrams, T bigrams in all, and the
/// diversity D = √N · U / T of ScalingAlignment's `diversity.py` / `sample.py` (n = 2, exponent 1/2).
public struct BigramStatistics: Sendable, Equatable {
    public var prompts = 0
    public var uniqueBigrams = 0
    public var totalBigrams = 0
    public var tokens = 0

    /// D; NaN when there is no bigram at all (every prompt shorter than two tokens).
    public var diversity: Double {
        totalBigrams == 0 ? .nan : Double(prompts).squareRoot() * Double(uniqueBigrams) / Double(totalBigrams)
    }
}

/// Counts bigrams of tokenized prompts. Feed one counter per file and one for all files together: the pooled
/// ("Global") figure counts a bigram once however many files have it, so it is not a mean of the files'.
public struct BigramCounter: Sendable {
    private var seen = Set<UInt64>()
    public private(set) var statistics = BigramStatistics()

    public init() {}

    /// Adds one prompt's token ids: `ids.count - 1` bigrams (none for fewer than two ids), as nltk's `ngrams`.
    public mutating func add(_ ids: [Int32]) {
        statistics.prompts += 1
        statistics.tokens += ids.count
        guard ids.count >= 2 else { return }
        for position in 1..<ids.count {
            let key = UInt64(UInt32(bitPattern: ids[position - 1])) << 32 | UInt64(UInt32(bitPattern: ids[position]))
            seen.insert(key)
        }
        statistics.totalBigrams += ids.count - 1
        statistics.uniqueBigrams = seen.count
    }
}

public enum PromptDiversity {
    /// ScalingAlignment tokenizes with `encode(prompt, truncation=True, max_length=512)`: BOS added, at most 512 ids.
    public static let defaultMaxLength = 512

    /// The text whose tokens are counted for one record:
    /// - a PRO ranking record (`prefix`): `"".join(prefix[0])` with `<|prompter|>` → `"\n\nHuman: "` and
    ///   `<|assistant|>` → `"\n\nAssistant: "`, then right-stripped (ScalingAlignment's `get_info`, verbatim);
    /// - a DPO record (`prompt`): the prompt, right-stripped (for converted HH data this is the same text);
    /// - an HH-RLHF record (`chosen`, `rejected`): the shared prompt `hone data hh-rlhf` extracts, right-stripped.
    public static func promptText(of record: DataRecord) throws -> String {
        if let prefix = record.object["prefix"] {
            guard let lists = prefix as? [Any], let first = lists.first else { throw record.error("\"prefix\" is not a non-empty list") }
            guard let turns = first as? [Any], turns.allSatisfy({ $0 is String }) else {
                throw record.error("\"prefix\"[0] is not a list of strings")
            }
            let joined = (turns as! [String]).joined()
            let replaced = replacingBytes(replacingBytes(joined, HHRLHF.prompterTag, "\n\nHuman: "), HHRLHF.assistantTag, "\n\nAssistant: ")
            return rightStrippedPythonWhitespace(replaced)
        }
        if record.object["prompt"] != nil {
            return rightStrippedPythonWhitespace(try record.string("prompt"))
        }
        if record.object["chosen"] != nil || record.object["rejected"] != nil {
            let chosen = try record.string("chosen"), rejected = try record.string("rejected")
            guard let prompt = HHRLHF.sharedPrompt(chosen: chosen, rejected: rejected) else {
                throw record.error("chosen and rejected share no prompt ending in \"\\n\\nAssistant:\"")
            }
            return rightStrippedPythonWhitespace(prompt)
        }
        throw record.error("expected a PRO record (\"prefix\"), a DPO record (\"prompt\") or an HH-RLHF record (\"chosen\", \"rejected\")")
    }

    /// The ids counted for a prompt: encoded with the tokenizer's special tokens (BOS for Llama, which then forms
    /// the first bigram), special-token text treated as text, cut to `maxLength` ids from the start.
    public static func tokenIDs(_ text: String, tokenizer: Tokenizer, maxLength: Int?) -> [Int32] {
        let ids = tokenizer.encode(text, addSpecialTokens: true, parseSpecial: false)
        guard let maxLength, ids.count > maxLength else { return ids }
        return Array(ids.prefix(maxLength))
    }

    /// Per-file statistics and the pooled figure over all files, in input order.
    public static func measure(paths: [String], tokenizer: Tokenizer, maxLength: Int?) throws
        -> (files: [(path: String, statistics: BigramStatistics)], global: BigramStatistics)
    {
        var global = BigramCounter()
        var files: [(String, BigramStatistics)] = []
        for path in paths {
            var counter = BigramCounter()
            for record in try readDataRecords(path: path) {
                let ids = tokenIDs(try promptText(of: record), tokenizer: tokenizer, maxLength: maxLength)
                counter.add(ids)
                global.add(ids)
            }
            files.append((path, counter.statistics))
        }
        return (files, global.statistics)
    }

    /// The table `hone data diversity` prints: one row per file and the pooled "Global" row.
    public static func table(files: [(path: String, statistics: BigramStatistics)], global: BigramStatistics) -> String {
        let header = ["file", "prompts (N)", "tokens", "bigrams (T)", "unique bigrams (U)", "U/T", "D = sqrt(N)*U/T"]
        func row(_ name: String, _ s: BigramStatistics) -> [String] {
            let ratio = s.totalBigrams == 0 ? "-" : String(format: "%.6f", Double(s.uniqueBigrams) / Double(s.totalBigrams))
            let d = s.totalBigrams == 0 ? "-" : String(format: "%.4f", s.diversity)
            return [name, String(s.prompts), String(s.tokens), String(s.totalBigrams), String(s.uniqueBigrams), ratio, d]
        }
        let rows = [header] + files.map { row($0.path, $0.statistics) } + [row("Global", global)]
        let widths = header.indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.map { cells in
            cells.enumerated().map { column, cell in
                let pad = String(repeating: " ", count: widths[column] - cell.count)
                return column == 0 ? cell + pad : pad + cell
            }.joined(separator: "  ")
        }.joined(separator: "\n") + "\n"
    }
}

/// Python's `str.replace(old, new)` on UTF-8 bytes: literal, left to right, non-overlapping (Foundation's
/// replacement and Swift's `Character` matching would treat a tag followed by a combining mark differently).
func replacingBytes(_ text: String, _ old: String, _ new: String) -> String {
    let source = Array(text.utf8), pattern = Array(old.utf8), replacement = Array(new.utf8)
    guard !pattern.isEmpty, source.count >= pattern.count else { return text }
    var output: [UInt8] = []
    output.reserveCapacity(source.count)
    var index = 0
    while index < source.count {
        if source[index] == pattern[0], index + pattern.count <= source.count,
           source[index..<index + pattern.count].elementsEqual(pattern) {
            output += replacement
            index += pattern.count
        } else {
            output.append(source[index])
            index += 1
        }
    }
    return String(decoding: output, as: UTF8.self)
}

extension TokenizerLoader {
    /// A tokenizer from a model directory, a GGUF file, or a single `tokenizer.json` / `tokenizer.model`
    /// (with the `tokenizer_config.json` beside it, when there is one, for BOS/EOS).
    public static func load(tokenizerPath path: String) throws -> Tokenizer {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { throw HoneError.fileNotFound(path: path) }
        if isDirectory.boolValue { return try load(directory: path) }
        let sibling = ((path as NSString).deletingLastPathComponent as NSString).appendingPathComponent("tokenizer_config.json")
        let config = FileManager.default.fileExists(atPath: sibling) ? sibling : nil
        if path.hasSuffix(".json") { return try load(tokenizerJSON: path, tokenizerConfig: config) }
        if path.hasSuffix(".model") { return try SentencePieceTokenizer.load(modelFile: path, tokenizerConfig: config) }
        return try load(modelPath: path)
    }
}
