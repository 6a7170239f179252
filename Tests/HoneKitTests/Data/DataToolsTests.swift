import Foundation
import Testing
@testable import HoneKit

// MARK: - Helpers

/// Writes `text` to a fresh temporary file and returns its path.
func temporaryFile(_ name: String, _ text: String) throws -> String {
    try temporaryFile(name, Data(text.utf8))
}

func temporaryFile(_ name: String, _ data: Data) throws -> String {
    let path = try makeTemporaryDirectory().appendingPathComponent(name).path
    try data.write(to: URL(fileURLWithPath: path))
    return path
}

/// A file of ../shared/data, or nil (with a note) when the shared data is not there.
func sharedData(_ relative: String) -> String? {
    let path = Repository.shared.appendingPathComponent("data").appendingPathComponent(relative).path
    if FileManager.default.fileExists(atPath: path) { return path }
    print("skipping the part that needs \(path): shared data absent")
    return nil
}

/// A gzip member holding `payload` in one stored (uncompressed) deflate block, built by hand from RFC 1951/1952 so
/// the reader is tested against the format, not against zlib's own writer.
func storedGzipMember(_ payload: [UInt8]) -> [UInt8] {
    precondition(payload.count < 65536)
    var crc: UInt32 = 0xFFFF_FFFF
    for byte in payload {
        crc ^= UInt32(byte)
        for _ in 0..<8 { crc = (crc >> 1) ^ (crc & 1 == 1 ? 0xEDB8_8320 : 0) }
    }
    crc ^= 0xFFFF_FFFF
    func le32(_ value: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: value >> (8 * $0)) } }
    let length = UInt16(payload.count)
    return [0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 0xFF]            // magic, deflate, no flags, mtime 0, xfl 0, OS unknown
        + [1, UInt8(length & 0xFF), UInt8(length >> 8), UInt8(~length & 0xFF), UInt8(~length >> 8)]  // final stored block
        + payload + le32(crc) + le32(UInt32(payload.count))
}

// MARK: - HH-RLHF prompt extraction

@Suite struct HHRLHFPromptTests {
    @Test func promptIsTheCommonPrefixBackedOffToTheAssistantMarker() throws {
        // Character-level common prefix: "\n\nHuman: Hi\n\nAssistant: It is " (TRL would then give the prompt
        // "...Assistant: It is" and completions " blue." / " green."). Backed off to the end of the last whole
        // "\n\nAssistant:" inside it: "\n\nHuman: Hi\n\nAssistant:"; the completions keep their leading space.
        let chosen = "\n\nHuman: Hi\n\nAssistant: It is blue.", rejected = "\n\nHuman: Hi\n\nAssistant: It is green."
        #expect(HHRLHF.sharedPrompt(chosen: chosen, rejected: rejected) == "\n\nHuman: Hi\n\nAssistant:")
        let conversion = try HHRLHFConversion.convert(try readDataRecords(path: try temporaryFile("a.jsonl",
            "{\"chosen\": \(jsonString(chosen)), \"rejected\": \(jsonString(rejected))}\n")))
        #expect(conversion.pairs.map(\.chosen) == [" It is blue."])
        #expect(conversion.pairs.map(\.rejected) == [" It is green."])
        #expect(conversion.pairs.map(\.proPrefix) == [["<|prompter|>Hi", "<|assistant|>"]])
    }

    @Test func replyWithInventedTurnsDoesNotMoveThePrompt() {
        // chosen's reply "D" goes on with an invented "Human: X / Assistant: Y" exchange. The last "\n\nAssistant:"
        // of chosen is the third one, but the common prefix ("...Human: C\n\nAssistant: ") holds only two, so
        // the prompt ends after the second and chosen's completion carries the invented turns.
        let prompt = "\n\nHuman: A\n\nAssistant: B\n\nHuman: C\n\nAssistant:"
        let chosen = prompt + " D\n\nHuman: X\n\nAssistant: Y", rejected = prompt + " E"
        #expect(HHRLHF.sharedPrompt(chosen: chosen, rejected: rejected) == prompt)
        #expect(HHRLHF.sharedPrompt(chosen: rejected, rejected: chosen) == prompt)
        // A reply that is a prefix of the other ("D" vs "D and more"): the common prefix is all of the shorter one.
        #expect(HHRLHF.sharedPrompt(chosen: prompt + " D", rejected: prompt + " D and more") == prompt)
    }

