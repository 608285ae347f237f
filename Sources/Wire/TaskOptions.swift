/// The engine's bounds that some options depend on.
public struct OptionBounds: Sendable {
    /// The longest input in tokens.
    public var maxInputTokens: Int
    /// `max-top-k` and `max-new-tokens`.
    public var maxTopK: Int
    public var maxNewTokens: Int

    public init(maxInputTokens: Int, maxTopK: Int, maxNewTokens: Int) {
        self.maxInputTokens = maxInputTokens
        self.maxTopK = maxTopK
        self.maxNewTokens = maxNewTokens
    }

    /// `stride` of windowed classification: min(max/2, 128).
    public var defaultStride: Int { min(maxInputTokens / 2, 128) }
    /// question-answering `max_seq_len`: min(max, 384).
    public var defaultMaxSeqLen: Int { min(maxInputTokens, 384) }
    /// question-answering `doc_stride`: min(max_seq_len/2, 128).
    public static func defaultDocStride(maxSeqLen: Int) -> Int { min(maxSeqLen / 2, 128) }
}

// Typed options of each task, read (and checked, in this order) from a request's options. Each
// field comes from its ``OptionDeclaration``.

/// `overflow` and `stride` of text- and token-classification.
public struct OverflowOptions: Sendable {
    public var policy: OverflowPolicy
    public var stride: Int

    public init(_ o: RequestOptions, _ bounds: OptionBounds) throws(PipelineError) {
        policy = try o.choice(.overflow, as: OverflowPolicy.self) ?? .reject
        stride = try o.int(.stride, default: bounds.defaultStride)
    }
}

public struct TextClassificationOptions: Sendable {
    /// nil: the model's default (sigmoid for multi-label or one label, else softmax).
    public var function: ClassificationFunction?
    /// absent: the best label; null: every label; n: the n best.
    public var topK: RequestOptions.Presence<Int>
    public var overflow: OverflowOptions

    public init(_ o: RequestOptions, _ bounds: OptionBounds) throws(PipelineError) {
        function = try o.choice(.functionToApply, as: ClassificationFunction.self)
        topK = try o.int(.classificationTopK)
        overflow = try OverflowOptions(o, bounds)
    }
}

public struct TokenClassificationOptions: Sendable {
    public var aggregation: AggregationStrategy
    public var ignoreLabels: [String]
    public var overflow: OverflowOptions

    public init(_ o: RequestOptions, _ bounds: OptionBounds) throws(PipelineError) {
        aggregation = try o.choice(.aggregationStrategy, as: AggregationStrategy.self) ?? AggregationStrategy.none
        ignoreLabels = try o.strings(.ignoreLabels) ?? ["O"]
        overflow = try OverflowOptions(o, bounds)
    }
}

public struct QuestionAnsweringOptions: Sendable {
    public var topK: Int
    public var maxAnswerLen: Int
    public var maxQuestionLen: Int
    public var maxSeqLen: Int
    public var docStride: Int
    public var handleImpossibleAnswer: Bool
    public var alignToWords: Bool

    public init(_ o: RequestOptions, _ bounds: OptionBounds) throws(PipelineError) {
        topK = try o.capped(.answersTopK, limit: bounds.maxTopK)
        maxAnswerLen = try o.int(.maxAnswerLen)
        maxQuestionLen = try o.int(.maxQuestionLen)
        maxSeqLen = try o.int(.maxSeqLen, upTo: bounds.maxInputTokens, default: bounds.defaultMaxSeqLen)
        docStride = try o.int(.docStride, default: OptionBounds.defaultDocStride(maxSeqLen: maxSeqLen))
        guard docStride <= maxSeqLen else {
            throw PipelineError(.invalidValue, "option 'doc_stride' (\(docStride)) is larger than 'max_seq_len' (\(maxSeqLen))")
        }
        handleImpossibleAnswer = try o.bool(.handleImpossibleAnswer)
        alignToWords = try o.bool(.alignToWords)
    }

    /// The values pricing assumes before the plan checks them: a bad value counts as its default.
    public static func lenient(_ o: RequestOptions, _ bounds: OptionBounds) -> (
        maxAnswerLen: Int, maxQuestionLen: Int, maxSeqLen: Int,
        docStride: Int, handleImpossibleAnswer: Bool
    ) {
        let maxSeqLen = min(max(o.lenientInt(.maxSeqLen, default: bounds.defaultMaxSeqLen), 2), bounds.maxInputTokens)
        return (
            o.lenientInt(.maxAnswerLen), max(1, o.lenientInt(.maxQuestionLen)), maxSeqLen,
            max(0, o.lenientInt(.docStride, default: OptionBounds.defaultDocStride(maxSeqLen: maxSeqLen))),
            o.lenientBool(.handleImpossibleAnswer)
        )
    }
}

public struct FillMaskOptions: Sendable {
    public var topK: Int
    /// Vocabulary strings to score (nil: every token).
    public var targets: [String]?

    public init(_ o: RequestOptions, _ bounds: OptionBounds) throws(PipelineError) {
        topK = try o.capped(.candidatesTopK, limit: bounds.maxTopK)
        targets = try o.strings(.targets)
    }
}

public struct TextGenerationOptions: Sendable {
    public var maxNewTokens: Int
    /// nil: a random seed.
    public var seed: UInt64?
    public var doSample: Bool
    public var temperature: Double
    public var topK: Int
    public var topP: Double
    public var stopAtNewline: Bool
    public var returnFullText: Bool

    /// `max_new_tokens` alone (read before the prompt's length is checked against it).
    public static func maxNewTokens(_ o: RequestOptions, _ bounds: OptionBounds) throws(PipelineError) -> Int {
        try o.capped(.maxNewTokens, limit: bounds.maxNewTokens)
    }

    public init(_ o: RequestOptions, _ bounds: OptionBounds) throws(PipelineError) {
        maxNewTokens = try Self.maxNewTokens(o, bounds)
        if case .value(let s) = try o.int(.seed) { seed = UInt64(s) } else { seed = nil }
        doSample = try o.bool(.doSample)
        temperature = try o.double(.temperature)
        topK = try o.int(.samplingTopK)
        topP = try o.double(.topP)
        stopAtNewline = try o.bool(.stopAtNewline)
        returnFullText = try o.bool(.returnFullText)
    }
}

public struct FeatureExtractionOptions: Sendable {
    public var pooling: Pooling
    public var normalize: Bool

    public init(_ o: RequestOptions, _ bounds: OptionBounds) throws(PipelineError) {
        pooling = try o.choice(.pooling, as: Pooling.self) ?? .mean
        normalize = try o.bool(.normalize)
    }
}
