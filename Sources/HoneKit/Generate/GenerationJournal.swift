import Foundation

/// Finished answers of a long generation run, one JSON line each, appended as they complete, so a rerun after an
/// interruption skips what is done. Lives beside the output (`OUTPUT.journal`) and is removed once the output is
/// written. A torn last line (killed mid-write) is ignored.
public final class GenerationJournal {
    public let path: String
    /// A digest of what the answers depend on (model, prompts, settings): a journal of another run is not reused.
    public let fingerprint: String
    public private(set) var answers: [Int: String] = [:]
    private var handle: FileHandle?

    public init(path: String, fingerprint: String) throws {
        self.path = path
        self.fingerprint = fingerprint
        if let entries = Self.readEntries(path: path, fingerprint: fingerprint) {
            answers = entries
        } else {
            try? FileManager.default.removeItem(atPath: path)
        }
        // Opened for appending (created with its header when new): answers are added one line at a time.
        let isNew = !FileManager.default.fileExists(atPath: path)
        let descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw creationFailure(path, for: path) }
        let handle = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
        if isNew {
            do {
                try handle.write(contentsOf: Data("{\"fingerprint\":\(jsonString(fingerprint))}\n".utf8))
            } catch {
                throw HoneError.io(path: path, message: "cannot write the journal: \(describeFileError(error))")
            }
        }
        do {
            if let data = FileManager.default.contents(atPath: path), data.last != UInt8(ascii: "\n") {
                try handle.seekToEnd()
                try handle.write(contentsOf: Data("\n".utf8))
            }
            try handle.seekToEnd()
        } catch {
            throw HoneError.io(path: path, message: "cannot write the journal: \(describeFileError(error))")
        }
        self.handle = handle
    }

    /// The answers of the journal at `path` when it belongs to a run with `fingerprint`; nil when it is absent or
    /// belongs to another run.
    static func readEntries(path: String, fingerprint: String) -> [Int: String]? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        var lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true)
        let header = lines.isEmpty ? nil : (try? parseJSON(Data(lines.removeFirst()))) as? [String: Any]
        guard header?["fingerprint"] as? String == fingerprint else { return nil }
        var answers: [Int: String] = [:]
        for line in lines {
            guard let entry = (try? parseJSON(Data(line))) as? [String: Any],
                  let index = entry["index"].flatMap(jsonInteger), let output = entry["output"] as? String
            else { continue }
            answers[index] = output
        }
        return answers
    }

    /// Adds answers found elsewhere (other ranks' journals) to this journal's view, without writing them.
    public func adopt(_ others: [Int: String]) {
        answers.merge(others) { own, _ in own }
    }

    /// Appends one answer. A failed write (a full disk) throws: the answers before it stay in the journal.
    public func record(index: Int, output: String) throws {
        answers[index] = output
        do {
            try handle?.write(contentsOf: Data("{\"index\":\(index),\"output\":\(jsonString(output))}\n".utf8))
        } catch {
            throw HoneError.io(path: path, message: "cannot write the journal: \(describeFileError(error))")
        }
    }

    /// Closes and deletes the journal (after the output file is safely in place).
    public func remove() {
        try? handle?.close()
        handle = nil
        try? FileManager.default.removeItem(atPath: path)
    }

    deinit { try? handle?.close() }
}
