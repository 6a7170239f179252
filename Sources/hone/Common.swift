import ArgumentParser
import Foundation
import HoneKit

/// Options every command takes.
struct RuntimeOptions: ParsableArguments {
    @Option(name: [.customShort("t"), .long], help: "Threads for the kernels (default: all cores).")
    var threads: Int?

    /// - Parameter distributed: the command splits its work across mpirun's ranks (train, generate, score, ...).
    ///   It joins MPI here, first, so that any later error names its rank and ends the whole job. Other commands
    ///   refuse to run as several ranks, which would only write the same files several times.
    func apply(distributed: Bool = false) throws {
        // ggml's own ceiling; a count past Int32 trapped where the kernels take it.
        if let threads, !(1...512).contains(threads) { throw ValidationError("--threads must be between 1 and 512, not \(threads)") }
        Runtime.setThreads(threads ?? ProcessInfo.processInfo.activeProcessorCount)
        try reportingErrors { try Runtime.applyInstructionSetLimit() }
        guard ProcessGroup.launchedByMPI else { return }
        try reportingErrors {
            if distributed {
                _ = try ProcessGroup.world()
            } else if let ranks = ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_SIZE"].flatMap(Int.init), ranks > 1 {
                throw HoneError.invalidArgument("this command runs as one process; only train, generate, score, eval and reward split their work across mpirun's ranks")
            }
        }
    }
}

/// llama-server's --chat-template-kwargs: extra variables for a Jinja chat template.
struct ChatTemplateKwargsOption: ParsableArguments {
    @Option(name: [.customLong("chat-template-kwargs"), .customLong("chat_template_kwargs")],
            help: ArgumentHelp("A JSON object of extra chat-template variables, as llama-server's (e.g. '{\"enable_thinking\": false}' for Qwen3 and SmolLM3).",
                               valueName: "json"))
    var chatTemplateKwargs: String?

    /// The variables, checked (empty when not given).
    func variables() throws -> [String: JinjaValue] {
        try chatTemplateKwargs.map { try ChatTemplate.variables(json: $0, origin: "--chat-template-kwargs") } ?? [:]
    }

    /// `template` with the variables; they need a Jinja chat template to go to.
    func apply(to template: PromptTemplate) throws -> PromptTemplate {
        let variables = try variables()
        guard !variables.isEmpty else { return template }
        guard template.chatTemplate != nil else {
            throw HoneError.invalidArgument("--chat-template-kwargs needs a Jinja chat template; the '\(template.name)' template is not one")
        }
        return template.withChatTemplateVariables(variables)
    }
}

/// Runs a command body; a HoneError becomes one line on stderr and exit status 1, never a trace.
func reportingErrors(_ body: () throws -> Void) throws {
    do {
        try body()
    } catch let error as HoneError {
        let group = ProcessGroup.current
        let rank = group.isDistributed ? " (rank \(group.rank) of \(group.size))" : ""
        FileHandle.standardError.write(Data("hone: error\(rank): \(error.description)\n".utf8))
        // The other ranks may be waiting for this one in a collective call: end the whole job.
        if group.isDistributed { group.abort(code: 1) }
        throw ExitCode.failure
    } catch let error as CocoaError {
        // A file-system error no check above caught: one line with the path, not Foundation's dump.
        let path = error.userInfo[NSFilePathErrorKey] as? String ?? error.userInfo["NSDestinationFilePath"] as? String
        FileHandle.standardError.write(Data("hone: error: \(path.map { "\($0): " } ?? "")\(error.localizedDescription)\n".utf8))
        if ProcessGroup.current.isDistributed { ProcessGroup.current.abort(code: 1) }
        throw ExitCode.failure
    }
}

/// One "hone: warning: …" line on stderr (nothing for nil).
func printWarning(_ line: String?) {
    guard let line else { return }
    FileHandle.standardError.write(Data("hone: warning: \(line)\n".utf8))
}

/// Writes text to stdout or, atomically, to a file.
func emit(_ text: String, to output: String?) throws {
    if let output {
        try writeFileAtomically(Data(text.utf8), to: output)
    } else {
        FileHandle.standardOutput.write(Data(text.utf8))
    }
}

/// `--adapter DIR`: a PEFT LoRA adapter applied on the fly (no merge needed).
struct AdapterOptions: ParsableArguments {
    @Option(name: .long, help: "A PEFT LoRA adapter directory (adapter_config.json + adapter_model.safetensors) to apply.")
    var adapter: String?

    /// Opens the model and attaches the adapter when one is given; also returns the template the adapter was
    /// trained with, if it recorded one.
    func open(model: String) throws -> (model: LoadedModel, trainedTemplate: String?) {
        let loaded = try LoadedModel.open(model)
        var trainedTemplate: String?
        if let adapter {
            let record = try loaded.attachAdapter(directory: adapter)
            trainedTemplate = record.promptTemplate
            if let template = record.promptTemplate {
                FileHandle.standardError.write(Data("adapter: \(adapter) (trained with the '\(template)' template)\n".utf8))
            }
        }
        return (loaded, trainedTemplate)
    }

    /// Identifies the adapter by content (its weights and config) in resumable-job fingerprints.
    func identity() throws -> String {
        guard let adapter else { return "" }
        let files = [PEFTAdapter.weightsFile, "adapter_config.json"].map { (adapter as NSString).appendingPathComponent($0) }
        return "|adapter:" + (try files.map(ContentIdentity.whole).joined(separator: ","))
    }
}
