/// Owned, 64-byte aligned float32 storage with a stable address.
///
/// Model weights live in `FloatBuffer`s: written once while loading, then only read, so one
/// buffer is shared by every inference lane without copies (hence `@unchecked Sendable`: no
/// method mutates after `init` returns unless the owner says so, as lane-local workspaces do).
public final class FloatBuffer: @unchecked Sendable {
    public let count: Int
    public let pointer: UnsafeMutablePointer<Float>

    public init(count: Int) {
        self.count = count
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * MemoryLayout<Float>.stride, alignment: 64)
        self.pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        pointer.initialize(repeating: 0, count: max(count, 1))
    }

    public convenience init(_ values: [Float]) {
        self.init(count: values.count)
        values.withUnsafeBufferPointer { src in
            if let base = src.baseAddress { pointer.update(from: base, count: values.count) }
        }
    }

    deinit { UnsafeMutableRawPointer(pointer).deallocate() }

    public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: pointer, count: count) }
    public var array: [Float] { Array(UnsafeBufferPointer(start: pointer, count: count)) }
    public var byteCount: Int { count * MemoryLayout<Float>.stride }
}

/// A growable lane-local scratch buffer: `reserve(n)` keeps the old allocation when it is large enough.
public struct Scratch {
    public private(set) var storage: FloatBuffer = FloatBuffer(count: 0)
    public init() {}
    @discardableResult
    public mutating func reserve(_ n: Int) -> UnsafeMutablePointer<Float> {
        if storage.count < n { storage = FloatBuffer(count: n + n / 4) }
        return storage.pointer
    }
    public var pointer: UnsafeMutablePointer<Float> { storage.pointer }
}
