import Foundation
import Testing
@testable import HoneKit

/// How CUT, DPO and PRO turn records into token rows, checked against the reference scripts' rules written out
/// here as plain text formatting plus one tokenizer call each (methods.md §1.3–1.4, §2.4–2.6, §4.4).
@Suite("CUT, DPO and PRO data and tokenization")
struct AlignmentDataTests {
    static let modelPath = Repository.root.appendingPathComponent("models/hone-tiny").path

    static func tokenizer() throws -> Tokenizer { try TokenizerLoader.load(modelPath: modelPath) }

    static func format(_ template: String, _ values: [String: String]) -> String {
        var text = template
        for (key, value) in values { text = text.replacingOccurrences(of: "{\(key)}", with: value) }
        return text
    }

    static let noInput = "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n### Instruction:\n{instruction}\n\n### Response:\n"
    static let judge = "Below is an instruction that describes a task. Write a response to the instruction and the response should match the corresponding judgment.\n\n### Instruction:\n{instruction}\n\n### Judgment:\n{judgment}\n\n### Response:\n"

    @Test("CUT rows: the doubly wrapped prompt of the released code, EOS appended, prompt masked; Misalign aligned")
    func cutRows() throws {
        let tokenizer = try Self.tokenizer()
        let template = try #require(PromptTemplate.named("alpaca_judge"))
        let record = JudgmentRecord(instruction: "Translate to French:", input: "Good morning", output: "Bonne nuit.",
                                    judgment: "That means good night.")
        let example = try CUTExample.make(record, tokenizer: tokenizer, template: template, cutoffLength: 2048, wrap: .double, place: "r1")
        let instruction = "Translate to French:\nGood morning"
        let judged = Self.format(Self.noInput, ["instruction": Self.format(Self.judge, ["instruction": instruction, "judgment": "That means good night."])])
        let plain = Self.format(Self.noInput, ["instruction": Self.format(Self.noInput, ["instruction": instruction])])
        let eos = try #require(tokenizer.eosTokenID)
        for (row, prompt) in [(example.like, judged), (try #require(example.misalign), plain)] {
            let full = tokenizer.encode(prompt + "Bonne nuit.")
            let promptIDs = tokenizer.encode(prompt)
            #expect(row.tokens == full + [eos])
            #expect(row.targets.map(\.token) == Array(full[promptIDs.count...]) + [eos])
            #expect(row.targets.first?.position == promptIDs.count - 1)
        }
        // The paper's single wrap; an Align-P record has no Misalign row.
        let single = try CUTExample.make(JudgmentRecord(instruction: "Say hi.", output: "Hi!", judgment: nil), tokenizer: tokenizer,
                                         template: template, cutoffLength: 2048, wrap: .single, place: "r2")
        #expect(single.misalign == nil)
        #expect(single.like.tokens == tokenizer.encode(Self.format(Self.noInput, ["instruction": "Say hi."]) + "Hi!") + [eos])
        // A score of 7 or more discards the judgment.
        let scored = try CUTExample.make(JudgmentRecord(instruction: "a", output: "b", judgment: "fine", score: 8), tokenizer: tokenizer,
                                         template: template, cutoffLength: 2048, wrap: .double, place: "r3")
        #expect(scored.misalign == nil)
    }

    @Test("CUT rows are cut from the left: the response stays whole and only it is trained")
    func cutLeftTruncation() throws {
        let tokenizer = try Self.tokenizer()
        let template = try #require(PromptTemplate.named("alpaca_judge"))
        let record = JudgmentRecord(instruction: String(repeating: "A long instruction with many words. ", count: 6), output: "Short reply.",
                                    judgment: "Too short.")
        let cutoff = 24
        let example = try CUTExample.make(record, tokenizer: tokenizer, template: template, cutoffLength: cutoff, wrap: .double, place: "r")
        let eos = try #require(tokenizer.eosTokenID)
        for row in [example.like, example.misalign!] {
            #expect(row.tokens.count == cutoff + 1)
            let response = Array(row.tokens.suffix(from: row.tokens.count - row.targets.count))
            #expect(row.targets.map(\.token) == response)
            #expect(response.last == eos)
        }
        #expect(example.like.targets.map(\.token) == example.misalign!.targets.map(\.token))
        let plainFull = tokenizer.encode(Self.format(Self.noInput, ["instruction": Self.format(Self.noInput, ["instruction": record.instruction])]) + "Short reply.")
        #expect(example.misalign!.tokens == Array(plainFull.suffix(cutoff)) + [eos])
    }

    @Test("DPO pairs: prompt ids, completions with EOS, TRL HEAD's keep-start cut and v0.7.11's prompt rule")
    func dpoTokenization() throws {
        let tokenizer = try Self.tokenizer()
        let eos = try #require(tokenizer.eosTokenID), bos = try #require(tokenizer.bosTokenID)
        let record = PreferenceRecord(prompt: "\n\nHuman: What is the capital of France, my friend?\n\nAssistant:",
                                      chosen: " The capital of France is Paris.", rejected: " No idea.")
        let example = try #require(PreferenceExample.tokenize(record, tokenizer: tokenizer, maxLength: nil, maxPromptLength: nil))
        #expect(example.prompt + example.chosen == tokenizer.encode(record.prompt + record.chosen) + [eos])
        #expect(example.prompt + example.rejected == tokenizer.encode(record.prompt + record.rejected) + [eos])
        #expect(tokenizer.encode(record.prompt).starts(with: example.prompt))
        #expect(example.chosenRow.targets.map(\.token) == example.chosen)
        #expect(example.chosenRow.targets.first?.position == example.prompt.count - 1)

        let limit = example.prompt.count + 3
        let cut = try #require(PreferenceExample.tokenize(record, tokenizer: tokenizer, maxLength: limit, maxPromptLength: nil))
        #expect(cut.prompt == example.prompt && cut.chosen == Array(example.chosen.prefix(3)))
        #expect(PreferenceExample.tokenize(record, tokenizer: tokenizer, maxLength: example.prompt.count, maxPromptLength: nil) == nil)

        let kept = try #require(PreferenceExample.tokenize(record, tokenizer: tokenizer, maxLength: 12, maxPromptLength: 5))
        #expect(kept.prompt == [bos] + Array(example.prompt.suffix(4)))
        #expect(kept.chosen == Array(example.chosen.prefix(7)) && kept.rejected == Array(example.rejected.prefix(7)))
    }

    @Test("DPO data: TRL records, raw HH dialogues split at the shared prompt, conversational records refused")
    func dpoReading() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("pairs.jsonl").path
        try Data("""
        {"prompt": "P", "chosen": " a", "rejected": " b"}
        {"chosen": "\\n\\nHuman: Hi\\n\\nAssistant: Hello!", "rejected": "\\n\\nHuman: Hi\\n\\nAssistant: Bye."}
        {"chosen": "x", "rejected": "y"}
        """.utf8).write(to: URL(fileURLWithPath: path))
        let (records, dropped) = try PreferenceData.read(path: path)
        #expect(records.map(\.prompt) == ["P", "\n\nHuman: Hi\n\nAssistant:"])
        #expect(records[1].chosen == " Hello!" && records[1].rejected == " Bye.")
        #expect(dropped == ["line 3"])
        try Data(#"{"prompt": [{"role": "user", "content": "a"}], "chosen": "b", "rejected": "c"}"#.utf8).write(to: URL(fileURLWithPath: path))
        #expect(throws: HoneError.self) { try PreferenceData.read(path: path) }
    }

    @Test("PRO rows: ScalingAlignment's prompt text, prompt + \" \" + response + EOS, every response token scored")
    func proRows() throws {
        let tokenizer = try Self.tokenizer()
        let eos = try #require(tokenizer.eosTokenID), bos = try #require(tokenizer.bosTokenID)
        let turns = ["<|prompter|>Hi!", "<|assistant|>Hello.", "<|prompter|>How are you?", "<|assistant|>"]
        let prompt = RankingData.promptText(turns)
        #expect(prompt == "\n\nHuman: Hi!\n\nAssistant: Hello.\n\nHuman: How are you?\n\nAssistant:")
        let row = try #require(RankingData.row(turns: turns, suffix: "Very well.", tokenizer: tokenizer, blockSize: 512, maxPromptLength: 384))
        let full = tokenizer.encode(prompt + " Very well.")
        #expect(row.tokens == full + [eos])
        let promptCount = tokenizer.encode(prompt).count
        #expect(row.targets.map(\.token) == Array(row.tokens[promptCount...]))
        // A long prompt keeps its BOS and its end, through text (the decode/encode round trip).
        let long = ["<|prompter|>" + String(repeating: "tell me more about the weather ", count: 20), "<|assistant|>"]
        let cut = try #require(RankingData.row(turns: long, suffix: "Sunny.", tokenizer: tokenizer, blockSize: 512, maxPromptLength: 16))
        let ids = tokenizer.encode(RankingData.promptText(long))
        let kept = tokenizer.decode(Array(ids.suffix(15)), skipSpecialTokens: true)
        #expect(cut.tokens == tokenizer.encode(kept + " Sunny.") + [eos])
        #expect(cut.tokens.first == bos)
        // Cut on the right at the block size; nothing left to score gives nil.
        let short = try #require(RankingData.row(turns: turns, suffix: "Very well.", tokenizer: tokenizer, blockSize: promptCount + 2, maxPromptLength: 384))
        #expect(short.tokens.count == promptCount + 2 && short.targets.count == 2)
        #expect(RankingData.row(turns: turns, suffix: "x", tokenizer: tokenizer, blockSize: promptCount, maxPromptLength: 384) == nil)
    }

    @Test("PRO data: shared or per-response prefixes, --ranking-len takes the first responses, sft_index checked")
    func proReading() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("pro.jsonl").path
        try Data("""
        {"prefix": [["<|prompter|>a", "<|assistant|>"], ["<|prompter|>a", "<|assistant|>"], ["<|prompter|>a", "<|assistant|>"]], "suffix": ["x", "y", "z"], "reward": [3, 2, 1], "sft_index": 1}
        {"prefix": ["<|prompter|>b", "<|assistant|>"], "suffix": ["u", "v", "w"], "reward": [1.5, 1.5, -1]}
        """.utf8).write(to: URL(fileURLWithPath: path))
        let all = try RankingData.read(path: path, rankingLength: nil)
        #expect(all.map(\.suffixes.count) == [3, 3] && all[0].sftIndex == 1 && all[1].sftIndex == 0)
        #expect(all[1].prefixes.count == 3)
        let two = try RankingData.read(path: path, rankingLength: 2)
        #expect(two[0].suffixes == ["x", "y"] && two[0].rewards == [3, 2])
        // sft_index 1 is outside a ranking of 1.
        #expect(throws: HoneError.self) { try RankingData.read(path: path, rankingLength: 1) }
    }
}
