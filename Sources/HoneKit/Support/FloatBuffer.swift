import Foundation

/// An owned, uninitialised-then-filled block of f32 values: the activations and scratch of a forward pass.
/// A class so that large buffers are never copied by value semantics; aligned to 64 bytes for AVX-512 loads.
public final class FloatBuffer: @unchecked Sendable {
    public let count: Int
    public let pointer: UnsafeMutablePointer<Float>

    public init(count: Int) {
        self.count = count
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * 4, alignment: 64)
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
    }

    public convenience init(zeros count: Int) {
        self.init(count: count)
        pointer.initialize(repeating: 0, count: count)
    }

    public convenience init(_ values: [Float]) {
        self.init(count: values.count)
        values.withUnsafeBufferPointer { source in
            if let base = source.baseAddress { pointer.update(from: base, count: values.count) }
        }
    }

    deinit { UnsafeMutableRawPointer(pointer).deallocate() }

    public subscript(index: Int) -> Float {
        get { pointer[index] }
        set { pointer[index] = newValue }
    }

    public var array: [Float] { Array(UnsafeBufferPointer(start: pointer, count: count)) }
}
