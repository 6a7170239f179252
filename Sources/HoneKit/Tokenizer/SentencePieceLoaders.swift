import Foundation

extension SentencePieceTokenizer {
    /// Loads `tokenizer.model` (sentencepiece's protobuf), with `tokenizer_config.json` for add_bos/add_eos.
    public static func load(modelFile path: String, tokenizerConfig: String?) throws -> SentencePieceTokenizer {
        let model = try SentencePieceModelFile(path: path)
        guard model.modelType == 2 else {
            let name = [1: "unigram", 3: "word", 4: "char"][model.modelType] ?? "type \(model.modelType)"
            throw HoneError.malformedFile(path: path, message: "SentencePiece \(name) models are not supported (BPE is)")
        }
        guard model.normalizerName == "identity" || !model.hasPrecompiledCharacterMap else {
            throw HoneError.malformedFile(path: path, message: "SentencePiece normalizer '\(model.normalizerName)' is not supported (identity is)")
        }
        let config = try tokenizerConfig.map { try TokenizerConfig(path: $0) }
        let pieces = model.pieces.map(\.text)
        let types = model.pieces.map(\.type)
        var specials: [String: Int32] = [:]
        var atomic: [String: Int32] = [:]
        for (index, piece) in model.pieces.enumerated() {
            if piece.type == .control || piece.type == .unknown { specials[piece.text] = Int32(index) }
            if piece.type == .userDefined { atomic[piece.text] = Int32(index) }
        }
        func valid(_ id: Int32) -> Int32? { id >= 0 && Int(id) < pieces.count ? id : nil }
        try checkScores(model.pieces.map(\.score), path: path, field: "piece score")
        return SentencePieceTokenizer(
            pieces: pieces, scores: model.pieces.map(\.score), types: types, merges: nil,
            byteFallback: model.byteFallback, prefixPolicy: model.addDummyPrefix ? .firstSegment : .never,
            removeExtraWhitespaces: model.removeExtraWhitespaces, atomicPieces: atomic,
            atomicPiecesSplitSegments: false, specialTokens: specials, unknownSurface: " \u{2047} ",
            bos: valid(model.bosID), eos: valid(model.eosID), unknown: valid(model.unknownID), pad: valid(model.padID),
            addsBOS: config?.addBOS ?? true, addsEOS: config?.addEOS ?? false)
    }

    /// Loads an HF `tokenizer.json` whose model is BPE with byte fallback and a "▁" normaliser or Metaspace
    /// pre-tokenizer (what transformers writes for Llama/Mistral tokenizers).
    static func load(tokenizerJSON file: TokenizerJSONFile, path: String, tokenizerConfig: String?) throws -> SentencePieceTokenizer {
        let json = file.values
        guard let model = json["model"] as? [String: Any], file.vocabulary != nil || model["vocab"] is [String: Any] else {
            throw HoneError.malformedFile(path: path, message: "tokenizer.json has no model.vocab")
        }
        let vocabulary = try file.vocabulary(path: path)
        let merges = try file.merges(path: path)
        let added = try TokenizerJSON.addedTokens(json, path: path)
        let size = try TokenizerJSON.idTableSize(vocabulary.values.map(Int.init) + added.map { Int($0.id) }, path: path)
        var pieces = [String](repeating: "", count: size)
        var types = [PieceType](repeating: .unused, count: size)
        for (piece, id) in vocabulary {
            pieces[Int(id)] = piece
            types[Int(id)] = byteValue(piece) != nil ? .byte : .normal
        }
        var specials: [String: Int32] = [:]
        var atomic: [String: Int32] = [:]
        for token in added {
            pieces[Int(token.id)] = token.content
            types[Int(token.id)] = token.special ? .control : .userDefined
            if token.special { specials[token.content] = token.id } else { atomic[token.content] = token.id }
        }
        let unknownText = model["unk_token"] as? String
        var unknown: Int32? = nil
        if let unknownText, let id = vocabulary[unknownText] {
            types[Int(id)] = .unknown
            unknown = id
        }
        let config = try tokenizerConfig.map { try TokenizerConfig(path: $0) }
        let ids = Dictionary(pieces.enumerated().map { ($1, Int32($0)) }, uniquingKeysWith: { first, _ in first })
        let (bos, eos, addsBOS, addsEOS) = TokenizerJSON.specialRoles(
            config: config, template: TemplateSpecialTokens(json["post_processor"]), id: { $0.flatMap { ids[$0] } })
        return SentencePieceTokenizer(
            pieces: pieces, scores: [Float](repeating: 0, count: size), types: types, merges: merges,
            byteFallback: model["byte_fallback"] as? Bool ?? false, prefixPolicy: prefixPolicy(json),
            removeExtraWhitespaces: false, atomicPieces: atomic, atomicPiecesSplitSegments: true,
            specialTokens: specials, unknownSurface: unknownText ?? "<unk>",
            bos: bos, eos: eos, unknown: unknown, pad: config?.paddingToken.flatMap { ids[$0] },
            addsBOS: addsBOS, addsEOS: addsEOS, strips: TokenizerJSON.addedTokenStrips(json))
    }

