import Foundation

// MARK: - GGUF pre-tokenizers

/// What llama.cpp does for each `tokenizer.ggml.pre` value of a byte-level (`gpt2`) GGUF vocabulary: the regexes
/// it splits with, in order (each an `Isolated` split of every piece the previous ones left, the same as a
/// tokenizer.json `Sequence` of `Split`s), whether the vocabulary ignores merges, and whether BOS is added when the
/// file has no `tokenizer.ggml.add_bos_token` key.
///
/// One deliberate difference from llama.cpp: Qwen2's Hugging Face tokenizer puts text in NFC first and llama.cpp
/// does not; Hone follows Hugging Face (`normalizesNFC`).
public struct GGUFPreTokenizer: Sendable {
    public let name: String
    public let steps: [PreTokenizerStep]
    /// A pre-token that is itself in the vocabulary is one token (Llama 3, Tekken).
    public let ignoresMerges: Bool
    /// llama.cpp's BOS default for this type, used when the file does not say.
    public let addsBOSByDefault: Bool
    /// Text is put in NFC first, as the model's Hugging Face tokenizer does.
    public let normalizesNFC: Bool

    // MARK: Patterns

    /// GPT-2's pattern as llama.cpp writes it, without the final `|\s+`: what `\s+` would match is left between
    /// matches and becomes a piece of its own all the same, so the pieces are the ones `PreTokenizerKind.gpt2` cuts.
    static let gpt2Pieces = PreTokenizerStep.scanner(.gpt2)

