import NorBERT
import Tokenizers
import Wire

/// What a request costs, priced before any work by ``PipelineEngine/cost(of:)``.
public struct RequestCost: Sendable, Equatable {
    /// Encoder tokens over all windows, choices and heads, special tokens included (text
    /// generation: the prompt).
    public var encoderTokens = 0
    /// Tokens generated at most: `max_new_tokens` of each text-generation head.
    public var generatedTokens = 0
    /// Most windows of one head (1 for an input in one piece).
    public var windows = 0
    /// Estimated bytes of all responses of the request (every head, streamed partials included).
    public var responseBytes = 0
    /// Counted with the tokenizer (true), or estimated from the input bytes (false).
    public var isExact = false

    public init() {}

    /// Encoder tokens one generated token weighs in a batch's budget: each decoding step runs one
    /// token per sequence through every layer, about what one prompt token costs.
    public static let generatedTokenWeight = 1

    /// The cost the batcher packs by: encoder tokens plus generated tokens × their weight.
    public var batchTokens: Int { Cost.add(encoderTokens, Cost.mul(generatedTokens, Self.generatedTokenWeight)) }
}

/// Saturating arithmetic for costs (no input can make a price overflow and trap).
enum Cost {
    static func mul(_ a: Int, _ b: Int) -> Int {
        let (r, overflow) = a.multipliedReportingOverflow(by: b)
        return overflow ? Int.max : r
    }
    static func add(_ a: Int, _ b: Int) -> Int {
        let (r, overflow) = a.addingReportingOverflow(b)
        return overflow ? Int.max : r
    }
    /// ⌈a / b⌉ for a ≥ 0, b > 0.
    static func ceilDiv(_ a: Int, _ b: Int) -> Int { a <= 0 ? 0 : (a - 1) / max(b, 1) + 1 }

    /// Bytes per token assumed when estimating without the tokenizer (the fixture corpus averages
    /// 2.6 bytes a token, NorBERT 4's own tokenizer about 4 on Norwegian prose).
    static let bytesPerToken = 3
    /// Estimated JSON bytes of one response without its result: `id`, `task`, `head`, `usage`.
    static let envelope = 160
    /// Estimated JSON bytes of one float (shortest float64 digits of a float32 value, comma).
    static let floatBytes = 24
    /// Estimated bytes of one token's text in a response (a vocabulary string, JSON-escaped).
    static let tokenTextBytes = 48
}

/// The windows a long input is cut into and the tokens they hold (special tokens included).
struct WindowExtent: Equatable {
    var windows: Int
    var tokens: Int

    /// Classification (`overflow: window`), as ``LongInput/split``: `n` tokens of which `prefix` +
    /// `suffix` are the template's special tokens; nil when `stride` leaves no room to advance.
    static func classification(tokens n: Int, prefix: Int, suffix: Int, maxTokens: Int, stride: Int) -> WindowExtent? {
        if n <= maxTokens { return WindowExtent(windows: 1, tokens: n) }
        let room = maxTokens - prefix - suffix
        guard room > stride, room > 0 else { return nil }
        let content = n - prefix - suffix
        let windows = 1 + Cost.ceilDiv(content - room, room - stride)
        let tokens = Cost.add(Cost.add(Cost.mul(windows, prefix + suffix), content), Cost.mul(windows - 1, stride))
        return WindowExtent(windows: windows, tokens: tokens)
    }

    /// Question answering, as the tokenizer cuts (question, context) with `only_second`
    /// truncation to `maxSeqLen` tokens sharing `stride` context tokens: `q` question and `c`
    /// context tokens, `specials` added by the pair template.
    static func questionAnswering(
        question q: Int, context c: Int, specials: Int, maxSeqLen: Int, stride: Int
    ) -> Result<WindowExtent, PipelineError> {
        let maxLength = maxSeqLen >= specials ? maxSeqLen - specials : Int.max
        if Cost.add(q, c) <= maxLength { return .success(WindowExtent(windows: 1, tokens: q + c + specials)) }
        let why = "cannot split the context into windows of max_seq_len \(maxSeqLen) with doc_stride \(stride)"
        let length = maxLength - q  // context tokens per window
        guard length > 0 else {
            return .failure(PipelineError(.invalidInput, "\(why): the question (\(q) tokens) leaves no room for the context"))
        }
        guard stride < length else {
            return .failure(
                PipelineError(.invalidInput, "\(why): doc_stride must be smaller than the \(length) context tokens of a window"))
        }
        let windows = 1 + Cost.ceilDiv(c - length, length - stride)
        let tokens = Cost.add(Cost.add(Cost.mul(windows, q + specials), c), Cost.mul(windows - 1, stride))
        return .success(WindowExtent(windows: windows, tokens: tokens))
    }
}

