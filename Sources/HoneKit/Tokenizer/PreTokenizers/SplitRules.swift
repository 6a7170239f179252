import Foundation

// MARK: - Split behaviors

/// What a split does with the text it matched (Hugging Face `SplitDelimiterBehavior`): the pieces of a pre-token
/// are the matches and the stretches between them, recombined as follows.
public enum SplitBehavior: String, Sendable, CaseIterable {
    /// Matches are dropped, the stretches between them kept.
    case removed = "Removed"
    /// Matches and stretches are pieces of their own.
    case isolated = "Isolated"
    /// A match joins the stretch before it.
    case mergedWithPrevious = "MergedWithPrevious"
    /// A match joins the piece after it.
    case mergedWithNext = "MergedWithNext"
    /// Adjacent matches join into one piece; stretches stay apart.
    case contiguous = "Contiguous"
}

enum SplitRules {
    /// Appends to `output` the pieces of `whole` (a byte range) cut by `matches` (ascending, non-overlapping, inside
    /// `whole`). With `invert`, the stretches between matches play the part of the matches. Empty pieces are left
    /// out, as `tokenizers` leaves them out.
    static func apply(_ behavior: SplitBehavior, invert: Bool, whole: Range<Int>, matches: [Range<Int>],
                      into output: inout [Range<Int>]) {
        // The text as alternating segments, each marked as a match or not (before inversion).
        var segments: [(range: Range<Int>, isMatch: Bool)] = []
        segments.reserveCapacity(matches.count * 2 + 1)
        var previous = whole.lowerBound
        for match in matches {
            if match.lowerBound > previous { segments.append((previous..<match.lowerBound, invert)) }
            segments.append((match, !invert))
            previous = match.upperBound
        }
        if previous < whole.upperBound { segments.append((previous..<whole.upperBound, invert)) }

        var pieces: [Range<Int>] = []
        pieces.reserveCapacity(segments.count)
        switch behavior {
        case .removed:
            for segment in segments where !segment.isMatch { pieces.append(segment.range) }
        case .isolated:
            for segment in segments { pieces.append(segment.range) }
        case .contiguous:
            // A segment joins the last piece when both are matches (two stretches are never adjacent).
            var previousWasMatch = false
            for segment in segments {
                if segment.isMatch, previousWasMatch, let last = pieces.last {
                    pieces[pieces.count - 1] = last.lowerBound..<segment.range.upperBound
                } else {
                    pieces.append(segment.range)
                }
                previousWasMatch = segment.isMatch
            }
        case .mergedWithPrevious:
            // A match joins the piece before it unless that piece ends in a match.
            var previousWasMatch = false
            for segment in segments {
                if segment.isMatch, !previousWasMatch, let last = pieces.last {
                    pieces[pieces.count - 1] = last.lowerBound..<segment.range.upperBound
                } else {
                    pieces.append(segment.range)
                }
                previousWasMatch = segment.isMatch
            }
        case .mergedWithNext:
            // Mirror image: walking backwards, a match joins the piece after it unless that piece starts with one.
            var nextWasMatch = false
            for segment in segments.reversed() {
                if segment.isMatch, !nextWasMatch, let last = pieces.last {
                    pieces[pieces.count - 1] = segment.range.lowerBound..<last.upperBound
                } else {
                    pieces.append(segment.range)
                }
                nextWasMatch = segment.isMatch
            }
            pieces.reverse()
        }
        for piece in pieces where !piece.isEmpty { output.append(piece) }
    }
}
