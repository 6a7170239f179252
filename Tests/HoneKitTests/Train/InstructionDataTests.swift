import Foundation
import Testing
@testable import HoneKit

/// Alpaca data reading and Alpaca-LoRA's tokenization/masking against
/// Fixtures/sft/alpaca-tokenization.json (tools/oracle/make_sft_data_fixtures.py: finetune.py's
/// generate_and_tokenize_prompt re-run with the `tokenizers` and `sentencepiece` libraries).
@Suite struct InstructionDataTests {
    static let fixturePath = Repository.fixture("sft/alpaca-tokenization.json")
    static let sharedDataPath = Repository.shared.appendingPathComponent("data/alpaca/alpaca_data_first200.json").path
    static var sharedAvailable: Bool { FileManager.default.fileExists(atPath: sharedDataPath) }

    struct Expected {
        let inputIDs: [Int32]
        let masked: [String: Int]
    }

    struct FixtureRecord {
        let name: String
        let sharedIndex: Int?
        let record: [String: Any]?
        let tokenized: [Int: Expected]
    }

    static func loadFixture() throws -> (sharedSHA256: String, records: [FixtureRecord]) {
        let json = try #require(try parseJSON(Data(contentsOf: URL(fileURLWithPath: fixturePath))) as? [String: Any])
        let shared = try #require(json["shared_data"] as? [String: Any])
        let records = try (try #require(json["records"] as? [[String: Any]])).map { item -> FixtureRecord in
            let tokenized = try #require(item["tokenized"] as? [String: [String: Any]])
            var expected: [Int: Expected] = [:]
            for (cutoff, entry) in tokenized {
                let ids = try #require(entry["input_ids"] as? [Any]).map { Int32(jsonInteger($0)!) }
                let masked = try #require(entry["masked"] as? [String: Any]).mapValues { jsonInteger($0)! }
                expected[Int(cutoff)!] = Expected(inputIDs: ids, masked: masked)
            }
            let index = item["shared_index"].flatMap(jsonInteger)
            return FixtureRecord(name: index.map { "shared record \($0)" } ?? (item["id"] as? String ?? "?"),
                                 sharedIndex: index, record: item["record"] as? [String: Any], tokenized: expected)
        }
        return (try #require(shared["sha256"] as? String), records)
    }

    static func variant(_ trainOnInputs: Bool, _ addEOSToken: Bool) -> String {
        "train_on_inputs=\(trainOnInputs),add_eos_token=\(addEOSToken)"
    }

    /// Compares Hone's rows with the fixture's for every cutoff and flag combination; returns the number of
    /// comparisons made.
    static func check(_ record: AlpacaRecord, against expected: [Int: Expected], name: String, tokenizer: Tokenizer) throws -> Int {
        var compared = 0
        for (cutoff, want) in expected.sorted(by: { $0.key < $1.key }) {
            for trainOnInputs in [true, false] {
                for addEOSToken in [false, true] {
                    let example = try tokenizeForTraining(record, tokenizer: tokenizer, template: .alpaca, cutoffLength: cutoff,
                                                      trainOnInputs: trainOnInputs, addEOSToken: addEOSToken)
                    let masked = want.masked[variant(trainOnInputs, addEOSToken)]!
                    let labels = Array(repeating: TrainingExample.ignoredLabel, count: masked) + want.inputIDs[masked...]
                    #expect(example.inputIDs == want.inputIDs, "\(name), cutoff \(cutoff): input ids differ")
                    #expect(example.labels == labels,
                            "\(name), cutoff \(cutoff), \(variant(trainOnInputs, addEOSToken)): labels differ")
                    compared += 1
                }
            }
        }
        return compared
    }

    @Test func handWrittenRecordsMatchAlpacaLoRA() throws {
        let fixture = try Self.loadFixture()
        let tokenizer = try TokenizerLoader.load(directory: Repository.root.appendingPathComponent("models/hone-tiny").path)
        let hand = fixture.records.filter { $0.record != nil }
        #expect(hand.count >= 8)
        // Through the reader: the fixture's records include a null and an absent "input".
        let directory = try makeTemporaryDirectory().path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/hand.json"
        try JSONSerialization.data(withJSONObject: hand.map { $0.record! }).write(to: URL(fileURLWithPath: path))
        let records = try AlpacaData.read(path: path)
        #expect(records.count == hand.count)
        var compared = 0
        for (record, item) in zip(records, hand) {
            compared += try Self.check(record, against: item.tokenized, name: item.name, tokenizer: tokenizer)
        }
        #expect(compared == hand.count * 8)
    }

