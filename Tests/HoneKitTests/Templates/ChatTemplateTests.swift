import Foundation
import Testing
@testable import HoneKit

/// The model's own chat template: where it is read from, what `auto` picks, how prompts render and tokenize, and
/// the one-line errors of templates that do not parse or that raise.
@Suite struct ModelChatTemplateTests {
    /// A small template in the style of real ones: BOS written by the template, a role tag per message, EOS after
    /// each, and the reply opened on request.
    static let source = "{{ bos_token }}{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{{ eos_token }}{% endfor %}"
        + "{% if add_generation_prompt %}<|assistant|>{% endif %}"

    /// hone-tiny (no chat template of its own) copied, with `edit` applied to its tokenizer_config.json.
    func model(_ edit: (inout [String: Any]) -> Void = { _ in }) throws -> URL {
        let directory = try makeTemporaryDirectory().appendingPathComponent("model")
        try FileManager.default.copyItem(at: Repository.root.appendingPathComponent("models/hone-tiny"), to: directory)
        let path = directory.appendingPathComponent("tokenizer_config.json")
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: path)) as! [String: Any]
        edit(&json)
        try JSONSerialization.data(withJSONObject: json).write(to: path)
        return directory
    }

    @Test func autoPicksTheModelsTemplateAndRendersIt() throws {
        let loaded = try LoadedModel.open(try model { $0["chat_template"] = Self.source }.path)
        let template = try loaded.promptTemplate("auto")
        #expect(template.name == PromptTemplate.chatTemplateName)
        #expect(try template.prompt(conversation: [.user("hi")], system: "Be brief.")
            == "<s><|system|>Be brief.</s><|user|>hi</s><|assistant|>")
        // Single-turn prompts (generate, training) are a one-message conversation.
        #expect(try template.prompt(instruction: "Add.", input: "2, 3") == "<s><|user|>Add.\n2, 3</s><|assistant|>")
        // The template writes the BOS: tokenized, it appears once, as the BOS id, and "</s>" is the EOS id.
        let tokenizer = try loaded.tokenizer()
        let ids = template.encode(try template.pieces(conversation: [.user("hi")]), with: tokenizer)
        #expect(ids.first == tokenizer.bosTokenID)
        #expect(ids.filter { $0 == tokenizer.bosTokenID }.count == 1)
        #expect(ids.contains(tokenizer.eosTokenID!))
    }

    @Test func withoutATemplateAutoIsAlpacaAndAnAdaptersRecordWins() throws {
        let plain = try LoadedModel.open(Repository.root.appendingPathComponent("models/hone-tiny").path)
        #expect(try plain.promptTemplate("auto") == .alpaca)
        #expect(try plain.promptTemplate("auto", recorded: "vicuna") == .vicuna)
        #expect(throws: HoneError.self) { try plain.promptTemplate(PromptTemplate.chatTemplateName) }
        let withTemplate = try LoadedModel.open(try model { $0["chat_template"] = Self.source }.path)
        #expect(try withTemplate.promptTemplate("auto", recorded: "alpaca") == .alpaca)
        #expect(try withTemplate.promptTemplate("auto", recorded: PromptTemplate.chatTemplateName).chatTemplate?.source == Self.source)
        #expect(try withTemplate.promptTemplate("chatml") == .chatML)
    }

    /// tokenizer_config.json's list of named templates ("default" taken), and chat_template.jinja before it.
    @Test func templateSources() throws {
        let named = try model { $0["chat_template"] = [["name": "tool_use", "template": "tools"], ["name": "default", "template": Self.source]] }
        #expect(try LoadedModel.open(named.path).chatTemplateSource() == Self.source)
        try Data("{{ messages[0].content }}".utf8).write(to: named.appendingPathComponent("chat_template.jinja"))
        #expect(try LoadedModel.open(named.path).chatTemplateSource() == "{{ messages[0].content }}")
        let file = named.deletingLastPathComponent().appendingPathComponent("mine.jinja")
        try Data("[{{ messages[-1].content }}]".utf8).write(to: file)
        #expect(try LoadedModel.open(named.path).promptTemplate(file.path).prompt(instruction: "x") == "[x]")
    }

    @Test func raisingAndBrokenTemplatesAreOneLineErrors() throws {
        let raising = try model { $0["chat_template"] = "{% if messages[0].role == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}ok" }
        let template = try LoadedModel.open(raising.path).promptTemplate("auto")
        #expect(try template.prompt(conversation: [.user("hi")], system: "") == "ok")
        #expect(throws: HoneError.template(origin: raising.path, message: "System role not supported")) {
            try template.prompt(conversation: [.user("hi")], system: "S")
        }
        let broken = try model { $0["chat_template"] = "hello\n{% for m in %}" }
        do {
            _ = try LoadedModel.open(broken.path).promptTemplate("auto")
            Issue.record("a template that does not parse was accepted")
        } catch let error as HoneError {
            #expect(error.description.hasPrefix("\(broken.path): chat template: "))
            #expect(error.description.contains("line 2"))
            #expect(!error.description.contains("\n"))
        }
    }
}

/// `hone merge` records the adapter's template in the merged model (config.json or GGUF metadata), so `auto` keeps
/// using it rather than the base's own chat template.
@Suite struct MergedTemplateRecordTests {
    @Test func mergedModelsKeepTheAdaptersTemplate() throws {
        let directory = try makeTemporaryDirectory()
        let base = directory.appendingPathComponent("base")
        try FileManager.default.copyItem(at: Repository.root.appendingPathComponent("models/hone-tiny"), to: base)
        let configPath = base.appendingPathComponent("tokenizer_config.json")
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: configPath)) as! [String: Any]
        json["chat_template"] = ModelChatTemplateTests.source
        try JSONSerialization.data(withJSONObject: json).write(to: configPath)
        let loaded = try LoadedModel.open(base.path)
        #expect(try loaded.promptTemplate("auto").name == PromptTemplate.chatTemplateName)
        let adapters = try AdapterSet.makeNew(configuration: LoRAConfiguration(rank: 2), model: loaded.model, seed: 3)
        for (_, _, adapter) in adapters.ordered { for index in 0..<adapter.b.count { adapter.b[index] = 0.01 } }

        let merged = directory.appendingPathComponent("merged").path
        _ = try AdapterMerge.writeHuggingFace(base: loaded, adapters: adapters, to: merged, force: true,
                                              record: PEFTAdapter.TrainingRecord(promptTemplate: "alpaca"))
        #expect(try LoadedModel.open(merged).promptTemplate("auto") == .alpaca)

        let gguf = directory.appendingPathComponent("merged.gguf").path
        _ = try AdapterMerge.writeGGUF(base: loaded, adapters: adapters, to: gguf, scheme: QuantizationScheme(name: "f32")!,
                                       force: true, record: PEFTAdapter.TrainingRecord(promptTemplate: "vicuna"))
        let fromGGUF = try LoadedModel.open(gguf)
        #expect(fromGGUF.config.recordedPromptTemplate == "vicuna")
        #expect(try fromGGUF.promptTemplate("auto") == .vicuna)
        // An adapter's own record still comes first.
        #expect(try fromGGUF.promptTemplate("auto", recorded: "chatml") == .chatML)
    }
}
