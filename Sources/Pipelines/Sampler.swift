import Foundation
import Tensors

/// Next-token choice: greedy (arg-max, first index on ties, as `generateGreedy`), or sampling
/// with transformers' warpers in their order: temperature, top-k, top-p.
struct Sampler {
    var doSample: Bool
    var temperature: Double
    var topK: Int
    var topP: Double
    var rng: SplitMix64

    mutating func next(_ logits: [Float]) -> Int {
        guard doSample else { return Scores.argmax(logits) }
        var x = logits.map { Double($0) / temperature }
        var kept = Self.candidates(x, topK: topK)
        if let m = kept.first.map({ x[$0] }) {
            for i in kept { x[i] = Foundation.exp(x[i] - m) }
        }
        var total = kept.reduce(0) { $0 + x[$1] }
        if topP < 1 {
            var cumulative = 0.0, cut = kept.count
            for (n, i) in kept.enumerated() {
                cumulative += x[i] / total
                if cumulative >= topP {
                    cut = n + 1
                    break
                }
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
        return kept.last ?? 0
    }

    /// The tokens top-k keeps, most likely first (ties: lower id first): every token at least as
    /// likely as the k-th one (transformers' rule), all of them when k is 0 or ≥ the count. Only
    /// the k-th value is needed (``kthLargest``, O(V)); then the kept tokens are sorted, so a
    /// token costs O(V + k log k) whatever k is (k = 0 sorts them all, as before).
    static func candidates(_ x: [Double], topK: Int) -> [Int] {
        var kept = x.indices.map { $0 }
        if topK > 0 && topK < x.count {
            let threshold = kthLargest(x, topK)
            kept = kept.filter { x[$0] >= threshold }
        }
        kept.sort { x[$0] != x[$1] ? x[$0] > x[$1] : $0 < $1 }
        return kept
    }

    /// Up to this k a sorted buffer of the k largest so far is cheapest (most values fail the
    /// first comparison, an insertion moves at most k values); above it, a radix selection.
    static let bufferedK = 64

    /// The k-th largest of `x` (duplicates counted), 1 ≤ k ≤ x.count, in O(x.count) for every k:
    /// a sorted buffer for small k, else a most-significant-byte-first radix selection over the
    /// values' order-preserving 64-bit keys (8 counting passes).
    static func kthLargest(_ x: [Double], _ k: Int) -> Double {
        guard k >= 1, k <= x.count else { return -.infinity }
        if k <= bufferedK {
            var top: [Double] = []
            top.reserveCapacity(k + 1)
            for v in x {
                if top.count == k {
                    guard let last = top.last, v > last else { continue }
                }
                var lo = 0, hi = top.count
                while lo < hi {
                    let mid = (lo + hi) / 2
                    if top[mid] >= v { lo = mid + 1 } else { hi = mid }
                }
                top.insert(v, at: lo)
                if top.count > k { top.removeLast() }
            }
            return top.last ?? -.infinity
        }
        // Larger doubles have larger keys (negative values: all bits flipped; others: sign set).
        // -0.0 and 0.0 get one key, like their comparison.
        let keys = x.map { v -> UInt64 in
            let bits = (v == 0 ? 0.0 : v).bitPattern
            return bits & (1 << 63) != 0 ? ~bits : bits | (1 << 63)
        }
        var prefix: UInt64 = 0, mask: UInt64 = 0, remaining = k
        var counts = [Int](repeating: 0, count: 256)
        for shift in Swift.stride(from: 56, through: 0, by: -8) {
            for b in counts.indices { counts[b] = 0 }
            for key in keys where key & mask == prefix { counts[Int((key >> UInt64(shift)) & 0xFF)] += 1 }
            var byte = 255
            while byte > 0 && counts[byte] < remaining {
                remaining -= counts[byte]
                byte -= 1
            }
            prefix |= UInt64(byte) << UInt64(shift)
            mask |= UInt64(0xFF) << UInt64(shift)
        }
        let bits = prefix & (1 << 63) != 0 ? prefix & ~(1 << 63) : ~prefix
        return Double(bitPattern: bits)
    }
}
