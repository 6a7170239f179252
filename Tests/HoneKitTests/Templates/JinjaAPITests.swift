@testable import HoneKit
import Foundation
import Testing

/// The Swift-facing behaviour: error positions and wording, options, the chat-template entry point, JSON
/// input, dates and speed.
@Suite struct JinjaAPITests {
    // MARK: - Errors

    private func syntaxError(_ source: String) -> JinjaError? {
        do {
            _ = try JinjaTemplate(source)
            return nil
        } catch {
            return error as? JinjaError
        }
    }

    private func renderError(_ source: String, _ context: [String: JinjaValue] = [:]) -> JinjaError? {
        do {
            _ = try renderJinja(source, context)
            return nil
        } catch {
            return error as? JinjaError
        }
    }

    @Test func syntaxErrorsPointAtTheOffendingToken() throws {
        // (source, line, column, message) — columns count Unicode scalars from 1.
        let cases: [(String, Int, Int, String)] = [
            ("Hello\n{{ user.name }\n", 2, 14, "unexpected '}'"),
            ("a\n\n   {% if %}", 3, 10, "Expected an expression, got 'end of statement block'"),
            ("x\n  {{ y | nofilter }}", 2, 10, "No filter named 'nofilter'."),
            ("é🙂 {{ 1 + }}", 1, 11, "unexpected 'end of print statement'"),
            ("a\n{# never closed", 2, 1, "Missing end of comment tag"),
            ("{% for x in y %}\n{% endif %}", 2, 4,
             "Encountered unknown tag 'endif'. Jinja was looking for the following tags: 'endfor' or 'else'. The innermost block that needs to be closed is 'for'."),
            ("{% if a %}\n  {% for x in y %}\n", 2, 19,
             "Unexpected end of template. Jinja was looking for the following tags: 'endfor' or 'else'. The innermost block that needs to be closed is 'for'."),
            ("{{ 'unterminated }}", 1, 4, "unexpected char \"'\" at 3"),
            ("{{ a ! b }}", 1, 6, "unexpected char '!' at 5"),
        ]
        for (source, line, column, message) in cases {
            let error = try #require(syntaxError(source), "\(pythonStringLiteral(source)) should not parse")
            #expect(error.kind == .syntax)
            #expect(error.line == line, "\(pythonStringLiteral(source))")
            #expect(error.column == column, "\(pythonStringLiteral(source))")
            #expect(error.message == message)
            #expect(error.description == "template syntax error at line \(line), column \(column): \(message)")
        }
    }