    @Test func identicalDialoguesAndNoSharedPrompt() {
        // chosen == rejected: the common prefix is everything; the prompt ends at the last marker.
        let dialogue = "\n\nHuman: q\n\nAssistant: a\n\nHuman: r\n\nAssistant: b"
        #expect(HHRLHF.sharedPrompt(chosen: dialogue, rejected: dialogue) == "\n\nHuman: q\n\nAssistant: a\n\nHuman: r\n\nAssistant:")
        // First turns differ: the common prefix "\n\nHuman: " has no Assistant marker.
        #expect(HHRLHF.sharedPrompt(chosen: "\n\nHuman: a\n\nAssistant: x", rejected: "\n\nHuman: b\n\nAssistant: x") == nil)
        // The common prefix stops inside the marker ("\n\nAssist"): not a whole marker, no prompt.
        #expect(HHRLHF.sharedPrompt(chosen: "\n\nHuman: x\n\nAssistant: y", rejected: "\n\nHuman: x\n\nAssist") == nil)
    }

    @Test func multiByteRepliesCutAtTheMarker() {
        // "ü" = C3 BC and "ö" = C3 B6 share the byte C3: the byte-level common prefix ends inside a character,
        // and the back-off to the ASCII marker makes that harmless.
        let conversion = HHRLHF.sharedPrompt(chosen: "\n\nHuman: é\n\nAssistant: ü", rejected: "\n\nHuman: é\n\nAssistant: ö")
        #expect(conversion == "\n\nHuman: é\n\nAssistant:")
    }

    @Test func turnsKeepParagraphsAndStripLikePython() {
        // PRO's splitter would drop the paragraph "More a1" (it does not start with a role); here it stays in its
        // turn. "  q2 " is stripped to "q2" as PRO's message.strip() does.
        let prompt = "\n\nHuman: q1\n\nAssistant: a1\n\nMore a1\n\nHuman:  q2 \n\nAssistant:"
        #expect(HHRLHF.proPrefix(prompt: prompt) == ["<|prompter|>q1", "<|assistant|>a1\n\nMore a1", "<|prompter|>q2", "<|assistant|>"])
        // A dialogue that starts with the bare "Human:" (no blank line before it) is accepted.
        #expect(HHRLHF.proPrefix(prompt: "Human: hi\n\nAssistant:") == ["<|prompter|>hi", "<|assistant|>"])
        // Assistant first, or text before the first turn: not a dialogue PRO can use.
        #expect(HHRLHF.proPrefix(prompt: "\n\nAssistant: hi\n\nHuman: x\n\nAssistant:") == nil)
        #expect(HHRLHF.proPrefix(prompt: "intro\n\nHuman: x\n\nAssistant:") == nil)
        // Python's str.strip() also strips U+001C..U+001F and U+00A0 / U+3000, not other characters.
        #expect(strippedPythonWhitespace("\u{1C}\u{A0} x y\u{3000}\n") == "x y")
        #expect(rightStrippedPythonWhitespace(" x \u{1F}") == " x")
    }

