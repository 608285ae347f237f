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

    init(
        _ name: String, _ tasks: [PipelineTask], _ type: ValueType, default defaultValue: Default,
        limitSetting: String? = nil, nullIsValue: Bool = false
    ) {
        self.name = name
        self.tasks = tasks
        self.type = type
        self.defaultValue = defaultValue
        self.limitSetting = limitSetting
        self.nullIsValue = nullIsValue
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
        default: .computed("sigmoid for problem_type multi_label_classification or a single label, else softmax"))
    public static let classificationTopK = OptionDeclaration(
        "top_k", [.textClassification], .integer(1...int32), default: .absent, nullIsValue: true)
    // text- and token-classification
    public static let overflow = OptionDeclaration(
        "overflow", [.textClassification, .tokenClassification], .choice(OverflowPolicy.allCases.map(\.rawValue)),
        default: .choice(OverflowPolicy.reject.rawValue))
    public static let stride = OptionDeclaration(
        "stride", [.textClassification, .tokenClassification], .integer(0...int32), default: .computed("min(max/2, 128)"))
    // token-classification
    public static let aggregationStrategy = OptionDeclaration(
        "aggregation_strategy", [.tokenClassification], .choice(AggregationStrategy.allCases.map(\.rawValue)),
        default: .choice(AggregationStrategy.none.rawValue))
    public static let ignoreLabels = OptionDeclaration(
        "ignore_labels", [.tokenClassification], .strings, default: .strings(["O"]))
    // question-answering
    public static let answersTopK = OptionDeclaration(
        "top_k", [.questionAnswering], .integer(1...int32), default: .integer(1), limitSetting: "max-top-k")
    public static let maxAnswerLen = OptionDeclaration(
        "max_answer_len", [.questionAnswering], .integer(1...int32), default: .integer(15))
    public static let maxQuestionLen = OptionDeclaration(
        "max_question_len", [.questionAnswering], .integer(1...int32), default: .integer(64))
    public static let maxSeqLen = OptionDeclaration(
        "max_seq_len", [.questionAnswering], .integer(2...int32), default: .computed("min(max, 384); at most max"))
    public static let docStride = OptionDeclaration(
        "doc_stride", [.questionAnswering], .integer(0...int32), default: .computed("min(max_seq_len/2, 128)"))
    public static let handleImpossibleAnswer = OptionDeclaration(
        "handle_impossible_answer", [.questionAnswering], .boolean, default: .boolean(false))
    public static let alignToWords = OptionDeclaration(
        "align_to_words", [.questionAnswering], .boolean, default: .boolean(true))
    // fill-mask
    public static let candidatesTopK = OptionDeclaration(
        "top_k", [.fillMask], .integer(1...int32), default: .integer(5), limitSetting: "max-top-k")
    public static let targets = OptionDeclaration("targets", [.fillMask], .strings, default: .absent)
    // text-generation
    public static let maxNewTokens = OptionDeclaration(
        "max_new_tokens", [.textGeneration], .integer(0...int32), default: .integer(20), limitSetting: "max-new-tokens")
    public static let doSample = OptionDeclaration("do_sample", [.textGeneration], .boolean, default: .boolean(false))
    public static let temperature = OptionDeclaration("temperature", [.textGeneration], .number(1e-6...1e6), default: .number(1))
    public static let samplingTopK = OptionDeclaration("top_k", [.textGeneration], .integer(0...int32), default: .integer(50))
    public static let topP = OptionDeclaration("top_p", [.textGeneration], .number(1e-9...1), default: .number(1))
    public static let seed = OptionDeclaration(
        "seed", [.textGeneration], .integer(0...Int(Int64.max)), default: .computed("random"))
    public static let stopAtNewline = OptionDeclaration("stop_at_newline", [.textGeneration], .boolean, default: .boolean(false))
    public static let returnFullText = OptionDeclaration("return_full_text", [.textGeneration], .boolean, default: .boolean(true))
    // feature-extraction
    public static let pooling = OptionDeclaration(
        "pooling", [.featureExtraction], .choice(Pooling.allCases.map(\.rawValue)), default: .choice(Pooling.mean.rawValue))
    public static let normalize = OptionDeclaration("normalize", [.featureExtraction], .boolean, default: .boolean(false))

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
