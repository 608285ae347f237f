/// One request option of one or more tasks, declared once: its name (transformers' keyword), JSON
/// type and range, default, the tasks that read it and the `serve`/`infer` setting that caps it.
/// Requests are checked against these (unknown names, types, ranges), the typed option structs
/// (``TextClassificationOptions`` …) read through them, and a test holds schemas/ to them.
public struct OptionDeclaration: Sendable, Equatable {
    public enum ValueType: Sendable, Equatable {
        /// An integer (a JSON number with an integral value; not a boolean) in the range.
        case integer(ClosedRange<Int>)
        /// A finite number in the range.
        case number(ClosedRange<Double>)
        case boolean
        /// One of these strings.
        case choice([String])
        /// A string or a list of strings.
        case strings
    }

    public enum Default: Sendable, Equatable {
        /// No value (the option's absence has a meaning of its own).
        case absent
        case integer(Int)
        case number(Double)
        case boolean(Bool)
        case choice(String)
        case strings([String])
        /// Computed from the model or other options, as described.
        case computed(String)
    }

    public let name: String
    public let tasks: [PipelineTask]
    public let type: ValueType
    public let defaultValue: Default
    /// The setting that caps the value (`max-top-k`, `max-new-tokens`); the default is lowered to it.
    public let limitSetting: String?
    /// An explicit `null` is a value of its own (text-classification `top_k`: every label);
    /// otherwise `null` means the default.
    public let nullIsValue: Bool
    /// What the option does: the "meaning" column of docs/wire-protocol.md's option table
    /// (generated from these declarations: ``markdownTable()``).
    public let summary: String

    init(
        _ name: String, _ tasks: [PipelineTask], _ type: ValueType, default defaultValue: Default,
        limitSetting: String? = nil, nullIsValue: Bool = false, summary: String
    ) {
        self.name = name
        self.tasks = tasks
        self.type = type
        self.defaultValue = defaultValue
        self.limitSetting = limitSetting
        self.nullIsValue = nullIsValue
        self.summary = summary
    }

    /// The allowed strings of a `.choice` option (empty for other types).
    public var choices: [String] {
        if case .choice(let c) = type { return c }
        return []
    }

    /// The range of an `.integer` option.
    public var integerRange: ClosedRange<Int>? {
        if case .integer(let r) = type { return r }
        return nil
    }
}

extension OptionDeclaration {
    static let int32 = Int(Int32.max)

