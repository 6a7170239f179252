import Foundation

// MARK: - Batch work split across ranks

extension ProcessGroup {
    /// The items of `indices` this rank handles (round robin over the list's positions, so a resumed run whose
    /// remaining items are scattered still splits them evenly).
    public func share(of indices: [Int]) -> [Int] {
        indices.enumerated().filter { owns($0.offset) }.map(\.element)
    }

    /// Every rank's results, merged, on every rank. Ranks handle disjoint items, so the union has no conflicts;
    /// were one item reported twice, the lowest rank's result is kept, the same on every rank.
    public func merge<Result: Codable>(_ local: [Int: Result]) throws -> [Int: Result] {
        guard isDistributed else { return local }
        var merged: [Int: Result] = [:]
        for part in try allGather(local) {
            merged.merge(part) { first, _ in first }
        }
        return merged
    }
}

extension GenerationJournal {
    /// The journal of rank `rank` of `size` for the output `output`: `OUTPUT.journal` for a single process (or
    /// rank 0), `OUTPUT.journal.rankR` for the others, so ranks never write to the same file.
    public static func path(output: String, rank: Int) -> String {
        rank == 0 ? output + ".journal" : output + ".journal.rank\(rank)"
    }

    /// Deletes every rank's journal of `output` that this process can see (after the output is written).
    public static func removeLeftovers(output: String) {
        for path in journalPaths(output: output) { try? FileManager.default.removeItem(atPath: path) }
    }

    private static func journalPaths(output: String) -> [String] {
        let directory = (output as NSString).deletingLastPathComponent
        let prefix = (output as NSString).lastPathComponent + ".journal"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.isEmpty ? "." : directory)) ?? []
        return names.filter { $0 == prefix || $0.hasPrefix(prefix + ".rank") }
            .map { directory.isEmpty ? $0 : (directory as NSString).appendingPathComponent($0) }
    }

    /// Answers recorded by any rank's journal of `output` that this process can read (left by an interrupted
    /// run, perhaps on another number of ranks), for the same fingerprint.
    public static func answersOfOtherRanks(output: String, fingerprint: String, except ownPath: String) -> [Int: String] {
        var answers: [Int: String] = [:]
        for path in journalPaths(output: output) {
            guard path != ownPath, let entries = readEntries(path: path, fingerprint: fingerprint) else { continue }
            answers.merge(entries) { first, _ in first }
        }
        return answers
    }
}
