import Foundation

/// Progress of long work on stderr: a bar redrawn in place when stderr is a terminal, plain lines (at most one
/// every `lineInterval` seconds, plus the last) otherwise, so logs stay readable.
public final class ProgressReporter: @unchecked Sendable {
    public let total: Int
    public let label: String
    public var lineInterval: Double = 10
    private let start = DispatchTime.now()
    private var lastLine = DispatchTime(uptimeNanoseconds: 0)
    private let isTerminal = isatty(STDERR_FILENO) != 0
    private let lock = NSLock()
    private var finished = false

    public init(total: Int, label: String) {
        self.total = total
        self.label = label
    }

    private var elapsed: Double { Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9 }

    /// - Parameters:
    ///   - done: units finished (items, steps).
    ///   - extra: figures to show after the count, e.g. "34.1 tok/s".
    ///   - rateBase: how many of `done` this run did itself (resumed work excluded), for the ETA.
    public func update(done: Int, extra: String = "", rateBase: Int? = nil) {
        lock.lock()
        defer { lock.unlock() }
        guard !finished else { return }
        let now = DispatchTime.now()
        let isLast = done >= total
        if !isTerminal, !isLast, Double(now.uptimeNanoseconds - lastLine.uptimeNanoseconds) / 1e9 < lineInterval { return }
        lastLine = now
        let fraction = total > 0 ? Double(done) / Double(total) : 1
        let own = Double(rateBase ?? done)
        let remaining = own > 0 ? elapsed / own * Double(total - done) : 0
        let eta = own > 0 && !isLast ? "ETA \(ProgressReporter.clock(remaining))" : "\(ProgressReporter.clock(elapsed))"
        let figures = [extra, eta].filter { !$0.isEmpty }.joined(separator: "  ")
        if isTerminal {
            let width = 24
            let filled = Int(fraction * Double(width))
            let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
            FileHandle.standardError.write(Data("\r\u{1B}[K\(label) \(bar) \(done)/\(total)  \(figures)".utf8))
            if isLast {
                FileHandle.standardError.write(Data("\n".utf8))
                finished = true
            }
        } else {
            FileHandle.standardError.write(Data("\(label): \(done)/\(total)  \(figures)\n".utf8))
            if isLast { finished = true }
        }
    }

    static func clock(_ seconds: Double) -> String {
        let total = Int(seconds.rounded())
        return total >= 3600 ? String(format: "%d:%02d:%02d", total / 3600, total / 60 % 60, total % 60)
                             : String(format: "%d:%02d", total / 60, total % 60)
    }
}
