import Tensors
import Wire

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// What the header says about one tensor.
public struct SafeTensorInfo: Sendable, Equatable {
    public let name: String
    public let dtype: SafeTensorsDType
    public let shape: [Int]
    /// Bytes in the data section (= elementCount * dtype.bitSize / 8).
    public let byteCount: Int
    /// The tensor's byte range, relative to the start of the data section.
    public let dataOffsets: Range<Int>

    public init(name: String, dtype: SafeTensorsDType, shape: [Int], byteCount: Int, dataOffsets: Range<Int>) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.byteCount = byteCount
        self.dataOffsets = dataOffsets
    }

    /// Product of the shape (1 for a scalar). Validated not to overflow at open.
    public var elementCount: Int { shape.reduce(1, *) }
}

/// One memory-mapped `.safetensors` file (mmap, PROT_READ, MAP_PRIVATE; munmap on deinit).
///
/// The header is fully validated at open: every field is type- and bounds-checked with
/// overflow-checked arithmetic, so no later access can read outside the mapping. Accepted but
/// not required by the format: gaps between tensors and trailing bytes after the last tensor.
/// Zero-element tensors are allowed (they occupy no bytes and overlap nothing).
///
/// Like every mmap reader, this assumes the file is not truncated by another process while
/// mapped (that would raise SIGBUS on access); replacing it by rename, as the writer does, is safe.
public final class SafeTensorsFile: @unchecked Sendable {
    /// Largest accepted header (same limit as the reference implementation).
    public static let maximumHeaderSize = 100_000_000

    public let path: String
    /// Total size of the file in bytes.
    public let fileSize: Int
    /// Length of the JSON header (the little-endian u64 prefix).
    public let headerByteCount: Int

