import Foundation
import Testing
@testable import HoneKit

/// Exact strings for every built-in. The conversation strings marked "FastChat" are what
/// lm-sys/FastChat @ 0e6d3e4 `get_conv_template(name).get_prompt()` returns for the same messages, and
/// those marked "HF" what jinja2 renders from the model's `chat_template` (Llama-2-7b-chat-hf; the common
/// ChatML template) with `add_generation_prompt=True`; both were produced once with Python and pasted here.
@Suite struct TemplateTests {
    static let conversation: [ChatMessage] = [.user("Hi"), .assistant("Hello! How can I help?"), .user("Name three colors.")]
    static let alpacaSystem = "Below is an instruction that describes a task. Write a response that appropriately completes the request."

    // MARK: - Alpaca

    @Test func alpacaSingleTurnIsAlpacaLoRA() throws {
        let alpaca = try #require(PromptTemplate.named("alpaca"))
        #expect(try alpaca.prompt(instruction: "Give three tips for staying healthy.", input: nil) ==
            "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\nGive three tips for staying healthy.\n\n### Response:\n")
        #expect(try alpaca.prompt(instruction: "Summarize.", input: "The text.") ==
            "Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n### Instruction:\nSummarize.\n\n### Input:\nThe text.\n\n### Response:\n")
        // Alpaca-LoRA tests `if input:`: an empty input is no input.
        #expect(try alpaca.prompt(instruction: "Hi", input: "") == alpaca.prompt(instruction: "Hi", input: nil))
        #expect(alpaca.responseSplit == "### Response:")
        #expect(alpaca.stopStrings == ["\n### Instruction:"])
        #expect(alpaca.addsBOS)
    }

    @Test func alpacaConversationIsFastChat() throws {
        let alpaca = try #require(PromptTemplate.named("alpaca"))
        // FastChat "alpaca", default system.
        #expect(try alpaca.prompt(conversation: Self.conversation) ==
            "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction: Hi\n\n### Response: Hello! How can I help?</s>### Instruction: Name three colors.\n\n### Response:")
        // FastChat "alpaca", set_system_message("Be brief.").
        #expect(try alpaca.prompt(conversation: Self.conversation, system: "Be brief.") ==
            "Be brief.\n\n### Instruction: Hi\n\n### Response: Hello! How can I help?</s>### Instruction: Name three colors.\n\n### Response:")
        #expect(try alpaca.prompt(conversation: [.user("Hi")], system: "Be brief.") == "Be brief.\n\n### Instruction: Hi\n\n### Response:")
        // An empty system leaves the block out.
        #expect(try alpaca.prompt(conversation: [.user("Hi")], system: "") == "### Instruction: Hi\n\n### Response:")
    }

    @Test func alpacaJudgeIsCUT() throws {
        let judge = try #require(PromptTemplate.named("alpaca_judge"))
        #expect(judge.supportsJudgment)
        #expect(try judge.prompt(instruction: "Name a prime.", input: nil, judgment: "The answer 9 is wrong: 9 = 3 x 3.") ==
            "Below is an instruction that describes a task. Write a response to the instruction and the response should match the corresponding judgment.\n\n### Instruction:\nName a prime.\n\n### Judgment:\nThe answer 9 is wrong: 9 = 3 x 3.\n\n### Response:\n")
        // CUT joins a non-empty input to the instruction with "\n", for both prompts (prompt_input is unused).
        #expect(try judge.prompt(instruction: "Translate.", input: "Bonjour", judgment: "Fine.") ==
            "Below is an instruction that describes a task. Write a response to the instruction and the response should match the corresponding judgment.\n\n### Instruction:\nTranslate.\nBonjour\n\n### Judgment:\nFine.\n\n### Response:\n")
        #expect(try judge.prompt(instruction: "Translate.", input: "Bonjour") ==
            "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\nTranslate.\nBonjour\n\n### Response:\n")
        // No judgment: CUT's prompt_no_input (Align-P / Misalign rows).
        #expect(try judge.prompt(instruction: "Name a prime.", input: nil, judgment: nil) ==
            PromptTemplate.alpaca.prompt(instruction: "Name a prime.", input: nil))
        // CUT's released code wraps the judged prompt again as an instruction (methods.md §1.3b).
        let inner = try judge.prompt(instruction: "x", input: nil, judgment: "j")
        #expect(try judge.prompt(instruction: inner, input: nil).hasPrefix("Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\nBelow is an instruction"))
        // A template without a judgment form ignores it.
        #expect(!PromptTemplate.alpaca.supportsJudgment)
        #expect(try PromptTemplate.alpaca.prompt(instruction: "a", input: nil, judgment: "j") == PromptTemplate.alpaca.prompt(instruction: "a"))
    }

    // MARK: - Chat formats

    @Test func llama2ChatIsMetasTemplate() throws {
        let llama = try #require(PromptTemplate.named("llama2-chat"))
        // HF's rendering starts with the BOS written as "<s>"; Hone's BOS comes from the tokenizer.
        #expect(try "<s>" + llama.prompt(conversation: Self.conversation) ==
            "<s>[INST] Hi [/INST] Hello! How can I help? </s><s>[INST] Name three colors. [/INST]")
        #expect(try "<s>" + llama.prompt(conversation: Self.conversation, system: "Be brief.") ==
            "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello! How can I help? </s><s>[INST] Name three colors. [/INST]")
        // content.strip(): the system block and the first message are stripped together (HF).
        #expect(try "<s>" + llama.prompt(conversation: [.user("  Hi there \n")], system: "Be brief.") ==
            "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\n  Hi there [/INST]")
        #expect(try "<s>" + llama.prompt(conversation: [.user("  Hi there \n")]) == "<s>[INST] Hi there [/INST]")
        // FastChat "llama-2" gives the same strings without the leading BOS.
        #expect(try llama.prompt(instruction: "Hi", input: nil) == "[INST] Hi [/INST]")
    }

    @Test func chatMLIsTheHFTemplate() throws {
        let chatML = try #require(PromptTemplate.named("chatml"))
        #expect(try chatML.prompt(conversation: Self.conversation) ==
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello! How can I help?<|im_end|>\n<|im_start|>user\nName three colors.<|im_end|>\n<|im_start|>assistant\n")
        #expect(try chatML.prompt(conversation: Self.conversation, system: "Be brief.") ==
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello! How can I help?<|im_end|>\n<|im_start|>user\nName three colors.<|im_end|>\n<|im_start|>assistant\n")
        // No stripping in ChatML.
        #expect(try chatML.prompt(conversation: [.user("  Hi there \n")]) == "<|im_start|>user\n  Hi there \n<|im_end|>\n<|im_start|>assistant\n")
        #expect(try chatML.prompt(instruction: "Summarize.", input: "Text") == "<|im_start|>user\nSummarize.\nText<|im_end|>\n<|im_start|>assistant\n")
        #expect(chatML.endTokens == ["<|im_end|>"])
    }

    @Test func vicunaIsFastChatV11() throws {
        let vicuna = try #require(PromptTemplate.named("vicuna"))
        let system = "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the user's questions."
        #expect(try vicuna.prompt(conversation: Self.conversation) ==
            system + " USER: Hi ASSISTANT: Hello! How can I help?</s>USER: Name three colors. ASSISTANT:")
        #expect(try vicuna.prompt(conversation: Self.conversation, system: "Be brief.") ==
            "Be brief. USER: Hi ASSISTANT: Hello! How can I help?</s>USER: Name three colors. ASSISTANT:")
        #expect(try vicuna.prompt(instruction: "Hi", input: nil) == system + " USER: Hi ASSISTANT:")
    }

    @Test func rawIsUndecorated() throws {
        let raw = try #require(PromptTemplate.named("raw"))
        #expect(try raw.prompt(instruction: "Once upon a time", input: nil) == "Once upon a time")
        #expect(try raw.prompt(instruction: "Translate:", input: "Hallo") == "Translate:\nHallo")
        #expect(try raw.prompt(conversation: [.user("a"), .assistant("b"), .user("c")], system: "s") == "sabc")
        #expect(raw.stopStrings.isEmpty)
        #expect(raw.extractResponse(from: "  text \n") == "text")
    }

    @Test func registry() throws {
        #expect(PromptTemplate.builtinNames == ["alpaca", "alpaca_judge", "llama2-chat", "chatml", "vicuna", "raw"])
        #expect(PromptTemplate.named("no-such") == nil)
        for name in PromptTemplate.builtinNames {
            let template = try #require(PromptTemplate.named(name))
            #expect(template.name == name)
            try template.validate()
        }
        #expect(throws: HoneError.self) { try PromptTemplate.resolve("no-such-template") }
        #expect(try PromptTemplate.resolve("vicuna") == PromptTemplate.vicuna)
    }

    // MARK: - Responses and format strings

    @Test func extractResponseTakesTheTextBetweenTheFirstTwoMarkers() throws {
        let alpaca = PromptTemplate.alpaca
        let prompt = try alpaca.prompt(instruction: "Say hi.")
        #expect(alpaca.extractResponse(from: prompt + " Hi there!\n\n") == "Hi there!")
        // Python's text.split("### Response:")[1] stops at a second marker (CUT's generate.py).
        #expect(alpaca.extractResponse(from: prompt + "A\n### Response: B") == "A")
        // Only the continuation, without the marker: all of it, stripped.
        #expect(alpaca.extractResponse(from: "\n Answer.\t") == "Answer.")
        #expect(alpaca.extractResponse(from: "### Response:") == "")
        // Python's str.strip() set: Unicode White_Space plus U+001C...U+001F; not U+200B.
        #expect(alpaca.extractResponse(from: "\u{1C}\u{85}\u{A0}\u{3000}x\u{2029}\u{1F}") == "x")
        #expect(alpaca.extractResponse(from: "\u{200B}x") == "\u{200B}x")
        let pythonWhitespace: [UInt32] = [0x9, 0xA, 0xB, 0xC, 0xD, 0x1C, 0x1D, 0x1E, 0x1F, 0x20, 0x85, 0xA0, 0x1680,
                                          0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008, 0x2009,
                                          0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000]
        for value in UInt32(0)...0x3100 {
            guard let scalar = Unicode.Scalar(value) else { continue }
            #expect(PromptTemplate.isPythonWhitespace(scalar) == pythonWhitespace.contains(value), "U+\(String(value, radix: 16))")
        }
    }

    @Test func formatStringsFollowPythonFormat() throws {
        // Braces in user text are not fields; {{ }} in the template are literal braces.
        let template = PromptTemplate(name: "t", promptNoInput: "{{json}} {instruction}!")
        #expect(try template.prompt(instruction: "use {input} and {{x}}") == "{json} use {input} and {{x}}!")
        #expect(try PromptTemplate.alpaca.prompt(instruction: "{instruction}") .contains("### Instruction:\n{instruction}\n"))
        #expect(PromptTemplate.placeholders("a {x} {{y}} {z}") == ["x", "z"])
        #expect(PromptTemplate.placeholders("a {x") == nil)
        #expect(PromptTemplate.placeholders("a }") == nil)
        #expect(throws: HoneError.self) { try PromptTemplate(name: "t", promptNoInput: "{question}").validate() }
        #expect(throws: HoneError.self) { try PromptTemplate(name: "t", promptInput: "{instruction} {judgment}").validate() }
    }

    @Test func piecesSeparateMarkupFromContent() throws {
        let pieces = try PromptTemplate.chatML.pieces(conversation: [.user("<|im_end|>hi")], system: "S")
        #expect(pieces == [
            PromptPiece(.markup, "<|im_start|>system\n"), PromptPiece(.content, "S"), PromptPiece(.markup, "<|im_end|>\n"),
            PromptPiece(.markup, "<|im_start|>user\n"), PromptPiece(.content, "<|im_end|>hi"), PromptPiece(.markup, "<|im_end|>\n"),
            PromptPiece(.markup, "<|im_start|>assistant\n"),
        ])
        let single = try PromptTemplate.alpaca.pieces(instruction: "Do it.", input: nil)
        #expect(single.map(\.kind) == [.markup, .content, .markup])
        #expect(single[1].text == "Do it.")
    }

    // MARK: - Tokenization

    /// The alpaca prompts of greedy.json, rendered by the template and encoded, are exactly the ids the
    /// `tokenizers` library gave (BOS first).
    @Test func alpacaPromptTokensMatchTheOracle() throws {
        let path = Repository.root.appendingPathComponent("models/hone-tiny").path
        let tokenizer = try TokenizerLoader.load(modelPath: path)
        let json = try parseJSON(Data(contentsOf: URL(fileURLWithPath: Repository.fixture("generation/greedy.json")))) as! [String: Any]
        let tiny = (json["models"] as! [[String: Any]]).first { ($0["model"] as! String) == "models/hone-tiny" }!
        let cases = tiny["cases"] as! [[String: Any]]
        let requests: [(instruction: String, input: String?)] = [
            ("Give three tips for staying healthy.", nil),
            ("Return the value of the environment variable.", nil),
            ("Summarize the module docstring.", "This module provides access to the mathematical functions."),
            ("Hi", nil),
        ]
        #expect(cases.count == requests.count)
        for (testCase, request) in zip(cases, requests) {
            let expected = (testCase["prompt_tokens"] as! [Any]).map { Int32(jsonInteger($0)!) }
            let text = try PromptTemplate.alpaca.prompt(instruction: request.instruction, input: request.input)
            #expect(testCase["prompt"] as? String == text)
            #expect(tokenizer.encode(text) == expected)
            let pieces = try PromptTemplate.alpaca.pieces(instruction: request.instruction, input: request.input)
            #expect(PromptTemplate.alpaca.encode(pieces, with: tokenizer) == expected)
        }
    }

    /// Markup's special-token names become ids; the same text written by the user stays text.
    @Test func encodeParsesSpecialTokensOnlyInMarkup() throws {
        let path = Repository.root.appendingPathComponent("models/hone-tiny").path
        let tokenizer = try TokenizerLoader.load(modelPath: path)
        let llama = PromptTemplate.llama2Chat
        let pieces = try llama.pieces(conversation: Self.conversation, system: "Be brief.")
        let ids = llama.encode(pieces, with: tokenizer)
        // Same as encoding the whole string with special tokens parsed (no special text in the content).
        #expect(try ids == tokenizer.encode(llama.prompt(conversation: Self.conversation, system: "Be brief."),
                                        addSpecialTokens: true, parseSpecial: true))
        #expect(ids.first == 1)
        #expect(ids.filter { $0 == 2 }.count == 1 && ids.filter { $0 == 1 }.count == 2)  // " </s><s>" between turns
        // A user writing "</s>" gets text, not an EOS.
        let injected = llama.encode(try llama.pieces(conversation: [.user("stop </s> here")]), with: tokenizer)
        #expect(!injected.contains(2))
        #expect(try injected == tokenizer.encode(llama.prompt(conversation: [.user("stop </s> here")])))
        // A template that writes its own BOS.
        var explicit = PromptTemplate.raw
        explicit.addsBOS = false
        explicit.userPrefix = "<s>"
        #expect(try explicit.encode(explicit.pieces(conversation: [.user("Hi")]), with: tokenizer) ==
                PromptTemplate.raw.encode(PromptTemplate.raw.pieces(conversation: [.user("Hi")]), with: tokenizer))
        #expect(PromptTemplate.chatML.endTokenIDs(for: tokenizer) == [2])  // hone-tiny has no <|im_end|>
    }

    // MARK: - Files

    @Test func jsonRoundTripOfACustomTemplate() throws {
        let custom = PromptTemplate(
            name: "zephyr-like", description: "a test", promptNoInput: nil, responseSplit: "<|assistant|>",
            system: "You are kind.", systemPrefix: "<|system|>\n", systemSuffix: "</s>\n",
            userPrefix: "<|user|>\n", userSuffix: "</s>\n", assistantPrefix: "<|assistant|>\n", assistantSuffix: "</s>\n",
            replyPrefix: "<|assistant|>\n", stripsContent: true, addsBOS: false, stopStrings: ["<|user|>"],
            endTokens: ["</s>"])
        let directory = Scratch.path("hone-template")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("zephyr.json").path
        try custom.save(path: path)
        let loaded = try PromptTemplate.load(path: path)
        #expect(loaded == custom)
        #expect(try PromptTemplate.resolve(path) == custom)
        #expect(try loaded.prompt(conversation: [.user(" Hi ")]) == "<|system|>\nYou are kind.</s>\n<|user|>\nHi</s>\n<|assistant|>\n")
        // Built-ins survive the trip too.
        for template in PromptTemplate.builtins {
            let data = try JSONEncoder().encode(template)
            #expect(try JSONDecoder().decode(PromptTemplate.self, from: data) == template)
        }
    }

    /// CUT's templates/alpaca.json, as stored in wwxu21/CUT, loads as it is and renders CUT's prompts.
    @Test func loadsCUTsTemplateFile() throws {
        let text = #"""
        {
          "description": "Template used by Alpaca-LoRA.",
          "prompt_input": "Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.\n\n### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n",
          "prompt_no_input": "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\n{instruction}\n\n### Response:\n",
          "prompt_no_input_judge": "Below is an instruction that describes a task. Write a response to the instruction and the response should match the corresponding judgment.\n\n### Instruction:\n{instruction}\n\n### Judgment:\n{judgment}\n\n### Response:\n",
          "response_split": "### Response:"
        }
        """#
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("cut-alpaca-\(UUID().uuidString).json").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let cut = try PromptTemplate.load(path: path)
        #expect(cut.name == URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent)
        #expect(try cut.prompt(instruction: "A", input: "B") == PromptTemplate.alpaca.prompt(instruction: "A", input: "B"))
        #expect(try cut.prompt(instruction: "A", input: nil) == PromptTemplate.alpaca.prompt(instruction: "A", input: nil))
        #expect(try cut.prompt(instruction: "A", input: nil, judgment: "J") ==
                PromptTemplate.alpacaJudge.prompt(instruction: "A", input: nil, judgment: "J"))
        #expect(try cut.extractResponse(from: cut.prompt(instruction: "A") + " out ") == "out")
        // Such a file has no turn markup: one user message is its single-turn prompt (it was the bare text, "A"),
        // and a conversation, or a system message, is refused (it was the texts run together).
        #expect(cut.isSingleTurnOnly && !PromptTemplate.alpaca.isSingleTurnOnly && !PromptTemplate.raw.isSingleTurnOnly)
        let user = try JinjaValue(jsonData: Data(#"{"role": "user", "content": "A"}"#.utf8))
        let reply = try JinjaValue(jsonData: Data(#"{"role": "assistant", "content": "B"}"#.utf8))
        let system = try JinjaValue(jsonData: Data(#"{"role": "system", "content": "S"}"#.utf8))
        #expect(try cut.render(messages: [user], addGenerationPrompt: true, origin: "m.json") == PromptTemplate.alpaca.prompt(instruction: "A", input: nil))
        for messages in [[user, reply, user], [system, user]] {
            #expect(throws: HoneError.self) { try cut.render(messages: messages, addGenerationPrompt: true, origin: "m.json") }
        }
    }

    @Test func badTemplateFilesNameTheFile() throws {
        let directory = Scratch.path("hone-bad")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let cases: [(String, String, String)] = [
            ("truncated.json", #"{"prompt_no_input": "x"#, "not valid JSON"),
            ("array.json", #"["not", "an", "object"]"#, "array"),
            ("wrongtype.json", #"{"stop_strings": "END"}"#, "stop_strings"),
            ("typo.json", #"{"stop_string": ["END"]}"#, "stop_string"),
            ("placeholder.json", #"{"prompt_no_input": "{question}"}"#, "{question}"),
            ("brace.json", #"{"prompt_input": "{instruction} {input"}"#, "prompt_input"),
            ("placement.json", #"{"system_placement": "middle"}"#, "system_placement"),
        ]
        for (name, content, detail) in cases {
            let path = directory.appendingPathComponent(name).path
            try content.write(toFile: path, atomically: true, encoding: .utf8)
            do {
                _ = try PromptTemplate.load(path: path)
                Issue.record("\(name) loaded")
            } catch let error as HoneError {
                guard case .malformedFile(let errorPath, _) = error else {
                    Issue.record("\(name): \(error)")
                    continue
                }
                #expect(errorPath == path)
                #expect(error.description.hasPrefix(path))
                #expect(error.description.contains(detail), "\(name): \(error)")
            }
        }
        let missing = directory.appendingPathComponent("missing.json").path
        #expect(throws: HoneError.fileNotFound(path: missing)) { try PromptTemplate.load(path: missing) }
    }
}
