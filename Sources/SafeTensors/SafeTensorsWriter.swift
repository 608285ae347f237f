import Tensors
import Wire

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Writes `.safetensors` files: 8-byte little-endian header length, JSON header padded with
/// spaces to a multiple of 8 bytes (`__metadata__` first, then tensors in the given order), then
/// the data of each tensor, contiguous, in the given order.
///
/// The write is atomic: data goes to a temporary file in the same folder, which is fsynced and
/// then renamed over `path`; on failure the temporary file is removed and `path` is untouched.
public enum SafeTensorsWriter {
    public enum Value: Sendable {
        case float32(Tensor)
        case int64(shape: [Int], values: [Int64])
    }

    public static func write(
        _ tensors: [(name: String, value: Value)], to path: String,
        metadata: [String: String]? = nil
    ) throws {
        let header = try headerBytes(tensors, path: path, metadata: metadata)
        let temporary = path + ".tmp-\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw SafeTensorsError(.io, file: path, "cannot create temporary file \(temporary): \(errnoText())")
        }
        do {
            var length = UInt64(header.count).littleEndian
            try withUnsafeBytes(of: &length) { try writeAll(fd, $0, path: path) }
            try header.withUnsafeBytes { try writeAll(fd, $0, path: path) }
            for (_, value) in tensors {
                switch value {
                case let .float32(tensor):
                    try writeLittleEndian(tensor.storage, fd: fd, path: path)
                case let .int64(_, values):
                    try writeLittleEndian(values, fd: fd, path: path)
                }
            }
            guard fsync(fd) == 0 else {
                throw SafeTensorsError(.io, file: path, "fsync failed: \(errnoText())")
            }
            guard close(fd) == 0 else {
                unlink(temporary)
                throw SafeTensorsError(.io, file: path, "close failed: \(errnoText())")
            }
        } catch {
            close(fd)
            unlink(temporary)
            throw error
        }
        guard rename(temporary, path) == 0 else {
            let text = errnoText()
            unlink(temporary)
            throw SafeTensorsError(.io, file: path, "cannot rename \(temporary) into place: \(text)")
        }
    }

    /// The padded JSON header for `tensors` (validated: unique names, not `__metadata__`,
    /// non-negative shapes whose element count matches the values).
    static func headerBytes(
        _ tensors: [(name: String, value: Value)], path: String,
        metadata: [String: String]?
    ) throws(SafeTensorsError) -> [UInt8] {
        var parts: [String] = []
        parts.reserveCapacity(tensors.count + 1)
        if let metadata {
            let pairs = metadata.keys.sorted().map { key in
                JSONValue.quoted(key) + ":" + JSONValue.quoted(metadata[key] ?? "")
            }
            parts.append("\"__metadata__\":{" + pairs.joined(separator: ",") + "}")
        }
        var seen = Set<String>()
        var offset = 0
        for (name, value) in tensors {
            guard name != "__metadata__" else {
                throw SafeTensorsError(.invalidHeader, file: path, tensor: name, "the name __metadata__ is reserved")
            }
            guard seen.insert(name).inserted else {
                throw SafeTensorsError(.invalidHeader, file: path, tensor: name, "duplicate tensor name")
            }
            let dtype: SafeTensorsDType
            let shape: [Int]
            let count: Int
            switch value {
            case let .float32(tensor):
                (dtype, shape, count) = (.F32, tensor.shape, tensor.storage.count)
            case let .int64(s, values):
                (dtype, shape, count) = (.I64, s, values.count)
            }
            var elements = 1
            for d in shape {
                let (product, overflow) = elements.multipliedReportingOverflow(by: d)
                guard d >= 0, !overflow else {
                    throw SafeTensorsError(.shapeMismatch, file: path, tensor: name, "invalid shape \(shapeText(shape))")
                }
                elements = product
            }
            guard elements == count else {
                throw SafeTensorsError(
                    .shapeMismatch, file: path, tensor: name,
                    "shape \(shapeText(shape)) needs \(elements) values, got \(count)")
            }
            let end = offset + count * (dtype.bitSize / 8)
            parts.append(
                JSONValue.quoted(name) + ":{\"dtype\":\"\(dtype.rawValue)\",\"shape\":["
                    + shape.map(String.init).joined(separator: ",")
                    + "],\"data_offsets\":[\(offset),\(end)]}")
            offset = end
        }
        var bytes = Array(("{" + parts.joined(separator: ",") + "}").utf8)
        let padding = (8 - bytes.count % 8) % 8
        bytes.append(contentsOf: repeatElement(UInt8(ascii: " "), count: padding))
        return bytes
    }

    private static func writeLittleEndian<T: FixedWidthInteger>(_ values: [T], fd: Int32, path: String) throws {
        #if _endian(little)
            try values.withUnsafeBytes { raw in try writeAll(fd, raw, path: path) }
        #else
            let swapped = values.map(\.littleEndian)
            try swapped.withUnsafeBytes { raw in try writeAll(fd, raw, path: path) }
        #endif
    }

    private static func writeLittleEndian(_ values: [Float], fd: Int32, path: String) throws {
        #if _endian(little)
            try values.withUnsafeBytes { raw in try writeAll(fd, raw, path: path) }
        #else
            try writeLittleEndian(values.map(\.bitPattern), fd: fd, path: path)
        #endif
    }

    private static func writeAll(_ fd: Int32, _ buffer: UnsafeRawBufferPointer, path: String) throws(SafeTensorsError) {
        guard let base = buffer.baseAddress else { return }
        var done = 0
        while done < buffer.count {
            let chunk = min(buffer.count - done, 1 << 30)
            let n = posixWrite(fd, base + done, chunk)
            if n < 0 {
                if errno == EINTR { continue }
                throw SafeTensorsError(.io, file: path, "write failed: \(errnoText())")
            }
            done += n
        }
    }
}

/// The C `write`, reachable from inside `SafeTensorsWriter` (whose own `write` shadows it).
private func posixWrite(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int {
    write(fd, buffer, count)
}