    private let mapping: UnsafeRawPointer
    private let dataStart: Int
    private let entries: [SafeTensorInfo]
    private let lookup: [String: Int]
    private let storedNames: [String]
    private let storedMetadata: [String: String]

    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)  // O_NONBLOCK: a FIFO must not hang us
        guard fd >= 0 else {
            throw SafeTensorsError(.io, file: path, "cannot open: \(errnoText())")
        }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0 else {
            throw SafeTensorsError(.io, file: path, "cannot stat: \(errnoText())")
        }
        guard (Int(status.st_mode) & Int(S_IFMT)) == Int(S_IFREG) else {
            throw SafeTensorsError(.io, file: path, "not a regular file")
        }
        let size = Int(status.st_size)
        guard size >= 8 else {
            throw SafeTensorsError(
                .truncated, file: path,
                "file is \(size) bytes, shorter than the 8-byte header length prefix")
        }
        guard let mapped = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0),
            mapped != UnsafeMutableRawPointer(bitPattern: -1)
        else {
            throw SafeTensorsError(.io, file: path, "cannot mmap \(size) bytes: \(errnoText())")
        }
        let header: ParsedHeader
        do {
            header = try HeaderParser.parse(UnsafeRawBufferPointer(start: mapped, count: size), file: path)
        } catch {
            munmap(mapped, size)
            throw error
        }
        self.mapping = UnsafeRawPointer(mapped)
        self.fileSize = size
        self.headerByteCount = header.headerByteCount
        self.dataStart = 8 + header.headerByteCount
        self.entries = header.entries
        self.storedNames = header.entries.map(\.name)
        self.storedMetadata = header.metadata
        var lookup: [String: Int] = [:]
        lookup.reserveCapacity(header.entries.count)
        for (i, entry) in header.entries.enumerated() { lookup[entry.name] = i }
        self.lookup = lookup
    }

    deinit {
        munmap(UnsafeMutableRawPointer(mutating: mapping), fileSize)
    }

    /// The `__metadata__` map (empty if absent).
    public var metadata: [String: String] { storedMetadata }

    /// Tensor names in file order (ascending data offsets).
    public var names: [String] { storedNames }

    /// Every tensor's header entry, in file order.
    public var infos: [SafeTensorInfo] { entries }

    /// Size of the data section (file size minus 8 minus the header).
    public var dataSectionByteCount: Int { fileSize - dataStart }

    public func contains(_ name: String) -> Bool { lookup[name] != nil }

    public func info(_ name: String) -> SafeTensorInfo? {
        guard let index = lookup[name] else { return nil }
        return entries[index]
    }

    private func entry(_ name: String) throws(SafeTensorsError) -> SafeTensorInfo {
        guard let index = lookup[name] else {
            throw SafeTensorsError(.missingTensor, file: path, tensor: name, "no such tensor in this file")
        }
        return entries[index]
    }

    private func bytes(of entry: SafeTensorInfo) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: mapping + dataStart + entry.dataOffsets.lowerBound, count: entry.byteCount)
    }

    /// The tensor's values converted to float32: F32 (copied), F16 and BF16 (exact), F64
    /// (rounded to nearest), F8_E5M2 and F8_E4M3 (exact). Other dtypes throw `.unsupportedDType`.
    public func floats(_ name: String) throws -> [Float] {
        let entry = try entry(name)
        let source = bytes(of: entry)
        let count = entry.elementCount
        let convert: (UnsafeRawBufferPointer, UnsafeMutableBufferPointer<Float>) -> Void
        switch entry.dtype {
        case .F32: convert = Convert.f32
        case .BF16: convert = Convert.bf16
        case .F16: convert = Convert.f16
        case .F64: convert = Convert.f64
        case .F8_E5M2: convert = Convert.e5m2
        case .F8_E4M3: convert = Convert.e4m3
        default:
            throw SafeTensorsError(
                .unsupportedDType, file: path, tensor: name,
                "dtype \(entry.dtype.rawValue) cannot be read as float32"
                    + (entry.dtype.convertsToInt64 ? " (use int64s)" : ""))
        }
        return [Float](unsafeUninitializedCapacity: count) { buffer, initialized in
            convert(source, UnsafeMutableBufferPointer(rebasing: buffer[0..<count]))
            initialized = count
        }
    }

    /// The tensor as float32 values with its shape (see `floats`).
    public func tensor(_ name: String) throws -> Tensor {
        let values = try floats(name)
        guard let shape = info(name)?.shape else {
            throw SafeTensorsError(.missingTensor, file: path, tensor: name, "no such tensor in this file")
        }
        return Tensor(shape: shape, storage: values)
    }

    /// The tensor's values as Int64: I64 (copied); I32, I16, I8, U32, U16, U8 and BOOL (0/1)
    /// widened; U64 only if every value fits. Float dtypes throw `.unsupportedDType`.
    public func int64s(_ name: String) throws -> [Int64] {
        let entry = try entry(name)
        guard entry.dtype.convertsToInt64 else {
            throw SafeTensorsError(
                .unsupportedDType, file: path, tensor: name,
                "dtype \(entry.dtype.rawValue) cannot be read as int64")
        }
        let source = bytes(of: entry)
        let count = entry.elementCount
        var badIndex: Int?
        let values = [Int64](unsafeUninitializedCapacity: count) { buffer, initialized in
            let destination = UnsafeMutableBufferPointer(rebasing: buffer[0..<count])
            if entry.dtype == .I64 {
                Convert.i64(source, into: destination)
            } else {
                badIndex = Convert.widen(entry.dtype, source, into: destination)
            }
            initialized = badIndex == nil ? count : 0
        }
        if let badIndex {
            throw SafeTensorsError(
                .unsupportedDType, file: path, tensor: name,
                "U64 value at index \(badIndex) does not fit in Int64")
        }
        return values
    }

    /// Calls `body` with the tensor's raw little-endian bytes inside the mapping (no copy; no
    /// alignment guarantee). The pointer must not escape `body`.
    public func withRawBytes<R>(_ name: String, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        let entry = try entry(name)
        return try withExtendedLifetime(self) { try body(bytes(of: entry)) }
    }
}