/// The cost of one (request, head), and what drives it (for the error message).
struct TaskCost {
    var encoderTokens = 0
    var generatedTokens = 0
    var windows = 1
    /// What the windows are ("the context in windows of max_seq_len 384 with doc_stride 128").
    var windowsWhat = ""
    var responseBytes = 0
    var responseWhat = ""
    var masks = 0
    var choices = 0
    /// An estimate could not tell (e.g. a question that may leave no room): count exactly.
    var undecided = false
}

/// How input sizes are measured: bytes / 3 (the batch estimate), bytes (an upper bound unless
/// normalization expands the text: decides whether counting is needed) or the tokenizer.
enum Measure { case estimate, bound, exact }

extension PipelineEngine {
    /// Prices a request before any work and checks it against ``CostLimits``; the batcher packs by
    /// ``RequestCost/batchTokens``. Resolves the heads as ``run(_:workspace:onPartial:)`` does.
    ///
    /// Without tokenizing when the input bytes already show the request within every limit (1
    /// token per byte at most): then the token counts are estimated (3 bytes a token). Otherwise
    /// the inputs are tokenized (no windows built) and counted exactly. Errors: what resolving the
    /// heads gives; `invalid_value` for an `id` or option over its limit; `request_too_costly`
    /// (naming the limit, the cost and the setting) for windows, choices, masks, encoder tokens or
    /// response bytes over theirs; `input_too_long` when counting shows a question and context
    /// over the maximum.
    public func cost(of request: PipelineRequest) -> Result<RequestCost, PipelineError> {
        do {
            return .success(try price(request))
        } catch {
            return .failure(error)
        }
    }

    func price(_ r: PipelineRequest) throws(PipelineError) -> RequestCost { try priced(r).cost }

    /// The request's price and its (head, task) pairs.
    func priced(_ r: PipelineRequest) throws(PipelineError) -> (cost: RequestCost, pairs: [(LoadedHead, PipelineTask)]) {
        let limits = configuration.limits
        let idBytes = r.id.utf8.count
        if idBytes > limits.maxIDBytes {
            throw PipelineError(
                .invalidValue, "field 'id' is \(idBytes) bytes, more than the limit of \(limits.maxIDBytes) (setting max-id-bytes)")
        }
        let pairs = try resolve(r)
        func total(_ measure: Measure) throws(PipelineError) -> (RequestCost, [TaskCost]) {
            var sum = RequestCost()
            sum.isExact = measure == .exact
            var parts: [TaskCost] = []
            for (head, task) in pairs {
                let c = try taskCost(r, head: head, task: task, measure: measure)
                sum.encoderTokens = Cost.add(sum.encoderTokens, c.encoderTokens)
                sum.generatedTokens = Cost.add(sum.generatedTokens, c.generatedTokens)
                sum.windows = max(sum.windows, c.windows)
                sum.responseBytes = Cost.add(sum.responseBytes, c.responseBytes)
                parts.append(c)
            }
            return (sum, parts)
        }
        let (bound, boundParts) = try total(.bound)
        if boundParts.contains(where: \.undecided) || violation(bound, boundParts) != nil {
            let (exact, exactParts) = try total(.exact)
            if let error = violation(exact, exactParts) { throw error }
            return (exact, pairs)
        }
        return (try total(.estimate).0, pairs)
    }