    /// How the dummy "▁" is added: a Prepend normaliser runs on every plain segment (HF legacy Llama);
    /// a Metaspace pre-tokenizer says so with prepend_scheme (or add_prefix_space in older files).
    static func prefixPolicy(_ json: [String: Any]) -> PrefixPolicy {
        func find(_ node: Any?, type: String) -> [String: Any]? {
            guard let object = node as? [String: Any] else { return nil }
            if object["type"] as? String == type { return object }
            for key in ["normalizers", "pretokenizers"] {
                for child in (object[key] as? [Any]) ?? [] { if let found = find(child, type: type) { return found } }
            }
            return nil
        }
        if find(json["normalizer"], type: "Prepend") != nil { return .everySegment }
        if let metaspace = find(json["pre_tokenizer"], type: "Metaspace") {
            switch metaspace["prepend_scheme"] as? String {
            case "first": return .firstSegment
            case "never": return .never
            case "always": return .everySegment
            default: return (metaspace["add_prefix_space"] as? Bool ?? true) ? .everySegment : .never
            }
        }
        return .never
    }

    /// Merge ranks come from sorting scores; a NaN has no place in that order (and no rank), so it is refused.
    static func checkScores(_ scores: [Float], path: String, field: String) throws {
        if let index = scores.firstIndex(where: \.isNaN) {
            throw HoneError.malformedFile(path: path, message: "\(field) of token \(index) is NaN")
        }
    }

    /// Loads a GGUF `tokenizer.ggml.model = llama` vocabulary (what llama.cpp's converter writes for SentencePiece).
    static func load(gguf: GGUFFile) throws -> SentencePieceTokenizer {
        guard let tokens = gguf.metadata["tokenizer.ggml.tokens"]?.arrayValue else {
            throw HoneError.missingConfigKey(path: gguf.path, key: "tokenizer.ggml.tokens")
        }
        let pieces = tokens.map { $0.stringValue ?? "" }
        let scores = (gguf.metadata["tokenizer.ggml.scores"]?.arrayValue ?? []).map { Float($0.doubleValue ?? 0) }
        let rawTypes = (gguf.metadata["tokenizer.ggml.token_type"]?.arrayValue ?? []).map { $0.intValue ?? 1 }
        guard scores.count == pieces.count, rawTypes.count == pieces.count else {
            throw HoneError.malformedFile(path: gguf.path, message: "tokenizer.ggml.scores/token_type do not match tokenizer.ggml.tokens (\(pieces.count))")
        }
        try checkScores(scores, path: gguf.path, field: "tokenizer.ggml.scores")
        let types = rawTypes.map { PieceType(rawValue: $0) ?? .normal }
        var specials: [String: Int32] = [:]
        var atomic: [String: Int32] = [:]
        for (index, type) in types.enumerated() {
            if type == .control || type == .unknown { specials[pieces[index]] = Int32(index) }
            if type == .userDefined { atomic[pieces[index]] = Int32(index) }
        }
        func id(_ key: String) -> Int32? {
            gguf.integer(key).flatMap { $0 >= 0 && $0 < pieces.count ? Int32($0) : nil }
        }
        let addPrefix = gguf.metadata["tokenizer.ggml.add_space_prefix"]?.boolValue ?? true
        return SentencePieceTokenizer(
            pieces: pieces, scores: scores, types: types, merges: nil,
            // llama.cpp adds the space prefix to the first text fragment and to every fragment after a special
            // or user-defined token, as HF's legacy normaliser does.
            byteFallback: types.contains(.byte), prefixPolicy: addPrefix ? .everySegment : .never,
            removeExtraWhitespaces: false, atomicPieces: atomic, atomicPiecesSplitSegments: true,
            specialTokens: specials, unknownSurface: " \u{2047} ",
            bos: id("tokenizer.ggml.bos_token_id"), eos: id("tokenizer.ggml.eos_token_id"),
            unknown: id("tokenizer.ggml.unknown_token_id"), pad: id("tokenizer.ggml.padding_token_id"),
            addsBOS: gguf.metadata["tokenizer.ggml.add_bos_token"]?.boolValue ?? true,
            addsEOS: gguf.metadata["tokenizer.ggml.add_eos_token"]?.boolValue ?? false,
            strips: AddedTokenStrips.llamaCpp(gguf, tokens: pieces, types: rawTypes))
    }
}