// MARK: - Header validation

struct ParsedHeader {
    var headerByteCount: Int
    var entries: [SafeTensorInfo]
    var metadata: [String: String]
}

enum HeaderParser {
    /// Validates the whole file layout; `file` covers the entire file (at least 8 bytes).
    static func parse(_ file: UnsafeRawBufferPointer, file path: String) throws(SafeTensorsError) -> ParsedHeader {
        func fail(_ kind: SafeTensorsError.Kind, _ tensor: String? = nil, _ message: String) -> SafeTensorsError {
            SafeTensorsError(kind, file: path, tensor: tensor, message)
        }
        let declared = UInt64(littleEndian: file.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
        guard declared <= UInt64(SafeTensorsFile.maximumHeaderSize) else {
            throw fail(.invalidHeader, nil, "header length \(declared) exceeds the \(SafeTensorsFile.maximumHeaderSize)-byte limit")
        }
        let headerLength = Int(declared)
        guard headerLength <= file.count - 8 else {
            throw fail(.truncated, nil, "header length \(headerLength) exceeds the \(file.count - 8) bytes after the length prefix")
        }
        let dataStart = 8 + headerLength
        let dataSize = file.count - dataStart

        let json: JSONValue
        do {
            json = try JSONValue.parse(UnsafeRawBufferPointer(rebasing: file[8..<dataStart]), limits: .safeTensors)
        } catch {
            throw fail(.invalidHeader, nil, "header is not valid JSON: \(error.message) at header byte \(error.offset)")
        }
        guard case let .object(members) = json else {
            throw fail(.invalidHeader, nil, "header is \(json.typeName), not a JSON object")
        }

        var metadata: [String: String] = [:]
        var pending: [(info: Pending, order: Int)] = []
        pending.reserveCapacity(members.count)
        for (key, value) in members {
            if key == "__metadata__" {
                guard case let .object(pairs) = value else {
                    throw fail(.invalidHeader, nil, "__metadata__ is \(value.typeName), not an object of strings")
                }
                for (mkey, mvalue) in pairs {
                    guard case let .string(text) = mvalue else {
                        throw fail(.invalidHeader, nil, "__metadata__ value for \"\(mkey)\" is \(mvalue.typeName), not a string")
                    }
                    metadata[mkey] = text
                }
                continue
            }
            pending.append((try parseEntry(name: key, value, fail), pending.count))
        }

        // File order: ascending offsets; header order breaks ties (zero-size tensors).
        pending.sort { a, b in
            (a.info.begin, a.info.end, a.order) < (b.info.begin, b.info.end, b.order)
        }

        var entries: [SafeTensorInfo] = []
        entries.reserveCapacity(pending.count)
        var furthest: (end: Int, name: String, begin: Int)?
        for (p, _) in pending {
            let offsetsText = "data offsets [\(p.begin), \(p.end)]"
            guard p.begin <= p.end else {
                throw fail(.offsetsOutOfBounds, p.name, "\(offsetsText) are inverted (begin > end)")
            }
            guard p.end <= dataSize else {
                throw fail(.offsetsOutOfBounds, p.name, "\(offsetsText) exceed the \(dataSize)-byte data section")
            }
            let (bits, overflow) = p.elementCount.multipliedReportingOverflow(by: p.dtype.bitSize)
            guard !overflow else {
                throw fail(.invalidHeader, p.name, "byte size of \(p.dtype.rawValue) \(shapeText(p.shape)) overflows")
            }
            guard bits % 8 == 0 else {
                throw fail(
                    .shapeMismatch, p.name,
                    "\(p.elementCount) elements of \(p.dtype.rawValue) are not a whole number of bytes")
            }
            let needed = bits / 8
            guard p.end - p.begin == needed else {
                throw fail(
                    .shapeMismatch, p.name,
                    "\(offsetsText) hold \(p.end - p.begin) bytes but \(p.dtype.rawValue) \(shapeText(p.shape)) needs \(needed)")
            }
            if p.end > p.begin {
                if let previous = furthest, p.begin < previous.end {
                    throw fail(
                        .overlappingTensors, p.name,
                        "\(offsetsText) overlap tensor '\(previous.name)' [\(previous.begin), \(previous.end)]")
                }
                if p.end > (furthest?.end ?? 0) { furthest = (p.end, p.name, p.begin) }
            }
            entries.append(
                SafeTensorInfo(
                    name: p.name, dtype: p.dtype, shape: p.shape,
                    byteCount: needed, dataOffsets: p.begin..<p.end))
        }
        return ParsedHeader(headerByteCount: headerLength, entries: entries, metadata: metadata)
    }

    struct Pending {
        var name: String
        var dtype: SafeTensorsDType
        var shape: [Int]
        var elementCount: Int
        var begin: Int
        var end: Int
    }

    private static func parseEntry(
        name: String, _ value: JSONValue,
        _ fail: (SafeTensorsError.Kind, String?, String) -> SafeTensorsError
    ) throws(SafeTensorsError) -> Pending {
        guard case let .object(fields) = value else {
            throw fail(.invalidHeader, name, "entry is \(value.typeName), not an object")
        }
        func field(_ key: String) throws(SafeTensorsError) -> JSONValue {
            guard let found = fields.first(where: { $0.0 == key }) else {
                throw fail(.invalidHeader, name, "entry has no \"\(key)\"")
            }
            return found.1
        }
        let dtypeValue = try field("dtype")
        let shapeValue = try field("shape")
        let offsetsValue = try field("data_offsets")

        guard case let .string(dtypeName) = dtypeValue else {
            throw fail(.invalidHeader, name, "\"dtype\" is \(dtypeValue.typeName), not a string")
        }
        guard case let .array(dims) = shapeValue else {
            throw fail(.invalidHeader, name, "\"shape\" is \(shapeValue.typeName), not an array")
        }
        guard case let .array(offsets) = offsetsValue else {
            throw fail(.invalidHeader, name, "\"data_offsets\" is \(offsetsValue.typeName), not an array")
        }
        guard let dtype = SafeTensorsDType(rawValue: dtypeName) else {
            throw fail(.unknownDType, name, "unknown dtype '\(dtypeName)'")
        }

        var shape: [Int] = []
        shape.reserveCapacity(dims.count)
        for dim in dims {
            guard let d = dim.exactInt else {
                throw fail(.invalidHeader, name, "\"shape\" holds \(dim.scalarText ?? dim.typeName), not an integer that fits in Int")
            }
            shape.append(d)
        }
        if let negative = shape.first(where: { $0 < 0 }) {
            throw fail(.invalidHeader, name, "shape \(shapeText(shape)) has negative dimension \(negative)")
        }
        var elementCount = 1
        for d in shape {
            let (product, overflow) = elementCount.multipliedReportingOverflow(by: d)
            guard !overflow else {
                throw fail(.invalidHeader, name, "element count of shape \(shapeText(shape)) overflows")
            }
            elementCount = product
        }

        guard offsets.count == 2 else {
            throw fail(.invalidHeader, name, "\"data_offsets\" has \(offsets.count) elements, expected [begin, end]")
        }
        var bounds: [Int] = []
        for offset in offsets {
            guard let o = offset.exactInt, o >= 0 else {
                throw fail(
                    .invalidHeader, name,
                    "\"data_offsets\" holds \(offset.scalarText ?? offset.typeName), not a non-negative integer that fits in Int")
            }
            bounds.append(o)
        }
        return Pending(
            name: name, dtype: dtype, shape: shape, elementCount: elementCount,
            begin: bounds[0], end: bounds[1])
    }
}
