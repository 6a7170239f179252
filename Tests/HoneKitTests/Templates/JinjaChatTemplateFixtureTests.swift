@testable import HoneKit
import Foundation
import Testing

/// Every real chat template in ../shared/data/chat-templates, rendered for the conversations in
/// Fixtures/templates/chat_template_renders.json and compared byte for byte with what transformers'
/// `apply_chat_template` produced (tools/oracle/make_template_fixtures.py). A case where transformers raised
/// must raise here too; for `raise_exception(msg)` the message must be identical.
struct ChatTemplateFixture {
    struct Case {
        let conversation: Int
        let addGenerationPrompt: Bool
        let tools: Int?
    }

    enum Expected {
        case text(String)
        case error(kind: String, message: String)
    }

    struct Template {
        let name: String
        /// UTF-8 size of the template file the fixture was made from.
        let bytes: Int?
        let compileError: String?
        let results: [Expected]
    }

    let now: Date
    let bosToken: String
    let eosToken: String
    let conversations: [[JinjaValue]]
    let tools: [[JinjaValue]]
    let cases: [Case]
    let templates: [Template]

    static let shared: ChatTemplateFixture? = {
        guard let dir = JinjaTestPaths.fixtures,
            let data = FileManager.default.contents(atPath: dir.appendingPathComponent("chat_template_renders.json").path)
        else { return nil }
        return try? ChatTemplateFixture(data: data)
    }()