    /// The first limit a request's cost passes, as the error that rejects it.
    func violation(_ sum: RequestCost, _ parts: [TaskCost]) -> PipelineError? {
        let limits = configuration.limits
        for c in parts {
            if c.choices > limits.maxChoices {
                return PipelineError(
                    .requestTooCostly,
                    "the request has \(c.choices) choices, more than the limit of \(limits.maxChoices) (setting max-choices)")
            }
            if c.masks > limits.maxMasks {
                return PipelineError(
                    .requestTooCostly, "the text has \(c.masks) mask tokens, more than the limit of \(limits.maxMasks) (setting max-masks)")
            }
            if c.windows > limits.maxWindows {
                return PipelineError(
                    .requestTooCostly,
                    """
                    \(c.windowsWhat) needs \(c.windows) windows, more than the limit of \(limits.maxWindows) per head (setting \
                    max-windows)
                    """
                )
            }
        }
        if sum.encoderTokens > maxRequestTokens {
            return PipelineError(
                .requestTooCostly,
                """
                the request needs \(sum.encoderTokens) encoder tokens (all windows, choices and heads), more than the limit of \
                \(maxRequestTokens) (setting max-request-tokens)
                """
            )
        }
        if sum.responseBytes > limits.maxResponseBytes {
            let what = parts.max { $0.responseBytes < $1.responseBytes }.map { " (\($0.responseWhat))" } ?? ""
            return PipelineError(
                .requestTooCostly,
                """
                the responses would take about \(sum.responseBytes) bytes\(what), more than the limit of \(limits.maxResponseBytes) \
                (setting max-response-bytes)
                """
            )
        }
        return nil
    }

    /// Checks one head's exactly counted cost (plans do, after tokenizing and before building
    /// windows: the bytes bound does not hold when normalization expands the text).
    func enforce(_ c: TaskCost) throws(PipelineError) {
        var sum = RequestCost()
        sum.encoderTokens = c.encoderTokens
        sum.windows = c.windows
        sum.responseBytes = c.responseBytes
        if let error = violation(sum, [c]) { throw error }
    }

    /// Tokens of one text with the template's special tokens, as `measure` counts them (nil: the
    /// tokenizer failed; the plan reports it). Throws when counting stops past ``tokenLimit`` (see
    /// ``exactEncoding(_:pair:)``).
    func measuredTokens(_ text: String, _ measure: Measure) throws(PipelineError) -> Int? {
        let specials = singleSpecials.prefix + singleSpecials.suffix
        switch measure {
        case .estimate: return Cost.ceilDiv(text.utf8.count, Cost.bytesPerToken) + specials
        case .bound: return Cost.add(text.utf8.count, specials)
        case .exact: return try exactEncoding(text)?.count
        }
    }

    /// Tokens of one text: the known encoding's when counting exactly, else as `measure` counts.
    func tokens(_ text: String, _ measure: Measure, known: Encoding?) throws(PipelineError) -> Int {
        if measure == .exact, let known { return known.count }
        return try measuredTokens(text, measure) ?? 0
    }

    /// The given encoding, else the one pricing counts (see ``exactEncoding(_:pair:)``).
    func encoding(known: Encoding?, _ text: String, pair: String? = nil) throws(PipelineError) -> Encoding? {
        if let known { return known }
        return try exactEncoding(text, pair: pair)
    }

    /// The encoding pricing counts (nil: the tokenizer failed; the plan reports it). Throws when
    /// tokenizing stops past ``tokenLimit``: no request can admit the input.
    func exactEncoding(_ text: String, pair: String? = nil) throws(PipelineError) -> Encoding? {
        do {
            return try encode(text, pair: pair, what: pair == nil ? "the text" : "the input")
        } catch  where error.code == .invalidInput {
            return nil  // the tokenizer failed: the plan reports it
        }
    }

    /// Estimated bytes of one response's envelope (without its result).
    func envelope(_ r: PipelineRequest, _ head: LoadedHead) -> Int {
        Cost.envelope + r.id.utf8.count + head.name.utf8.count
    }

    /// Longest label of a classifier head, in bytes.
    func labelBytes(_ head: LoadedHead) -> (count: Int, longest: Int) {
        let config = head.model.config
        let count = head.model.head?.outputs ?? config.numLabels
        var longest = 8
        for (_, name) in config.id2label ?? [:] { longest = max(longest, name.utf8.count) }
        return (count, longest + NorBERTConfig.defaultLabelPrefix.count)
    }

