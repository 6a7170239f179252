import Foundation
import Testing
@testable import HoneKit

/// `samples_<task>.jsonl` against the files lm-eval's `--log_samples` writes for the same documents and model
/// (tools/oracle/make_eval_samples_fixture.py): the same fields with the same JSON types, and the same values
/// wherever Hone knows them (everything but `doc` and `doc_hash`, which describe each tool's own reading of the record).
@Suite struct EvalSamplesTests {
    /// A JSON value's shape: its type, and for arrays and objects the shapes inside (object keys included).
    static func shape(_ value: Any) -> String {
        if type(of: value) == Bool.self || (value as? NSNumber).map({ String(cString: $0.objCType) == "c" }) == true { return "bool" }
        if value is String { return "string" }
        if value is NSNull { return "null" }
        if let number = value as? NSNumber {
            let code = String(cString: number.objCType)
            return code == "d" || code == "f" ? "float" : "int"
        }
        if let array = value as? [Any] { return "[" + array.map(shape).joined(separator: ",") + "]" }
        if let object = value as? [String: Any] {
            return "{" + object.keys.sorted().map { "\($0):\(shape(object[$0]!))" }.joined(separator: ",") + "}"
        }
        return "?"
    }

    static func records(_ text: String) throws -> [[String: Any]] {
        try text.split(separator: "\n").map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
    }

    /// Top-level keys in file order (JSONSerialization forgets it): at depth 1, the string after "{" or ",".
    static func keyOrder(_ line: Substring) -> [String] {
        var keys: [String] = []
        var depth = 0
        var expectingKey = false
        var inString = false
        var escaped = false
        var text = ""
        for character in line {
            if inString {
                if escaped {
                    escaped = false
                } else if character == "\\" {
                    escaped = true
                } else if character == "\"" {
                    inString = false
                    if depth == 1, expectingKey { keys.append(text); expectingKey = false }
                    continue
                }
                text.append(character)
                continue
            }
            switch character {
            case "\"": inString = true; text = ""
            case "{", "[": depth += 1; expectingKey = depth == 1
            case "}", "]": depth -= 1
            case ",": expectingKey = depth == 1
            default: break
            }
        }
        return keys
    }

    @Test func samplesHaveLMEvalsFieldsTypesAndValues() throws {
        let loaded = try LoadedModel.open(Repository.fixture("eval/tiny-llama"))
        let scorer = MultipleChoiceScorer(model: loaded.model, tokenizer: try loaded.tokenizer())
        for name in ["arc_easy", "hellaswag", "truthfulqa_mc2", "mmlu_anatomy"] {
            let fixture = Repository.fixture("eval/lm-eval-samples/samples_\(name).jsonl")
            let theirsText = try String(contentsOfFile: fixture, encoding: .utf8)
            let theirs = try Self.records(theirsText)
            let task = try MultipleChoiceEvaluation.loadTask(name, directory: Repository.fixture("eval/data"))
            let result = try MultipleChoiceEvaluation.run(tasks: [task], fewShot: [:], limit: .first(theirs.count), scorer: scorer)[0]
            let mineText = MultipleChoiceEvaluation.samplesJSONL(result)
            let mine = try Self.records(mineText)
            #expect(mine.count == theirs.count, "\(name)")
            for (lineMine, lineTheirs) in zip(mineText.split(separator: "\n"), theirsText.split(separator: "\n")) {
                #expect(Self.keyOrder(lineMine) == Self.keyOrder(lineTheirs), "\(name): field order")
            }
            for (index, (a, b)) in zip(mine, theirs).enumerated() {
                #expect(Set(a.keys) == Set(b.keys), "\(name) doc \(index): fields \(a.keys.sorted()) vs \(b.keys.sorted())")
                for key in b.keys.sorted() where key != "doc" {
                    #expect(Self.shape(a[key] as Any) == Self.shape(b[key]!), "\(name) doc \(index) \(key): \(Self.shape(a[key] as Any)) vs \(Self.shape(b[key]!))")
                }
                #expect(Self.shape(a["doc"] as Any).hasPrefix("{"), "\(name) doc \(index): doc is an object")
                for key in ["doc_id", "target", "filter", "prompt_hash", "target_hash"] {
                    #expect("\(a[key]!)" == "\(b[key]!)", "\(name) doc \(index) \(key)")
                }
                #expect(a["arguments"] as? [String: [String: String]] == b["arguments"] as? [String: [String: String]], "\(name) doc \(index) arguments")
                #expect(a["metrics"] as? [String] == b["metrics"] as? [String], "\(name) doc \(index) metrics")
                for metric in b["metrics"] as! [String] {
                    #expect(abs((a[metric] as! NSNumber).doubleValue - (b[metric] as! NSNumber).doubleValue) <= 1e-6, "\(name) doc \(index) \(metric)")
                }
                let pairsMine = a["filtered_resps"] as! [[String]]
                let pairsTheirs = b["filtered_resps"] as! [[String]]
                #expect(pairsMine.count == pairsTheirs.count)
                for (x, y) in zip(pairsMine, pairsTheirs) {
                    #expect(abs(Double(x[0])! - Double(y[0])!) <= 1e-3, "\(name) doc \(index): \(x[0]) vs \(y[0])")
                    #expect(x[1] == y[1], "\(name) doc \(index) is_greedy")
                }
                #expect((a["resps"] as! [[[String]]]).map { $0[0] } == pairsMine, "\(name) doc \(index): resps wrap filtered_resps")
            }
        }
    }
}
