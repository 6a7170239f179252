import Foundation
import Testing
@testable import HoneKit

/// BLEU against NLTK's sentence_bleu (tools/oracle/make_bleu_fixtures.py): hand-made cases and real HH-RLHF replies,
/// compared exactly, zero counts included.
@Suite("BLEU as NLTK's sentence_bleu")
struct BLEUTests {
    static func fixture() throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: Repository.fixture("hh_eval/bleu.json")))) as! [String: Any]
    }

    @Test("Character BLEU (PRO's call on strings) equals NLTK's bit for bit, on hand-made and real HH pairs")
    func strings() throws {
        let cases = try Self.fixture()["strings"] as! [[String: Any]]
        #expect(cases.count > 100)
        var tiny = 0
        for item in cases {
            let expected = Double(item["bleu"] as! String)!
            let ours = BLEU.characterBLEU(hypothesis: item["hypothesis"] as! String, reference: item["reference"] as! String)
            #expect(ours == expected, "\(item["hypothesis"]!) vs \(item["reference"]!): \(ours) vs \(expected)")
            if expected > 0, expected < 1e-50 { tiny += 1 }
        }
        #expect(tiny > 0, "the zero-count case (NLTK's float_info.min) is exercised")
    }

    @Test("Word-list BLEU with several references equals NLTK's")
    func tokens() throws {
        for item in try Self.fixture()["tokens"] as! [[String: Any]] {
            let expected = Double(item["bleu"] as! String)!
            let ours = BLEU.sentence(references: item["references"] as! [[String]], hypothesis: item["hypothesis"] as! [String])
            #expect(ours == expected, "\(item["hypothesis"]!): \(ours) vs \(expected)")
        }
    }

    @Test("math.fsum: exact sums where naive addition rounds")
    func exactSum() {
        #expect(BLEU.exactSum([1e100, 1, -1e100]) == 1)
        #expect(BLEU.exactSum([0.1, 0.2, 0.3]) == 0.6)
        #expect(BLEU.exactSum([]) == 0)
    }
}
