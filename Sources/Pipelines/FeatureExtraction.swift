import Foundation
import NorBERT
import Wire

/// feature-extraction: last hidden states of `<s> text`, pooled (`pooling`: `mean` over all
/// tokens (default), `first` token, or `none`: every token, shaped [1][tokens][hidden] as
/// transformers returns it), optionally L2-normalized (`normalize`).
struct FeatureExtractionPlan: EncoderPlan {
    let ids: [Int]
    let pooling: Pooling
    let normalize: Bool

    var sequences: [[Int]] { [ids] }
    var needsHidden: Bool { true }
    func headRows(_ i: Int) -> [Int] { [] }

    init(_ r: PipelineRequest, head: LoadedHead, engine: PipelineEngine) throws(PipelineError) {
        let text = try r.textInput(for: .featureExtraction)
        let options = try FeatureExtractionOptions(r.options, engine.optionBounds)
        pooling = options.pooling
        normalize = options.normalize
        let e = try engine.encode(text, limit: engine.maxInputTokens, what: "the text")
        try engine.checkLength(e.count, what: "the text")
        // The response: one vector per token with `pooling: none`.
        try engine.enforce(engine.taskCost(r, head: head, task: .featureExtraction, measure: .exact, known: e, planning: true))
        ids = e.ids
    }

    func vector(_ v: [Float]) -> JSONValue {
        var x = v
        if normalize {
            let norm = x.reduce(Float(0)) { $0 + $1 * $1 }.squareRoot()
            if norm > 0 { x = x.map { $0 / norm } }
        }
        return .array(x.map { .double(Double($0)) })
    }

    func finish(_ out: PlanOutputs) throws(PipelineError) -> (JSONValue, Usage) {
        guard let hidden = out.hidden.first, hidden.shape.count == 2, hidden.shape[0] == ids.count else {
            throw PipelineError(.internalError, "no hidden states")
        }
        let (n, h) = (hidden.shape[0], hidden.shape[1])
        let rows = (0..<n).map { Array(hidden.storage[($0 * h)..<(($0 + 1) * h)]) }
        let result: JSONValue
        switch pooling {
        case .first:
            result = vector(rows[0])
        case .none:
            result = .array([.array(rows.map(vector))])
        case .mean:
            var mean = [Float](repeating: 0, count: h)
            for row in rows { for j in 0..<h { mean[j] += row[j] } }
            result = vector(mean.map { $0 / Float(n) })
        }
        return (result, Usage(inputTokens: ids.count))
    }
}
