import Tensors
import Testing

@testable import Pipelines

/// The sampler's top-k selection (one pass for the k-th value, no sort of the vocabulary) keeps
/// exactly what sorting every token would.
@Suite("Pipelines: sampler")
struct SamplerTests {
    @Test func topKCandidatesMatchSortingEveryToken() {
        var values = SplitMix64(seed: 11)
        var checked = 0
        for trial in 0..<60 {
            let count = [1, 7, 300, 4096][trial % 4]
            // Quantized, so ties (also at the k-th value) are common.
            let x = (0..<count).map { _ in Double(Int(values.next() % 64)) / 8 - 4 }
            // The rule spelled out: sort all (most likely first, lower id on ties), keep those at
            // least as likely as the k-th.
            let order = x.indices.sorted { x[$0] != x[$1] ? x[$0] > x[$1] : $0 < $1 }
            for topK in [0, 1, 2, 5, 40, count - 1, count, count + 3] where topK >= 0 {
                let want = topK > 0 && topK < count ? order.filter { x[$0] >= x[order[topK - 1]] } : order
                #expect(Sampler.candidates(x, topK: topK) == want, "count \(count) top_k \(topK)")
                checked += 1
            }
        }
        #expect(checked > 400)
    }

    /// Large k takes the radix selection (O(V) for every k): same k-th value as sorting, with
    /// ties, negatives, infinities, ±0 and values that differ only in their last bits.
    @Test func kthLargestForLargeKEqualsSorting() {
        var rng = SplitMix64(seed: 23)
        for trial in 0..<40 {
            let count = [65, 100, 2048, 5000][trial % 4]
            var x = (0..<count).map { _ -> Double in
                switch rng.next() % 6 {
                case 0: return Double(Int(rng.next() % 16)) - 8
                case 1: return -Double(rng.next() % 1000) / 7
                case 2: return Double(bitPattern: 0x3FF0_0000_0000_0000 | (rng.next() & 0xFF))
                default: return Double(Int64(bitPattern: rng.next()) >> 11) / Double(1 << 40)
                }
            }
            x[Int(rng.next() % UInt64(count))] = -.infinity
            x[Int(rng.next() % UInt64(count))] = 0
            x[Int(rng.next() % UInt64(count))] = -0.0
            let sorted = x.sorted(by: >)
            for k in [Sampler.bufferedK + 1, count / 2, count - 1, count] where k > Sampler.bufferedK && k <= count {
                #expect(Sampler.kthLargest(x, k) == sorted[k - 1], "count \(count) k \(k)")
            }
        }
        // Sampling with top_k = the vocabulary keeps every token.
        let logits = (0..<2048).map { Double(($0 * 7919) % 2048) / 256 }
        #expect(Sampler.candidates(logits, topK: 2048).count == 2048)
        #expect(Sampler.candidates(logits, topK: 2047).count == 2047)
    }

    @Test func kthLargestCountsDuplicates() {
        #expect(Sampler.kthLargest([3, 1, 3, 2], 1) == 3)
        #expect(Sampler.kthLargest([3, 1, 3, 2], 2) == 3)
        #expect(Sampler.kthLargest([3, 1, 3, 2], 3) == 2)
        #expect(Sampler.kthLargest([3, 1, 3, 2], 4) == 1)
        #expect(Sampler.kthLargest([-1, -5, -3], 2) == -3)
    }

    @Test func seededDrawsRepeatAndTopOneIsArgmax() {
        let logits: [Float] = (0..<2048).map { Float(($0 * 7919) % 2048) / 256 }
        var a = Sampler(doSample: true, temperature: 0.8, topK: 40, topP: 0.9, rng: SplitMix64(seed: 5))
        var b = a
        let first = (0..<20).map { _ in a.next(logits) }
        #expect(first == (0..<20).map { _ in b.next(logits) })
        #expect(Set(first).isSubset(of: Set(Sampler.candidates(logits.map { Double($0) / 0.8 }, topK: 40))))
        var one = Sampler(doSample: true, temperature: 1, topK: 1, topP: 1, rng: SplitMix64(seed: 9))
        #expect(one.next(logits) == Scores.argmax(logits))
    }
}
