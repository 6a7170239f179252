@testable import HoneKit
import Foundation
import Testing

/// Chat-template variables (transformers' `apply_chat_template(..., enable_thinking=False)`, llama-server's
/// `chat_template_kwargs`): every shared template that reads `enable_thinking`, rendered as transformers renders it
/// (Fixtures/templates/chat_template_kwargs.json, tools/oracle/make_template_kwargs_fixtures.py).
@Suite struct ChatTemplateKwargsTests {
    struct Case {
        let template: String
        let conversation: [JinjaValue]
        let variables: [String: JinjaValue]
        let text: String
    }

    static func cases() throws -> [Case] {
        let data = try Data(contentsOf: URL(fileURLWithPath: Repository.fixture("templates/chat_template_kwargs.json")))
        guard case .dictionary(let doc) = try JinjaValue(jsonData: data), case .array(let conversations)? = doc["conversations"],
              case .array(let cases)? = doc["cases"] else { throw JinjaError.type("fixture is not the expected object") }
        return try cases.map { value in
            guard case .dictionary(let fields) = value, case .int(let index)? = fields["conversation"],
                  case .array(let conversation) = conversations[index], let kwargs = fields["kwargs"],
                  let text = fields["text"]?.stringValue, let template = fields["template"]?.stringValue else {
                throw JinjaError.type("a case without text")
            }
            return Case(template: template, conversation: conversation,
                        variables: try ChatTemplate.variables(kwargs, origin: "fixture"), text: text)
        }
    }

    @Test(.enabled(if: JinjaTestPaths.chatTemplatesAvailable, "needs ../shared/data/chat-templates (shared data, not in the repository)"))
    func thinkingSwitchRendersAsTransformers() throws {
        let fixture = try #require(ChatTemplateFixture.shared)
        let cases = try Self.cases()
        #expect(cases.count >= 150 && cases.contains { $0.template == "Qwen-Qwen3-0.6B.jinja" }
                && cases.contains { $0.template == "HuggingFaceTB-SmolLM3-3B.jinja" })
        var failures: [String] = []
        for testCase in cases {
            let source = try String(contentsOf: JinjaTestPaths.chatTemplates.appendingPathComponent(testCase.template), encoding: .utf8)
            let text = try renderChatTemplate(source: source, messages: testCase.conversation, addGenerationPrompt: true,
                                              bosToken: "<s>", eosToken: "</s>", extra: testCase.variables,
                                              options: fixture.options)
            if text != testCase.text { failures.append("\(testCase.template) \(testCase.variables)") }
        }
        #expect(failures.isEmpty, "\(failures.count) cases differ: \(failures.prefix(5))")
    }

    /// ChatTemplate's variables reach the template, and a PromptTemplate passes them on; a second set is merged
    /// over the first (a request's over the server's); a template without Jinja is left as it is.
    @Test(.enabled(if: JinjaTestPaths.chatTemplatesAvailable, "needs ../shared/data/chat-templates (shared data, not in the repository)"))
    func variablesGoThroughChatAndPromptTemplates() throws {
        let name = "Qwen-Qwen3-0.6B.jinja"
        let source = try String(contentsOf: JinjaTestPaths.chatTemplates.appendingPathComponent(name), encoding: .utf8)
        let cases = try Self.cases().filter { $0.template == name && $0.conversation.count == 1 }
        let off = try #require(cases.first { $0.variables["enable_thinking"] == .bool(false) })
        let plain = try #require(cases.first { $0.variables.isEmpty })
        #expect(off.text != plain.text && off.text.hasSuffix("<think>\n\n</think>\n\n"))
        let prompt = PromptTemplate.chat(try ChatTemplate(source: source, bosToken: "<s>", eosToken: "</s>", origin: name))
        #expect(try prompt.render(messages: off.conversation, addGenerationPrompt: true, origin: "test") == plain.text)
        let thinkingOff = prompt.withChatTemplateVariables(off.variables)
        #expect(try thinkingOff.render(messages: off.conversation, addGenerationPrompt: true, origin: "test") == off.text)
        let onAgain = thinkingOff.withChatTemplateVariables(["enable_thinking": .bool(true)])
        #expect(try onAgain.render(messages: off.conversation, addGenerationPrompt: true, origin: "test") == plain.text)
        #expect(PromptTemplate.alpaca.withChatTemplateVariables(off.variables).chatTemplate == nil)
    }

    @Test func variablesMustBeAJSONObject() throws {
        #expect(try ChatTemplate.variables(json: #"{"enable_thinking": false, "n": 2}"#, origin: "x")
                == ["enable_thinking": .bool(false), "n": .int(2)])
        #expect(throws: HoneError.invalidArgument("x must be a JSON object (as {\"enable_thinking\": false})")) {
            try ChatTemplate.variables(json: "[1]", origin: "x")
        }
        #expect(throws: HoneError.invalidArgument("x: not valid JSON")) { try ChatTemplate.variables(json: "{", origin: "x") }
    }
}
