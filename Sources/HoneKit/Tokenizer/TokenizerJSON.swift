import Foundation

// MARK: - Pieces of HF tokenizer files shared by the SentencePiece-style and byte-level loaders

/// Readers for parts of `tokenizer.json` that every BPE tokenizer has.
enum TokenizerJSON {
    /// `model.merges`: "a b" strings (older files) or ["a", "b"] pairs (tokenizers ≥ 0.20).
    static func merges(_ model: [String: Any], path: String) throws -> [(String, String)] {
        guard let mergeList = model["merges"] as? [Any] else {
            throw HoneError.malformedFile(path: path, message: "missing key 'model.merges'")
        }
        var merges: [(String, String)] = []
        merges.reserveCapacity(mergeList.count)
        for (index, entry) in mergeList.enumerated() {
            if let text = entry as? String {
                let parts = text.split(separator: " ", omittingEmptySubsequences: false)
                guard parts.count == 2 else {
                    throw HoneError.malformedFile(path: path, message: "model.merges[\(index)] \"\(text)\" is not two symbols separated by a space")
                }
                merges.append((String(parts[0]), String(parts[1])))
            } else if let pair = entry as? [Any], pair.count == 2, let left = pair[0] as? String,
                      let right = pair[1] as? String {
                merges.append((left, right))
            } else {
                throw HoneError.malformedFile(path: path, message: "model.merges[\(index)] is neither \"a b\" nor [\"a\", \"b\"]")
            }
        }
        return merges
    }

    /// Unused ids a vocabulary may leave below its largest id. Real files number their tokens densely from 0;
    /// tolerating a few holes costs little, but a lone id of 10^17 (or 2^31 − 1) would size id-indexed tables
    /// far beyond memory.
    static let unusedIDAllowance = 65_536

    /// The size of an id-indexed table for these ids (largest + 1), after checking that they are non-negative and
    /// leave at most `unusedIDAllowance` ids unused; `ids` counts a token once per entry (vocab and added tokens).
    static func idTableSize(_ ids: [Int], path: String) throws -> Int {
        var largest = -1
        for id in ids {
            guard id >= 0 else { throw HoneError.malformedFile(path: path, message: "token id \(id) is negative") }
            largest = max(largest, id)
        }
        let distinct = Set(ids).count
        guard largest < distinct + unusedIDAllowance else {
            throw HoneError.malformedFile(
                path: path, message: "token id \(largest) is far beyond the \(distinct) ids in the file (ids number the tokens from 0; at most \(unusedIDAllowance) may go unused)")
        }
        return largest + 1
    }

    /// `added_tokens`: content, id and whether the token is special.
    static func addedTokens(_ json: [String: Any], path: String) throws -> [(content: String, id: Int32, special: Bool)] {
        var addedTokens: [(content: String, id: Int32, special: Bool)] = []
        for (index, entry) in ((json["added_tokens"] as? [Any]) ?? []).enumerated() {
            guard let token = entry as? [String: Any], let content = token["content"] as? String,
                  let id = token["id"].flatMap(jsonInteger), let id32 = Int32(exactly: id), id32 >= 0 else {
                throw HoneError.malformedFile(path: path, message: "added_tokens[\(index)] lacks a content or an id")
            }
            addedTokens.append((content: content, id: id32, special: token["special"] as? Bool ?? false))
        }
        return addedTokens
    }

    /// `added_tokens` whose `lstrip` / `rstrip` is true: they take the whitespace beside them along (Unicode
    /// White_Space, as HF's AddedVocabulary strips it).
    static func addedTokenStrips(_ json: [String: Any]) -> AddedTokenStrips {
        var byID: [Int32: AddedTokenStrip] = [:]
        for entry in (json["added_tokens"] as? [Any]) ?? [] {
            guard let token = entry as? [String: Any], let id = token["id"].flatMap(jsonInteger),
                  let id32 = Int32(exactly: id) else { continue }
            var strip: AddedTokenStrip = []
            if token["lstrip"] as? Bool == true { strip.insert(.left) }
            if token["rstrip"] as? Bool == true { strip.insert(.right) }
            byID[id32] = strip
        }
        return AddedTokenStrips(byID)
    }