    @Test func proAndDPOLinesHaveTheDocumentedShape() throws {
        let prompt = "\n\nHuman: q1\n\nAssistant: a1\n\nHuman: q2\n\nAssistant:"
        let path = try temporaryFile("hh.jsonl", "{\"chosen\": \(jsonString(prompt + " good ")), \"rejected\": \(jsonString(prompt + " bad"))}\n")
        let conversion = try HHRLHFConversion.convert(try readDataRecords(path: path))
        let dpo = try JSONSerialization.jsonObject(with: Data(conversion.dpoJSONL().utf8)) as! [String: String]
        #expect(dpo == ["prompt": prompt, "chosen": " good ", "rejected": " bad"])
        let pro = try JSONSerialization.jsonObject(with: Data(conversion.proJSONL(sourcePath: "src.jsonl").utf8)) as! [String: Any]
        let turns = ["<|prompter|>q1", "<|assistant|>a1", "<|prompter|>q2", "<|assistant|>"]
        #expect(pro["prefix"] as? [[String]] == [turns, turns])
        #expect(pro["suffix"] as? [String] == ["good", "bad"])          // stripped, as PRO's preprocessing does
        #expect(pro["reward"] as? [Double] == [1.0, 0.0])
        #expect(pro["sft_index"] as? Int == 0)
        let meta = pro["meta"] as? [String: Any]
        #expect(meta?["path"] as? String == "src.jsonl" && meta?["line_num"] as? Int == 1 && meta?["task"] as? String == "dialogue")
        #expect(meta?.count == 3)
        // ScalingAlignment's prompt text rebuilt from the prefix is the DPO prompt (the turns had no extra spaces).
        let record = DataRecord(path: "x", location: .line(1), object: pro)
        #expect(try PromptDiversity.promptText(of: record) == prompt)
    }

    @Test func droppedRecordsAreCountedWithTheirLines() throws {
        let good = "{\"chosen\": \"\\n\\nHuman: a\\n\\nAssistant: x\", \"rejected\": \"\\n\\nHuman: a\\n\\nAssistant: y\"}"
        let differentFirstTurn = "{\"chosen\": \"\\n\\nHuman: a\\n\\nAssistant: x\", \"rejected\": \"\\n\\nHuman: b\\n\\nAssistant: x\"}"
        let assistantFirst = "{\"chosen\": \"\\n\\nAssistant: a\\n\\nAssistant: x\", \"rejected\": \"\\n\\nAssistant: a\\n\\nAssistant: y\"}"
        let path = try temporaryFile("d.jsonl", [good, differentFirstTurn, "", assistantFirst, good].joined(separator: "\n"))
        let conversion = try HHRLHFConversion.convert(try readDataRecords(path: path))
        #expect(conversion.recordsIn == 4)
        #expect(conversion.pairs.map(\.line) == [1, 5])
        #expect(conversion.dropped[.noSharedPrompt] == [2])
        #expect(conversion.dropped[.notHumanFirst] == [4])
        #expect(conversion.pairs.count + conversion.droppedCount == conversion.recordsIn)
    }
}

// MARK: - Bad input

@Suite struct DataToolsBadInputTests {
    @Test func malformedLineIsNamed() throws {
        let path = try temporaryFile("bad.jsonl", "{\"chosen\": \"a\", \"rejected\": \"b\"}\n{\"chosen\": \"a\", \n")
        #expect(throws: HoneError.malformedRecord(path: path, line: 2, message: "not valid JSON")) { try readDataRecords(path: path) }
    }