    /// One head's cost. `known`: the input's encoding when the caller has it (`exact` then uses
    /// it: single texts, or question-answering's whole (question, context) pair). `planning`: a
    /// plan prices its own input, so an input that cannot be windowed is its error to report
    /// (pricing alone leaves that to the plan: its option checks come first).
    func taskCost(
        _ r: PipelineRequest, head: LoadedHead, task: PipelineTask, measure: Measure,
        known: Encoding? = nil, planning: Bool = false
    ) throws(PipelineError) -> TaskCost {
        let o = r.options, limits = configuration.limits
        let envelope = envelope(r, head)
        var c = TaskCost()
        switch task {
        case .textClassification, .tokenClassification:
            guard let text = r.text, !text.isEmpty else { return c }
            let overflow = try? OverflowOptions(o, optionBounds)
            let (policy, stride) = overflow.map { ($0.policy, $0.stride) } ?? (.reject, 0)
            var n = try tokens(text, measure, known: known)
            // Longer inputs without windows are rejected (input_too_long) before any work.
            if policy == .reject { n = min(n, maxInputTokens) }
            let extent =
                WindowExtent.classification(
                    tokens: n, prefix: singleSpecials.prefix, suffix: singleSpecials.suffix,
                    maxTokens: maxInputTokens, stride: stride)
                ?? WindowExtent(windows: 1, tokens: min(n, maxInputTokens))  // bad stride: invalid_value from the plan
            c.encoderTokens = extent.tokens
            c.windows = extent.windows
            c.windowsWhat = "the text in windows of \(maxInputTokens) tokens with stride \(stride)"
            let labels = labelBytes(head)
            if task == .textClassification {
                c.responseBytes = Cost.add(envelope, Cost.mul(labels.count, 48 + labels.longest))
                c.responseWhat = "\(labels.count) labels"
            } else {
                c.responseBytes = Cost.add(Cost.add(envelope, Cost.mul(n, 96 + labels.longest)), Cost.mul(2, text.utf8.count))
                c.responseWhat = "an entity per token of \(n)"
            }
        case .questionAnswering:
            let topK = try o.priced(.answersTopK, limit: limits.maxTopK)
            guard let question = r.question, let context = r.context, !question.isEmpty, !context.isEmpty else { return c }
            let (maxAnswerLen, maxQuestionLen, maxSeqLen, docStride, handleImpossible) = QuestionAnsweringOptions.lenient(o, optionBounds)
            var q: Int, ctx: Int
            switch measure {
            case .estimate, .bound:
                let per = measure == .estimate ? Cost.bytesPerToken : 1
                // Admitted inputs are within max_question_len and the maximum (else rejected before work).
                q = min(Cost.ceilDiv(question.utf8.count, per), maxQuestionLen)
                ctx = min(Cost.ceilDiv(context.utf8.count, per), max(1, maxInputTokens - q - pairSpecials))
            case .exact:
                guard let e = try encoding(known: known, question, pair: context) else { return c }
                q = e.sequenceIds.filter { $0 == 0 }.count
                ctx = e.sequenceIds.filter { $0 == 1 }.count
                // The plan's own checks, before windows are priced.
                if q > maxQuestionLen {
                    throw PipelineError(.inputTooLong, "the question is \(q) tokens, more than max_question_len \(maxQuestionLen)")
                }
                try checkLength(e.count, what: "the question and context")
            }
            switch WindowExtent.questionAnswering(
                question: q, context: ctx, specials: pairSpecials, maxSeqLen: maxSeqLen, stride: docStride)
            {
            case .success(let extent):
                c.encoderTokens = extent.tokens
                c.windows = extent.windows
            case .failure(let error):
                if planning { throw error }
                c.undecided = measure == .bound
                c.encoderTokens = q + ctx + pairSpecials
            }
            c.windowsWhat = "the context in windows of max_seq_len \(maxSeqLen) with doc_stride \(docStride)"
            let responses = r.stream ? c.windows : 1
            let answers = topK + (handleImpossible ? 1 : 0)
            let answerBytes = min(context.utf8.count, Cost.mul(max(maxAnswerLen, 1), Cost.tokenTextBytes))
            c.responseBytes = Cost.mul(responses, Cost.add(envelope, Cost.mul(answers, 96 + answerBytes)))
            c.responseWhat = "\(responses) responses of \(answers) answers"
        case .fillMask:
            let topK = try o.priced(.candidatesTopK, limit: limits.maxTopK)
            guard let text = r.text, !text.isEmpty else { return c }
            let vocab = head.model.head?.outputs ?? head.model.config.vocabSize
            let candidates = min(topK, ((try? o.strings(.targets)) ?? nil)?.count ?? vocab)
            let maskId = tokenizer.specialTokens.maskId ?? head.model.config.maskTokenId
            switch measure {
            case .estimate, .bound:
                c.encoderTokens = min(try measuredTokens(text, measure) ?? 0, maxInputTokens)
                c.masks = Self.occurrences(of: tokenizer.specialTokens.mask ?? "<mask>", in: text)
            case .exact:
                guard let e = try encoding(known: known, text) else { return c }
                c.encoderTokens = min(e.count, maxInputTokens)
                c.masks = maskId.map { m in e.ids.filter { $0 == m }.count } ?? 0
            }
            c.responseBytes = Self.fillMaskBytes(envelope: envelope, masks: c.masks, candidates: candidates, textBytes: text.utf8.count)
            c.responseWhat = "\(c.masks) masks × \(candidates) candidates, each with the \(text.utf8.count)-byte text"
        case .multipleChoice:
            guard let question = r.question, let choices = r.choices, !question.isEmpty else { return c }
            c.choices = choices.count
            // More choices than allowed: rejected without looking at them.
            guard choices.count <= limits.maxChoices else { return c }
            for choice in choices {
                var n: Int
                switch measure {
                case .estimate, .bound:
                    let per = measure == .estimate ? Cost.bytesPerToken : 1
                    n = Cost.add(Cost.ceilDiv(question.utf8.count, per), Cost.ceilDiv(choice.utf8.count, per)) + pairSpecials
                case .exact:
                    n = try exactEncoding(question, pair: choice)?.count ?? 0
                }
                c.encoderTokens = Cost.add(c.encoderTokens, min(n, maxInputTokens))
            }
            c.responseBytes = Cost.add(envelope, Cost.mul(choices.count, 3 * Cost.floatBytes))
            c.responseWhat = "\(choices.count) choices"
        case .textGeneration:
            let maxNew = try o.priced(.maxNewTokens, limit: limits.maxNewTokens)
            guard let text = r.text, !text.isEmpty else { return c }
            c.encoderTokens = min(try tokens(text, measure, known: known), maxInputTokens)
            c.generatedTokens = maxNew
            let full = o.lenientBool(.returnFullText)
            let final = Cost.add(Cost.add(envelope, full ? text.utf8.count : 0), Cost.mul(maxNew, Cost.tokenTextBytes))
            let partials = r.stream ? Cost.mul(maxNew, envelope + 64 + Cost.tokenTextBytes) : 0
            c.responseBytes = Cost.add(final, partials)
            c.responseWhat = r.stream ? "\(maxNew) streamed partials" : "\(maxNew) new tokens"
        case .featureExtraction:
            guard let text = r.text, !text.isEmpty else { return c }
            let n = min(try tokens(text, measure, known: known), maxInputTokens)
            c.encoderTokens = n
            let pooling = (try? o.choice(.pooling, as: Pooling.self)) ?? nil
            let vectors = pooling == Pooling.none ? n : 1
            c.responseBytes = Cost.add(envelope, Cost.mul(vectors, Cost.mul(head.model.config.hiddenSize, Cost.floatBytes)))
            c.responseWhat = "\(vectors) vectors of \(head.model.config.hiddenSize) numbers"
        }
        return c
    }

    /// Estimated bytes of a fill-mask response: per mask and candidate an object whose `sequence`
    /// is the whole text again (so masks² × candidates × the text).
    static func fillMaskBytes(envelope: Int, masks: Int, candidates: Int, textBytes: Int) -> Int {
        Cost.add(envelope, Cost.mul(Cost.mul(masks, candidates), Cost.add(128, textBytes)))
    }

    /// Non-overlapping occurrences of `needle` in `text` (bytes).
    static func occurrences(of needle: String, in text: String) -> Int {
        let n = Array(needle.utf8), t = Array(text.utf8)
        guard !n.isEmpty, t.count >= n.count else { return 0 }
        var count = 0, i = 0
        while i + n.count <= t.count {
            if t[i] == n[0] && t[i..<(i + n.count)].elementsEqual(n) {
                count += 1
                i += n.count
            } else {
                i += 1
            }
        }
        return count
    }
}
