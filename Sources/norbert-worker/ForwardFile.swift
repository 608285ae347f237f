import Foundation
import NorBERT
import SafeTensors
import Tensors

/// The `forward` command's file-to-file pass: padded input_ids (and attention_mask) in, the
/// reference's named outputs out, padded back to [B, T, …]. Values at padded positions are 0.
public enum ForwardFile {
    public struct Inputs {
        public var batch: PackedBatch
        /// [B, T] or [B, C, T].
        public var shape: [Int]
    }

    /// Reads `input_ids` (int64 [B, T], or [B, C, T] for multiple choice) and the optional
    /// right-padded `attention_mask` of the same shape.
    public static func readInputs(path: String, kind: HeadKind) throws -> Inputs {
        let file: SafeTensorsFile
        do { file = try SafeTensorsFile(path: path) } catch let e as SafeTensorsError { throw NorBERTError.invalidInput(e.description) }
        guard let ids = file.info("input_ids") else {
            throw NorBERTError.invalidInput("\(path) has no tensor 'input_ids' (found: \(file.names.joined(separator: ", ")))")
        }
        guard [.I64, .I32].contains(ids.dtype) else {
            throw NorBERTError.invalidInput("input_ids must be int64, got \(ids.dtype.rawValue)")
        }
        let wantRank = kind == .multipleChoice ? 3 : 2
        guard ids.shape.count == wantRank else {
            throw NorBERTError.invalidInput(
                """
                input_ids must have rank \(wantRank) (\(kind == .multipleChoice ? "[batch, choices, tokens]" : "[batch, tokens]")) \
                for the \(kind.rawValue) head, got shape \(ids.shape)
                """
            )
        }
        let t = ids.shape[wantRank - 1]
        let rows = ids.shape.dropLast().reduce(1, *)
        guard t > 0, rows > 0 else { throw NorBERTError.invalidInput("input_ids has an empty dimension: \(ids.shape)") }
        let values: [Int64]
        do { values = try file.int64s("input_ids") } catch let e as SafeTensorsError { throw NorBERTError.invalidInput(e.description) }
        var mask: [Int64]? = nil
        if let m = file.info("attention_mask") {
            guard m.shape == ids.shape else {
                throw NorBERTError.invalidInput("attention_mask shape \(m.shape) differs from input_ids shape \(ids.shape)")
            }
            guard [.I64, .I32, .I8, .U8, .BOOL].contains(m.dtype) else {
                throw NorBERTError.invalidInput("attention_mask must be int64 (or bool), got \(m.dtype.rawValue)")
            }
            do { mask = try file.int64s("attention_mask") } catch let e as SafeTensorsError {
                throw NorBERTError.invalidInput(e.description)
            }
        }
        var batch = PackedBatch()
        for r in 0..<rows {
            var len = t
            if let mask {
                len = 0
                while len < t && mask[r * t + len] != 0 { len += 1 }
                if (len..<t).contains(where: { mask[r * t + $0] != 0 }) {
                    throw NorBERTError.invalidInput("attention_mask row \(r) is not right padding (a 1 follows a 0)")
                }
                if len == 0 { throw NorBERTError.invalidInput("attention_mask row \(r) has no tokens") }
            }
            batch.append((0..<len).map { Int(values[r * t + $0]) })
        }
        return Inputs(batch: batch, shape: ids.shape)
    }

    /// Runs the model and writes float32 outputs named as the reference names them.
    public static func run(
        model: NorBERTModel, inputs: Inputs, hiddenStates: Bool, output: String, workspace: EncoderWorkspace = EncoderWorkspace()
    ) throws {
        let batch = inputs.batch
        let outs = try model.run(batch, hiddenStates: hiddenStates, workspace: workspace)
        let t = inputs.shape.last ?? 0
        let rows = batch.count
        func padded(_ packed: Tensor, features f: Int, shape: [Int]) -> Tensor {
            var out = [Float](repeating: 0, count: rows * t * f)
            for s in 0..<rows {
                for p in 0..<batch.length(s) {
                    for j in 0..<f { out[(s * t + p) * f + j] = packed.storage[(batch.offsets[s] + p) * f + j] }
                }
            }
            return Tensor(shape: shape, storage: out)
        }
        let h = model.config.hiddenSize
        var written: [(name: String, value: SafeTensorsWriter.Value)] = []
        written.append(
            ("last_hidden_state", .float32(padded(outs["last_hidden_state"] ?? Tensor(zeros: [0]), features: h, shape: [rows, t, h]))))
        if hiddenStates {
            for i in 0...model.config.numLayers {
                if let s = outs["hidden_states.\(i)"] {
                    written.append(("hidden_states.\(i)", .float32(padded(s, features: h, shape: [rows, t, h]))))
                }
            }
        }
        let lead = Array(inputs.shape.dropLast())
        switch model.kind {
        case .base: break
        case .maskedLM, .causalLM, .tokenClassification:
            if let l = outs["logits"] {
                let f = l.shape.last ?? 1
                written.append(("logits", .float32(padded(l, features: f, shape: lead + [t, f]))))
            }
        case .sequenceClassification:
            if let l = outs["logits"] {
                written.append(("logits", .float32(Tensor(shape: [rows, l.shape.last ?? 1], storage: l.storage))))
            }
        case .multipleChoice:
            // Corrected pooling: the first token of each choice → [B, C].
            if let l = outs["logits"] { written.append(("logits", .float32(Tensor(shape: lead, storage: l.storage)))) }
        case .questionAnswering:
            for name in ["start_logits", "end_logits"] {
                if let l = outs[name] { written.append((name, .float32(padded(l, features: 1, shape: lead + [t])))) }
            }
        }
        try SafeTensorsWriter.write(written, to: output, metadata: ["format": "pt"])
    }
}