    @Test func missingFieldIsNamed() throws {
        let path = try temporaryFile("missing.jsonl", "\n{\"chosen\": \"\\n\\nHuman: a\\n\\nAssistant: b\"}\n")
        #expect(throws: HoneError.malformedRecord(path: path, line: 2, message: "missing \"rejected\"")) {
            try HHRLHFConversion.convert(try readDataRecords(path: path))
        }
        let array = try temporaryFile("missing.json", "[{\"instruction\": \"i\", \"output\": \"o\", \"judgment\": null}, {\"instruction\": \"i\", \"judgment\": null}]")
        #expect(throws: HoneError.malformedFile(path: array, message: "record 2: missing \"output\"")) {
            try JudgmentConversion.convert(try readDataRecords(path: array), schema: .cut)
        }
        let wrongType = try temporaryFile("type.jsonl", "{\"question\": \"q\", \"answer\": 3, \"feedback\": \"f\"}\n")
        #expect(throws: HoneError.malformedRecord(path: wrongType, line: 1, message: "\"answer\" is not a string")) {
            try JudgmentConversion.convert(try readDataRecords(path: wrongType), schema: .shepherd)
        }
    }

    @Test func emptyInput() throws {
        let empty = try temporaryFile("empty.jsonl", " \n\n")
        #expect(throws: HoneError.malformedFile(path: empty, message: "no records (the file is empty)")) { try readDataRecords(path: empty) }
        let emptyArray = try temporaryFile("empty.json", "[]")
        #expect(throws: HoneError.malformedFile(path: emptyArray, message: "no records")) { try readDataRecords(path: emptyArray) }
        #expect(throws: HoneError.fileNotFound(path: "/nonexistent/x.jsonl")) { try readDataRecords(path: "/nonexistent/x.jsonl") }
    }

    @Test func gzipIsReadAndCorruptionIsAnError() throws {
        let first = Array("{\"chosen\": \"\\n\\nHuman: a\\n\\nAssistant: x\", ".utf8)
        let second = Array("\"rejected\": \"\\n\\nHuman: a\\n\\nAssistant: y\"}\n".utf8)
        // Two members back to back (as `cat a.gz b.gz` makes) decompress to the concatenation.
        let path = try temporaryFile("two.jsonl.gz", Data(storedGzipMember(first) + storedGzipMember(second)))
        #expect(try readInputFile(path: path) == Data(first + second))
        #expect(try HHRLHFConversion.convert(try readDataRecords(path: path)).pairs.count == 1)
        let member = storedGzipMember(first)
        let truncated = try temporaryFile("cut.gz", Data(member.prefix(member.count - 6)))
        #expect(throws: HoneError.malformedFile(path: truncated, message: "gzip data is truncated")) { try readInputFile(path: truncated) }
        var corrupt = member
        corrupt[corrupt.count - 8] ^= 0xFF                     // the CRC-32
        let corruptPath = try temporaryFile("crc.gz", Data(corrupt))
        #expect(throws: HoneError.malformedFile(path: corruptPath, message: "corrupt gzip data (incorrect data check)")) {
            try readInputFile(path: corruptPath)
        }
    }
}

// MARK: - Judgments

@Suite struct JudgmentToolTests {
    @Test func labelsAsCUTWould() throws {
        // Five records: (1) null judgment → Align-P; (2) a judgment → Align-N + Misalign; (3) a judgment with
        // score 8 → the score rule discards it → Align-P; (4) a judgment with score 6.5 → negative; (5) an empty
        // output → dropped. So Align-P 2, Align-N 2, Misalign 2, 1 discarded by score, 1 dropped.
        let text = """
        [{"id": 1, "instruction": "a", "input": "", "output": "x", "judgment": null},
         {"id": 2, "instruction": "b", "input": "ctx", "output": "y", "judgment": "wrong"},
         {"id": 3, "instruction": "c", "output": "z", "judgment": "fine really", "score": 8},
         {"id": "s4", "instruction": "d", "input": null, "output": "w", "judgment": "meh", "score": 6.5},
         {"id": 5, "instruction": "e", "input": "", "output": "  ", "judgment": null}]
        """
        let path = try temporaryFile("cut.json", text)
        let conversion = try JudgmentConversion.convert(try readDataRecords(path: path), schema: .cut)
        #expect(conversion.recordsIn == 5)
        #expect(conversion.records.count == 4)
        #expect(conversion.dropped[.emptyOutput] == ["record 5"])
        #expect(conversion.alignPositive == 2)
        #expect(conversion.alignNegative == 2)
        #expect(conversion.misalign == 2)
        #expect(conversion.judgmentsDiscardedByScore == 1)
        let written = try JSONSerialization.jsonObject(with: Data(conversion.trainingJSON().utf8)) as! [[String: Any]]
        #expect(written.count == 4)
        #expect(written[1]["input"] as? String == "ctx")
        #expect(written[2]["input"] as? String == "")               // absent input becomes ""
        #expect(written[2]["score"] as? Int == 8)
        #expect(written[3]["id"] as? String == "s4")
        #expect(written[3]["score"] as? Double == 6.5)
        #expect(written[0]["judgment"] is NSNull)
        #expect(written[0]["score"] == nil)
    }

