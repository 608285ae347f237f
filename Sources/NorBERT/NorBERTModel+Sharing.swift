import SafeTensors
import Tensors

extension NorBERTModel {
    /// True when two checkpoints hold byte-identical encoder tensors (`embedding.*`, `encoder.*`:
    /// same names, dtypes, shapes and bytes), so one loaded `Encoder` can serve both heads.
    public static func encoderTensorsIdentical(_ a: Checkpoint, _ b: Checkpoint) -> Bool {
        func encoderNames(_ c: Checkpoint) -> [String] {
            c.names.filter { $0.hasPrefix("embedding.") || $0.hasPrefix("encoder.") }
        }
        let names = encoderNames(a)
        guard !names.isEmpty, names == encoderNames(b) else { return false }
        for name in names {
            guard let ia = a.info(name), let ib = b.info(name), ia.dtype == ib.dtype, ia.shape == ib.shape else { return false }
            let same =
                (try? a.withRawBytes(name) { ra in
                    try b.withRawBytes(name) { rb in ra.elementsEqual(rb) }
                }) ?? false
            if !same { return false }
        }
        return true
    }

    /// A model over an already loaded encoder (shared read-only with other heads); only the
    /// head's weights are read from `weights`. The configs must agree on the encoder's shape.
    public convenience init(config: NorBERTConfig, sharing encoder: Encoder, weights: any WeightSource, kind: HeadKind? = nil) throws {
        let e = encoder.config
        func dims(_ c: NorBERTConfig) -> [Int] {
            [
                c.hiddenSize, c.numLayers, c.numAttentionHeads, c.queryKeyHeadSize, c.valueHeadSize, c.intermediateSize,
                c.vocabSize, c.localGlobalRatio, c.localWindowLength, c.globalWindowLength,
            ]
        }
        guard dims(e) == dims(config), e.layerNormEps == config.layerNormEps else {
            throw NorBERTError.checkpoint(message: "cannot share the encoder: config.json dimensions differ")
        }
        try self.init(config: config, encoder: encoder, weights: weights, kind: kind)
    }
}
