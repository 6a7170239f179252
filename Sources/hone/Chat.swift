import ArgumentParser
import Foundation
import HoneKit

struct Chat: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Chat with a model in the terminal (or over piped stdin, one message per line).",
        discussion: """
        Tokens stream as they are made. The conversation is kept in the template's format; when it no longer \
        fits the context, the oldest turns are dropped. Commands: /reset starts over, /exit quits. Ctrl-C stops \
        the current answer (at the prompt it ends the chat). Without a terminal, each input line is one message \
        and each answer ends with a newline, so the chat can be scripted.

        Example:
          hone chat --model merged-model --template alpaca --temperature 0.7 --top-p 0.9 --show-speed
        """)

    @Option(name: [.customShort("m"), .long], help: "An HF model directory or a GGUF file.")
    var model: String

    @Option(name: .long, help: "Prompt template: auto (the adapter's recorded template, else the model's own chat template, else alpaca), chat_template (the model's own), \(PromptTemplate.builtinNames.joined(separator: ", ")), a JSON template file or a .jinja chat template.")
    var template = "auto"

    @Option(name: .long, help: "A system prompt, for templates that have one.")
    var system: String?

    @Flag(name: [.customLong("single-turn"), .customLong("single_turn")],
          help: "Each message is a new instruction in the template's single-turn prompt (as alpaca-lora's generate.py and as hone train sft trains; with a chat template, a conversation of that message alone), no history.")
    var singleTurn = false

    @Flag(name: [.customLong("show-speed"), .customLong("show_speed")], help: "Print tokens/s after each answer (stderr).")
    var showSpeed = false

    @OptionGroup var sampling: SamplingOptions
    @OptionGroup var adapterOptions: AdapterOptions
    @OptionGroup var templateKwargs: ChatTemplateKwargsOption

    @OptionGroup var runtime: RuntimeOptions

    func run() throws {
        try runtime.apply()
        try reportingErrors {
            let (loaded, trainedTemplate) = try adapterOptions.open(model: model)
            let tokenizer = try loaded.tokenizer()
            let promptTemplate = try templateKwargs.apply(to: loaded.promptTemplate(template, recorded: trainedTemplate))
            // The single-turn prompt is the template's prompt_no_input, which has no place for a system prompt.
            if singleTurn, system != nil, promptTemplate.promptNoInput != nil {
                throw HoneError.invalidArgument("--system does not apply with --single-turn: the '\(promptTemplate.name)' template's single-turn prompt has no system part")
            }
            let engine = try loaded.makeGenerator(template: promptTemplate)
            let session = ChatSession(template: promptTemplate, tokenizer: tokenizer, contextLimit: engine.contextLimit,
                                      maxNewTokens: sampling.maxNewTokens ?? 512, system: system)
            session.singleTurn = singleTurn
            let interactive = isatty(STDIN_FILENO) != 0
            Interrupt.install()
            var turn: UInt64 = 0
            var lineNumber = 0
            var skipped: [Int] = []
            while true {
                if interactive {
                    FileHandle.standardOutput.write(Data("> ".utf8))
                }
                Interrupt.clear()
                guard let line = readLine(strippingNewline: true) else { break }
                lineNumber += 1
                let message = line.trimmingCharacters(in: .whitespaces)
                if message.isEmpty { continue }
                if message == "/exit" || message == "/quit" { break }
                if message == "/reset" {
                    session.reset()
                    if interactive { FileHandle.standardOutput.write(Data("(conversation reset)\n".utf8)) }
                    continue
                }
                var parameters = sampling.parameters
                parameters.seed = sampling.seed &+ turn  // a new draw each turn, reproducible from --seed
                turn += 1
                // A message that cannot fit is skipped with a line naming it; the conversation goes on (in a pipe,
                // the next lines are still answered and the exit status says that one was not).
                let promptTokens: [Int32]
                do {
                    promptTokens = try session.prompt(for: message)
                } catch let error as HoneError {
                    guard case .contextOverflow = error else { throw error }
                    FileHandle.standardError.write(Data("hone: error: \(interactive ? "" : "line \(lineNumber): ")\(error.description); the message was skipped\n".utf8))
                    skipped.append(lineNumber)
                    continue
                }
                let request = GenerationRequest(promptTokens: promptTokens,
                                                maxNewTokens: sampling.maxNewTokens ?? 512, sampling: parameters,
                                                stopStrings: sampling.stop + promptTemplate.stopStrings)
                let start = DispatchTime.now()
                var answer = GenerationResult(tokens: [], text: "", finishReason: .length)
                var first = true
                try engine.generate([request], batchSize: 1, onText: { _, text in
                    // The answer starts after the template's marker; leading whitespace is not part of it.
                    let shown = first ? String(text.drop { $0 == " " || $0 == "\n" }) : text
                    if !shown.isEmpty { first = false }
                    FileHandle.standardOutput.write(Data(shown.utf8))
                }, onFinish: { _, result in answer = result }, shouldCancel: { _ in Interrupt.isPending })
                // Through the same unbuffered handle as the streamed answer, so the two never reorder in a pipe.
                FileHandle.standardOutput.write(Data("\n".utf8))
                session.answered(answer.text.trimmingCharacters(in: .whitespacesAndNewlines))
                if answer.finishReason == .contextFull {
                    FileHandle.standardError.write(Data("(the context is full: the answer was cut; /reset to start over)\n".utf8))
                }
                if showSpeed {
                    let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
                    FileHandle.standardError.write(Data(String(format: "[%d tokens, %.1f tokens/s]\n", answer.tokens.count,
                                                               Double(answer.tokens.count) / max(seconds, 1e-9)).utf8))
                }
            }
            if !interactive, !skipped.isEmpty { throw ExitCode.failure }
        }
    }
}