    @Test func shepherdMapsLikeConvert2alpaca() throws {
        let path = try temporaryFile("s.jsonl", "{\"id\": 7, \"dataset\": \"gsm8k\", \"question\": \"Q?\", \"answer\": \"A.\", \"feedback\": \"F.\"}\n")
        let conversion = try JudgmentConversion.convert(try readDataRecords(path: path), schema: .shepherd)
        #expect(conversion.records == [JudgmentRecord(idJSON: "7", instruction: "Q?", input: "", output: "A.", judgment: "F.", score: 1)])
        #expect(conversion.alignNegative == 1 && conversion.alignPositive == 0)
    }

    @Test func sharedJudgmentFiles() throws {
        // Counts from shared/data/README.md: Shepherd 1,317 records, all negative; CUT iterations 1–5 have
        // 287, 231, 242, 245, 246 non-null judgments among 1,000 records.
        if let shepherd = sharedData("cut/shepherd/human_data_for_model.jsonl.gz") {
            let conversion = try JudgmentConversion.convert(try readDataRecords(path: shepherd), schema: .shepherd)
            #expect(conversion.recordsIn == 1317 && conversion.records.count == 1317)
            #expect(conversion.alignNegative == 1317 && conversion.alignPositive == 0)
        }
        for (iteration, negatives) in zip(1...5, [287, 231, 242, 245, 246]) {
            guard let path = sharedData("cut/iter/train-alpaca-sample-iter\(iteration).json.gz") else { continue }
            let conversion = try JudgmentConversion.convert(try readDataRecords(path: path), schema: .cut)
            #expect(conversion.records.count == 1000)
            #expect(conversion.alignNegative == negatives)
            #expect(conversion.alignPositive == 1000 - negatives)
        }
    }
}

// MARK: - HH-RLHF files

@Suite struct HHRLHFFileTests {
    @Test(arguments: [("hh_rlhf/harmless-base/test.jsonl.gz", 2312, 0, 5), ("hh_rlhf/helpful-base/test.jsonl.gz", 2354, 2, 9)])
    func everyRecordBecomesAPair(file: String, records: Int, identical: Int, inventedTurns: Int) throws {
        guard let path = sharedData(file) else { return }
        let source = try readDataRecords(path: path)
        let conversion = try HHRLHFConversion.convert(source)
        #expect(conversion.recordsIn == records)
        #expect(conversion.pairs.count == records)                  // nothing dropped
        #expect(conversion.identicalPairs == identical)              // README: helpful-base lines 721 and 2168 (0-based)
        // README: "in a few records (5 harmless, 9 helpful) the final reply itself has" invented turns, in chosen
        // or in rejected (counting chosen's alone gave 4 and 2).
        #expect(conversion.repliesWithExtraTurns == inventedTurns)
        var checkedAgainstLastMarker = 0
        for (pair, record) in zip(conversion.pairs, source) {
            let chosen = record.object["chosen"] as! String, rejected = record.object["rejected"] as! String
            #expect(pair.prompt.hasSuffix("\n\nAssistant:"), "line \(pair.line)")
            #expect(chosen == pair.prompt + pair.chosen, "line \(pair.line)")
            #expect(rejected == pair.prompt + pair.rejected, "line \(pair.line)")
            // Where neither reply goes on with another Assistant turn, the prompt is simply the text up to chosen's
            // last marker (the record's line only in a failure: the texts are not for printing).
            if !pair.chosen.contains("\n\nAssistant:"), !pair.rejected.contains("\n\nAssistant:") {
                let cut = chosen.range(of: "\n\nAssistant:", options: .backwards)!
                #expect(pair.prompt == String(chosen[..<cut.upperBound]), "line \(pair.line)")
                checkedAgainstLastMarker += 1
            }
        }
        #expect(checkedAgainstLastMarker > records - 20)
    }

}

