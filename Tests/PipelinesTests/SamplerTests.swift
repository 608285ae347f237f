import Foundation
@testable import Pipelines
import Tensors
import Testing

/// The sampler's top-k selection (one pass for the k-th value, no sort of the vocabulary) picks
/// exactly what sorting every token would: checked against that straightforward version.
@Suite("Pipelines: sampler")
struct SamplerTests {
    /// The rule spelled out: sort all tokens (most likely first, lower id on ties), keep those at
    /// least as likely as the k-th, softmax, cut at top-p, draw.
    static func reference(_ logits: [Float], temperature: Double, topK: Int, topP: Double, rng: inout SplitMix64) -> Int {
        var x = logits.map { Double($0) / temperature }
        let order = x.indices.sorted { x[$0] != x[$1] ? x[$0] > x[$1] : $0 < $1 }
        var kept = order
        if topK > 0 && topK < order.count { kept = order.filter { x[$0] >= x[order[topK - 1]] } }
        let m = x[kept[0]]
        for i in kept { x[i] = Foundation.exp(x[i] - m) }
        var total = kept.reduce(0) { $0 + x[$1] }
        if topP < 1 {
            var cumulative = 0.0, cut = kept.count
            for (n, i) in kept.enumerated() {
                cumulative += x[i] / total
                if cumulative >= topP { cut = n + 1; break }
            }
            kept = Array(kept.prefix(max(cut, 1)))
            total = kept.reduce(0) { $0 + x[$1] }
        }
        let u = Double(rng.next() >> 11) / Double(1 << 53) * total
        var acc = 0.0
        for i in kept {
            acc += x[i]
            if u < acc { return i }
        }
        return kept[kept.count - 1]
    }

    @Test func topKSelectionMatchesSortingEveryToken() {
        var values = SplitMix64(seed: 11)
        var draws = 0
        for trial in 0..<40 {
            let count = [1, 7, 300, 2000][trial % 4]
            // Quantized logits, so ties (also at the k-th value) are common.
            let logits = (0..<count).map { _ in Float(Int(values.next() % 64)) / 8 - 4 }
            for topK in [0, 1, 2, 5, 40, count - 1, count, count + 3] where topK >= 0 {
                for (temperature, topP) in [(1.0, 1.0), (0.7, 0.9), (2.0, 0.5)] {
                    let seed = UInt64(trial * 1000 + topK)
                    var sampler = Sampler(doSample: true, temperature: temperature, topK: topK, topP: topP, rng: SplitMix64(seed: seed))
                    var rng = SplitMix64(seed: seed)
                    for _ in 0..<3 {
                        let got = sampler.next(logits)
                        let want = Self.reference(logits, temperature: temperature, topK: topK, topP: topP, rng: &rng)
                        #expect(got == want, "count \(count) top_k \(topK) temperature \(temperature) top_p \(topP)")
                        draws += 1
                    }
                }
            }
        }
        #expect(draws > 1000)
    }

    @Test func kthLargestCountsDuplicates() {
        #expect(Sampler.kthLargest([3, 1, 3, 2], 1) == 3)
        #expect(Sampler.kthLargest([3, 1, 3, 2], 2) == 3)
        #expect(Sampler.kthLargest([3, 1, 3, 2], 3) == 2)
        #expect(Sampler.kthLargest([3, 1, 3, 2], 4) == 1)
        #expect(Sampler.kthLargest([-1, -5, -3], 2) == -3)
    }
}
