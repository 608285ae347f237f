import Foundation
import NorBERT
import Testing

/// Ids are checked against the vocabulary before any narrowing: 2^32 + 20 is not id 20.
@Suite("Token id range")
struct InputIdTests {
    @Test func idsPastInt32AreRejected() throws {
        let model = try NorBERTModel(directory: Fixtures.folder("causal-lm"))
        let ws = EncoderWorkspace()
        for bad in [4_294_967_316, Int(Int32.max) + 1, Int(Int32.min) - 1, Int.max, Int.min] {
            let batch = PackedBatch([[1, 5], [1, bad, 7]])
            #expect(batch.unrepresentableId == bad)
            do {
                _ = try model.run(batch, workspace: ws)
                Issue.record("\(bad) was accepted")
            } catch let e as NorBERTError {
                #expect(e.description.contains("token id \(bad) is outside the vocabulary"), "\(e)")
            }
            #expect(throws: NorBERTError.self) { _ = try model.generateGreedy(prompt: [1, bad], maxNewTokens: 1, workspace: ws) }
        }
        // The id the old narrowing produced (20) still runs.
        #expect(PackedBatch([[1, 20]]).unrepresentableId == nil)
        _ = try model.run(PackedBatch([[1, 20]]), workspace: ws)
    }
}
