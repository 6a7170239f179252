@testable import HoneKit
import Foundation
import Testing

/// The small templates of Fixtures/templates/jinja_language_cases.json (tools/oracle/
/// make_jinja_language_fixtures.py), one per language feature, each with the output real jinja2 gave in
/// transformers' environment (or the error it raised).
struct JinjaLanguageCase: CustomTestStringConvertible, Sendable {
    enum Expected: Sendable {
        case output(String)
        /// jinja2's exception class, its message, and (for syntax errors) the line.
        case error(kind: String, message: String, line: Int?)
    }

    let name: String
    let template: String
    let context: [String: JinjaValue]
    let plain: Bool
    let expected: Expected

    var testDescription: String { name }

    static let now: Date = Date(timeIntervalSince1970: 1_741_356_309)  // 2025-03-07T14:05:09Z, the fixture's "now"

    static let all: [JinjaLanguageCase] = {
        guard let dir = JinjaTestPaths.fixtures,
            let data = FileManager.default.contents(atPath: dir.appendingPathComponent("jinja_language_cases.json").path),
            case .dictionary(let doc)? = try? JinjaValue(jsonData: data),
            case .array(let cases)? = doc["cases"]
        else { return [] }
        return cases.compactMap { value in
            guard case .dictionary(let c) = value, let name = c["name"]?.stringValue,
                let template = c["template"]?.stringValue
            else { return nil }
            var context: [String: JinjaValue] = [:]
            if case .dictionary(let ctx)? = c["context"] {
                for (key, value) in ctx.pairs { context[key.pythonString] = value }
            }
            let expected: Expected
            if let output = c["output"]?.stringValue {
                expected = .output(output)
            } else if case .dictionary(let e)? = c["error"] {
                var line: Int? = nil
                if case .int(let l)? = e["line"] { line = l }
                expected = .error(kind: e["kind"]?.stringValue ?? "", message: e["message"]?.stringValue ?? "", line: line)
            } else {
                return nil
            }
            return JinjaLanguageCase(name: name, template: template, context: context, plain: c["plain"]?.isTruthy ?? false,
                                     expected: expected)
        }
    }()

    var options: JinjaOptions {
        var options = plain ? JinjaOptions.jinjaDefaults : JinjaOptions.transformers
        options.now = { JinjaLanguageCase.now }
        options.timeZone = TimeZone(identifier: "UTC")!
        return options
    }
}

@Suite struct JinjaLanguageTests {
    @Test func casesLoad() {
        #expect(JinjaLanguageCase.all.count >= 150, "Fixtures/templates/jinja_language_cases.json is missing or short")
    }

    @Test(arguments: JinjaLanguageCase.all)
    func matchesJinja2(_ testCase: JinjaLanguageCase) throws {
        let result = Result { try JinjaTemplate(testCase.template, options: testCase.options).render(testCase.context) }
        switch (testCase.expected, result) {
        case (.output(let want), .success(let got)):
            #expect(got == want)
        case (.output, .failure(let error)):
            Issue.record("expected output, got error: \(error)")
        case (.error(let kind, let message, _), .success(let got)):
            Issue.record("expected \(kind) \"\(message)\", got output \(pythonStringLiteral(got))")
        case (.error(let kind, let message, let line), .failure(let error)):
            let jinjaError = try #require(error as? JinjaError)
            switch kind {
            case "TemplateError":
                // raise_exception: the message is passed through exactly.
                #expect(jinjaError.kind == .raised)
                #expect(jinjaError.message == message)
                #expect(jinjaError.description == message)
            case "TemplateSyntaxError", "TemplateAssertionError", "SyntaxError":
                #expect(jinjaError.kind == .syntax, "\(jinjaError)")
                if let line { #expect(jinjaError.line == line, "\(jinjaError)") }
            case "UndefinedError":
                #expect(jinjaError.kind == .undefined, "\(jinjaError)")
            case "SecurityError":
                #expect(jinjaError.kind == .security, "\(jinjaError)")
                #expect(jinjaError.message == message)
            default:
                #expect(jinjaError.kind != .raised && jinjaError.kind != .syntax, "\(jinjaError)")
            }
        }
    }
}