    /// BOS/EOS ids and whether encoding adds them, by transformers' rule: add_bos_token / add_eos_token in
    /// tokenizer_config.json, when present, replace the post-processor's template; otherwise the template decides
    /// (Llama 3 adds <|begin_of_text|> that way), and the ids it adds are the ones that count.
    static func specialRoles(config: TokenizerConfig?, template: TemplateSpecialTokens, id: (String?) -> Int32?)
        -> (bos: Int32?, eos: Int32?, addsBOS: Bool, addsEOS: Bool) {
        var bos = id(config?.bosToken) ?? template.bos
        var eos = id(config?.eosToken) ?? template.eos
        if let config, config.addBOS != nil || config.addEOS != nil {
            return (bos, eos, bos != nil && config.addBOS == true, eos != nil && config.addEOS == true)
        }
        if template.bos != nil { bos = template.bos }
        if template.eos != nil { eos = template.eos }
        return (bos, eos, template.bos != nil, template.eos != nil)
    }
}

/// What a tokenizer_config.json says about special tokens.
struct TokenizerConfig {
    var bosToken: String?
    var eosToken: String?
    var unknownToken: String?
    var paddingToken: String?
    /// nil when the file does not say (which matters: transformers then keeps tokenizer.json's template).
    var addBOS: Bool?
    var addEOS: Bool?
    var addPrefixSpace: Bool?
    /// From `added_tokens_decoder` ("id": {"content", "special"}), in id order.
    var addedTokens: [(content: String, id: Int32, special: Bool)] = []

    init(path: String) throws {
        let json = try ByteLevelBPETokenizer.readJSONObject(path)
        /// A token is written either as a string or as an AddedToken object {"content": ...}.
        func token(_ key: String) -> String? {
            if let text = json[key] as? String { return text }
            return (json[key] as? [String: Any])?["content"] as? String
        }
        bosToken = token("bos_token")
        eosToken = token("eos_token")
        unknownToken = token("unk_token")
        paddingToken = token("pad_token")
        addBOS = json["add_bos_token"] as? Bool
        addEOS = json["add_eos_token"] as? Bool
        addPrefixSpace = json["add_prefix_space"] as? Bool
        if let decoder = json["added_tokens_decoder"] as? [String: Any] {
            for (key, value) in decoder {
                guard let id = Int32(key), let entry = value as? [String: Any], let content = entry["content"] as? String
                else {
                    throw HoneError.malformedFile(path: path, message: "added_tokens_decoder entry '\(key)' is malformed")
                }
                addedTokens.append((content: content, id: id, special: entry["special"] as? Bool ?? false))
            }
            addedTokens.sort { $0.id < $1.id }
        }
    }
}

/// The special tokens a tokenizer.json post-processor puts around a single sequence (TemplateProcessing, alone or
/// inside a Sequence): Llama 3's `<|begin_of_text|> $A`.
struct TemplateSpecialTokens {
    var bos: Int32?
    var eos: Int32?

    init(_ value: Any?) {
        guard let processor = value as? [String: Any] else { return }
        switch processor["type"] as? String {
        case "Sequence":
            for entry in processor["processors"] as? [Any] ?? [] {
                let inner = TemplateSpecialTokens(entry)
                bos = bos ?? inner.bos
                eos = eos ?? inner.eos
            }
        case "TemplateProcessing":
            guard let single = processor["single"] as? [[String: Any]] else { return }
            let specialTokens = processor["special_tokens"] as? [String: Any] ?? [:]
            func id(_ item: [String: Any]) -> Int32? {
                guard let name = (item["SpecialToken"] as? [String: Any])?["id"] as? String,
                      let ids = (specialTokens[name] as? [String: Any])?["ids"] as? [Any], ids.count == 1,
                      let id = jsonInteger(ids[0]) else { return nil }
                return Int32(exactly: id)
            }
            if let first = single.first { bos = id(first) }
            if single.count > 1, let last = single.last { eos = id(last) }
        default:
            return
        }
    }
}
