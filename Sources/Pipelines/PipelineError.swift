/// A failure of one request: a stable machine-readable `code` and a human-readable `message`.
/// Every bad input maps to one of these (never a crash); `infer` writes it as an error response.
public struct PipelineError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable, CaseIterable {
        /// The line is not valid JSON.
        case invalidJSON = "invalid_json"
        /// Valid JSON but not a request object (not an object, unknown field, contradictory fields).
        case invalidRequest = "invalid_request"
        /// A required field is absent.
        case missingField = "missing_field"
        /// A field or option has the wrong JSON type.
        case wrongType = "wrong_type"
        /// A field or option has a value outside its allowed set or range.
        case invalidValue = "invalid_value"
        /// `task` names no known task.
        case unknownTask = "unknown_task"
        /// `head` / `heads` names a head that is not configured.
        case unknownHead = "unknown_head"
        /// The named head does not serve the task, or no single head serves it.
        case unsupportedTask = "unsupported_task"
        /// An input text is empty.
        case emptyInput = "empty_input"
        /// An input is longer than the configured maximum (and no windowing was asked for).
        case inputTooLong = "input_too_long"
        /// The input cannot be processed as asked (e.g. fill-mask without a mask token).
        case invalidInput = "invalid_input"
        /// The request would cost more than a configured per-request limit (encoder tokens over all
        /// windows, choices and heads; windows; choices; masks; estimated response bytes). The
        /// message names the limit, the computed cost and the setting that raises it.
        case requestTooCostly = "request_too_costly"
        /// The model failed (should not happen with a valid checkpoint).
        case internalError = "internal_error"
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.rawValue): \(message)" }
}
