import Foundation
import Testing
@testable import HoneKit

@Suite struct StopMatcherTests {
    /// Pushes the chunks and returns everything emitted (finish included when no stop came) and the stop.
    func run(_ stops: [String], _ chunks: [String]) -> (text: String, stopped: Bool, emits: [String], matched: String?) {
        var matcher = StopMatcher(stopStrings: stops)
        var emits: [String] = []
        var stopped = false
        for chunk in chunks {
            let (emit, didStop) = matcher.push(chunk)
            emits.append(emit)
            if didStop { stopped = true; break }
        }
        if !stopped { emits.append(matcher.finish()) }
        return (emits.joined(), stopped, emits, matcher.matchedStopString)
    }

    @Test func emptyStopListPassesEverythingThrough() {
        var matcher = StopMatcher(stopStrings: [])
        #expect(matcher.push("Hello ###") == ("Hello ###", false))
        #expect(matcher.push("") == ("", false))
        #expect(matcher.finish() == "")
        // Empty strings in the list are ignored rather than matching everywhere.
        var withEmpty = StopMatcher(stopStrings: [""])
        #expect(withEmpty.push("abc") == ("abc", false))
    }

    @Test func stopInsideOnePushDropsTheRest() {
        let result = run(["\n### Instruction:"], ["Paris is the capital.\n### Instruction:\nNext question"])
        #expect(result.text == "Paris is the capital.")
        #expect(result.stopped)
        #expect(result.matched == "\n### Instruction:")
    }

    @Test func stopSpanningSeveralPushesIsNeverShown() {
        let chunks = ["Paris", " is it.", "\n", "###", " Inst", "ruction", ":", " more"]
        let result = run(["\n### Instruction:"], chunks)
        #expect(result.text == "Paris is it.")
        #expect(result.stopped)
        // Nothing of the stop string was emitted on the way: the held-back part appears in no emit.
        #expect(result.emits == ["Paris", " is it.", "", "", "", "", ""])
    }

    @Test func heldBackTextIsReleasedWhenItStopsMatching() {
        var matcher = StopMatcher(stopStrings: ["###"])
        #expect(matcher.push("a#") == ("a", false))
        #expect(matcher.push("#") == ("", false))
        #expect(matcher.push("b") == ("##b", false))
        #expect(matcher.push("##") == ("", false))
        // The stream ends on a partial stop string: it is ordinary text.
        #expect(matcher.finish() == "##")
        #expect(!matcher.isStopped)
    }

    @Test func stopAtTheVeryStart() {
        var matcher = StopMatcher(stopStrings: ["</s>"])
        #expect(matcher.push("</s>and more") == ("", true))
        #expect(matcher.isStopped)
        // After a stop every push is dropped and finish has nothing.
        #expect(matcher.push("later") == ("", true))
        #expect(matcher.finish() == "")
    }

    @Test func overlappingStopStrings() {
        // Both end at the same character: the longer (earlier starting) one wins, less text is shown.
        #expect(run(["bc", "abc"], ["xxabc"]).text == "xx")
        #expect(run(["bc", "abc"], ["xxabc"]).matched == "abc")
        // The one completed first in the stream wins, whatever the chunking.
        #expect(run(["abc", "bcd"], ["abcd"]).text == "")
        #expect(run(["abc", "bcd"], ["abcd"]).matched == "abc")
        #expect(run(["bcd", "abcde"], ["abcde"]).text == "a")
        #expect(run(["bcd", "abcde"], ["a", "b", "c", "d", "e"]).text == "a")
        // A stop string whose prefix repeats: "aaab" holds "aa" until the b completes "aab".
        var matcher = StopMatcher(stopStrings: ["aab"])
        #expect(matcher.push("a") == ("", false))
        #expect(matcher.push("a") == ("", false))
        #expect(matcher.push("a") == ("a", false))
        #expect(matcher.push("b") == ("", true))
    }

    @Test func multiByteCharacters() {
        #expect(run(["好吗"], ["你好", "吗？", "后面"]) == ("你", true, ["你", ""], "好吗"))
        // An emoji with a skin-tone modifier is two scalars: the stop spans the pushes scalar by scalar.
        let thumbs = "\u{1F44D}\u{1F3FD}"
        let result = run([thumbs], ["ok \u{1F44D}", "\u{1F3FD} done"])
        #expect(result.text == "ok ")
        #expect(result.stopped)
        // Only the bare thumb arrived: it is held, then released at the end.
        let partial = run([thumbs], ["ok \u{1F44D}"])
        #expect(partial.text == "ok \u{1F44D}")
        #expect(!partial.stopped)
        // Byte-exact: a precomposed é is not a decomposed one.
        #expect(!run(["caf\u{E9}"], ["cafe\u{301}"]).stopped)
        #expect(run(["\n"], ["a\r\nb"]).text == "a\r")
    }

    /// However the stream is cut (scalar by scalar, or at random points) the output equals one push.
    @Test func outputDoesNotDependOnChunking() {
        let stops = ["\n### Instruction:", "USER:", "</s>", "é!", "abab"]
        let texts = [
            "Answer: 42.\n### Response: still\n### Instruction: next",
            "no stop here at all, just # and ## and USER and </ s>",
            "abaab abab tail",
            "caf\u{E9}! yes",
            "emoji \u{1F600}\u{1F600} USER",
        ]
        var generator = SplitMix64(seed: 77)
        for text in texts {
            let whole = run(stops, [text])
            let scalars = Array(text.unicodeScalars)
            let single = run(stops, scalars.map { String(String.UnicodeScalarView([$0])) })
            #expect(single.text == whole.text && single.stopped == whole.stopped, "\(text)")
            for _ in 0..<20 {
                var chunks: [String] = []
                var index = 0
                while index < scalars.count {
                    let length = Int(generator.next() % 6) + 1
                    let end = min(index + length, scalars.count)
                    chunks.append(String(String.UnicodeScalarView(scalars[index..<end])))
                    index = end
                }
                let cut = run(stops, chunks)
                #expect(cut.text == whole.text && cut.stopped == whole.stopped && cut.matched == whole.matched, "\(chunks)")
            }
        }
        #expect(run(stops, [texts[0]]).text == "Answer: 42.\n### Response: still")
        #expect(!run(stops, [texts[1]]).stopped)
        #expect(run(stops, [texts[2]]).text == "abaab ")  // holds "aba", "ab" on the way
    }
}
