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

    /// Encodes without truncation or padding (the tokenizer's own settings are ignored).
    func encode(_ text: String, pair: String? = nil) throws(PipelineError) -> Encoding {
        do {
            return try tokenizer.encode(text, pair: pair, addSpecialTokens: true, truncation: nil, padding: nil)
        } catch {
            throw PipelineError(.invalidInput, "cannot tokenize the input: \(error.description)")
        }
    }
}

/// Input field checks shared by the tasks (``PipelineRequest/input(for:)``).
extension PipelineRequest {
    func textInput(for task: PipelineTask) throws(PipelineError) -> String {
        guard case .text(let text) = try input(for: task) else { throw PipelineError(.internalError, "\(task.rawValue) reads no text") }
        return text
    }
}