// MARK: - Subsets

@Suite struct SubsetSampleTests {
    @Test func mersenneTwisterMatchesCPython() {
        // random.Random(42).random() == 0.6394267984578837 (the value every Python user has seen); random() is
        // (a * 2^26 + b) / 2^53 with a = first output >> 5, b = second output >> 6.
        var generator = PythonRandom(seed: 42)
        let a = Double(generator.nextUInt32() >> 5), b = Double(generator.nextUInt32() >> 6)
        #expect((a * 67_108_864 + b) / 9_007_199_254_740_992 == 0.6394267984578837)
    }

    @Test func subsetsEqualScalingAlignmentsScripts() throws {
        // Expected subsets from tools/oracle/make_data_fixtures.py: CPython's random and numpy's argsort running
        // split.py's and sample.py's steps on the same file.
        let expected = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Repository.fixture("data/sample_expected.json")))) as! [String: Any]
        let source = try readDataRecords(path: Repository.fixture("data/ranking4.jsonl"))
        let cases = expected["cases"] as! [[String: Any]]
        #expect(cases.count == 15)
        for item in cases {
            let seed = (item["seed"] as! NSNumber).uint64Value
            let prompts = item["prompts"] as! Int, responses = item["responses"] as! Int
            let subset = try SubsetSample.make(source, prompts: prompts, responses: responses, seed: seed)
            #expect(subset.records.map { ($0.object["meta"] as! [String: Any])["id"] as! Int } == item["ids"] as! [Int],
                    "seed \(seed) N \(prompts) K \(responses)")
            #expect(subset.records.map { $0.object["suffix"] as! [String] } == item["suffix"] as! [[String]])
            #expect(subset.records.map { ($0.object["reward"] as! [Any]).map { jsonDouble($0)! } } == item["reward"] as! [[Double]])
            #expect(subset.records.allSatisfy { ($0.object["prefix"] as! [Any]).count == responses })
            #expect(subset.lines.count == prompts)
        }
    }

    @Test func samePromptsForEveryK() throws {
        let source = try readDataRecords(path: Repository.fixture("data/ranking4.jsonl"))
        let ids = try (2...4).map { k in try SubsetSample.make(source, prompts: 12, responses: k, seed: 5).sourceIndices }
        #expect(ids[0] == ids[1] && ids[1] == ids[2])
        #expect(Set(ids[0]).count == 12)
    }

    @Test func rewardsStayFloats() throws {
        // PRO files hold float rewards; a whole-number reward must not come out as an integer.
        #expect(try rankingLine(["suffix": ["a", "b"], "reward": [1, 0] as [Any]]) == "{\"reward\":[1.0,0.0],\"suffix\":[\"a\",\"b\"]}")
        #expect(try rankingLine(["reward": [-0.114, 2.5e-7]]) == "{\"reward\":[-0.114,2.5e-07]}")
    }

    @Test func tooManyPromptsOrResponses() throws {
        let source = try readDataRecords(path: Repository.fixture("data/ranking4.jsonl"))
        #expect(throws: HoneError.self) { try SubsetSample.make(source, prompts: 31, responses: 2, seed: 42) }
        #expect(throws: HoneError.malformedRecord(path: Repository.fixture("data/ranking4.jsonl"), line: 1,
                                                  message: "has 4 responses, fewer than \(OptionName("responses")) 5")) {
            try SubsetSample.make(source, prompts: 3, responses: 5, seed: 42)
        }
    }

}

// MARK: - Diversity

