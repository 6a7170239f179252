import Foundation
import Testing
@testable import HoneKit

// MARK: - SHA-256

@Suite struct SHA256Tests {
    /// FIPS 180-2 appendix B examples and the empty string.
    @Test func nistVectors() {
        #expect(SHA256.hash(Array("abc".utf8)).hexString == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256.hash([UInt8]()).hexString == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hash(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)).hexString
            == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(SHA256.hash([UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)).hexString
            == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    @Test func piecewiseUpdatesEqualOneShot() {
        var generator = SplitMix64(seed: 5)
        let bytes = (0..<1000).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
        let whole = SHA256.hash(bytes)
        for cuts in [[1, 63, 64, 65], [55, 56, 57], [0, 128, 999], [3, 200, 500, 501]] {
            var hasher = SHA256()
            var start = 0
            for cut in cuts + [bytes.count] {
                hasher.update(Data(bytes[start..<cut]))
                start = cut
            }
            #expect(hasher.finalize() == whole)
        }
        // Lengths around the padding boundary (55, 56, 64 bytes) against the one-shot path of another size.
        for n in [55, 56, 57, 63, 64, 65, 119, 120] {
            var hasher = SHA256()
            for byte in bytes.prefix(n) { hasher.update([byte]) }
            #expect(hasher.finalize() == SHA256.hash(Array(bytes.prefix(n))))
        }
    }

    /// Coreutils' sha256sum is an independent reference on real files (the shared data's own SHA256SUMS can lag
    /// behind its files, so the digests come from the command itself).
    @Test(.enabled(if: FileManager.default.fileExists(atPath: Repository.shared.appendingPathComponent("data/SHA256SUMS").path)
                   && FileManager.default.isExecutableFile(atPath: "/usr/bin/sha256sum"),
                   "../shared/data or /usr/bin/sha256sum is absent"))
    func agreesWithSha256sumOnSharedFiles() throws {
        let directory = Repository.shared.appendingPathComponent("data")
        let sums = try String(contentsOf: directory.appendingPathComponent("SHA256SUMS"), encoding: .utf8)
        var paths: [String] = []
        for line in sums.split(separator: "\n") {
            let fields = line.split(separator: " ", maxSplits: 1)
            guard fields.count == 2 else { continue }
            let path = directory.appendingPathComponent(fields[1].trimmingCharacters(in: CharacterSet(charactersIn: " *"))).path
            guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
                  (attributes[.size] as? Int ?? 0) < 2_000_000 else { continue }
            paths.append(path)
        }
        #expect(paths.count >= 3)
        let result = try runProcess("/usr/bin/sha256sum", paths)
        #expect(result.status == 0)
        let reference = result.stdout.split(separator: "\n").map { String($0.prefix(64)) }
        #expect(reference.count == paths.count)
        for (path, digest) in zip(paths, reference) {
            #expect(try TokenizedDataCache.fileDigest(path).hexString == digest, "\(path)")
        }
    }
}

// MARK: - LZ4 frames

@Suite struct LZ4FrameTests {
    static func sampleData(count: Int, seed: UInt64) -> Data {
        // Half random bytes, half repeated text: both the literal and the match paths of LZ4.
        var generator = SplitMix64(seed: seed)
        var bytes = [UInt8]()
        bytes.reserveCapacity(count)
        let text = Array("the quick brown fox jumps over the lazy dog ".utf8)
        while bytes.count < count {
            if generator.next() & 1 == 0 {
                bytes += (0..<64).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
            } else {
                bytes += text
            }
        }
        return Data(bytes.prefix(count))
    }

    @Test func roundTrips() throws {
        for count in [0, 1, 100, 70_000, 5_000_000] {
            let data = Self.sampleData(count: count, seed: UInt64(count))
            let frame = try LZ4Frame.compress(data)
            #expect(frame.prefix(4) == Data([0x04, 0x22, 0x4D, 0x18]), "LZ4 frame magic")
            #expect(try LZ4Frame.decompress(frame) == data)
            #expect(try LZ4Frame.decompress(frame, expectedSize: count) == data)
            #expect(try LZ4Frame.decompress(try LZ4Frame.compress(data, level: 9)) == data)
        }
        let repetitive = Data(repeating: 7, count: 1 << 20)
        #expect(try LZ4Frame.compress(repetitive).count < 10_000)
    }

    @Test func damagedFramesAreErrorsNotCrashes() throws {
        let data = Self.sampleData(count: 3000, seed: 9)
        let frame = try LZ4Frame.compress(data)
        // Every truncation.
        for length in 0..<frame.count {
            #expect(throws: LZ4Frame.Failure.self, "truncated to \(length)") { try LZ4Frame.decompress(frame.prefix(length)) }
        }
        // Every single-byte change is caught (header checksum, block sizes, content checksum).
        for position in stride(from: 0, to: frame.count, by: 7) {
            var damaged = frame
            damaged[position] ^= 0x5A
            #expect(throws: LZ4Frame.Failure.self, "byte \(position) changed") { try LZ4Frame.decompress(damaged) }
        }
        #expect(throws: LZ4Frame.Failure.self) { try LZ4Frame.decompress(frame + Data([1, 2, 3])) }
        #expect(throws: LZ4Frame.Failure.self) { try LZ4Frame.decompress(frame, expectedSize: data.count - 1) }
        #expect(throws: LZ4Frame.Failure.self) { try LZ4Frame.decompress(frame, expectedSize: data.count + 1) }
    }

    /// The `lz4` command line tool reads Hone's frames and Hone reads its frames: the standard format.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/lz4"), "the lz4 command is not installed"))
    func interoperatesWithTheLZ4Command() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let data = Self.sampleData(count: 200_000, seed: 4)
        let ours = directory.appendingPathComponent("ours.lz4")
        try LZ4Frame.compress(data).write(to: ours)
        let decoded = directory.appendingPathComponent("decoded.bin")
        var result = try runProcess("/usr/bin/lz4", ["-d", "-q", "-f", ours.path, decoded.path])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try Data(contentsOf: decoded) == data)
        let theirs = directory.appendingPathComponent("theirs.lz4")
        result = try runProcess("/usr/bin/lz4", ["-q", "-f", decoded.path, theirs.path])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try LZ4Frame.decompress(try Data(contentsOf: theirs)) == data)
    }
}

