import Foundation
import Testing
@testable import HoneKit

@Suite struct GGUFWriterTests {
    /// Rewriting a GGUF made by the Python gguf package (metadata in order with its types, tensors in order)
    /// reproduces the file byte for byte: same header layout, alignment and padding.
    @Test(arguments: ["llama-gqa-f32.gguf", "llama-gqa-f16.gguf", "qwen2-bias-f32.gguf", "llama-tied-llama3-f32.gguf",
                      "llama-gqa-q8_0.gguf", "llama-gqa-q4_0.gguf"])
    func rewritesThePythonPackagesFilesByteForByte(name: String) throws {
        let source = Repository.fixture("gguf/\(name)")
        let file = try GGUFFile(path: source)
        let writer = GGUFWriter()
        for key in file.metadataKeys {
            let types = file.metadataTypes[key]!
            writer.add(key, value: file.metadata[key]!, type: types.type, arrayType: types.elementType)
        }
        for info in file.tensorInfos {
            let view = try file.tensorView(info)
            writer.add(tensor: .init(name: info.name, shape: info.shape, dtype: view.dtype) {
                Data(bytes: view.data, count: view.byteCount)
            })
        }
        let output = try makeTemporaryDirectory().appendingPathComponent(name).path
        try writer.write(to: output)
        #expect(try Data(contentsOf: URL(fileURLWithPath: output)) == Data(contentsOf: URL(fileURLWithPath: source)))
        #expect(!FileManager.default.fileExists(atPath: output + ".tmp"))
    }

    /// Values of every kind survive a write and a read, and a model written this way runs.
    @Test func roundTripsMetadataAndTensors() throws {
        let writer = GGUFWriter()
        writer.add("general.architecture", string: "llama")
        writer.add("test.u32", uint32: 4_000_000_000)
        writer.add("test.i32", int32: -7)
        writer.add("test.f32", float32: 0.25)
        writer.add("test.bool", bool: true)
        writer.add("test.strings", strings: ["a", "", "ü ▁ \u{FEFF}"])
        writer.add("test.floats", float32s: [1.5, -2])
        let values: [Float] = (0..<64).map { Float($0) / 8 - 4 }
        writer.add(tensor: .init(name: "w", shape: [2, 32], dtype: .f32) { values.withUnsafeBytes { Data($0) } })
        let path = try makeTemporaryDirectory().appendingPathComponent("t.gguf").path
        try writer.write(to: path)
        let file = try GGUFFile(path: path)
        #expect(file.string("general.architecture") == "llama")
        #expect(file.integer("test.u32") == 4_000_000_000)
        #expect(file.integer("test.i32") == -7)
        #expect(file.double("test.f32") == 0.25)
        #expect(file.metadata["test.bool"]?.boolValue == true)
        #expect(file.metadata["test.strings"]?.arrayValue?.compactMap(\.stringValue) == ["a", "", "ü ▁ \u{FEFF}"])
        #expect(file.metadata["test.floats"]?.arrayValue?.compactMap(\.doubleValue) == [1.5, -2])
        #expect(try file.tensorView(file.tensorInfos[0]).floats() == values)
        #expect(file.tensorInfos[0].shape == [2, 32])
    }

    @Test func wrongTensorSizeLeavesNoFile() throws {
        let writer = GGUFWriter()
        writer.add(tensor: .init(name: "w", shape: [4], dtype: .f32) { Data(count: 12) })
        let path = try makeTemporaryDirectory().appendingPathComponent("bad.gguf").path
        #expect(throws: HoneError.self) { try writer.write(to: path) }
        #expect(!FileManager.default.fileExists(atPath: path))
        #expect(!FileManager.default.fileExists(atPath: path + ".tmp"))
    }
}
