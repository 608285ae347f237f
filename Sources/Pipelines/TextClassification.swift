import NorBERT
import Wire

/// text-classification: the sequence-classification head on token 0 (`<s> text`).
///
/// Long texts (option `overflow: window`): each window is classified, the window scores
/// (after `function_to_apply`; raw logits for `none`) are averaged label by label, and the
/// labels are ranked by that mean.
struct TextClassificationPlan: EncoderPlan {
    let input: LongInput
    let labels: [String]
    let function: ClassificationFunction
    let topK: RequestOptions.Presence<Int>

    var sequences: [[Int]] { input.sequences }
    var needsHidden: Bool { false }
    func headRows(_ i: Int) -> [Int] { [0] }

    init(_ r: PipelineRequest, head: LoadedHead, engine: PipelineEngine, stats: inout RunStats) throws(PipelineError) {
        let text = try r.textInput(for: .textClassification)
        let config = head.model.config
        let outputs = head.model.head?.outputs ?? config.numLabels
        labels = config.labels(count: outputs)
        let fallback: ClassificationFunction = (config.problemType == "multi_label_classification" || outputs == 1) ? .sigmoid : .softmax
        let options = try TextClassificationOptions(r.options, engine.optionBounds)
        function = options.function ?? fallback
        topK = options.topK
        let (policy, stride) = (options.overflow.policy, options.overflow.stride)
        // Without windows, tokenizing stops past the maximum input (the input is rejected anyway).
        let encoding = try engine.encode(
            text, limit: policy == .reject ? engine.maxInputTokens : nil, what: "the text",
            hint: policy == .reject ? LongInput.windowHint : "")
        try engine.enforce(engine.taskCost(r, head: head, task: .textClassification, measure: .exact, known: encoding, planning: true))
        input = try LongInput.split(
            encoding, maxTokens: engine.maxInputTokens, policy: policy, stride: stride, what: "the text",
            built: &stats.builtSequences)
    }

    func scores(_ logits: [Float]) -> [Float] {
        switch function {
        case .sigmoid: return Scores.sigmoid(logits)
        case .none: return logits
        case .softmax: return Scores.softmax(logits)
        }
    }

    func finish(_ out: PlanOutputs) throws(PipelineError) -> (JSONValue, Usage) {
        let n = labels.count
        var mean = [Float](repeating: 0, count: n)
        for window in out.logits {
            guard window.storage.count == n else {
                throw PipelineError(.internalError, "classifier returned \(window.storage.count) values for \(n) labels")
            }
            let s = scores(window.storage)
            for j in 0..<n { mean[j] += s[j] }
        }
        if out.logits.count > 1 { mean = mean.map { $0 / Float(out.logits.count) } }
        func entry(_ j: Int) -> JSONValue { .object([("label", .string(labels[j])), ("score", .double(Double(mean[j])))]) }
        let result: JSONValue
        switch topK {
        case .absent: result = .array([entry(Scores.argmax(mean))])
        case .null: result = .array(Scores.order(mean).map(entry))
        case .value(let k): result = .array(Scores.order(mean).prefix(k).map(entry))
        }
        return (result, Usage(inputTokens: input.tokenCount, windows: input.sequences.count))
    }
}
