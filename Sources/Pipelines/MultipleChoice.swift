import Foundation
import NorBERT
import Wire

/// multiple-choice: `<s> question <s> choice` per choice, the head on each choice's first token,
/// softmax over the choices. Result `{"choice": i, "scores": [...], "logits": [...]}`.
struct MultipleChoicePlan: EncoderPlan {
    let sequences: [[Int]]
    var needsHidden: Bool { false }
    func headRows(_ i: Int) -> [Int] { [0] }

    init(_ r: PipelineRequest, head: LoadedHead, engine: PipelineEngine, stats: inout RunStats) throws(PipelineError) {
        let task = PipelineTask.multipleChoice
        guard case .questionChoices(let question, let choices) = try r.input(for: task) else {
            throw PipelineError(.internalError, "\(task.rawValue) reads no question and choices")
        }
        var price = TaskCost()
        price.choices = choices.count
        try engine.enforce(price)
        var seqs: [[Int]] = []
        for (k, choice) in choices.enumerated() {
            guard !choice.isEmpty else { throw PipelineError(.emptyInput, "choice \(k) is empty") }
            let e = try engine.encode(question, pair: choice, limit: engine.maxInputTokens, what: "the question with choice \(k)")
            try engine.checkLength(e.count, what: "the question with choice \(k)")
            seqs.append(e.ids)
            stats.builtSequences += 1
            price.encoderTokens += e.count
        }
        try engine.enforce(price)
        sequences = seqs
    }

    func finish(_ out: PlanOutputs) throws(PipelineError) -> (JSONValue, Usage) {
        var logits: [Float] = []
        for l in out.logits {
            guard let x = l.storage.first else { throw PipelineError(.internalError, "multiple-choice head returned no value") }
            logits.append(x)
        }
        let m = Double(logits.max() ?? 0)
        let e = logits.map { Foundation.exp(Double($0) - m) }
        let sum = e.reduce(0, +)
        let scores = e.map { $0 / sum }
        let result: JSONValue = .object([
            ("choice", .int(Scores.argmax(logits))),
            ("scores", .array(scores.map(JSONValue.double))),
            ("logits", .array(logits.map { .double(Double($0)) })),
        ])
        return (result, Usage(inputTokens: sequences.reduce(0) { $0 + $1.count }, windows: sequences.count))
    }
}