    // text-classification
    public static let functionToApply = OptionDeclaration(
        "function_to_apply", [.textClassification], .choice(ClassificationFunction.allCases.map(\.rawValue)),
        default: .computed("`sigmoid` for `problem_type` multi_label_classification or a single label, else `softmax`"),
        summary: "`softmax`, `sigmoid` or `none` (raw logits); float32 as numpy")
    public static let classificationTopK = OptionDeclaration(
        "top_k", [.textClassification], .integer(1...int32), default: .absent, nullIsValue: true,
        summary: """
            absent: the arg-max label only, as a list of one `{label, score}`; `null`: every label sorted by score; n: the n best. \
            Absent and `null` differ
            """)
    // text- and token-classification
    public static let overflow = OptionDeclaration(
        "overflow", [.textClassification, .tokenClassification], .choice(OverflowPolicy.allCases.map(\.rawValue)),
        default: .choice(OverflowPolicy.reject.rawValue),
        summary: """
            an input over the maximum length is rejected (`input_too_long`) or run in windows (`window`), see \
            [pipelines](pipelines.md#long-inputs)
            """)
    public static let stride = OptionDeclaration(
        "stride", [.textClassification, .tokenClassification], .integer(0...int32), default: .computed("min(max/2, 128)"),
        summary: "tokens shared by consecutive windows (`overflow`: `window`)")
    // token-classification
    public static let aggregationStrategy = OptionDeclaration(
        "aggregation_strategy", [.tokenClassification], .choice(AggregationStrategy.allCases.map(\.rawValue)),
        default: .choice(AggregationStrategy.none.rawValue),
        summary: """
            `none` (per token, with `index`), `simple`, `first`, `average`, `max` (transformers' rules; words by its no-prefix \
            fallback rule for byte-level BPE)
            """)
    public static let ignoreLabels = OptionDeclaration(
        "ignore_labels", [.tokenClassification], .strings, default: .strings(["O"]),
        summary: "labels (or entity groups) left out: a string or a list")
    // question-answering
    public static let answersTopK = OptionDeclaration(
        "top_k", [.questionAnswering], .integer(1...int32), default: .integer(1), limitSetting: "max-top-k",
        summary: "answers returned")
    public static let maxAnswerLen = OptionDeclaration(
        "max_answer_len", [.questionAnswering], .integer(1...int32), default: .integer(15),
        summary: "tokens in an answer at most")
    public static let maxQuestionLen = OptionDeclaration(
        "max_question_len", [.questionAnswering], .integer(1...int32), default: .integer(64),
        summary: "a longer question is rejected (`input_too_long`), never cut")
    public static let maxSeqLen = OptionDeclaration(
        "max_seq_len", [.questionAnswering], .integer(2...int32), default: .computed("min(max, 384)"),
        summary: "window length in tokens (at most the maximum input: `serve --max-input-tokens`, `infer --max-tokens`)")
    public static let docStride = OptionDeclaration(
        "doc_stride", [.questionAnswering], .integer(0...int32), default: .computed("min(max_seq_len/2, 128)"),
        summary: "tokens shared by consecutive windows; must not exceed `max_seq_len`")
    public static let handleImpossibleAnswer = OptionDeclaration(
        "handle_impossible_answer", [.questionAnswering], .boolean, default: .boolean(false),
        summary: "append the null answer `\"\"` at 0, 0 (score: the smallest p_start[0]·p_end[0] over the windows)")
    public static let alignToWords = OptionDeclaration(
        "align_to_words", [.questionAnswering], .boolean, default: .boolean(true),
        summary: "answers start and end on whole words (within the window)")
    // fill-mask
    public static let candidatesTopK = OptionDeclaration(
        "top_k", [.fillMask], .integer(1...int32), default: .integer(5), limitSetting: "max-top-k",
        summary: "candidates per mask")
    public static let targets = OptionDeclaration(
        "targets", [.fillMask], .strings, default: .absent,
        summary: """
            a string or a list: score only these tokens (vocabulary strings; another word counts as its first token); `top_k` is \
            capped at their number
            """)
    // text-generation
    public static let maxNewTokens = OptionDeclaration(
        "max_new_tokens", [.textGeneration], .integer(0...int32), default: .integer(20), limitSetting: "max-new-tokens",
        summary: "prompt + new tokens must fit in the maximum")
    public static let doSample = OptionDeclaration(
        "do_sample", [.textGeneration], .boolean, default: .boolean(false),
        summary: "false: greedy (arg-max, identical to `generateGreedy`); true: sampling")
    public static let temperature = OptionDeclaration(
        "temperature", [.textGeneration], .number(1e-6...1e6), default: .number(1),
        summary: "sampling: the logits are divided by it first (transformers' order of the warpers: temperature, `top_k`, `top_p`)")
    public static let samplingTopK = OptionDeclaration(
        "top_k", [.textGeneration], .integer(0...int32), default: .integer(50),
        summary: "sampling: keep the k best tokens (and ties with the k-th); 0 = off")
    public static let topP = OptionDeclaration(
        "top_p", [.textGeneration], .number(1e-9...1), default: .number(1),
        summary: "sampling: keep the smallest nucleus with probability mass ≥ `top_p`")
    public static let seed = OptionDeclaration(
        "seed", [.textGeneration], .integer(0...Int(Int64.max)), default: .computed("random"),
        summary: "seed of the sampler (SplitMix64): same seed, same text on every machine")
    public static let stopAtNewline = OptionDeclaration(
        "stop_at_newline", [.textGeneration], .boolean, default: .boolean(false),
        summary: "stop after a token whose text contains `\\n` (as the model card does); the text ends before the newline")
    public static let returnFullText = OptionDeclaration(
        "return_full_text", [.textGeneration], .boolean, default: .boolean(true),
        summary: "prompt + new text, or the new text only")
    // feature-extraction
    public static let pooling = OptionDeclaration(
        "pooling", [.featureExtraction], .choice(Pooling.allCases.map(\.rawValue)), default: .choice(Pooling.mean.rawValue),
        summary: """
            `mean` over all tokens (incl. `<s>`), `first` (token 0), or `none` (every token: `[1][tokens][hidden]` like \
            transformers)
            """)
    public static let normalize = OptionDeclaration(
        "normalize", [.featureExtraction], .boolean, default: .boolean(false),
        summary: "L2-normalize each vector")

    /// Every option of every task (a name may have one declaration per task that reads it).
    public static let all: [OptionDeclaration] = [
        functionToApply, classificationTopK, overflow, stride,
        aggregationStrategy, ignoreLabels,
        answersTopK, maxAnswerLen, maxQuestionLen, maxSeqLen, docStride, handleImpossibleAnswer, alignToWords,
        candidatesTopK, targets,
        maxNewTokens, doSample, temperature, samplingTopK, topP, seed, stopAtNewline, returnFullText,
        pooling, normalize,
    ]
}

/// text-classification `function_to_apply`.
public enum ClassificationFunction: String, Sendable, CaseIterable { case softmax, sigmoid, none }

/// How an input longer than the configured maximum is handled (`overflow` option).
public enum OverflowPolicy: String, Sendable, CaseIterable {
    /// Reject with `input_too_long` (the default).
    case reject
    /// Classification only: split into windows of the maximum length sharing `stride` tokens, and aggregate.
    case window
}

/// token-classification `aggregation_strategy` (transformers' rules).
public enum AggregationStrategy: String, Sendable, CaseIterable { case none, simple, first, average, max }

/// feature-extraction `pooling`.
public enum Pooling: String, Sendable, CaseIterable { case mean, first, none }
