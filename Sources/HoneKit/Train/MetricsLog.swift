import Foundation

/// metrics.jsonl: one line per optimizer step, appended as training goes, so a crash loses at most one line.
enum MetricsLog {
    static func path(_ directory: String) -> String { (directory as NSString).appendingPathComponent("metrics.jsonl") }

    static func append(_ record: StepRecord, directory: String) throws {
        let file = path(directory)
        guard let handle = FileHandle(forWritingAtPath: file) else {
            throw HoneError.io(path: file, message: "cannot open for appending")
        }
        defer { try? handle.close() }
        do {
            try handle.seekToEnd()
            try handle.write(contentsOf: Data((record.jsonLine + "\n").utf8))
        } catch {
            throw HoneError.io(path: file, message: "cannot append: \(describeFileError(error))")
        }
    }

    static func rewrite(_ records: [StepRecord], directory: String) throws {
        try writeFileAtomically(Data(records.map { $0.jsonLine + "\n" }.joined().utf8), to: path(directory))
    }

    /// The records of an earlier run (a torn last line is skipped: the run was killed while writing it).
    static func read(directory: String) throws -> [StepRecord] {
        guard let data = FileManager.default.contents(atPath: path(directory)) else { return [] }
        var records: [StepRecord] = []
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let step = object["step"].flatMap(jsonInteger), let loss = object["loss"].flatMap(jsonDouble) else { continue }
            var metrics: [String: Double] = [:]
            for (key, value) in object where !["step", "loss", "lr", "grad_norm", "tokens_per_s", "eval_loss"].contains(key) {
                if let number = jsonDouble(value) { metrics[key] = number }
            }
            var record = StepRecord(step: step, loss: loss, learningRate: object["lr"].flatMap(jsonDouble) ?? 0,
                                    gradientNorm: object["grad_norm"].flatMap(jsonDouble) ?? 0,
                                    tokensPerSecond: object["tokens_per_s"].flatMap(jsonDouble) ?? 0,
                                    evalLoss: object["eval_loss"].flatMap(jsonDouble), metrics: metrics)
            record.readFrom = String(line)
            records.append(record)
        }
        return records
    }
}

/// loss.svg: training loss per step (and evaluation loss where measured) as a self-contained SVG.
enum LossPlot {
    static func write(_ records: [StepRecord], to path: String) throws {
        try writeFileAtomically(Data(svg(records).utf8), to: path)
    }

    static func svg(_ records: [StepRecord]) -> String {
        let (width, height, margin) = (720.0, 360.0, 56.0)
        let losses = records.map(\.loss).filter(\.isFinite) + records.compactMap(\.evalLoss).filter(\.isFinite)
        let lastStep = Double(max(1, records.last?.step ?? 1))
        var low = losses.min() ?? 0
        var high = losses.max() ?? 1
        if high - low < 1e-9 { low -= 0.5; high += 0.5 }
        func x(_ step: Int) -> Double { margin + (Double(step) / lastStep) * (width - 2 * margin) }
        // Halves first: with losses near ±1e308, high − low overflows to infinity and every y became NaN.
        func y(_ loss: Double) -> Double { height - margin - (loss / 2 - low / 2) / (high / 2 - low / 2) * (height - 2 * margin) }
        func points(_ pairs: [(Int, Double)]) -> String {
            pairs.map { String(format: "%.1f,%.1f", x($0.0), y($0.1)) }.joined(separator: " ")
        }
        let train = records.filter { $0.loss.isFinite }.map { ($0.step, $0.loss) }
        let eval = records.compactMap { record in record.evalLoss.map { (record.step, $0) } }.filter { $0.1.isFinite }
        var lines: [String] = [
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" font-family=\"sans-serif\" font-size=\"12\">",
            "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>",
            "<line x1=\"\(margin)\" y1=\"\(height - margin)\" x2=\"\(width - margin)\" y2=\"\(height - margin)\" stroke=\"black\"/>",
            "<line x1=\"\(margin)\" y1=\"\(margin)\" x2=\"\(margin)\" y2=\"\(height - margin)\" stroke=\"black\"/>",
            "<text x=\"\(width / 2)\" y=\"\(height - 16)\" text-anchor=\"middle\">optimizer step</text>",
            "<text x=\"16\" y=\"\(height / 2)\" transform=\"rotate(-90 16 \(height / 2))\" text-anchor=\"middle\">loss</text>",
        ]
        for value in [low, low / 2 + high / 2, high] {
            lines.append(String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%.4g</text>", margin - 6, y(value) + 4, value))
        }
        lines.append("<text x=\"\(width - margin)\" y=\"\(height - margin + 16)\" text-anchor=\"end\">\(Int(lastStep))</text>")
        if !train.isEmpty {
            lines.append("<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"1.5\" points=\"\(points(train))\"/>")
            lines.append("<text x=\"\(width - margin)\" y=\"\(margin - 20)\" text-anchor=\"end\" fill=\"#1f77b4\">training loss</text>")
        }
        if !eval.isEmpty {
            lines.append("<polyline fill=\"none\" stroke=\"#d62728\" stroke-width=\"1.5\" points=\"\(points(eval))\"/>")
            for (step, loss) in eval {
                lines.append(String(format: "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"#d62728\"/>", x(step), y(loss)))
            }
            lines.append("<text x=\"\(width - margin)\" y=\"\(margin - 6)\" text-anchor=\"end\" fill=\"#d62728\">eval loss</text>")
        }
        lines.append("</svg>")
        return lines.joined(separator: "\n") + "\n"
    }
}
