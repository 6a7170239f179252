import Foundation

extension ByteLevelBPETokenizer {
    /// Loads a GGUF `tokenizer.ggml.model = gpt2` vocabulary: tokens, token types, merges, special ids and the
    /// pre-tokenizer named by `tokenizer.ggml.pre` (gpt-2, llama-bpe, qwen2, ...).
    static func load(gguf: GGUFFile) throws -> ByteLevelBPETokenizer {
        guard let tokens = gguf.metadata["tokenizer.ggml.tokens"]?.arrayValue?.map({ $0.stringValue ?? "" }) else {
            throw HoneError.missingConfigKey(path: gguf.path, key: "tokenizer.ggml.tokens")
        }
        let pre = gguf.string("tokenizer.ggml.pre") ?? "default"
        guard let kind = preTokenizerKind(ggufPre: pre) else {
            throw HoneError.malformedFile(path: gguf.path, message: "GGUF pre-tokenizer '\(pre)' is not supported (gpt-2, llama-bpe, qwen2, smollm are)")
        }
        let types = gguf.metadata["tokenizer.ggml.token_type"]?.arrayValue?.map { $0.intValue ?? 1 }
            ?? [Int](repeating: 1, count: tokens.count)
        guard types.count == tokens.count else {
            throw HoneError.malformedFile(path: gguf.path, message: "tokenizer.ggml.token_type does not match tokenizer.ggml.tokens (\(tokens.count))")
        }
        var vocabulary: [String: Int32] = [:]
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
            let parts = text.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2 else {
                throw HoneError.malformedFile(path: gguf.path, message: "merge '\(text)' is not two symbols")
            }
            return (String(parts[0]), String(parts[1]))
        }
        func id(_ key: String) -> Int32? { gguf.integer(key).flatMap { $0 >= 0 && $0 < tokens.count ? Int32($0) : nil } }
        return ByteLevelBPETokenizer(
            vocabulary: vocabulary, merges: merges, preTokenizer: kind, addedTokens: added,
            bos: id("tokenizer.ggml.bos_token_id"), eos: id("tokenizer.ggml.eos_token_id"),
            unk: id("tokenizer.ggml.unknown_token_id"), pad: id("tokenizer.ggml.padding_token_id"),
            addsBOS: gguf.metadata["tokenizer.ggml.add_bos_token"]?.boolValue ?? false,
            addsEOS: gguf.metadata["tokenizer.ggml.add_eos_token"]?.boolValue ?? false,
            // llama.cpp ignores merges for Llama 3's vocabulary as HF does; Qwen2's HF tokenizer normalises to NFC.
            ignoreMerges: kind == .llama3, normalizeNFC: kind == .qwen2)
    }
}
