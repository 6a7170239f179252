import Foundation
import Testing
@testable import HoneKit

@Suite struct TemplateCommandTests {
    /// hone-tiny with a chat template of its own.
    func modelWithTemplate() throws -> URL {
        let directory = try makeTemporaryDirectory().appendingPathComponent("model")
        try FileManager.default.copyItem(at: Repository.root.appendingPathComponent("models/hone-tiny"), to: directory)
        let path = directory.appendingPathComponent("tokenizer_config.json")
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: path)) as! [String: Any]
        json["chat_template"] = ModelChatTemplateTests.source
        try JSONSerialization.data(withJSONObject: json).write(to: path)
        return directory
    }

    @Test func printsTheRenderedPrompt() throws {
        let model = try modelWithTemplate()
        let messages = model.deletingLastPathComponent().appendingPathComponent("chat.json").path
        try Data(#"[{"role": "system", "content": "S"}, {"role": "user", "content": "hi"}]"#.utf8).write(to: URL(fileURLWithPath: messages))
        let opened = try runProcess(Repository.honeExecutable, ["template", "--model", model.path, "--messages", messages, "--add-generation-prompt"])
        #expect(opened.status == 0, "\(opened.stderr)")
        #expect(opened.stdout == "<s><|system|>S</s><|user|>hi</s><|assistant|>")
        let closed = try runProcess(Repository.honeExecutable, ["template", "--model", model.path, "--messages", messages])
        #expect(closed.stdout == "<s><|system|>S</s><|user|>hi</s>")
        let bad = try runProcess(Repository.honeExecutable, ["template", "--model", model.path, "--messages", model.path + "/config.json"])
        #expect(bad.status != 0)
        #expect(bad.stderr.split(separator: "\n").count == 1, "\(bad.stderr)")
    }

    /// --chat-template-kwargs (llama-server's flag) reaches the template (a variable it reads changes the text); with
    /// a template that is not Jinja, and with a value that is not a JSON object, one line and exit 1.
    @Test func chatTemplateKwargsReachTheTemplate() throws {
        let directory = try makeTemporaryDirectory()
        let template = directory.appendingPathComponent("t.jinja").path
        try Data("{{ messages[0].content }}{% if greeting is defined %} {{ greeting }}{% endif %}".utf8).write(to: URL(fileURLWithPath: template))
        let messages = directory.appendingPathComponent("chat.json").path
        try Data(#"[{"role": "user", "content": "hi"}]"#.utf8).write(to: URL(fileURLWithPath: messages))
        let tiny = Repository.root.appendingPathComponent("models/hone-tiny").path
        let common = ["template", "--model", tiny, "--messages", messages]
        let plain = try runProcess(Repository.honeExecutable, common + ["--template", template])
        #expect(plain.status == 0 && plain.stdout == "hi", "\(plain.stderr)")
        let given = try runProcess(Repository.honeExecutable, common + ["--template", template, "--chat-template-kwargs", #"{"greeting": "there"}"#])
        #expect(given.status == 0 && given.stdout == "hi there", "\(given.stdout) \(given.stderr)")
        for (arguments, message) in [(["--template", "alpaca", "--chat-template-kwargs", "{}"], nil),
                                     (["--template", "alpaca", "--chat-template-kwargs", #"{"a": 1}"#], "needs a Jinja chat template"),
                                     (["--template", template, "--chat_template_kwargs", "[1]"], "must be a JSON object")] {
            let result = try runProcess(Repository.honeExecutable, common + arguments)
            if let message {
                #expect(result.status == 1 && result.stderr.contains(message) && result.stderr.split(separator: "\n").count == 1,
                        "\(arguments): \(result.stderr)")
            } else {
                #expect(result.status == 0, "\(arguments): \(result.stderr)")
            }
        }
    }

    /// With any template but alpaca, generate's answer is the new text only: never the prompt.
    @Test func generateWithRawReturnsOnlyNewText() throws {
        let directory = try makeTemporaryDirectory()
        let instructions = directory.appendingPathComponent("i.json").path
        let instruction = "Write the word banana twice"
        try Data("[{\"instruction\": \"\(instruction)\"}]".utf8).write(to: URL(fileURLWithPath: instructions))
        let output = directory.appendingPathComponent("out.json").path
        let result = try runProcess(Repository.honeExecutable, ["generate", "--model", Repository.root.appendingPathComponent("models/hone-tiny").path,
                                                                "--instructions", instructions, "--output", output, "--template", "raw",
                                                                "--max-new-tokens", "12", "--threads", "1"])
        #expect(result.status == 0, "\(result.stderr)")
        let records = try parseJSON(Data(contentsOf: URL(fileURLWithPath: output))) as! [[String: Any]]
        let answer = records[0]["output"] as? String ?? ""
        #expect(!answer.contains(instruction), "\(answer)")
        #expect(!answer.isEmpty)
    }
}
