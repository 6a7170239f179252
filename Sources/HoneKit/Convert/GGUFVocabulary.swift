import Foundation

/// The `tokenizer.ggml.*` metadata llama.cpp's converter writes for an HF directory, so that llama.cpp (and Hone's
/// GGUF loader) tokenize exactly as the HF tokenizer does.
///
/// - `tokenizer.model` (SentencePiece BPE): model "llama", pieces, scores and types as in the protobuf (user-defined
///   pieces become normal, as the converter does), added tokens of tokenizer_config.json as control or
///   user-defined tokens with score -1000.
/// - `tokenizer.json` of SentencePiece style without tokenizer.model: model "llama" with scores made from the merge
///   ranks (score = -rank of the first merge that makes the piece), which gives llama.cpp's score-ordered merging
///   the HF merge order. (llama.cpp's converter writes -1000 for every score here, which loses the order.)
/// - byte-level `tokenizer.json`: model "gpt2", tokens, types, merges, and the pre-tokenizer name llama.cpp knows
///   ("gpt-2", "llama-bpe", "qwen2").
/// BOS/EOS/unknown/padding ids and whether BOS/EOS are added come from Hone's own loader, which follows
/// transformers' rules; the chat template from tokenizer_config.json or chat_template.jinja.
enum GGUFVocabulary {
    typealias Entry = (key: String, value: GGUFValue, type: UInt32, arrayType: UInt32?)

    /// GGUF token types (llama.cpp's llama_token_type), the same numbers as SentencePiece's piece types.
    enum TokenType: Int { case normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6 }

    /// - Parameter vocabularySize: the model's vocabulary (tokens are padded to it), nil for the tokenizer's own size.
    static func metadata(directory: String, vocabularySize: Int?) throws -> [Entry]? {
        let join = { (name: String) in (directory as NSString).appendingPathComponent(name) }
        let fileManager = FileManager.default
        let hasModelFile = fileManager.fileExists(atPath: join("tokenizer.model"))
        let hasJSON = fileManager.fileExists(atPath: join("tokenizer.json"))
        guard hasModelFile || hasJSON else { return nil }
        let tokenizer = try TokenizerLoader.load(directory: directory)
        let configPath = fileManager.fileExists(atPath: join("tokenizer_config.json")) ? join("tokenizer_config.json") : nil
        let tokenizerConfig = try configPath.map { try ByteLevelBPETokenizer.readJSONObject($0) } ?? [:]

        var entries: [Entry] = []
        if let addPrefixSpace = tokenizerConfig["add_prefix_space"] as? Bool {
            entries.append(("tokenizer.ggml.add_space_prefix", .bool(addPrefixSpace), 7, nil))
        }
        var tokens: [String]
        var scores: [Float]? = nil
        var types: [TokenType]
        var merges: [String]? = nil
        var kind = "llama"
        var pre = "default"
        if hasModelFile, let sentencePiece = try? SentencePieceModelFile(path: join("tokenizer.model")), sentencePiece.modelType == 2 {
            (tokens, scores, types) = fromModelFile(sentencePiece, size: vocabularySize ?? sentencePiece.pieces.count,
                                                    tokenizerConfig: tokenizerConfig)
        } else if let sentencePiece = tokenizer as? SentencePieceTokenizer {
            let json = try JSONConfig(path: join("tokenizer.json")).values
            (tokens, scores, types) = try fromSentencePieceJSON(json, tokenizer: sentencePiece, path: join("tokenizer.json"))
        } else if let byteLevel = tokenizer as? ByteLevelBPETokenizer {
            guard hasJSON else {
                throw HoneError.io(path: directory, message: "a byte-level tokenizer needs tokenizer.json to be written as GGUF")
            }
            let json = try JSONConfig(path: join("tokenizer.json")).values
            (tokens, types, merges) = try fromByteLevelJSON(json, path: join("tokenizer.json"))
            kind = "gpt2"
            switch byteLevel.preTokenizer {
            case .gpt2?: pre = "gpt-2"
            case .llama3?: pre = "llama-bpe"
            case .qwen2?: pre = "qwen2"
            case .smollm?: pre = "smollm"
            case nil:
                throw HoneError.io(path: directory, message: "this pre-tokenizer has no llama.cpp tokenizer.ggml.pre name")
            }
        } else {
            throw HoneError.io(path: directory, message: "this tokenizer cannot be written as GGUF metadata")
        }
        // Pad to the model's vocabulary as the converter does, so the embedding rows and the tokens agree.
        if let vocabularySize, tokens.count < vocabularySize {
            for index in 1...(vocabularySize - tokens.count) {
                tokens.append("[PAD\(index)]")
                scores?.append(-1000)
                types.append(.unused)
            }
        }
        entries.append(("tokenizer.ggml.model", .string(kind), 8, nil))
        entries.append(("tokenizer.ggml.pre", .string(pre), 8, nil))
        entries.append(("tokenizer.ggml.tokens", .array(tokens.map { .string($0) }), 9, 8))
        if let scores { entries.append(("tokenizer.ggml.scores", .array(scores.map { .float(Double($0)) }), 9, 6)) }
        entries.append(("tokenizer.ggml.token_type", .array(types.map { .signed(Int64($0.rawValue)) }), 9, 5))
        if let merges { entries.append(("tokenizer.ggml.merges", .array(merges.map { .string($0) }), 9, 8)) }

        let modelConfig = try? JSONConfig(path: join("config.json"))
        func id(_ value: Int32?, _ configKey: String) -> Int? {
            if let value { return Int(value) }
            return modelConfig?.ids(configKey).first
        }
        for (key, value) in [("bos", id(tokenizer.bosTokenID, "bos_token_id")), ("eos", id(tokenizer.eosTokenID, "eos_token_id")),
                             ("unknown", id(tokenizer.unknownTokenID, "unk_token_id")),
                             ("padding", id(tokenizer.padTokenID, "pad_token_id"))] {
            if let value, value >= 0, value < tokens.count {
                entries.append(("tokenizer.ggml.\(key)_token_id", .unsigned(UInt64(value)), 4, nil))
            }
        }
        entries.append(("tokenizer.ggml.add_bos_token", .bool(tokenizer.addsBOS), 7, nil))
        entries.append(("tokenizer.ggml.add_eos_token", .bool(tokenizer.addsEOS), 7, nil))
        if let template = tokenizerConfig["chat_template"] as? String {
            entries.append(("tokenizer.chat_template", .string(template), 8, nil))
        } else if let data = fileManager.contents(atPath: join("chat_template.jinja")) {
            entries.append(("tokenizer.chat_template", .string(String(decoding: data, as: UTF8.self)), 8, nil))
        }
        return entries
    }

