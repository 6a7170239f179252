import Foundation
import Testing
@testable import HoneKit

/// `hone data mix` (seeded mixtures with shares) and `hone data rerank` (responses ordered by a reward model).
@Suite("Data mixtures and re-ranking")
struct MixtureTests {
    static func write(_ count: Int, _ name: String, in directory: URL) throws -> String {
        let path = directory.appendingPathComponent(name).path
        try (0..<count).map { "{\"name\": \"\(name)\", \"i\": \($0)}\n" }.joined().write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test("Counts follow the shares (all, N, P%, xF over pooled files); the same seed gives the same mixture")
    func counts() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let helpful = try Self.write(40, "helpful", in: directory)
        let safety = try Self.write(25, "safety", in: directory)
        let other = try Self.write(30, "other", in: directory)
        // Llama 2: all helpfulness + an equal part drawn uniformly from the others.
        let sources = [MixtureSource(paths: [helpful], share: .all), try MixtureSource(parsing: "\(safety),\(other):x1")]
        let mix = try Mixture.make(sources, seed: 7)
        #expect(mix.rows.map(\.taken) == [40, 40] && mix.rows.map(\.available) == [40, 55])
        #expect(mix.lines.count == 80 && Set(mix.lines).count == 80)
        let names = mix.lines.map { (try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any])["name"] as! String }
        #expect(names.filter { $0 == "helpful" }.count == 40)
        #expect(names.filter { $0 != "helpful" }.count == 40 && names.contains("safety") && names.contains("other"))
        #expect(try Mixture.make(sources, seed: 7).lines == mix.lines)
        #expect(try Mixture.make(sources, seed: 8).lines != mix.lines)
        // Safety + 10 % of helpfulness; counts; errors.
        let second = try Mixture.make([MixtureSource(paths: [safety], share: .all), try MixtureSource(parsing: "\(helpful):10%")], seed: 1)
        #expect(second.rows.map(\.taken) == [25, 4])
        #expect(try Mixture.make([try MixtureSource(parsing: "\(other):12")], seed: 1).lines.count == 12)
        #expect(throws: HoneError.self) { try Mixture.make([try MixtureSource(parsing: "\(other):31")], seed: 1) }
        #expect(throws: HoneError.self) { try MixtureShare(parsing: "half") }
        // A share that does not parse is named as one (it was taken for part of the file name: "no such file").
        #expect(throws: HoneError.invalidArgument("a mixture share must be all, a count (500), a percentage (10%) or a multiple of the first source (x1), not '-5'")) {
            try MixtureSource(parsing: "\(other):-5")
        }
        #expect(try MixtureShare(parsing: "×0.5") == .multipleOfFirst(0.5))
        let tagged = try Mixture.make([try MixtureSource(parsing: "\(other):3")], seed: 1, tagSource: true)
        #expect(tagged.lines.allSatisfy { $0.contains("\"source\":\"other\"") })
    }

    @Test("A mixture of nothing, a file drawn twice, tags that collide or overwrite a field are refused")
    func degenerateMixtures() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let first = try Self.write(5, "a", in: directory)
        // Every share 0: it wrote an empty file and exited 0.
        #expect(throws: HoneError.invalidArgument("the mixture is empty: every share takes 0 records")) {
            try Mixture.make([try MixtureSource(parsing: "\(first):0")], seed: 1)
        }
        // One file twice (in two sources, or pooled with itself): each record came out twice.
        for sources in [[try MixtureSource(parsing: "\(first):all"), try MixtureSource(parsing: "\(first):all")],
                        [try MixtureSource(parsing: "\(first),\(directory.path)/./a:all")]] {
            #expect(throws: HoneError.self) { try Mixture.make(sources, seed: 1) }
        }
        // Tags are file names: d1/x and d2/x would both be "x".
        let one = directory.appendingPathComponent("d1"), two = directory.appendingPathComponent("d2")
        try FileManager.default.createDirectory(at: one, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: two, withIntermediateDirectories: true)
        let same = [MixtureSource(paths: [try Self.write(2, "x", in: one)], share: .all), MixtureSource(paths: [try Self.write(2, "x", in: two)], share: .all)]
        #expect(throws: HoneError.invalidArgument("two sources would both be tagged 'x'; rename one to use --tag-source")) {
            try Mixture.make(same, seed: 1, tagSource: true)
        }
        #expect(try Mixture.make(same, seed: 1).lines.count == 4)
        // A "source" field of the data was silently replaced by the tag.
        let tagged = directory.appendingPathComponent("tagged.jsonl").path
        try "{\"source\": \"orig\", \"i\": 1}\n".write(toFile: tagged, atomically: true, encoding: .utf8)
        #expect(throws: HoneError.malformedRecord(path: tagged, line: 1, message: "already has a \"source\" field, which --tag-source would replace")) {
            try Mixture.make([MixtureSource(paths: [tagged], share: .all)], seed: 1, tagSource: true)
        }
    }

    @Test("rerank orders responses by the reward model, rewards descending, as its scorer rates them")
    func rerank() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let model = Repository.root.appendingPathComponent("models/hone-tiny").path
        let loaded = try LoadedModel.open(model)
        let tokenizer = try loaded.tokenizer()
        // A score head over the tiny model: a seeded random one attached as a reward adapter's saved module.
        let head = ScoreHead(weight: FloatBuffer(RewardModelTrainingSetup.initialScore(width: 128, seed: 3, standardDeviation: 1)),
                             labels: 1, width: 128, padTokenID: 2)
        let scorer = RewardScorer(model: loaded.model, head: head)
        let input = directory.appendingPathComponent("rank.jsonl").path
        try """
        {"prefix": ["<|prompter|>Name a fruit.", "<|assistant|>"], "suffix": ["A carrot.", "An apple.", "A pear, surely."], "reward": [0, 0, 0]}
        {"chosen": "\\n\\nHuman: Hi\\n\\nAssistant: Hello there.", "rejected": "\\n\\nHuman: Hi\\n\\nAssistant: Go."}
        """.write(toFile: input, atomically: true, encoding: .utf8)
        // Mixed kinds are read by the first record's kind: the second line is then a PRO record without "suffix".
        #expect(throws: HoneError.self) { try Rerank.run(path: input, scorer: scorer, tokenizer: tokenizer) }
        try "{\"prefix\": [\"<|prompter|>Name a fruit.\", \"<|assistant|>\"], \"suffix\": [\"A carrot.\", \"An apple.\", \"A pear, surely.\"]}\n"
            .write(toFile: input, atomically: true, encoding: .utf8)
        let result = try Rerank.run(path: input, scorer: scorer, tokenizer: tokenizer)
        let record = try JSONSerialization.jsonObject(with: Data(result.lines[0].utf8)) as! [String: Any]
        let rewards = record["reward"] as! [Double]
        let suffixes = record["suffix"] as! [String]
        #expect(rewards == rewards.sorted(by: >))
        for (suffix, reward) in zip(suffixes, rewards) {
            let row = HHEvaluation.rewardTokens(["<|prompter|>Name a fruit.", "<|assistant|>"], answer: suffix, tokenizer: tokenizer, maxTokens: 1024)
            // Alone and in rerank's batch the rows go through kernels that sum in different orders (on AVX2
            // machines more than on AVX-512 ones): equal to f32 rounding, not to the bit.
            let alone = Double(try scorer.rewards([row])[0])
            #expect(abs(alone - reward) <= 1e-5 * max(1, abs(alone)), "scored alone \(alone), in rerank \(reward)")
        }
        #expect(Set(suffixes) == ["A carrot.", "An apple.", "A pear, surely."] && (record["prefix"] as! [[String]]).count == 3)
        // The output trains PRO: its reader accepts it.
        let output = directory.appendingPathComponent("out.jsonl").path
        try result.lines.map { $0 + "\n" }.joined().write(toFile: output, atomically: true, encoding: .utf8)
        #expect(try RankingData.read(path: output, rankingLength: nil).count == 1)
    }
}