// MARK: - Tokenized-data cache

@Suite struct TokenizedDataCacheTests {
    final class Warnings: @unchecked Sendable {
        private let lock = NSLock()
        private var messages: [String] = []
        func append(_ message: String) { lock.lock(); messages.append(message); lock.unlock() }
        var all: [String] { lock.lock(); defer { lock.unlock() }; return messages }
    }

    static func examples(count: Int, seed: UInt64) -> [TrainingExample] {
        var generator = SplitMix64(seed: seed)
        return (0..<count).map { index in
            let n = index == 0 ? 0 : Int(generator.next() % 300) + 1
            let ids = (0..<n).map { _ in Int32(truncatingIfNeeded: generator.next() % 32000) }
            let masked = n == 0 ? 0 : Int(generator.next() % UInt64(n))
            return TrainingExample(inputIDs: ids, labels: Array(repeating: -100, count: masked) + ids[masked...])
        }
    }

    static let someKey = TokenizedDataCache.key(parts: [("test", Array("one".utf8))])

    @Test func roundTrip() throws {
        let directory = try makeTemporaryDirectory().appendingPathComponent("cache/nested").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let warnings = Warnings()
        let cache = TokenizedDataCache(directory: directory, warn: { warnings.append($0) })
        #expect(cache.load(key: Self.someKey) == nil)
        let examples = Self.examples(count: 500, seed: 1)
        try cache.store(examples, key: Self.someKey)
        #expect(cache.load(key: Self.someKey) == examples)
        #expect(FileManager.default.fileExists(atPath: cache.path(for: Self.someKey)))
        #expect(!FileManager.default.fileExists(atPath: cache.path(for: Self.someKey) + ".tmp"))
        // Another key is a miss; an empty set round-trips; storing again replaces.
        let otherKey = TokenizedDataCache.key(parts: [("test", Array("two".utf8))])
        #expect(cache.load(key: otherKey) == nil)
        try cache.store([], key: otherKey)
        #expect(cache.load(key: otherKey) == [])
        try cache.store(Array(examples.prefix(3)), key: Self.someKey)
        #expect(cache.load(key: Self.someKey) == Array(examples.prefix(3)))
        #expect(warnings.all.isEmpty)
    }

    @Test func damagedFilesAreMissesWithAWarning() throws {
        let directory = try makeTemporaryDirectory().path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let warnings = Warnings()
        let cache = TokenizedDataCache(directory: directory, warn: { warnings.append($0) })
        let examples = Self.examples(count: 40, seed: 2)
        try cache.store(examples, key: Self.someKey)
        let path = cache.path(for: Self.someKey)
        let good = try Data(contentsOf: URL(fileURLWithPath: path))
        var damages: [(String, Data)] = [("empty", Data()), ("header only", good.prefix(96)), ("no last byte", good.dropLast()),
                                         ("half", good.prefix(good.count / 2)), ("extra byte", good + Data([0]))]
        for (position, name) in [(0, "magic"), (8, "version"), (20, "key"), (50, "count"), (58, "payload size"),
                                 (70, "payload checksum"), (100, "frame"), (good.count - 2, "frame checksum")] {
            var damaged = good
            damaged[position] ^= 0x01
            damages.append((name, damaged))
        }
        for (name, bytes) in damages {
            try bytes.write(to: URL(fileURLWithPath: path))
            let before = warnings.all.count
            #expect(cache.load(key: Self.someKey) == nil, "\(name)")
            #expect(warnings.all.count == before + 1, "\(name): one warning")
            #expect(warnings.all.last?.hasPrefix(path) == true)
        }
        // A good file under another key's name is refused (the header holds the key).
        let otherKey = TokenizedDataCache.key(parts: [("test", Array("other".utf8))])
        try good.write(to: URL(fileURLWithPath: cache.path(for: otherKey)))
        #expect(cache.load(key: otherKey) == nil)
        #expect(warnings.all.last?.contains("another key") == true)
        // A directory where the file should be.
        try FileManager.default.removeItem(atPath: path)
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
        #expect(cache.load(key: Self.someKey) == nil)
        // The intact file still loads.
        try FileManager.default.removeItem(atPath: path)
        try good.write(to: URL(fileURLWithPath: path))
        #expect(cache.load(key: Self.someKey) == examples)
    }

