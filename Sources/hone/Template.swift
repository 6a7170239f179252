import ArgumentParser
import Foundation
import HoneKit

struct Template: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the prompt a chat template makes of a list of messages (as llama-server's /apply-template).",
        discussion: """
        Messages: a JSON file holding a list of {"role", "content"} objects (or {"messages": [...]}), the OpenAI \
        chat format; a Jinja template sees every field of each message. --template auto uses the model's own chat \
        template (GGUF tokenizer.chat_template, chat_template.jinja or tokenizer_config.json's chat_template), \
        else alpaca. The prompt goes to stdout exactly as rendered, with no newline added.

        Example:
          hone template --model models/SmolLM2-135M-Instruct.Q4_1.gguf \\
            --messages chat.json --add-generation-prompt
        """)

    @Option(name: .long, help: "An HF model directory or a GGUF file.")
    var model: String

    @Option(name: .long, help: "A JSON file with the messages.")
    var messages: String

    @Flag(name: [.customLong("add-generation-prompt"), .customLong("add_generation_prompt")],
          help: "Open the assistant's reply at the end (Jinja templates; data templates always do).")
    var addGenerationPrompt = false

    @Option(name: .long, help: "auto, chat_template, a built-in name, a JSON template file or a .jinja file.")
    var template = "auto"

    @OptionGroup var templateKwargs: ChatTemplateKwargsOption

    @OptionGroup var runtime: RuntimeOptions

    func run() throws {
        try runtime.apply()
        try reportingErrors {
            let loaded = try LoadedModel.open(model)
            let promptTemplate = try templateKwargs.apply(to: loaded.promptTemplate(template))
            let data = try readInputFile(path: messages)
            let parsed: JinjaValue
            do {
                parsed = try JinjaValue(jsonData: data)
            } catch {
                throw HoneError.malformedFile(path: messages, message: "not valid JSON")
            }
            var list: [JinjaValue]?
            if case .array(let items) = parsed { list = items }
            if case .dictionary(let object) = parsed, case .array(let items)? = object["messages"] { list = items }
            guard let list else {
                throw HoneError.malformedFile(path: messages, message: "expected a list of messages or {\"messages\": [...]}")
            }
            let text = try promptTemplate.render(messages: list, addGenerationPrompt: addGenerationPrompt, origin: messages)
            FileHandle.standardOutput.write(Data(text.utf8))
        }
    }
}
