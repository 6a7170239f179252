import Foundation
import Testing
@testable import HoneKit

/// Rewards of tiny random sequence-classification models (written by tools/oracle/make_reward_fixtures.py) against
/// transformers' `…ForSequenceClassification`, including its "last token that is not pad_token_id" rule.
@Suite("Sequence-classification models against transformers")
struct SequenceClassificationTests {
    static let directory = Repository.fixture("reward")

    static func expected() throws -> [String: [String: Any]] {
        let root = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: directory + "/rewards.json"))) as! [String: Any]
        return root["models"] as! [String: [String: Any]]
    }

    @Test("Rewards equal transformers' within 1e-4 (f32), batched and one by one",
          arguments: ["llama-seqcls", "qwen2-seqcls", "opt-seqcls"])
    func rewards(name: String) throws {
        let item = try #require(try Self.expected()[name])
        let loaded = try LoadedModel.open(Self.directory + "/models/" + name)
        let head = try #require(loaded.scoreHead)
        #expect(head.labels == 1)
        #expect(head.padTokenID == Int32((item["pad_token_id"] as! NSNumber).intValue))
        let rows = (item["rows"] as! [[NSNumber]]).map { $0.map { Int32($0.intValue) } }
        let expected = (item["rewards"] as! [NSNumber]).map(\.doubleValue)
        let scorer = try RewardScorer(loaded: loaded)
        let batched = try scorer.rewards(rows).map(Double.init)
        #expect(maxAbsDifference(batched, expected) <= 1e-4, "\(name): \(batched) vs \(expected)")
        scorer.tokenBudget = 1
        let single = try scorer.rewards(rows).map(Double.init)
        #expect(maxAbsDifference(single, batched) <= 1e-5)
    }

    @Test("The read position: last token that is not the pad id, 0 when all are padding, last without a pad id")
    func readPosition() {
        let head = ScoreHead(weight: FloatBuffer([1]), labels: 1, width: 1, padTokenID: 0)
        #expect(head.readPosition([5, 6, 0, 7]) == 3)
        #expect(head.readPosition([5, 6, 0, 0]) == 1)
        #expect(head.readPosition([0, 0]) == 0)
        #expect(head.with(padTokenID: nil).readPosition([5, 0, 0]) == 2)
    }

    @Test("hone info's summary names the head; a causal LM is a causal LM")
    func summary() throws {
        let loaded = try LoadedModel.open(Self.directory + "/models/llama-seqcls")
        #expect(ModelSummary(loaded).lines.contains { $0.contains("sequence classification") && $0.contains("score [1, 64]") })
        let causal = try LoadedModel.open(Repository.fixture("models/llama-gqa"))
        #expect(causal.scoreHead == nil)
        #expect(ModelSummary(causal).lines.contains { $0.contains("head:") && $0.contains("causal LM") })
        #expect(throws: HoneError.self) { try RewardScorer(loaded: causal) }
    }
}