    @Test func keyChangesWithEveryInput() throws {
        let root = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: root) }
        let data = root.appendingPathComponent("data.json")
        try Data(#"[{"instruction": "a", "output": "b"}]"#.utf8).write(to: data)
        let model = root.appendingPathComponent("model")
        try FileManager.default.copyItem(at: Repository.root.appendingPathComponent("models/hone-tiny"), to: model)

        func key(template: PromptTemplate = .alpaca, cutoff: Int = 256, trainOnInputs: Bool = true,
                 addEOS: Bool = false, tokenizerSource: String? = nil) throws -> TokenizedDataCache.Key {
            try TokenizedDataCache.key(dataFile: data.path, tokenizerSource: tokenizerSource ?? model.path, template: template,
                                       cutoffLength: cutoff, trainOnInputs: trainOnInputs, addEOSToken: addEOS)
        }
        let base = try key()
        #expect(try key() == base, "the same inputs give the same key")
        var keys: [String: TokenizedDataCache.Key] = [:]
        keys["cutoff"] = try key(cutoff: 512)
        keys["train_on_inputs"] = try key(trainOnInputs: false)
        keys["add_eos_token"] = try key(addEOS: true)
        keys["template"] = try key(template: .alpacaJudge)
        var edited = PromptTemplate.alpaca
        edited.promptNoInput! += " "
        keys["template text"] = try key(template: edited)

        try Data(#"[{"instruction": "a", "output": "c"}]"#.utf8).write(to: data)
        keys["data bytes"] = try key()
        try Data(#"[{"instruction": "a", "output": "b"}]"#.utf8).write(to: data)
        #expect(try key() == base, "restoring the data restores the key")

        let config = model.appendingPathComponent("tokenizer_config.json")
        let original = try Data(contentsOf: config)
        try (original + Data(" ".utf8)).write(to: config)
        keys["tokenizer_config.json"] = try key()
        try original.write(to: config)
        let tokenizerJSON = model.appendingPathComponent("tokenizer.json")
        let originalJSON = try Data(contentsOf: tokenizerJSON)
        try (originalJSON + Data("\n".utf8)).write(to: tokenizerJSON)
        keys["tokenizer.json"] = try key()
        try originalJSON.write(to: tokenizerJSON)
        #expect(try key() == base)
        // Model weights are not part of the tokenization.
        try Data("changed".utf8).write(to: model.appendingPathComponent("model.safetensors"))
        #expect(try key() == base)

        // A single-file tokenizer source (GGUF) is identified by path, size and modification time.
        let gguf = root.appendingPathComponent("model.gguf")
        try Data("GGUF-1".utf8).write(to: gguf)
        let ggufKey = try key(tokenizerSource: gguf.path)
        keys["gguf"] = ggufKey
        try Data("GGUF-22".utf8).write(to: gguf)
        keys["gguf size"] = try key(tokenizerSource: gguf.path)

        for (name, changed) in keys { #expect(changed != base, "\(name) must change the key") }
        #expect(Set(keys.values).count == keys.count, "every change gives a different key")
        #expect(throws: HoneError.self) { try key(tokenizerSource: root.appendingPathComponent("absent").path) }
    }

    @Test func partsAreUnambiguous() {
        // ("ab", "c") and ("a", "bc") must not serialize alike.
        let a = TokenizedDataCache.key(parts: [("ab", Array("c".utf8))])
        let b = TokenizedDataCache.key(parts: [("a", Array("bc".utf8))])
        let c = TokenizedDataCache.key(parts: [("a", Array("b".utf8)), ("c", [])])
        #expect(Set([a, b, c]).count == 3)
    }

    @Test func tokenizedAlpacaDataRoundTripsThroughTheCache() throws {
        let tokenizer = try TokenizerLoader.load(directory: Repository.root.appendingPathComponent("models/hone-tiny").path)
        let records = [AlpacaRecord(instruction: "Name a colour.", output: "Blue."),
                       AlpacaRecord(instruction: "Translate.", input: "Bonjour", output: "Hello")]
        let examples = try tokenizeForTraining(records, tokenizer: tokenizer, template: .alpaca, cutoffLength: 64,
                                           trainOnInputs: false, addEOSToken: false)
        let directory = try makeTemporaryDirectory().path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let cache = TokenizedDataCache(directory: directory, warn: { _ in })
        try cache.store(examples, key: Self.someKey)
        #expect(cache.load(key: Self.someKey) == examples)
    }
}
