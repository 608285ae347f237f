import Foundation
import Testing

@testable import NorBERT

/// Rotary tables past the shared one (2 × max length and beyond) grow geometrically instead of
/// being rebuilt at every decoding step, and hold the values a fresh table has.
@Suite("Rotary tables")
struct RotaryTests {
    @Test func longTablesGrowGeometricallyWithFreshValues() throws {
        let model = try NorBERTModel(directory: Fixtures.folder("causal-lm"))
        let encoder = model.encoder
        let ws = EncoderWorkspace()
        for layer in [encoder.layers[0], try #require(encoder.layers.first { $0.isGlobal })] {
            let shared = encoder.rotary(for: layer, positions: 1, ws: ws)
            let c = shared.count
            var builds = Set<ObjectIdentifier>()
            // One decoding step at a time from 2c to 5c positions.
            for positions in (2 * c)...(5 * c) {
                let t = encoder.rotary(for: layer, positions: positions, ws: ws)
                #expect(t.count >= positions && t.theta == shared.theta)
                builds.insert(ObjectIdentifier(t))
            }
            #expect(builds.count <= 3, "\(builds.count) tables built for \(3 * c) steps")
            let long = encoder.rotary(for: layer, positions: 5 * c, ws: ws)
            let fresh = RotaryTable(theta: shared.theta, headDim: model.config.queryKeyHeadSize, positions: 5 * c)
            for p in [0, c - 1, 2 * c, 2 * c + 1, 3 * c + 7, 5 * c - 1] {
                let (lc, ls) = long.tables(position: p)
                let (fc, fs) = fresh.tables(position: p)
                for j in 0..<long.half {
                    #expect(lc[j] == fc[j] && ls[j] == fs[j], "position \(p), j \(j)")
                }
            }
        }
    }

    /// Decoding with the cache past 2 × max length gives the logits of a full forward pass.
    @Test func cachedDecodingPastTwiceMaxLengthMatchesFullForward() throws {
        let model = try NorBERTModel(directory: Fixtures.folder("causal-lm"))
        let c = model.config.maxSequenceLength
        let ids = (0..<(2 * c + 24)).map { 5 + ($0 * 37) % 2000 }
        let ws = EncoderWorkspace()
        let full = try #require(try model.run(PackedBatch([ids]), workspace: EncoderWorkspace())["logits"])
        let cache = KVCache(config: model.config)
        let v = model.config.vocabSize
        var maxDiff: Float = 0
        _ = try model.nextTokenLogits(Array(ids[0..<(2 * c)]), cache: cache, workspace: ws)
        for p in (2 * c)..<ids.count {
            let step = try model.nextTokenLogits([ids[p]], cache: cache, workspace: ws)
            for j in 0..<v { maxDiff = max(maxDiff, abs(step[j] - full.storage[p * v + j])) }
        }
        #expect(maxDiff < 1e-4, "max |Δ| = \(maxDiff)")
    }
}
