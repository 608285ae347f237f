import Foundation
import Tensors

/// The seven NorBERT 4 model classes of the reference, by their command-line names.
public enum HeadKind: String, CaseIterable, Sendable, Codable {
    case base
    case maskedLM = "masked-lm"
    case causalLM = "causal-lm"
    case sequenceClassification = "sequence-classification"
    case tokenClassification = "token-classification"
    case questionAnswering = "question-answering"
    case multipleChoice = "multiple-choice"

    /// The reference class name in config.json `architectures`.
    public var architecture: String {
        switch self {
        case .base: return "GptBertModel"
        case .maskedLM: return "GptBertForMaskedLM"
        case .causalLM: return "GptBertForCausalLM"
        case .sequenceClassification: return "GptBertForSequenceClassification"
        case .tokenClassification: return "GptBertForTokenClassification"
        case .questionAnswering: return "GptBertForQuestionAnswering"
        case .multipleChoice: return "GptBertForMultipleChoice"
        }
    }

    public init?(architecture: String) {
        guard let kind = HeadKind.allCases.first(where: { $0.architecture == architecture }) else { return nil }
        self = kind
    }

    public var isLanguageModel: Bool { self == .maskedLM || self == .causalLM }
}

/// The reference `Classifier` / `LMClassifier`: LayerNorm, projection, gelu_tanh, LayerNorm,
/// output linear (+ bias). LM heads then squash with 30·sigmoid(x / 7.5). Scales folded at load.
public final class ClassifierHead: Sendable {
    public let outputs: Int
    let hidden: Int
    let projection: FloatBuffer  // [hidden, hidden]
    let output: FloatBuffer  // [outputs, hidden]
    let bias: FloatBuffer  // [outputs]
    let squash: Bool
    let eps: Float

    init(_ source: any WeightSource, config c: NorBERTConfig, languageModel: Bool) throws {
        let h = c.hiddenSize
        hidden = h
        eps = Float(c.layerNormEps)
        squash = languageModel
        projection = try foldedLinear(
            source, weights: ["classifier.projection.weight"], rows: [h], scale: "classifier.projection.scale", cols: h)
        if languageModel {
            outputs = c.vocabSize
            // The stored emb2vocab weight is used; only a checkpoint without it falls back to the word embedding.
            let weight = source.contains("classifier.emb2vocab.weight") ? "classifier.emb2vocab.weight" : "embedding.word_embedding.weight"
            output = try foldedLinear(source, weights: [weight], rows: [outputs], scale: "classifier.emb2vocab.scale", cols: h)
            bias = FloatBuffer(try source.floats("classifier.emb2vocab.bias", shape: [outputs]))
        } else {
            guard let shape = source.shape(of: "classifier.output_projection.weight"), shape.count == 2, shape[0] >= 1 else {
                throw NorBERTError.checkpoint(message: "missing or malformed tensor 'classifier.output_projection.weight'")
            }
            outputs = shape[0]
            if outputs != c.numLabels && c.id2label != nil {
                throw NorBERTError.checkpoint(
                    message: "classifier.output_projection.weight has \(outputs) rows but config.json id2label has \(c.numLabels) labels")
            }
            output = try foldedLinear(
                source, weights: ["classifier.output_projection.weight"], rows: [outputs], scale: "classifier.output_projection.scale",
                cols: h)
            bias = FloatBuffer(try source.floats("classifier.output_projection.bias", shape: [outputs]))
        }
    }

    var byteCount: Int { projection.byteCount + output.byteCount + bias.byteCount }

    /// logits[rows, outputs] for `rows` hidden vectors (row stride `hidden`).
    public func apply(_ x: UnsafePointer<Float>, rows: Int) -> Tensor {
        let h = hidden
        let a = FloatBuffer(count: rows * h), b = FloatBuffer(count: rows * h)
        Vector.layerNorm(a.pointer, ldo: h, x, ldx: h, rows: rows, cols: h, eps: eps)
        GEMM.nt(b.pointer, ldc: h, a.pointer, lda: h, projection.pointer, ldb: h, m: rows, n: h, k: h)
        Vector.geluInPlace(b.pointer, count: rows * h)
        Vector.layerNorm(b.pointer, ldo: h, b.pointer, ldx: h, rows: rows, cols: h, eps: eps)
        var out = [Float](repeating: 0, count: rows * outputs)
        out.withUnsafeMutableBufferPointer { o in
            guard let base = o.baseAddress else { return }
            for r in 0..<rows { (base + r * outputs).update(from: bias.pointer, count: outputs) }
            GEMM.nt(base, ldc: outputs, b.pointer, lda: h, output.pointer, ldb: h, m: rows, n: outputs, k: h, beta: 1)
            if squash {
                for i in 0..<o.count { o[i] = 30 / (1 + Foundation.exp(-o[i] / 7.5)) }
            }
        }
        return Tensor(shape: [rows, outputs], storage: out)
    }

    public func apply(_ hidden: Tensor, rows: [Int]) -> Tensor {
        let h = self.hidden
        var gathered = [Float](repeating: 0, count: rows.count * h)
        for (i, r) in rows.enumerated() {
            for j in 0..<h { gathered[i * h + j] = hidden.storage[r * h + j] }
        }
        return gathered.withUnsafeBufferPointer { buffer in
            guard let base = buffer.baseAddress else { return Tensor(zeros: [0, outputs]) }
            return apply(base, rows: rows.count)
        }
    }
}
