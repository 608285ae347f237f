/// Errors of loading and running a NorBERT 4 checkpoint. Each names what is wrong and where.
public enum NorBERTError: Error, CustomStringConvertible, Sendable, Equatable {
    /// config.json is missing, malformed, or holds a missing or absurd field.
    case config(path: String, message: String)
    /// A weight is missing or its shape contradicts config.json.
    case checkpoint(message: String)
    /// The checkpoint has no weights for the requested head.
    case unsupportedHead(String)
    /// Bad inputs: ids outside the vocabulary, wrong ranks, empty sequences.
    case invalidInput(String)

    public var description: String {
        switch self {
        case .config(let path, let message): return "\(path): \(message)"
        case .checkpoint(let message): return message
        case .unsupportedHead(let message): return message
        case .invalidInput(let message): return "invalid input: \(message)"
        }
    }
}
