/// A failure of one request: a stable machine-readable `code` and a human-readable `message`.
/// Every bad input maps to one of these (never a crash); `infer` writes it as an error response.
public struct PipelineError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The codes are the contract's (``ErrorCode``, every code any command emits).
    public typealias Code = ErrorCode

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.rawValue): \(message)" }
}
