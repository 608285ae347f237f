/// Every failure of this module: what went wrong, in which file, for which tensor.
///
/// `file` is the path exactly as the caller gave it (joined with the shard name for sharded
/// checkpoints; the folder itself when no weight file could be found). `description` reads
/// `"<file>: tensor '<name>': <message>"`, or `"<file>: <message>"` when no tensor is involved.
public struct SafeTensorsError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// The file cannot be opened, mapped, read or written (missing file, not a regular file, ...).
        case io
        /// The file is shorter than its 8-byte length prefix or its declared header.
        case truncated
        /// The header is not valid JSON / UTF-8 / a JSON object, is absurdly large, or an entry
        /// has missing or ill-typed fields, negative dimensions or an overflowing element count.
        case invalidHeader
        /// A tensor's data offsets are inverted (begin > end) or end beyond the data section.
        case offsetsOutOfBounds
        /// Two tensors' byte ranges overlap (both names are in the error).
        case overlappingTensors
        /// The header names a dtype this module does not know.
        case unknownDType
        /// Byte range length and shape x dtype size disagree, or a shape differs from the expected one.
        case shapeMismatch
        /// The requested tensor is not in the file / checkpoint, or a shard lacks a tensor its index lists.
        case missingTensor
        /// The tensor's dtype cannot be converted to the requested element type.
        case unsupportedDType
        /// `model.safetensors.index.json` is malformed or names an unsafe shard path.
        case invalidIndex
    }

    public let kind: Kind
    public let file: String
    public let tensor: String?
    public let message: String

    public init(_ kind: Kind, file: String, tensor: String? = nil, _ message: String) {
        self.kind = kind
        self.file = file
        self.tensor = tensor
        self.message = message
    }

    public var description: String {
        if let tensor {
            return "\(file): tensor '\(tensor)': \(message)"
        }
        return "\(file): \(message)"
    }
}

/// Renders a shape as `[2048, 64]` for error messages.
func shapeText(_ shape: [Int]) -> String {
    "[" + shape.map(String.init).joined(separator: ", ") + "]"
}

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// The text of the current `errno`.
func errnoText(_ code: Int32 = errno) -> String {
    if let text = strerror(code) {
        return String(cString: text)
    }
    return "errno \(code)"
}
