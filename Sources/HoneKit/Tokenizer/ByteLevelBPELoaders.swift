import Foundation

// MARK: - Loading

extension ByteLevelBPETokenizer {
    /// Loads a GPT-2 / OPT style `vocab.json` + `merges.txt` pair, with `tokenizer_config.json` (optional) for the
    /// special tokens and BOS/EOS policy. The pre-tokenizer is GPT-2's.
    public static func load(vocabJSON: String, mergesTXT: String, tokenizerConfig: String?) throws
        -> ByteLevelBPETokenizer {
        let vocabularyObject = try readJSONObject(vocabJSON)
        var vocabulary: [String: Int32] = [:]
        vocabulary.reserveCapacity(vocabularyObject.count)
        for (piece, value) in vocabularyObject {
            guard let id = jsonInteger(value), let id32 = Int32(exactly: id), id32 >= 0 else {
                throw HoneError.malformedFile(path: vocabJSON, message: "vocabulary entry '\(piece)' has no valid id")
            }
            vocabulary[piece] = id32
        }
        let merges = try readMergesText(mergesTXT)
        try validateMerges(merges.map(\.pair), vocabulary: vocabulary, path: mergesTXT, lines: merges.map(\.line))
        let config = try tokenizerConfig.map { try TokenizerConfig(path: $0) }

        var addedTokens = config?.addedTokens ?? []
        // The named special tokens are special even when added_tokens_decoder does not list them.
        for name in [config?.bosToken, config?.eosToken, config?.unknownToken, config?.paddingToken].compactMap({ $0 })
        where !addedTokens.contains(where: { $0.content == name }) {
            if let id = vocabulary[name] { addedTokens.append((content: name, id: id, special: true)) }
        }
        // The tokenizer sizes its id-indexed tables by the largest id (added_tokens_decoder's included).
        _ = try TokenizerJSON.idTableSize(vocabulary.values.map(Int.init) + addedTokens.map { Int($0.id) },
                                          path: tokenizerConfig.map { "\(vocabJSON) with \($0)" } ?? vocabJSON)
        func id(_ name: String?) -> Int32? {
            guard let name else { return nil }
            return addedTokens.first(where: { $0.content == name })?.id ?? vocabulary[name]
        }
        let bos = id(config?.bosToken)
        let eos = id(config?.eosToken)
        return ByteLevelBPETokenizer(
            vocabulary: vocabulary, merges: merges.map(\.pair), preTokenizer: .gpt2, addedTokens: addedTokens,
            bos: bos, eos: eos, unk: id(config?.unknownToken), pad: id(config?.paddingToken),
            addsBOS: bos != nil && config?.addBOS == true, addsEOS: eos != nil && config?.addEOS == true,
            ignoreMerges: false, normalizeNFC: false, addPrefixSpace: config?.addPrefixSpace ?? false)
    }

    /// Loads a Hugging Face `tokenizer.json` whose model is BPE with a byte-level pre-tokenizer (GPT-2, Llama 3,
    /// Qwen2), with `tokenizer_config.json` (optional) for the named special tokens and the BOS/EOS policy.
    public static func load(tokenizerJSON path: String, tokenizerConfig: String?) throws -> ByteLevelBPETokenizer {
        try load(tokenizerJSON: TokenizerJSONFile(path: path), path: path, tokenizerConfig: tokenizerConfig)
    }

    /// The same from an already read tokenizer.json (`path` names it in errors), for loaders that read the file
    /// once to find out which tokenizer it describes.
    static func load(tokenizerJSON file: TokenizerJSONFile, path: String, tokenizerConfig: String?) throws
        -> ByteLevelBPETokenizer {
        let json = file.values
        guard let model = json["model"] as? [String: Any] else {
            throw HoneError.malformedFile(path: path, message: "missing key 'model'")
        }
        if let type = model["type"] as? String, type != "BPE" {
            throw HoneError.invalidConfig(path: path, message: "model type '\(type)' is not BPE")
        }
        for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
            if let affix = model[key] as? String, !affix.isEmpty {
                throw HoneError.invalidConfig(path: path, message: "BPE '\(key)' (\"\(affix)\") is not supported")
            }
        }
        let vocabulary = try file.vocabulary(path: path)
        let merges = try file.merges(path: path)
        try validateMerges(merges, vocabulary: vocabulary, path: path, lines: nil)
        let ignoreMerges = model["ignore_merges"] as? Bool ?? false