@Suite struct PromptDiversityTests {
    @Test func bigramCountsByHand() {
        // Prompt 1 [1, 5, 6, 5, 6]: bigrams (1,5) (5,6) (6,5) (5,6) → 4 in all, 3 distinct.
        // Prompt 2 [1, 5]: (1,5), already seen → T = 5, U = 3.
        // Prompt 3 [7]: no bigram, but it is a prompt → N = 3.
        // D = √3 · 3 / 5 = 1.0392304845413265.
        var counter = BigramCounter()
        counter.add([1, 5, 6, 5, 6])
        counter.add([1, 5])
        counter.add([7])
        #expect(counter.statistics == BigramStatistics(prompts: 3, uniqueBigrams: 3, totalBigrams: 5, tokens: 8))
        #expect(abs(counter.statistics.diversity - 3.0.squareRoot() * 3 / 5) < 1e-15)
        #expect(BigramCounter().statistics.diversity.isNaN)
    }

    @Test func promptTextFollowsScalingAlignment() throws {
        // "".join(prefix[0]) = "<|prompter|>Hi <|assistant|>ok<|prompter|> more\n<|assistant|>"; the replacements give
        // "\n\nHuman: Hi \n\nAssistant: ok\n\nHuman:  more\n\n\nAssistant: "; rstrip() drops the final space only.
        let record = DataRecord(path: "x", location: .line(1), object: ["prefix": [["<|prompter|>Hi ", "<|assistant|>ok", "<|prompter|> more\n", "<|assistant|>"]]])
        #expect(try PromptDiversity.promptText(of: record) == "\n\nHuman: Hi \n\nAssistant: ok\n\nHuman:  more\n\n\nAssistant:")
        let dpo = DataRecord(path: "x", location: .line(1), object: ["prompt": "\n\nHuman: q\n\nAssistant: \n"])
        #expect(try PromptDiversity.promptText(of: dpo) == "\n\nHuman: q\n\nAssistant:")
        let other = DataRecord(path: "x", location: .line(3), object: ["instruction": "q"])
        #expect(throws: HoneError.self) { try PromptDiversity.promptText(of: other) }
    }

    @Test func diversityEqualsThePythonComputation() throws {
        // tools/oracle/make_data_fixtures.py: sentencepiece (+BOS) on hone-tiny's tokenizer.model, ids cut to 512,
        // nltk-style bigrams, D = sqrt(N) * U / T, per file and pooled.
        let expected = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Repository.fixture("data/diversity_expected.json")))) as! [String: Any]
        let files = expected["files"] as! [String: [String: Any]]
        let tokenizer = try TokenizerLoader.load(tokenizerPath: Repository.root.appendingPathComponent("models/hone-tiny").path)
        func check(_ statistics: BigramStatistics, _ reference: [String: Any], _ name: String) {
            #expect(statistics.prompts == reference["prompts"] as! Int, "\(name)")
            #expect(statistics.tokens == reference["tokens"] as! Int, "\(name)")
            #expect(statistics.totalBigrams == reference["total_bigrams"] as! Int, "\(name)")
            #expect(statistics.uniqueBigrams == reference["unique_bigrams"] as! Int, "\(name)")
            #expect(abs(statistics.diversity - (reference["diversity"] as! Double)) < 1e-12, "\(name)")
        }
        var paths = [Repository.fixture("data/ranking4.jsonl")]
        var names = ["ranking4.jsonl"]
        for name in (expected["global_files"] as! [String]).dropFirst() {
            guard let path = sharedData(name) else { continue }
            paths.append(path)
            names.append(name)
        }
        let result = try PromptDiversity.measure(paths: paths, tokenizer: tokenizer, maxLength: 512)
        for (name, file) in zip(names, result.files) { check(file.statistics, files[name]!, name) }
        if names == expected["global_files"] as! [String] {
            check(result.global, expected["global"] as! [String: Any], "Global")
        }
    }

}