    @Test func runtimeErrorsCarryTheLine() throws {
        let concat = try #require(renderError("line one\n{{ 'x' + [1] }}"))
        #expect(concat.kind == .type)
        #expect(concat.line == 2)
        #expect(concat.message == "can only concatenate str (not \"list\") to str")
        #expect(concat.description == "template error at line 2: can only concatenate str (not \"list\") to str")

        let inMacro = try #require(renderError("{% macro m(x) %}\n\n{{ x.y.z }}{% endmacro %}\n{{ m(none) }}"))
        #expect(inMacro.kind == .undefined)
        #expect(inMacro.line == 3)

        let undefinedMethod = try #require(renderError("{{ messages[0].content.startswith('a') }}",
                                                        ["messages": [["content": ["list"]]]]))
        #expect(undefinedMethod.message == "'list object' has no attribute 'startswith'")
        let undefinedName = try #require(renderError("{{ nothing.here }}"))
        #expect(undefinedName.message == "'nothing' is undefined")
    }

    @Test func raiseExceptionMessageIsExact() throws {
        let message = "Conversation roles must alternate user/assistant/user/assistant/..."
        let error = try #require(renderError("{{ raise_exception('\(message)') }}"))
        #expect(error.kind == .raised)
        #expect(error.message == message)
        #expect(error.description == message)
        #expect(error.localizedDescription == message)
        // A message with a newline stays as the template wrote it.
        let multiline = try #require(renderError("{{ raise_exception('a\\nb') }}"))
        #expect(multiline.description == "a\nb")
    }

    @Test func otherErrorDescriptionsAreOneLine() throws {
        for source in ["{% for x in none %}{% endfor %}", "{{ 1 / 0 }}", "{{ [1].append(2) }}", "{% if x %}\n{% else %}"] {
            let error = try #require(syntaxError(source) ?? renderError(source))
            #expect(!error.description.contains("\n"), "\(error)")
        }
    }

    @Test func runawayRecursionAndNestingAreErrorsNotCrashes() throws {
        let recursive = "{% macro r(n) %}{% if n > 0 %}{{ r(n - 1) }}{% endif %}x{% endmacro %}{{ r(depth)|length }}"
        #expect(try renderJinja(recursive, ["depth": 140]) == "141")
        let error = try #require(renderError(recursive, ["depth": 10_000]))
        #expect(error.message == "maximum recursion depth exceeded")
        let deepButFine = "{{ " + String(repeating: "(", count: 150) + "1" + String(repeating: ")", count: 150) + " }}"
        #expect(try renderJinja(deepButFine) == "1")
        let tooDeep = "{{ " + String(repeating: "[", count: 1000) + String(repeating: "]", count: 1000) + " }}"
        #expect(syntaxError(tooDeep)?.message == "template is nested too deeply")
        let deepBlocks = String(repeating: "{% if true %}", count: 1000) + String(repeating: "{% endif %}", count: 1000)
        #expect(syntaxError(deepBlocks)?.message == "template is nested too deeply")
        // Chains built in a loop nest the tree as deeply as brackets do (20,000 `|string` overflowed the stack when
        // evaluated): each link counts.
        let chains = ["{{ 1" + String(repeating: "|string", count: 20_000) + " }}",
                      "{{ x" + String(repeating: ".y", count: 20_000) + " }}",
                      "{{ f" + String(repeating: "()", count: 20_000) + " }}",
                      "{{ 1" + String(repeating: " + 1", count: 20_000) + " }}",
                      "{{ 1" + String(repeating: " * 1", count: 20_000) + " }}",
                      "{{ 1" + String(repeating: " ** 1", count: 20_000) + " }}",
                      "{{ 1" + String(repeating: " and 1", count: 20_000) + " }}",
                      "{{ 1" + String(repeating: " or 1", count: 20_000) + " }}",
                      "{% filter upper" + String(repeating: "|lower", count: 20_000) + " %}x{% endfilter %}"]
        for source in chains {
            #expect(syntaxError(source)?.message == "template is nested too deeply", "\(source.prefix(30))")
        }
        #expect(try renderJinja("{{ 1" + String(repeating: "|string", count: 150) + " }}|{{ 1" + String(repeating: " + 1", count: 150) + " }}")
                == "1|151")
    }

    // MARK: - Options

    @Test func optionsControlWhitespace() throws {
        let source = "<ul>\n  {% for x in [1] %}\n  <li>{{ x }}</li>\n  {% endfor %}\n</ul>\n"
        #expect(try renderJinja(source) == "<ul>\n  <li>1</li>\n</ul>")
        #expect(try renderJinja(source, options: .jinjaDefaults) == "<ul>\n  \n  <li>1</li>\n  \n</ul>")
        var keep = JinjaOptions.transformers
        keep.keepTrailingNewline = true
        #expect(try renderJinja(source, options: keep) == "<ul>\n  <li>1</li>\n</ul>\n")
    }

    // MARK: - Chat templates

    static let chatML = """
        {%- for message in messages %}
        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}
        {%- endfor %}
        {%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}
        """

    @Test func renderChatTemplatePassesTransformersContext() throws {
        let messages: [JinjaValue] = [["role": "user", "content": "Hi"], ["role": "assistant", "content": "Hello"]]
        let text = try renderChatTemplate(source: Self.chatML, messages: messages, addGenerationPrompt: true,
                                          bosToken: "<s>", eosToken: "</s>")
        #expect(text == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello<|im_end|>\n<|im_start|>assistant\n")

        // tools and documents are None (not undefined) unless given; tokens and extras are visible.
        let probe = "{{ tools is none }} {{ tools is defined }} {{ documents is none }} {{ bos_token }}{{ eos_token }} "
            + "{{ add_generation_prompt }} {{ enable_thinking }} {{ tools|length if tools is not none }}"
        let template = try JinjaTemplate(probe)
        #expect(try template.renderChat(messages: [], addGenerationPrompt: false, bosToken: "<s>", eosToken: "</s>",
                                        extra: ["enable_thinking": false]) == "True True True <s></s> False False ")
        #expect(try template.renderChat(messages: [], addGenerationPrompt: true, bosToken: nil, eosToken: nil,
                                        tools: [["type": "function"]]) == "False True True  True  1")
        // Extras override the special tokens, as transformers' kwargs do.
        #expect(try JinjaTemplate("{{ bos_token }}").renderChat(messages: [], addGenerationPrompt: false, bosToken: "<s>",
                                                                eosToken: nil, extra: ["bos_token": "[BOS]"]) == "[BOS]")
    }

    @Test func messagesAreNormalizedLikeTransformers() throws {
        // None-valued keys are dropped; reasoning is copied to `thinking` (first) and `reasoning_content` (last).
        let message = try JinjaValue(json: #"{"role": "assistant", "content": null, "reasoning": "why", "tool_calls": []}"#)
        let template = try JinjaTemplate("{{ messages[0] }} {{ messages[0].content is defined }}")
        #expect(try template.renderChat(messages: [message], addGenerationPrompt: false, bosToken: nil, eosToken: nil)
                == "{'thinking': 'why', 'role': 'assistant', 'reasoning': 'why', 'tool_calls': [], 'reasoning_content': 'why'} False")
    }

    // MARK: - Values

    @Test func orderedJSONKeepsKeyOrderAndTypes() throws {
        let value = try JinjaValue(json: #" {"z": 1, "a": [1.0, 2e3, -0, true, null, "\u00e9\ud83d\ude42\n"], "m": {"y": {}, "b": []}} "#)
        #expect(try renderJinja("{{ v }}|{{ v|tojson }}", ["v": value])
                == #"{'z': 1, 'a': [1.0, 2000.0, 0, True, None, 'é🙂\n'], 'm': {'y': {}, 'b': []}}|{"z": 1, "a": [1.0, 2000.0, 0, true, null, "é🙂\n"], "m": {"y": {}, "b": []}}"#)
        #expect(throws: JinjaError.self) { try JinjaValue(json: #"{"a": 1,}"#) }
        #expect(throws: JinjaError.self) { try JinjaValue(json: "[1] 2") }
    }

    @Test func foundationValuesConvert() throws {
        let data = Data(#"{"n": 3, "x": 1.5, "b": false, "s": "t", "l": [null]}"#.utf8)
        let object = try JSONSerialization.jsonObject(with: data)
        let value = JinjaValue(any: object)
        // Foundation loses key order, so keys come out sorted; the types survive.
        #expect(try renderJinja("{{ v }}", ["v": value]) == "{'b': False, 'l': [None], 'n': 3, 's': 't', 'x': 1.5}")
        #expect(JinjaValue(any: ["k": 1, "j": true] as [String: Any]) == ["j": true, "k": 1])
    }

    @Test func pythonEqualityAndPrinting() {
        #expect(JinjaValue.int(1) == .double(1.0))
        #expect(JinjaValue.bool(true) == .int(1))
        #expect(JinjaValue.array([1, 2]) != .tuple([1, 2]))
        #expect(JinjaValue.dictionary(JinjaDictionary([("a", 1), ("b", 2)])) == ["b": 2, "a": 1])
        #expect(JinjaValue.markup("x") == .string("x"))
        #expect(JinjaValue.double(1e22).pythonString == "1e+22")
        #expect(JinjaValue.double(-1.5e-7).pythonString == "-1.5e-07")
        #expect(JinjaValue.double(0.1 + 0.2).pythonString == "0.30000000000000004")
        #expect(JinjaValue.tuple(["a"]).pythonString == "('a',)")
        #expect(JinjaValue.string("it's \"q\"").pythonRepresentation == #"'it\'s "q"'"#)
    }

    // MARK: - Dates

    @Test func strftimeNowMatchesPython() throws {
        // Expected strings from Python's datetime.strftime (C locale) for the same wall-clock times.
        let format = "%a %A %b %B %c|%C %d %D %e %F %g %G %H %I %j %k %l %m %M %p %r %R %S %T %u %U %V %w %W %x %X %y %Y|%-d %-m %-H|%z%Z"
        let cases: [(TimeInterval, String)] = [
            (1_741_356_309, "Fri Friday Mar March Fri Mar  7 14:05:09 2025|20 07 03/07/25  7 2025-03-07 25 2025 14 02 066 14  2 03 05 PM 02:05:09 PM 14:05 09 14:05:09 5 09 10 5 09 03/07/25 14:05:09 25 2025|7 3 14|"),
            (1_609_459_200, "Fri Friday Jan January Fri Jan  1 00:00:00 2021|20 01 01/01/21  1 2021-01-01 20 2020 00 12 001  0 12 01 00 AM 12:00:00 AM 00:00 00 00:00:00 5 00 53 5 00 01/01/21 00:00:00 21 2021|1 1 0|"),
            (1_735_603_199, "Mon Monday Dec December Mon Dec 30 23:59:59 2024|20 30 12/30/24 30 2024-12-30 25 2025 23 11 365 23 11 12 59 PM 11:59:59 PM 23:59 59 23:59:59 1 52 01 1 53 12/30/24 23:59:59 24 2024|30 12 23|"),
            (1_798_979_400, "Sun Sunday Jan January Sun Jan  3 12:30:00 2027|20 03 01/03/27  3 2027-01-03 26 2026 12 12 003 12 12 01 30 PM 12:30:00 PM 12:30 00 12:30:00 7 01 53 0 00 01/03/27 12:30:00 27 2027|3 1 12|"),
        ]
        for (seconds, expected) in cases {
            var options = JinjaOptions.transformers
            options.now = { Date(timeIntervalSince1970: seconds) }
            options.timeZone = TimeZone(identifier: "UTC")!
            #expect(try renderJinja("{{ strftime_now(f) }}", ["f": .string(format)], options: options) == expected)
        }
    }

    // MARK: - Parse once, render many

    @Test func templatesRenderConcurrently() async throws {
        let template = try JinjaTemplate(Self.chatML)
        let results = try await withThrowingTaskGroup(of: String.self) { group in
            for i in 0..<8 {
                group.addTask {
                    try template.renderChat(messages: [["role": "user", "content": .string("m\(i)")]],
                                            addGenerationPrompt: false, bosToken: nil, eosToken: nil)
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(Set(results).count == 8)
    }

    @Test func renderingIsFast() throws {
        // A real template with a system prompt, four turns and a generation prompt. Debug builds are several
        // times slower than release, so the bound is loose; a release build renders this in well under 1 ms.
        let source = """
            {{- bos_token }}{%- set ns = namespace(system='') %}
            {%- for message in messages %}{%- if message.role == 'system' %}{%- set ns.system = message.content|trim %}{%- endif %}{%- endfor %}
            {%- if ns.system %}{{ '<|start_header_id|>system<|end_header_id|>\\n\\n' + ns.system + '<|eot_id|>' }}{%- endif %}
            {%- for message in messages if message.role != 'system' %}
            {{- '<|start_header_id|>' + message.role + '<|end_header_id|>\\n\\n' + message.content|trim + '<|eot_id|>' }}
            {%- endfor %}
            {%- if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}
            """
        let template = try JinjaTemplate(source)
        var messages: [JinjaValue] = [["role": "system", "content": "Be brief."]]
        for i in 0..<4 {
            messages.append(["role": "user", "content": .string("Question \(i)?")])
            messages.append(["role": "assistant", "content": .string("Answer \(i).")])
        }
        let runs = 200
        let start = Date()
        for _ in 0..<runs {
            _ = try template.renderChat(messages: messages, addGenerationPrompt: true, bosToken: "<s>", eosToken: "</s>")
        }
        let perRender = Date().timeIntervalSince(start) / Double(runs)
        #expect(perRender < 0.01, "one render took \(perRender * 1000) ms")
    }
}