        let normalizeNFC = try parseNormalizer(json["normalizer"], path: path)
        let pipeline = try parsePreTokenizer(json["pre_tokenizer"], path: path)

        let addedTokens = try TokenizerJSON.addedTokens(json, path: path)
        // The tokenizer sizes its id-indexed tables by the largest id.
        _ = try TokenizerJSON.idTableSize(vocabulary.values.map(Int.init) + addedTokens.map { Int($0.id) }, path: path)
        let config = try tokenizerConfig.map { try TokenizerConfig(path: $0) }
        func id(_ name: String?) -> Int32? {
            guard let name else { return nil }
            return addedTokens.last(where: { $0.content == name })?.id ?? vocabulary[name]
        }
        let unknown = id(config?.unknownToken) ?? id(model["unk_token"] as? String)
        let (bos, eos, addsBOS, addsEOS) = TokenizerJSON.specialRoles(
            config: config, template: TemplateSpecialTokens(json["post_processor"]), id: id)
        return ByteLevelBPETokenizer(
            vocabulary: vocabulary, merges: merges, pipeline: pipeline, addedTokens: addedTokens, bos: bos, eos: eos,
            unk: unknown, pad: id(config?.paddingToken), addsBOS: addsBOS, addsEOS: addsEOS, ignoreMerges: ignoreMerges,
            normalizeNFC: normalizeNFC, strips: TokenizerJSON.addedTokenStrips(json))
    }

    /// Throws, naming `path` (and the line, when `lines` gives them), for the first merge whose parts or whose
    /// concatenation are not in the vocabulary: HF refuses such files (MergeTokenOutOfVocabulary).
    public static func validateMerges(_ merges: [(String, String)], vocabulary: [String: Int32], path: String,
                                      lines: [Int]? = nil) throws {
        for (index, pair) in merges.enumerated() {
            for symbol in [pair.0, pair.1, pair.0 + pair.1] where vocabulary[symbol] == nil {
                let place = lines.map { "line \($0[index])" } ?? "merge \(index)"
                throw HoneError.malformedFile(
                    path: path, message: "\(place): merge \"\(pair.0) \(pair.1)\" uses '\(symbol)', which is not in the vocabulary")
            }
        }
    }

    // MARK: Parsing helpers

    static func readJSONObject(_ path: String) throws -> [String: Any] { try JSONConfig(path: path).values }

    /// merges.txt: one "a b" pair per line; `#version` lines and blank lines are skipped.
    static func readMergesText(_ path: String) throws -> [(pair: (String, String), line: Int)] {
        guard let data = FileManager.default.contents(atPath: path) else { throw HoneError.fileNotFound(path: path) }
        guard let text = String(data: data, encoding: .utf8) else {
            throw HoneError.malformedFile(path: path, message: "not valid UTF-8")
        }
        var merges: [(pair: (String, String), line: Int)] = []
        var lineNumber = 0
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            let line = rawLine.hasSuffix("\r") ? rawLine.dropLast() : rawLine[...]
            if line.isEmpty || line.hasPrefix("#version") { continue }
            let parts = line.split(separator: " ", omittingEmptySubsequences: false)
            guard parts.count == 2 else {
                throw HoneError.malformedFile(path: path, message: "line \(lineNumber): expected two symbols separated by one space")
            }
            merges.append(((String(parts[0]), String(parts[1])), lineNumber))
        }
        return merges
    }

    /// Whether the normalizer is NFC (Qwen2); nil and empty sequences are no normalizer; anything else is refused.
    static func parseNormalizer(_ value: Any?, path: String) throws -> Bool {
        guard let normalizer = value as? [String: Any] else { return false }
        let type = normalizer["type"] as? String ?? "?"
        switch type {
        case "NFC":
            return true
        case "Sequence":
            var nfc = false
            for entry in (normalizer["normalizers"] as? [Any]) ?? [] { nfc = try parseNormalizer(entry, path: path) || nfc }
            return nfc
        default:
            throw HoneError.invalidConfig(path: path, message: "normalizer '\(type)' is not supported by the byte-level BPE tokenizer")
        }
    }

    /// Reads the pre-tokenizer: one of `Split`, `ByteLevel`, `Digits`, `Metaspace`, `Punctuation`, `Whitespace`,
    /// `WhitespaceSplit`, or a `Sequence` of them. A byte-level vocabulary needs a `ByteLevel` step somewhere.
    static func parsePreTokenizer(_ value: Any?, path: String) throws -> PreTokenizerPipeline {
        guard let preTokenizer = value as? [String: Any] else {
            throw HoneError.invalidConfig(path: path, message: "no pre_tokenizer: a byte-level BPE tokenizer needs ByteLevel")
        }
        var steps: [PreTokenizerStep] = []
        try appendSteps(preTokenizer, to: &steps, path: path)
        guard steps.contains(where: { if case .byteLevel = $0 { return true } else { return false } }) else {
            throw HoneError.invalidConfig(path: path, message: "pre-tokenizer has no ByteLevel step, which a byte-level BPE tokenizer needs")
        }
        return PreTokenizerPipeline(steps)
    }

    private static func appendSteps(_ object: [String: Any], to steps: inout [PreTokenizerStep], path: String) throws {
        let type = object["type"] as? String ?? "?"
        func behavior(_ fallback: SplitBehavior) throws -> SplitBehavior {
            guard let name = object["behavior"] as? String else { return fallback }
            guard let behavior = SplitBehavior(rawValue: name) else {
                throw HoneError.invalidConfig(path: path, message: "\(type) pre-tokenizer behavior '\(name)' is unknown")
            }
            return behavior
        }
        switch type {
        case "Sequence":
            for entry in object["pretokenizers"] as? [Any] ?? [] {
                guard let step = entry as? [String: Any] else {
                    throw HoneError.malformedFile(path: path, message: "pre_tokenizer Sequence entry is not an object")
                }
                try appendSteps(step, to: &steps, path: path)
            }
        case "ByteLevel":
            steps.append(.byteLevel(addPrefixSpace: object["add_prefix_space"] as? Bool ?? true,
                                    useRegex: object["use_regex"] as? Bool ?? true))
        case "Split":
            let pattern = object["pattern"] as? [String: Any]
            let invert = object["invert"] as? Bool ?? false
            if let regex = pattern?["Regex"] as? String {
                if let kind = PreTokenizerKind(pattern: regex), try behavior(.isolated) == .isolated, !invert {
                    steps.append(.scanner(kind))
                } else {
                    do {
                        steps.append(.split(try PreTokenRegex(regex), try behavior(.isolated), invert: invert))
                    } catch let error as PreTokenRegexError {
                        throw HoneError.invalidConfig(path: path, message: "Split pre-tokenizer: \(error)")
                    }
                }
            } else if let literal = pattern?["String"] as? String {
                steps.append(.splitString(literal, try behavior(.isolated), invert: invert))
            } else {
                throw HoneError.invalidConfig(path: path, message: "the Split pre-tokenizer has no Regex or String pattern")
            }
        case "Digits":
            steps.append(.digits(individual: object["individual_digits"] as? Bool ?? false))
        case "Punctuation":
            steps.append(.punctuation(try behavior(.isolated)))
        case "Whitespace":
            steps.append(.whitespace())
        case "WhitespaceSplit":
            steps.append(.whitespaceSplit)
        case "Metaspace":
            let replacement = object["replacement"] as? String ?? "\u{2581}"
            var scheme = MetaspacePrependScheme.always
            if let name = object["prepend_scheme"] as? String {
                guard let parsed = MetaspacePrependScheme(rawValue: name) else {
                    throw HoneError.invalidConfig(path: path, message: "Metaspace prepend_scheme '\(name)' is unknown")
                }
                scheme = parsed
            } else if object["add_prefix_space"] as? Bool == false {
                scheme = .never  // files written before prepend_scheme existed
            }
            steps.append(.metaspace(replacement: replacement, prependScheme: scheme, split: object["split"] as? Bool ?? true))
        default:
            throw HoneError.invalidConfig(path: path, message: "pre-tokenizer '\(type)' is not supported")
        }
    }
}

