import Foundation

// MARK: - Sentence BLEU as NLTK computes it

/// NLTK's `sentence_bleu(references, hypothesis)` with its defaults (weights 0.25 × 4, no smoothing, no
/// re-weighting), reproduced number for number:
/// * p_n = clipped n-gram matches / max(1, hypothesis n-grams), against the largest count in any reference;
/// * no unigram match at all gives exactly 0;
/// * otherwise a p_n with no match (NLTK warns and substitutes `sys.float_info.min`) contributes
///   0.25 · log(2.2250738585072014e-308), so the score is tiny but not 0;
/// * the weighted logs are summed exactly (Python's `math.fsum`), exponentiated and scaled by the brevity penalty
///   exp(1 − r/c) against the reference length closest to the hypothesis (the shorter one on ties).
/// Sequences are compared element by element: PRO's evaluation passes strings, so its BLEU is over characters
/// (`characterBLEU`).
public enum BLEU {
    /// NLTK's stand-in for a zero precision.
    static let zeroPrecision = Double.leastNormalMagnitude

    public static func sentence<Element: Hashable>(references: [[Element]], hypothesis: [Element], maxOrder: Int = 4) -> Double {
        precondition(!references.isEmpty, "BLEU needs at least one reference")
        var precisions: [(numerator: Int, denominator: Int)] = []
        for order in 1...maxOrder {
            let counts = ngramCounts(hypothesis, order)
            var maxCounts: [ArraySlice<Element>: Int] = [:]
            for reference in references {
                let referenceCounts = ngramCounts(reference, order)
                for gram in counts.keys { maxCounts[gram] = max(maxCounts[gram] ?? 0, referenceCounts[gram] ?? 0) }
            }
            let numerator = counts.reduce(0) { $0 + min($1.value, maxCounts[$1.key] ?? 0) }
            let denominator = max(1, counts.values.reduce(0, +))
            precisions.append((numerator, denominator))
        }
        if precisions[0].numerator == 0 { return 0 }
        let hypothesisLength = hypothesis.count
        let referenceLength = references.map(\.count).min { a, b in
            (abs(a - hypothesisLength), a) < (abs(b - hypothesisLength), b)
        }!
        let brevity: Double
        if hypothesisLength > referenceLength {
            brevity = 1
        } else if hypothesisLength == 0 {
            brevity = 0
        } else {
            brevity = exp(1 - Double(referenceLength) / Double(hypothesisLength))
        }
        let weight = 1 / Double(maxOrder)
        let terms = precisions.map { precision -> Double in
            let value = precision.numerator == 0 ? zeroPrecision : Double(precision.numerator) / Double(precision.denominator)
            return weight * log(value)
        }
        return brevity * exp(exactSum(terms))
    }

    /// PRO's BLEU: `sentence_bleu([reference.strip()], hypothesis.strip())` on strings, i.e. over Unicode code points.
    public static func characterBLEU(hypothesis: String, reference: String) -> Double {
        sentence(references: [Array(strippedPythonWhitespace(reference).unicodeScalars.map(\.value))],
                 hypothesis: Array(strippedPythonWhitespace(hypothesis).unicodeScalars.map(\.value)))
    }

    static func ngramCounts<Element: Hashable>(_ sequence: [Element], _ order: Int) -> [ArraySlice<Element>: Int] {
        var counts: [ArraySlice<Element>: Int] = [:]
        guard sequence.count >= order else { return counts }
        for start in 0...(sequence.count - order) { counts[sequence[start..<start + order], default: 0] += 1 }
        return counts
    }

    /// Python's `math.fsum`: the correctly rounded sum (Shewchuk's exact partials).
    static func exactSum(_ values: [Double]) -> Double {
        var partials: [Double] = []
        for value in values {
            var x = value
            var kept: [Double] = []
            for partial in partials {
                var y = partial
                if abs(x) < abs(y) { swap(&x, &y) }
                let high = x + y
                let low = y - (high - x)
                if low != 0 { kept.append(low) }
                x = high
            }
            kept.append(x)
            partials = kept
        }
        // Round the partials' sum correctly, as fsum does (half-way cases checked against the next partial).
        guard var high = partials.last else { return 0 }
        var index = partials.count - 1
        var low = 0.0
        while index > 0 {
            index -= 1
            let x = high
            let y = partials[index]
            high = x + y
            let yr = high - x
            low = y - yr
            if low != 0 { break }
        }
        if index > 0, (low < 0 && partials[index - 1] < 0) || (low > 0 && partials[index - 1] > 0) {
            let y = low * 2
            let x = high + y
            if y == x - high { high = x }
        }
        return high
    }
}
