import Foundation
import Testing
@testable import HoneKit

/// HellaSwag's cleaning works on UTF-8 bytes. Checked against Python (lm-eval's `preprocess`: strip, replace,
/// `re.sub("\\[.*?\\]", "")`, replace; expected strings printed by python3) on hand cases, and against the
/// Foundation regex version it replaced on every line of the shared validation file.
struct HellaSwagPreprocessTests {
    /// The earlier implementation: Foundation's literal search and ICU regex.
    static func foundationPreprocess(_ text: String) -> String {
        var result = pythonStrip(text)
        result = result.replacingOccurrences(of: " [title]", with: ". ")
        result = result.replacingOccurrences(of: "\\[[^\\n]*?\\]", with: "", options: .regularExpression)
        return result.replacingOccurrences(of: "  ", with: " ")
    }

    @Test func matchesPythonOnHandCases() {
        let cases: [(String, String)] = [
            ("a   b", "a  b"), ("a    b", "a  b"), ("[a[b]c]", "c]"), ("x [a\nb] y", "x [a\nb] y"),
            ("x [title] [title]y", "x. . y"), ("ü [title]é  [x]ñ", "ü. é ñ"), ("[unclosed", "[unclosed"),
            ("a]b[c]d", "a]bd"), (" \u{A0} a [b] \u{2003}", "a "), ("e\u{301}  [t]\u{301}", "e\u{301} \u{301}"),
            ("a [title]] b", "a. ] b"), ("[[]]", "]"), ("", ""), ("   ", ""),
            (" How to x [title] Brush. [step] Start  now. ", "How to x. Brush. Start now."),
        ]
        for (input, expected) in cases {
            #expect(MultipleChoiceData.hellaSwagPreprocess(input).unicodeScalars.elementsEqual(expected.unicodeScalars),
                    "\(input.debugDescription)")
        }
    }

    @Test func matchesTheFoundationVersionOnTheValidationFile() throws {
        let path = Repository.shared.appendingPathComponent("data/mc_eval/hellaswag/hellaswag_val_full.txt.gz").path
        guard FileManager.default.fileExists(atPath: path) else {
            print("skipped: ../shared/data/mc_eval/hellaswag/hellaswag_val_full.txt.gz is absent")
            return
        }
        let lines = String(decoding: try readInputFile(path: path), as: UTF8.self).split(separator: "\n").map(String.init)
        #expect(lines.count == 60_252)
        var differing = 0
        for line in lines where MultipleChoiceData.hellaSwagPreprocess(line) != Self.foundationPreprocess(line) {
            differing += 1
            if differing <= 3 { Issue.record("differs: \(line.debugDescription)") }
        }
        #expect(differing == 0)
        // The reader's byte-level line split gives the documents the String split gave.
        let documents = try MultipleChoiceData.readHellaSwagText(path: path)
        #expect(documents.count == 10_042)
        #expect(documents[17].query == Self.foundationPreprocess(lines[17 * 6]))
        #expect(documents[17].choices == lines[(17 * 6 + 2)..<(17 * 6 + 6)].map(Self.foundationPreprocess))
    }
}