// MARK: - GGUF

extension ByteLevelBPETokenizer {
    /// Loads a GGUF `tokenizer.ggml.model = gpt2` vocabulary: tokens, token types, merges, special ids and the
    /// pre-tokenizer named by `tokenizer.ggml.pre` (gpt-2, llama-bpe, qwen2, ...).
    static func load(gguf: GGUFFile) throws -> ByteLevelBPETokenizer {
        guard let tokens = gguf.metadata["tokenizer.ggml.tokens"]?.arrayValue?.map({ $0.stringValue ?? "" }) else {
            throw HoneError.missingConfigKey(path: gguf.path, key: "tokenizer.ggml.tokens")
        }
        let pre = gguf.string("tokenizer.ggml.pre") ?? "default"
        guard let preTokenizer = GGUFPreTokenizer.named(pre) else {
            throw HoneError.malformedFile(path: gguf.path, message: "unknown pre-tokenizer '\(pre)' (tokenizer.ggml.pre)")
        }
        let types = gguf.metadata["tokenizer.ggml.token_type"]?.arrayValue?.map { $0.intValue ?? 1 }
            ?? [Int](repeating: 1, count: tokens.count)
        guard types.count == tokens.count else {
            throw HoneError.malformedFile(path: gguf.path, message: "tokenizer.ggml.token_type does not match tokenizer.ggml.tokens (\(tokens.count))")
        }
        var vocabulary: [String: Int32] = [:]
        vocabulary.reserveCapacity(tokens.count)
        var added: [(content: String, id: Int32, special: Bool)] = []
        for (index, token) in tokens.enumerated() {
            switch types[index] {
            case 3: added.append((content: token, id: Int32(index), special: true))  // control
            case 4: added.append((content: token, id: Int32(index), special: false))  // user defined
            default: vocabulary[token] = Int32(index)
            }
        }
        let merges = try (gguf.metadata["tokenizer.ggml.merges"]?.arrayValue ?? []).map { value -> (String, String) in
            let text = value.stringValue ?? ""
            // The first space byte splits the pair (by UTF-8 index: a Character split would miss a space that a
            // combining mark follows).
            guard let space = text.utf8.firstIndex(of: UInt8(ascii: " ")) else {
                throw HoneError.malformedFile(path: gguf.path, message: "merge '\(text)' is not two symbols")
            }
            return (String(text[..<space]), String(text[text.utf8.index(after: space)...]))
        }
        func id(_ key: String) -> Int32? { gguf.integer(key).flatMap { $0 >= 0 && $0 < tokens.count ? Int32($0) : nil } }
        return ByteLevelBPETokenizer(
            vocabulary: vocabulary, merges: merges, pipeline: PreTokenizerPipeline(preTokenizer.steps), addedTokens: added,
            bos: id("tokenizer.ggml.bos_token_id"), eos: id("tokenizer.ggml.eos_token_id"),
            unk: id("tokenizer.ggml.unknown_token_id"), pad: id("tokenizer.ggml.padding_token_id"),
            // Without the key, llama.cpp's default for the pre-tokenizer type (true for Llama 3's family).
            addsBOS: gguf.metadata["tokenizer.ggml.add_bos_token"]?.boolValue ?? preTokenizer.addsBOSByDefault,
            addsEOS: gguf.metadata["tokenizer.ggml.add_eos_token"]?.boolValue ?? false,
            // llama.cpp ignores merges for Llama 3's vocabulary as HF does; Qwen2's HF tokenizer normalises to NFC.
            ignoreMerges: preTokenizer.ignoresMerges, normalizeNFC: preTokenizer.normalizesNFC,
            strips: AddedTokenStrips.llamaCpp(gguf, tokens: tokens, types: types))
    }
}
