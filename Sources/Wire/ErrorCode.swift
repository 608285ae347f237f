/// Every error code a command can emit (`infer`, `serve`): the `error.code` of an error response
/// (schemas/error.schema.json lists exactly these; a test checks it) and the
/// `norbert-error-code` header of a dead letter.
public enum ErrorCode: String, Sendable, CaseIterable, Hashable {
    // Requests (the pipelines, for `infer` and `serve` alike).

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

    // Messages (the Kafka worker, `serve` only).

    /// The message has no value (a tombstone).
    case emptyMessage = "empty_message"
    /// The message value is larger than `--max-message-bytes`.
    case messageTooLarge = "message_too_large"
    /// The `reply-to` header is repeated, not UTF-8 or not a topic name.
    case invalidReplyTo = "invalid_reply_to"
    /// The `reply-to` topic is not allowed (`--reply-to-allow`) or is one of the worker's own.
    case replyToNotAllowed = "reply_to_not_allowed"
    /// The answer could not be delivered where it should go (the error response says why).
    case undeliverableResponse = "undeliverable_response"

    /// Who detects a failure with this code.
    public enum Origin: Sendable { case request, message }

    public var origin: Origin {
        switch self {
        case .emptyMessage, .messageTooLarge, .invalidReplyTo, .replyToNotAllowed, .undeliverableResponse: return .message
        case .invalidJSON, .invalidRequest, .missingField, .wrongType, .invalidValue, .unknownTask, .unknownHead,
            .unsupportedTask, .emptyInput, .inputTooLong, .invalidInput, .requestTooCostly, .internalError:
            return .request
        }
    }
}