    init(data: Data) throws {
        let root = try JinjaValue(jsonData: data)
        guard case .dictionary(let doc) = root else { throw JinjaError.type("fixture is not an object") }
        func array(_ v: JinjaValue?) -> [JinjaValue] {
            if case .array(let a)? = v { return a }
            return []
        }
        func dict(_ v: JinjaValue?) -> JinjaDictionary {
            if case .dictionary(let d)? = v { return d }
            return JinjaDictionary()
        }
        // "now" is a naive local time; the tests render in UTC so the same wall-clock time comes out.
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withFullDate, .withTime, .withColonSeparatorInTime, .withDashSeparatorInDate]
        formatter.timeZone = TimeZone(identifier: "UTC")
        now = formatter.date(from: doc["now"]?.stringValue ?? "") ?? Date(timeIntervalSince1970: 0)
        bosToken = doc["bos_token"]?.stringValue ?? ""
        eosToken = doc["eos_token"]?.stringValue ?? ""
        conversations = array(doc["conversations"]).map { array($0) }
        tools = array(doc["tools"]).map { array($0) }
        cases = array(doc["cases"]).map { c in
            let d = dict(c)
            var tools: Int? = nil
            if case .int(let t)? = d["tools"] { tools = t }
            guard case .int(let conversation)? = d["conversation"] else { return Case(conversation: 0, addGenerationPrompt: false, tools: nil) }
            return Case(conversation: conversation, addGenerationPrompt: d["add_generation_prompt"]?.isTruthy ?? false, tools: tools)
        }
        templates = array(doc["templates"]).map { t in
            let d = dict(t)
            var compileError: String? = nil
            if case .dictionary(let e)? = d["compile_error"] { compileError = e["message"]?.stringValue }
            var results: [Expected] = []
            for r in array(d["results"]) {
                let result = dict(r)
                if let text = result["text"]?.stringValue {
                    results.append(.text(text))
                } else if case .int(let k)? = result["same_as"], k < results.count {
                    results.append(results[k])
                } else {
                    let e = dict(result["error"])
                    results.append(.error(kind: e["kind"]?.stringValue ?? "", message: e["message"]?.stringValue ?? ""))
                }
            }
            var bytes: Int? = nil
            if case .int(let b)? = d["bytes"] { bytes = b }
            return Template(name: d["name"]?.stringValue ?? "", bytes: bytes, compileError: compileError, results: results)
        }
    }

    var options: JinjaOptions {
        var options = JinjaOptions.transformers
        let now = self.now
        options.now = { now }
        options.timeZone = TimeZone(identifier: "UTC")!
        return options
    }

    /// Renders every case of one template; returns a description of each mismatch.
    func mismatches(for template: Template) throws -> (checked: Int, failures: [String]) {
        let source = try String(contentsOf: JinjaTestPaths.chatTemplates.appendingPathComponent(template.name), encoding: .utf8)
        if let bytes = template.bytes, source.utf8.count != bytes {
            return (1, ["\(template.name): the shared template changed since the fixture was made "
                + "(\(source.utf8.count) bytes, fixture has \(bytes)); rerun tools/oracle/make_template_fixtures.py"])
        }
        let parsed: JinjaTemplate
        do {
            parsed = try JinjaTemplate(source, options: options)
        } catch {
            if template.compileError != nil { return (1, []) }
            return (1, ["\(template.name): does not parse: \(error)"])
        }
        if let expected = template.compileError {
            return (1, ["\(template.name): parsed, but jinja2 fails to compile it: \(expected)"])
        }
        var failures: [String] = []
        for (k, (testCase, expected)) in zip(cases, template.results).enumerated() {
            let label = "\(template.name) case \(k) (conversation \(testCase.conversation), add_generation_prompt \(testCase.addGenerationPrompt), tools \(testCase.tools.map(String.init) ?? "none"))"
            let outcome: Result<String, Error> = Result {
                try parsed.renderChat(messages: conversations[testCase.conversation],
                                      addGenerationPrompt: testCase.addGenerationPrompt, bosToken: bosToken,
                                      eosToken: eosToken, tools: testCase.tools.map { tools[$0] })
            }
            switch (expected, outcome) {
            case (.text(let want), .success(let got)):
                if want != got { failures.append("\(label): output differs\n\(firstDifference(want, got))") }
            case (.text, .failure(let error)):
                failures.append("\(label): expected text, got error \(error)")
            case (.error(let kind, let message), .success):
                failures.append("\(label): expected \(kind) \"\(message)\", got text")
            case (.error(let kind, let message), .failure(let error)):
                // raise_exception messages must match exactly; other errors only have to happen.
                if kind == "TemplateError" {
                    let got = (error as? JinjaError).map { $0.kind == .raised ? $0.message : "\($0)" } ?? "\(error)"
                    if got != message { failures.append("\(label): expected raise_exception \"\(message)\", got \"\(got)\"") }
                }
            }
        }
        return (template.results.count, failures)
    }

    private func firstDifference(_ want: String, _ got: String) -> String {
        let a = Array(want.unicodeScalars), b = Array(got.unicodeScalars)
        var i = 0
        while i < a.count, i < b.count, a[i] == b[i] { i += 1 }
        func window(_ s: [Unicode.Scalar]) -> String {
            let lo = max(0, i - 60), hi = min(s.count, i + 60)
            return pythonStringLiteral(String(codePoints: s[lo..<hi]))
        }
        return "  at scalar \(i):\n  want \(window(a))\n  got  \(window(b))"
    }
}

@Suite struct ChatTemplateFixtureTests {
    static var templateNames: [String] { ChatTemplateFixture.shared?.templates.map(\.name) ?? [] }

    @Test func fixtureLoads() throws {
        let fixture = try #require(ChatTemplateFixture.shared, "Fixtures/templates/chat_template_renders.json is missing or unreadable")
        #expect(fixture.templates.count >= 70)
        #expect(fixture.cases.count >= 24)
    }

    @Test(.enabled(if: JinjaTestPaths.chatTemplatesAvailable,
                   "needs the real chat templates in ../shared/data/chat-templates (shared data, not in the repository)"),
          arguments: templateNames)
    func rendersLikeTransformers(_ name: String) throws {
        let fixture = try #require(ChatTemplateFixture.shared)
        let template = try #require(fixture.templates.first { $0.name == name })
        let (_, failures) = try fixture.mismatches(for: template)
        for failure in failures.prefix(3) { Issue.record(Comment(rawValue: failure)) }
        if !failures.isEmpty {
            Issue.record("\(failures.count) of \(template.results.count) cases differ from transformers")
        }
    }
}
