import ArgumentParser
import Foundation
import HoneKit

struct Tokenize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Turn text into token ids with a model's tokenizer.",
        discussion: """
        With --text, prints the ids as a JSON array on one line. With --input, each line {"text": ...} of a \
        JSONL file gives a line {"tokens": [...]}. BOS/EOS are added as the tokenizer's config says unless \
        --no-add-special-tokens; special tokens written in the text (e.g. </s>) are plain text unless \
        --parse-special.

        Examples:
          hone tokenize --model models/hone-tiny --text "Hello world"
          hone tokenize --model tinyllama.gguf --input texts.jsonl --output tokens.jsonl
        """)

    @Option(name: [.customShort("m"), .long], help: "An HF model directory or a GGUF file.")
    var model: String

    @Option(name: .long, help: "Text to tokenize.")
    var text: String?

    @Option(name: .long, help: "JSONL input, one {\"text\": ...} per line.")
    var input: String?

    @Option(name: .long, help: "Where to write the JSONL results (default: stdout).")
    var output: String?

    @Flag(name: [.customLong("add-special-tokens"), .customLong("add_special_tokens")],
          inversion: .prefixedNo, help: "Add BOS/EOS as the tokenizer's config says.")
    var addSpecialTokens = true

    @Flag(name: [.customLong("parse-special"), .customLong("parse_special")],
          help: "Recognise special tokens written in the text.")
    var parseSpecial = false

    @Flag(name: .long, help: "With --text, print one line per token: id and piece.")
    var pieces = false

    @OptionGroup var runtime: RuntimeOptions

    func validate() throws {
        guard (text == nil) != (input == nil) else { throw ValidationError("give exactly one of --text and --input") }
    }

    func run() throws {
        try runtime.apply()
        try reportingErrors {
            let tokenizer = try TokenizerLoader.load(modelPath: model)
            if let text {
                let ids = tokenizer.encode(text, addSpecialTokens: addSpecialTokens, parseSpecial: parseSpecial)
                if pieces {
                    let lines = ids.map { id in "\(id)\t\(tokenizer.piece(for: id).map { jsonString($0) } ?? "?")" }
                    try emit(lines.joined(separator: "\n") + "\n", to: output)
                } else {
                    try emit("[" + ids.map(String.init).joined(separator: ", ") + "]\n", to: output)
                }
                return
            }
            let path = input!
            var lines = ""
            let records = try readJSONLines(path: path)
            guard !records.isEmpty else { throw HoneError.malformedFile(path: path, message: "no texts (the file is empty)") }
            for record in records {
                guard let value = record.object["text"] as? String else {
                    throw HoneError.malformedRecord(path: path, line: record.line, message: "expected a \"text\" string")
                }
                let ids = tokenizer.encode(value, addSpecialTokens: addSpecialTokens, parseSpecial: parseSpecial)
                lines += "{\"tokens\":[" + ids.map(String.init).joined(separator: ",") + "]}\n"
            }
            try emit(lines, to: output)
        }
    }
}
