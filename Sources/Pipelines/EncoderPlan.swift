import NorBERT
import Tensors
import Tokenizers
import Wire

/// What one (request, head) pair needs from the encoder, and how it turns the outputs into a result.
/// The engine packs the sequences of many plans into shared encoder passes (identical token
/// sequences of heads on one encoder are run once) and applies each head once per pass.
protocol EncoderPlan {
    /// Token id sequences to run (windows, choices, …), special tokens included.
    var sequences: [[Int]] { get }
    /// Positions of sequence `i` whose head outputs `finish` needs.
    func headRows(_ i: Int) -> [Int]
    /// Whether `finish` needs the last hidden states of every position.
    var needsHidden: Bool { get }
    func finish(_ out: PlanOutputs) throws(PipelineError) -> (JSONValue, Usage)
    /// The streamed partial result once the first `count` sequences are encoded (`out` holds
    /// those), or nil when the plan has none at that point. Never asked for the last sequence:
    /// the final result covers it.
    func partial(_ out: PlanOutputs, sequences count: Int) -> (JSONValue, Usage)?
}

extension EncoderPlan {
    func partial(_ out: PlanOutputs, sequences count: Int) -> (JSONValue, Usage)? { nil }
}

/// Called on the engine's thread with each streamed partial response as soon as it is computed:
/// the index of its request in the batch, and the response.
public typealias PartialHandler = (_ request: Int, _ response: PipelineResponse) -> Void

/// The encoder's answer to a plan: per sequence, the head outputs of the rows it asked for
/// ([rows, width], row-major) and, when asked, the hidden states ([length, hidden]).
struct PlanOutputs {
    var logits: [Tensor]
    var hidden: [Tensor]
}

/// Counters of one `run` (what the batching did).
public struct RunStats: Sendable, Equatable {
    /// Encoder passes run (packed batches).
    public var encoderPasses = 0
    /// Distinct sequences run through an encoder.
    public var encodedSequences = 0
    /// Tokens run through an encoder (prefill only, not generation steps).
    public var encodedTokens = 0
    /// Sequences the plans asked for (before merging identical ones on a shared encoder).
    public var requestedSequences = 0
    /// Head applications (one per head per pass).
    public var headApplications = 0
    /// Windows and choices the plans built, counted as they are made (also those of a request that
    /// fails afterwards): a request rejected by its price builds none.
    public var builtSequences = 0
    public init() {}
}

/// The responses of one `run`: per request, one response per head it named (in order).
public struct BatchResult: Sendable {
    public var responses: [[PipelineResponse]]
    /// Per request (same order as `responses`): the streamed partial responses of requests with
    /// `"stream": true`, in publishing order; each head's partials come before its final response.
    /// Empty when the run was given a `PartialHandler` (the partials went there instead).
    public var partials: [[PipelineResponse]]
    public var stats: RunStats
    /// All responses in request order.
    public var flat: [PipelineResponse] { responses.flatMap { $0 } }

    public init(responses: [[PipelineResponse]], partials: [[PipelineResponse]]? = nil, stats: RunStats) {
        self.responses = responses
        self.partials = partials ?? responses.map { _ in [] }
        self.stats = stats
    }

    /// Per request: every head's partial responses followed by its final response, heads in order
    /// (what `infer` writes and the worker publishes for a streamed request).
    public func stream(_ request: Int) -> [PipelineResponse] {
        let partial = request < partials.count ? partials[request] : []
        guard !partial.isEmpty else { return responses[request] }
        var out: [PipelineResponse] = []
        for final in responses[request] {
            out.append(contentsOf: partial.filter { $0.head == final.head })
            out.append(final)
        }
        return out
    }
}

extension PipelineEngine {
    /// Checks a tokenized input against the maximum length.
    func checkLength(_ count: Int, what: String) throws(PipelineError) {
        if count > maxInputTokens {
            throw PipelineError(.inputTooLong, "\(what) is \(count) tokens, more than the maximum of \(maxInputTokens)")
        }
    }

    /// The most tokens one text (or either text of a pair) may have in any task: more than the
    /// maximum input length is rejected without windows, and with windows costs more encoder
    /// tokens than a request may. Tokenizing stops past it (see ``encode(_:pair:limit:what:)``).
    var tokenLimit: Int { max(maxInputTokens, maxRequestTokens) }

    /// Encodes without truncation or padding (the tokenizer's own settings are ignored). Tokenizing
    /// stops as soon as the text or the pair has more than `limit` tokens (default
    /// ``tokenLimit``), at a cost bounded by the limit rather than by the input: see
    /// ``tooManyTokens(what:limit:hint:)``.
    func encode(
        _ text: String, pair: String? = nil, limit: Int? = nil, what: String = "the input", hint: String = ""
    ) throws(PipelineError) -> Encoding {
        let limit = limit ?? tokenLimit
        do {
            return try tokenizer.encode(text, pair: pair, addSpecialTokens: true, truncation: nil, padding: nil, maxTokens: limit)
        } catch .tooManyTokens {
            throw tooManyTokens(what: what, limit: limit, hint: hint)
        } catch {
            throw PipelineError(.invalidInput, "cannot tokenize the input: \(error.description)")
        }
    }

    /// The error of a text found to have more than `limit` tokens (tokenizing stopped there, so the
    /// exact count is not known): `input_too_long` past the maximum input, `request_too_costly`
    /// past what a request may cost.
    func tooManyTokens(what: String, limit: Int, hint: String = "") -> PipelineError {
        if limit <= maxInputTokens {
            return PipelineError(
                .inputTooLong,
                "\(what) is more than \(limit) tokens (tokenizing stopped there), more than the maximum of \(maxInputTokens)\(hint)")
        }
        return PipelineError(
            .requestTooCostly,
            """
            \(what) is more than \(limit) tokens (tokenizing stopped there): in windows or not, the request needs more encoder \
            tokens than the limit of \(maxRequestTokens) (setting max-request-tokens)
            """
        )
    }
}

/// Input field checks shared by the tasks (``PipelineRequest/input(for:)``).
extension PipelineRequest {
    func textInput(for task: PipelineTask) throws(PipelineError) -> String {
        guard case .text(let text) = try input(for: task) else { throw PipelineError(.internalError, "\(task.rawValue) reads no text") }
        return text
    }
}
