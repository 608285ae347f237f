import Foundation
import NorBERT
import Tensors
import Testing

/// The encoder's sub-passes (`Encoder.forward(subPassTokens:)`): a batch run as several passes
/// of whole sequences gives the same outputs, row for row and layer for layer, as one pass.
@Suite struct SubPassTests {
    @Test(arguments: ["base", "causal-lm"])
    func subPassesEqualOnePass(folder: String) throws {
        let model = try NorBERTModel(directory: Fixtures.folder(folder))
        var rng = SplitMix64(seed: 4_242)
        let vocab = model.config.vocabSize
        let lengths = [5, 1, 17, 9, 33, 2, 12, 8, 40, 3]
        let batch = PackedBatch(lengths.map { n in (0..<n).map { _ in Int(rng.next() % UInt64(vocab)) } })
        let causal = folder == "causal-lm"
        let whole = try model.encoder.forward(
            batch, causal: causal, hiddenStates: true, workspace: EncoderWorkspace(), subPassTokens: .max)
        // Our packed GEMM sums a row independently of the other rows; OpenBLAS (chosen on CPUs
        // without AVX2) may round differently with the number of rows.
        let exact = WeightGEMM.preferred() == .packed
        for limit in [1, 16, 40, 64] {
            let split = try model.encoder.forward(
                batch, causal: causal, hiddenStates: true, workspace: EncoderWorkspace(), subPassTokens: limit)
            var worst: Float = 0
            let pairs =
                [(whole.lastHiddenState, split.lastHiddenState)] + zip(whole.hiddenStates ?? [], split.hiddenStates ?? []).map { ($0, $1) }
            #expect(split.hiddenStates?.count == whole.hiddenStates?.count)
            for (a, b) in pairs {
                #expect(a.shape == b.shape)
                worst = max(worst, zip(a.storage, b.storage).map { abs($0 - $1) }.max() ?? 0)
            }
            print("\(folder): sub-passes of at most \(limit) tokens vs one pass: max |Δ| \(worst) over \(pairs.count) states")
            #expect(exact ? worst == 0 : worst < 1e-5, "\(folder) by \(limit)")
        }
    }

    /// At the default limit (512) a batch of more tokens splits where the encoder's 256-row blocks
    /// fall differently than in one pass; 0 means one pass.
    @Test func defaultLimitOverSeveralRowBlocks() throws {
        let model = try NorBERTModel(directory: Fixtures.folder("base"))
        var rng = SplitMix64(seed: 77)
        let vocab = model.config.vocabSize
        let batch = PackedBatch([300, 250, 150, 40, 270].map { n in (0..<n).map { _ in Int(rng.next() % UInt64(vocab)) } })
        #expect(batch.groups(ofAtMost: Encoder.subPassTokens).count > 1 || Encoder.subPassTokens > batch.totalTokens)
        let whole = try model.encoder.forward(batch, workspace: EncoderWorkspace(), subPassTokens: 0)
        let split = try model.encoder.forward(batch, workspace: EncoderWorkspace())
        let worst = zip(whole.lastHiddenState.storage, split.lastHiddenState.storage).map { abs($0 - $1) }.max() ?? 0
        print("1,010 tokens, sub-passes of at most \(Encoder.subPassTokens) vs one pass: max |Δ| \(worst)")
        #expect(WeightGEMM.preferred() == .packed ? worst == 0 : worst < 1e-5)
    }
}
