import Foundation

// MARK: - Stop strings

/// Watches streamed text for stop strings, so that a caller can print text as it is generated and still
/// never show any part of a stop string.
///
/// Text is compared as Unicode scalars, byte-exact (no canonical equivalence: a precomposed "é" does not
/// match "e" + U+0301), and independent of how the stream is cut into pushes: the stop that counts is the
/// one completed first in the stream; of several completed at the same scalar, the longest (it starts
/// earliest, so less text is shown). After a stop everything else is dropped.
public struct StopMatcher: Sendable {
    public let stopStrings: [String]
    /// The stop strings as scalars, empty ones removed.
    private let stops: [[Unicode.Scalar]]
    /// Text not yet emitted: at most the longest stop string minus one scalar while no stop has matched.
    private var held: [Unicode.Scalar] = []
    public private(set) var isStopped = false
    /// The stop string that ended the text, once one has.
    public private(set) var matchedStopString: String?

    public init(stopStrings: [String]) {
        self.stopStrings = stopStrings
        stops = stopStrings.filter { !$0.isEmpty }.map { Array($0.unicodeScalars) }
    }

    /// Feeds newly decoded text. Returns the text that is safe to show now (never any part of a stop
    /// string) and whether a stop string has been completed; text after a stop string is dropped, and
    /// once stopped every later push returns ("", true).
    public mutating func push(_ text: String) -> (emit: String, stopped: Bool) {
        if isStopped { return ("", true) }
        if stops.isEmpty { return (text, false) }
        let previousCount = held.count
        held.append(contentsOf: text.unicodeScalars)

        // A stop can only end in the new text: anything ending earlier was found by an earlier push.
        if held.count > previousCount {
            for end in (previousCount + 1)...held.count {
                var best: (start: Int, stop: Int)? = nil
                for (index, stop) in stops.enumerated() where stop.count <= end {
                    let start = end - stop.count
                    if held[start..<end].elementsEqual(stop), best == nil || start < best!.start {
                        best = (start, index)
                    }
                }
                if let best {
                    let emit = Self.string(held[0..<best.start])
                    matchedStopString = String(String.UnicodeScalarView(stops[best.stop]))
                    held.removeAll()
                    isStopped = true
                    return (emit, true)
                }
            }
        }

        // Hold back the longest suffix that could still grow into a stop string.
        let keep = longestPendingSuffix()
        let emit = Self.string(held[0..<(held.count - keep)])
        held.removeFirst(held.count - keep)
        return (emit, false)
    }

    /// At the end of generation (EOS or the length limit): the text still held back, which is not a stop
    /// string (an incomplete one is ordinary text). Empty after a stop.
    public mutating func finish() -> String {
        if isStopped { return "" }
        let rest = Self.string(held[...])
        held.removeAll()
        return rest
    }

    /// Length of the longest suffix of `held` that is a proper prefix of some stop string.
    private func longestPendingSuffix() -> Int {
        let longest = stops.map(\.count).max() ?? 0
        var length = min(held.count, longest - 1)
        while length > 0 {
            let suffix = held[(held.count - length)...]
            if stops.contains(where: { $0.count > length && $0[0..<length].elementsEqual(suffix) }) { return length }
            length -= 1
        }
        return 0
    }

    private static func string(_ scalars: ArraySlice<Unicode.Scalar>) -> String {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars)
        return String(view)
    }
}