    // MARK: - SentencePiece

    static func fromModelFile(_ model: SentencePieceModelFile, size: Int, tokenizerConfig: [String: Any])
        -> ([String], [Float], [TokenType]) {
        let count = max(size, 0)
        var tokens = (0..<count).map { "[PAD\($0)]" }
        var scores = [Float](repeating: -10000, count: count)
        var types = [TokenType](repeating: .unused, count: count)
        for (index, piece) in model.pieces.enumerated() where index < count {
            tokens[index] = piece.text
            scores[index] = piece.score
            switch piece.type {
            case .unknown: types[index] = .unknown
            case .control: types[index] = .control
            case .unused: types[index] = .unused
            case .byte: types[index] = .byte
            case .normal, .userDefined: types[index] = .normal
            }
        }
        // Added tokens of tokenizer_config.json override the protobuf's pieces.
        for (key, value) in (tokenizerConfig["added_tokens_decoder"] as? [String: Any]) ?? [:] {
            guard let index = Int(key), index >= 0, index < count, let entry = value as? [String: Any],
                  var content = entry["content"] as? String else { continue }
            if entry["special"] as? Bool == true || looksSpecial(content) {
                types[index] = .control
            } else {
                content = content.replacingOccurrences(of: "\u{2581}", with: " ")
                types[index] = .userDefined
            }
            scores[index] = -1000
            tokens[index] = content
        }
        return (tokens, scores, types)
    }

    /// llama.cpp's converter treats these added tokens as control tokens even when not marked special.
    static func looksSpecial(_ text: String) -> Bool {
        ["<pad>", "<mask>", "<2mass>", "[@BOS@]"].contains(text) || (text.hasPrefix("<|") && text.hasSuffix("|>"))
            || (text.hasPrefix("<\u{FF5C}") && text.hasSuffix("\u{FF5C}>")) || (text.hasPrefix("<unused") && text.hasSuffix(">"))
    }

    static func fromSentencePieceJSON(_ json: [String: Any], tokenizer: SentencePieceTokenizer, path: String) throws
        -> ([String], [Float], [TokenType]) {
        guard let model = json["model"] as? [String: Any] else {
            throw HoneError.malformedFile(path: path, message: "not a tokenizer.json: it has no \"model\" object")
        }
        let merges = try TokenizerJSON.merges(model, path: path)
        let ids = Dictionary(tokenizer.pieces.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
        var scores = [Float](repeating: 0, count: tokenizer.pieces.count)
        var made = [Bool](repeating: false, count: tokenizer.pieces.count)
        for (rank, pair) in merges.enumerated() {
            guard let id = ids[pair.0 + pair.1], !made[id] else { continue }
            made[id] = true
            scores[id] = -Float(rank)
        }
        let types: [TokenType] = tokenizer.types.map { TokenType(rawValue: $0.rawValue) ?? .normal }
        return (tokenizer.pieces, scores, types)
    }

    // MARK: - Byte-level BPE

    static func fromByteLevelJSON(_ json: [String: Any], path: String) throws -> ([String], [TokenType], [String]) {
        guard let model = json["model"] as? [String: Any], let vocabulary = model["vocab"] as? [String: Any] else {
            throw HoneError.malformedFile(path: path, message: "tokenizer.json has no model.vocab")
        }
        let added = try TokenizerJSON.addedTokens(json, path: path)
        let size = try TokenizerJSON.idTableSize(vocabulary.values.compactMap(jsonInteger) + added.map { Int($0.id) },
                                                 path: path)
        var tokens = (0..<size).map { "[PAD\($0)]" }
        var types = [TokenType](repeating: .unused, count: size)
        for (piece, value) in vocabulary {
            guard let id = jsonInteger(value), id >= 0 else { continue }
            tokens[id] = piece
            types[id] = .normal
        }
        for token in added {
            tokens[Int(token.id)] = token.content
            types[Int(token.id)] = token.special || looksSpecial(token.content) ? .control : .userDefined
        }
        // A space inside a merge part is written as U+0120 + ... by gguf-py; byte-level parts never contain one.
        let merges = try TokenizerJSON.merges(model, path: path).map { "\($0.0) \($0.1)" }
        return (tokens, types, merges)
    }
}
