/// What the worker runs requests on: the narrow interface between the Kafka loop and the task
/// pipelines. The production implementation is ``PipelinesBackend``.
///
/// `prepare` decodes and validates one message value and estimates its tokens (cheap, called
/// from the poll task; the tokenizer runs on the lanes, in parallel); `run` executes one batch on
/// one inference lane and is blocking: the worker calls it on
/// that lane's own thread, never on Swift's cooperative pool, one batch at a time per lane.
public protocol InferenceBackend: Sendable {
    associatedtype Job: Sendable

    /// Number of lanes the backend was built for. Workspaces are indexed `0..<2 × lanes`: lane
    /// `l` runs its batches on workspace `l`, and short batches it runs between the steps of a
    /// long one on workspace `lanes + l`.
    var lanes: Int { get }

    /// Decodes and validates a request message value and estimates the tokens it costs.
    func prepare(_ value: [UInt8]) -> Result<PreparedJob<Job>, RequestRejection>

    /// Runs a batch on workspace `lane` (see ``lanes``). Streamed partial responses go to `emit`
    /// (the job's index in `batch`, the response; `isFinal` false) the moment they are computed,
    /// in order. `between` is called between steps (after each encoder pass and each decoding
    /// step): the worker records the lane's progress there and may run a short batch on the
    /// lane's second workspace before the next step. Returns, per job and in the same order, the
    /// rest to publish after those: any partials not emitted, then the job's responses, the last
    /// of which is final.
    func run(_ batch: [Job], lane: Int, emit: (Int, BackendResponse) -> Void, between: () -> Void) -> [[BackendResponse]]

    /// Runs one small request per lane so the first real batch does not pay for warm-up.
    func warmUp(lane: Int)

    /// An error response (schemas/ format) for failures the worker itself detects (oversize or
    /// empty message, unusable `reply-to`, undeliverable answer); `id`: the request's, when known.
    func errorResponse(code: String, message: String, id: String?) -> [UInt8]
}

/// A request ready for batching.
public struct PreparedJob<Job: Sendable>: Sendable {
    public var job: Job
    /// Encoder tokens it costs (all windows and choices).
    public var tokens: Int
    /// Requests with equal keys run on the same encoder and may share a batch.
    public var encoderKey: Int
    /// Decoding steps the request may take (text generation's `max_new_tokens`; 0 otherwise):
    /// such requests run in batches of their own, and short ones never wait behind them.
    public var steps: Int = 0
    /// Metric labels.
    public var task: String
    public var head: String
    /// The request's id (for error responses the worker makes itself).
    public var id: String?

    public init(job: Job, tokens: Int, encoderKey: Int, task: String, head: String, id: String? = nil) {
        self.id = id
        self.job = job
        self.tokens = tokens
        self.encoderKey = encoderKey
        self.task = task
        self.head = head
    }
}

/// A message that is not a valid request: it goes to the dead-letter topic, and `response` (an
/// error response in the schemas/ format) goes to the requester.
public struct RequestRejection: Error, Sendable, Equatable {
    /// Stable machine-readable code (e.g. `invalid_json`).
    public var code: String
    public var message: String
    /// The error response to publish (UTF-8 JSON).
    public var response: [UInt8]
    public var task: String
    public var head: String
    /// The request's id, when it could be read.
    public var id: String?

    public init(code: String, message: String, response: [UInt8], task: String = "unknown", head: String = "none", id: String? = nil) {
        self.id = id
        self.code = code
        self.message = message
        self.response = response
        self.task = task
        self.head = head
    }
}

/// One message to publish for a request.
public struct BackendResponse: Sendable, Equatable {
    public var value: [UInt8]
    /// `false` for streamed partial responses; exactly one final response ends each request.
    public var isFinal: Bool
    /// The request failed at run time because of its input: dead-letter it too.
    public var rejection: RequestRejection?
    /// Metric labels: `ok` or the error code.
    public var outcome: String
    public var task: String
    public var head: String

    public init(
        value: [UInt8], isFinal: Bool = true, rejection: RequestRejection? = nil, outcome: String = "ok", task: String, head: String
    ) {
        self.value = value
        self.isFinal = isFinal
        self.rejection = rejection
        self.outcome = outcome
        self.task = task
        self.head = head
    }
}