    /// `default`: punctuation runs (with the ASCII symbols), GPT-2's pattern, digit runs, then threes of ASCII digits.
    static let defaultPatterns = [
        #"[\p{P}\$\+<=>\^~\|]+"#, "gpt2", #"\p{N}+"#, #"[0-9][0-9][0-9]"#,
    ]
    /// `deepseek-llm`: line breaks alone, then runs of Latin/Greek/Cyrillic/... letters, of ASCII and full-width
    /// punctuation (each with one leading whitespace), trailing whitespace, CJK and Hangul runs, digit runs.
    static let deepSeekLLMPatterns = [
        #"[\r\n]"#,
        #"\s?LETTERS+"#,
        #"\s?PUNCT+"#,
        #"\s+$"#,
        #"CJK+"#,
        #"\p{N}+"#,
    ]
    /// `deepseek-coder`: line breaks alone, letter and punctuation runs with one leading whitespace, CJK and Hangul
    /// runs, single digits.
    static let deepSeekCoderPatterns = [
        #"[\r\n]"#, #"\s?\p{L}+"#, #"\s?\p{P}+"#, #"CJK+"#, #"\p{N}"#,
    ]
    /// `falcon`: punctuation runs (with the ASCII symbols), GPT-2's pattern, threes of ASCII digits.
    static let falconPatterns = [#"[\p{P}\$\+<=>\^~\|`]+"#, "gpt2", #"[0-9][0-9][0-9]"#]
    /// `tekken` (Mistral Nemo and later): the pattern of its tokenizer.json. (llama.cpp rewrites the case classes
    /// with lookaheads for its own engine; the original is what Hugging Face runs.)
    static let tekkenPattern = #"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    /// `gpt-4o` (Phi-4-mini, Llama 4): the pattern of their tokenizer.json, tekken's with English contractions kept
    /// on the word (in either case) and digits in threes.
    static let gpt4oPattern = #"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

    // MARK: Table

    /// The pre-tokenizer llama.cpp uses for `name`, nil for a name Hone does not know.
    public static func named(_ name: String) -> GGUFPreTokenizer? {
        func make(_ patterns: [String], ignoresMerges: Bool = false, addsBOS: Bool = false, nfc: Bool = false)
            -> GGUFPreTokenizer {
            // The patterns are constants of this file; a typo would fail every test that loads such a vocabulary.
            let steps = patterns.map { pattern -> PreTokenizerStep in
                pattern == "gpt2" ? gpt2Pieces : .split(try! PreTokenRegex(pattern), .isolated, invert: false)
            }
            return GGUFPreTokenizer(name: name, steps: steps + [.byteLevel(addPrefixSpace: false, useRegex: false)],
                                    ignoresMerges: ignoresMerges, addsBOSByDefault: addsBOS, normalizesNFC: nfc)
        }
        func scanner(_ kind: PreTokenizerKind, ignoresMerges: Bool = false, addsBOS: Bool = false, nfc: Bool = false)
            -> GGUFPreTokenizer {
            GGUFPreTokenizer(name: name, steps: [.scanner(kind), .byteLevel(addPrefixSpace: false, useRegex: false)],
                             ignoresMerges: ignoresMerges, addsBOSByDefault: addsBOS, normalizesNFC: nfc)
        }
        let cjk = #"CJK"#
        switch name {
        case "default":
            return make(defaultPatterns)
        case "llama-bpe", "llama3", "llama-v3", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2":
            return scanner(.llama3, ignoresMerges: true, addsBOS: true)
        case "dbrx", "smaug-bpe":
            return scanner(.llama3)
        case "qwen2", "deepseek-r1-qwen", "kormo", "megrez", "stablelm2":
            return scanner(.qwen2, nfc: name != "stablelm2")
        case "gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de", "a.x-4.0", "mellum",
             "mpt", "olmo", "jais", "exaone4":
            return scanner(.gpt2)
        case "smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva-7b", "mellum2":
            return GGUFPreTokenizer(
                name: name, steps: [.digits(individual: true), gpt2Pieces, .byteLevel(addPrefixSpace: false, useRegex: false)],
                ignoresMerges: false, addsBOSByDefault: false, normalizesNFC: false)
        case "deepseek-llm":
            return make(deepSeekLLMPatterns.map { $0.replacingOccurrences(of: "LETTERS", with: letters)
                .replacingOccurrences(of: "PUNCT", with: punctuation).replacingOccurrences(of: "CJK", with: cjkClass) })
        case "deepseek-coder":
            return make(deepSeekCoderPatterns.map { $0.replacingOccurrences(of: cjk, with: cjkClass) })
        case "falcon":
            return make(falconPatterns)
        case "tekken":
            return make([tekkenPattern], ignoresMerges: true, addsBOS: true)
        case "gpt-4o", "llama4", "kanana2", "talkie":
            return make([gpt4oPattern])
        default:
            return nil
        }
    }

    /// The names `named(_:)` knows, for error messages.
    public static let knownNames = [
        "default", "llama-bpe", "llama3", "llama-v3", "smollm", "qwen2", "deepseek-llm", "deepseek-coder", "tekken",
        "smaug-bpe", "gpt-2", "starcoder", "refact", "falcon", "mpt", "gpt-4o",
    ]

    // MARK: Classes

    /// DeepSeek LLM's letter class: cased letters of the Latin, Greek, Coptic, Cyrillic, Armenian, Georgian,
    /// Cherokee, Glagolitic, Deseret, Osage, Old Hungarian, Warang Citi and Adlam scripts (scalar by scalar as its
    /// tokenizer.json lists them; written as escapes because several are NFC singletons an editor could change).
    static let letters = #"[A-Za-z\x{B5}\x{C0}-\x{D6}\x{D8}-\x{F6}\x{F8}-\x{1BA}\x{1BC}-\x{1BF}\x{1C4}-\x{293}\x{295}-\x{2AF}\x{370}-\x{373}\x{376}\x{377}\x{37B}-\x{37D}\x{37F}\x{386}\x{388}-\x{38A}\x{38C}\x{38E}-\x{3A1}\x{3A3}-\x{3F5}\x{3F7}-\x{481}\x{48A}-\x{52F}\x{531}-\x{556}\x{10A0}-\x{10C5}\x{13A0}-\x{13F5}\x{13F8}-\x{13FD}\x{1C90}-\x{1CBA}\x{1CBD}-\x{1CBF}\x{1D00}-\x{1D2B}\x{1D6B}-\x{1D77}\x{1D79}-\x{1D9A}\x{1E00}-\x{1F15}\x{1F18}-\x{1F1D}\x{1F20}-\x{1F45}\x{1F48}-\x{1F4D}\x{1F50}-\x{1F57}\x{1F59}\x{1F5B}\x{1F5D}\x{1F5F}-\x{1F7D}\x{1F80}-\x{1FB4}\x{1FB6}-\x{1FBC}\x{1FBE}\x{1FC2}-\x{1FC4}\x{1FC6}-\x{1FCC}\x{1FD0}-\x{1FD3}\x{1FD6}-\x{1FDB}\x{1FE0}-\x{1FEC}\x{1FF2}-\x{1FF4}\x{1FF6}-\x{1FFC}\x{2102}\x{2107}\x{210A}-\x{2113}\x{2115}\x{2119}-\x{211D}\x{2124}\x{2126}\x{2128}\x{212A}-\x{212D}\x{212F}-\x{2134}\x{2139}\x{213C}-\x{213F}\x{2145}-\x{2149}\x{214E}\x{2183}\x{2184}\x{2C00}-\x{2C7B}\x{2C7E}-\x{2CE4}\x{2CEB}-\x{2CEE}\x{2CF2}\x{2CF3}\x{A640}-\x{A66D}\x{A680}-\x{A69B}\x{A722}-\x{A76F}\x{A771}-\x{A787}\x{A78B}-\x{A78E}\x{AB70}-\x{ABBF}\x{FB00}-\x{FB06}\x{FB13}-\x{FB17}\x{FF21}-\x{FF3A}\x{FF41}-\x{FF5A}\x{10400}-\x{1044F}\x{104B0}-\x{104D3}\x{104D8}-\x{104FB}\x{10C80}-\x{10CB2}\x{10CC0}-\x{10CF2}\x{118A0}-\x{118DF}\x{1E900}-\x{1E943}]"#
    /// DeepSeek LLM's punctuation class: ASCII punctuation and symbols, their full-width forms, curly quotes, the
    /// ideographic space, comma and full stop.
    static let punctuation = #"[!-/:-~\x{FF01}-\x{FF0F}\x{FF1A}-\x{FF5E}\x{2018}-\x{201F}\x{3000}-\x{3002}]"#
    /// CJK unified ideographs, Samaritan to CJK (a range as DeepSeek wrote it), Hangul syllables.
    static let cjkClass = #"[\x{4E00}-\x{9FA5}\x{800}-\x{4E00}\x{AC00}-\x{D7FF}]"#
}