    @Test(.enabled(if: sharedAvailable, "../shared/data/alpaca/alpaca_data_first200.json is absent: shared Alpaca records not checked"))
    func sharedAlpacaRecordsMatchAlpacaLoRA() throws {
        let fixture = try Self.loadFixture()
        let bytes = try Data(contentsOf: URL(fileURLWithPath: Self.sharedDataPath))
        try #require(SHA256.hash(bytes).hexString == fixture.sharedSHA256,
                     "\(Self.sharedDataPath) is not the file the fixture was made from; rerun make_sft_data_fixtures.py")
        let records = try AlpacaData.read(path: Self.sharedDataPath)
        #expect(records.count == 200)
        let tokenizer = try TokenizerLoader.load(directory: Repository.root.appendingPathComponent("models/hone-tiny").path)
        let shared = fixture.records.filter { $0.sharedIndex != nil }
        #expect(shared.count >= 30)
        var compared = 0
        for item in shared {
            compared += try Self.check(records[item.sharedIndex!], against: item.tokenized, name: item.name, tokenizer: tokenizer)
        }
        #expect(compared == shared.count * 8)
    }

    // MARK: - Semantics spelt out (independent of the fixture)

    @Test func fullTextAlwaysGetsEOSAndPromptMaskFollowsTheFlags() throws {
        let tokenizer = try TokenizerLoader.load(directory: Repository.root.appendingPathComponent("models/hone-tiny").path)
        let record = AlpacaRecord(instruction: "Name a colour.", output: "Blue.")
        let prompt = try PromptTemplate.alpaca.prompt(instruction: record.instruction)
        let promptIDs = tokenizer.encode(prompt)
        let fullIDs = tokenizer.encode(prompt + record.output)
        for addEOS in [false, true] {
            let trained = try tokenizeForTraining(record, tokenizer: tokenizer, template: .alpaca, cutoffLength: 256,
                                              trainOnInputs: true, addEOSToken: addEOS)
            #expect(trained.inputIDs == fullIDs + [2])
            #expect(trained.labels == trained.inputIDs)
            let masked = try tokenizeForTraining(record, tokenizer: tokenizer, template: .alpaca, cutoffLength: 256,
                                             trainOnInputs: false, addEOSToken: addEOS)
            #expect(masked.labels == Array(repeating: -100, count: promptIDs.count) + fullIDs[promptIDs.count...] + [2])
            #expect(masked.trainedTokenCount == fullIDs.count - promptIDs.count + 1)
        }
        // Cut at the limit: no EOS; with the prompt alone at the limit, add_eos_token leaves the last id trained.
        let cut = promptIDs.count
        let atLimit = try tokenizeForTraining(record, tokenizer: tokenizer, template: .alpaca, cutoffLength: cut,
                                          trainOnInputs: false, addEOSToken: true)
        #expect(atLimit.inputIDs == Array(fullIDs.prefix(cut)))
        #expect(atLimit.labels == Array(repeating: -100, count: cut - 1) + [fullIDs[cut - 1]])
        let allMasked = try tokenizeForTraining(record, tokenizer: tokenizer, template: .alpaca, cutoffLength: cut,
                                            trainOnInputs: false, addEOSToken: false)
        #expect(allMasked.trainedTokenCount == 0)
    }

    // MARK: - Reading errors

    func readError(_ text: String, name: String = "data.json") throws -> String {
        let directory = try makeTemporaryDirectory().path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/" + name
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        do {
            let records = try AlpacaData.read(path: path)
            Issue.record("no error for \(text): \(records)")
            return ""
        } catch let error as HoneError {
            #expect(error.description.hasPrefix(path), "the message names the file: \(error)")
            return String(error.description.dropFirst(path.count))
        }
    }

    @Test func readsArraysAndJSONLines() throws {
        let directory = try makeTemporaryDirectory().path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let array = directory + "/a.json"
        try Data(#"[{"instruction": "i1", "input": "x", "output": "o1", "extra": 3}, {"instruction": "i2", "input": null, "output": ""}]"#.utf8)
            .write(to: URL(fileURLWithPath: array))
        #expect(try AlpacaData.read(path: array) == [AlpacaRecord(instruction: "i1", input: "x", output: "o1"),
                                                     AlpacaRecord(instruction: "i2", output: "")])
        let lines = directory + "/a.jsonl"
        try Data("{\"instruction\": \"i1\", \"output\": \"o1\"}\n\n{\"instruction\": \"i2\", \"input\": \"y\", \"output\": \"o2\"}\n".utf8)
            .write(to: URL(fileURLWithPath: lines))
        #expect(try AlpacaData.read(path: lines) == [AlpacaRecord(instruction: "i1", output: "o1"),
                                                     AlpacaRecord(instruction: "i2", input: "y", output: "o2")])
    }

    @Test func badRecordsAreNamed() throws {
        #expect(try readError(#"[{"instruction": "a", "output": "b"}, {"output": "b"}]"#) == ": record 2: missing \"instruction\"")
        #expect(try readError(#"[{"instruction": "a"}]"#) == ": record 1: missing \"output\"")
        #expect(try readError(#"[{"instruction": 5, "output": "b"}]"#) == ": record 1: \"instruction\" must be a string, found a number")
        #expect(try readError(#"[{"instruction": "a", "output": null}]"#) == ": record 1: \"output\" must be a string, found null")
        #expect(try readError(#"[{"instruction": "a", "input": true, "output": "b"}]"#)
            == ": record 1: \"input\" must be a string or null, found a boolean")
        #expect(try readError(#"[{"instruction": "a", "input": ["x"], "output": "b"}]"#)
            == ": record 1: \"input\" must be a string or null, found an array")
        #expect(try readError(#"[{"instruction": "a", "output": "b"}, "text"]"#) == ": record 2: expected a JSON object, found a string")
        #expect(try readError("{\"instruction\": \"a\", \"output\": \"b\"}\n{\"instruction\": \"a\"}\n", name: "d.jsonl")
            == ":2: missing \"output\"")
        #expect(try readError("{\"instruction\": \"a\", \"output\": \"b\"}\n{\"instruction\": \n", name: "d.jsonl") == ":2: not valid JSON")
        #expect(try readError(#"[{"instruction": "a", "output": "b"},"#) == ": not valid JSON (truncated or corrupt)")
        #expect(try readError("[]") == ": no records")
        #expect(try readError("  \n") == ": no records (the file is empty)")
        #expect(try readError("{\n  \"instruction\": \"a\",\n  \"output\": \"b\"\n}\n")
            == ": expected a JSON array of records or JSON Lines (one object per line), found a single JSON object")
        #expect(try readError("instruction,output\n") == ": expected a JSON array of records or JSON Lines (one object per line)")
    }

    @Test func missingFileIsReported() {
        #expect(throws: HoneError.fileNotFound(path: "/nonexistent/alpaca.json")) {
            try AlpacaData.read(path: "/nonexistent/alpaca.json")
        }
    }
}
