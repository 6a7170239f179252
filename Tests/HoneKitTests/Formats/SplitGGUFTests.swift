import Foundation
import Testing
@testable import HoneKit

/// A model split by llama.cpp's gguf-split (tools/oracle/make_split_gguf_fixtures.py: llama-gqa-q4_0.gguf in three
/// parts) opens from its first part as the unsplit file does.
@Suite struct SplitGGUFTests {
    static let whole = Repository.fixture("gguf/llama-gqa-q4_0.gguf")
    static let parts = (1...3).map { Repository.fixture("gguf/split/llama-gqa-q4_0-0000\($0)-of-00003.gguf") }

    static func bytes(_ file: GGUFFile, _ info: GGUFTensorInfo) throws -> Data {
        let view = try file.tensorView(info)
        return Data(bytes: view.data, count: view.byteCount)
    }

    /// Every tensor of every part, with the unsplit file's names, shapes, types and bytes, and its metadata
    /// (the split keys aside).
    @Test func partsReadAsTheWholeFile() throws {
        let whole = try GGUFFile(path: Self.whole), split = try GGUFFile(path: Self.parts[0])
        #expect(split.parts.count == 3 && Set(split.tensorInfos.map(\.part)) == [0, 1, 2])
        #expect(split.tensorInfos.map(\.name) == whole.tensorInfos.map(\.name))
        for (mine, theirs) in zip(split.tensorInfos, whole.tensorInfos) {
            #expect(mine.shape == theirs.shape && mine.ggmlType == theirs.ggmlType)
            #expect(try Self.bytes(split, mine) == Self.bytes(whole, theirs), "\(mine.name)")
        }
        #expect(split.metadataKeys.filter { !GGUFFile.splitKeys.contains($0) } == whole.metadataKeys)
        let sizes = try Self.parts.map { try FileManager.default.attributesOfItem(atPath: $0)[.size] as! Int }
        #expect(split.totalBytes == sizes.reduce(0, +))
    }

    /// The model from the first part scores exactly as the unsplit one; `hone quantize` joins the parts into the
    /// file it makes from the unsplit input (split keys dropped, as llama-quantize drops them).
    @Test func splitModelRunsAndQuantizesAsTheWhole() throws {
        let rows: [[Int32]] = [[1, 5, 9, 200, 17, 3, 44], [1, 250, 6]]
        let whole = try Scorer(model: LoadedModel.open(Self.whole).model).score(rows)
        let split = try Scorer(model: LoadedModel.open(Self.parts[0]).model).score(rows)
        #expect(split == whole)
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        for scheme in [QuantizationScheme.q8_0, .f32] {
            let fromWhole = directory.appendingPathComponent("whole-\(scheme.rawValue).gguf")
            let fromSplit = directory.appendingPathComponent("split-\(scheme.rawValue).gguf")
            _ = try GGUFExport.write(input: Self.whole, output: fromWhole.path, scheme: scheme)
            _ = try GGUFExport.write(input: Self.parts[0], output: fromSplit.path, scheme: scheme)
            #expect(try Data(contentsOf: fromSplit) == Data(contentsOf: fromWhole), "\(scheme.rawValue)")
        }
    }

    /// A later part opened, a part missing, a first part renamed, a part with the wrong number: one line each.
    @Test func brokenSplitsAreNamed() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let copies = (1...3).map { directory.appendingPathComponent("m-0000\($0)-of-00003.gguf").path }
        func reset() throws {
            for (source, copy) in zip(Self.parts, copies) {
                try? FileManager.default.removeItem(atPath: copy)
                try FileManager.default.copyItem(atPath: source, toPath: copy)
            }
        }
        func expectError(_ path: String, _ text: String) {
            do {
                _ = try GGUFFile(path: path)
                Issue.record("\(path) opened")
            } catch {
                #expect("\(error)".contains(text), "\(error)")
            }
        }
        try reset()
        #expect(try GGUFFile(path: copies[0]).tensorInfos.count == 21)
        expectError(copies[1], "part 2 of a model split in 3 parts: open its first part (PREFIX-00001-of-00003.gguf)")
        try FileManager.default.removeItem(atPath: copies[2])
        expectError(copies[0], "part 3 of 3 (\(copies[2])) is missing")
        try reset()
        let renamed = directory.appendingPathComponent("m.gguf").path
        try FileManager.default.copyItem(atPath: copies[0], toPath: renamed)
        expectError(renamed, "must be named PREFIX-00001-of-00003.gguf")
        try FileManager.default.removeItem(atPath: copies[2])
        try FileManager.default.copyItem(atPath: copies[1], toPath: copies[2])
        expectError(copies[0], "split.no is 1, not 2 as its name says")
    }
}
