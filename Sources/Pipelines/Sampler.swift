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
        let order = x.indices.sorted { x[$0] != x[$1] ? x[$0] > x[$1] : $0 < $1 }
        var kept = order
        if topK > 0 && topK < order.count {
            // Keep every token at least as likely as the k-th one (transformers' rule).
            let threshold = x[order[topK - 1]]
            kept = order.filter { x[$0] >= threshold }
        }
        if let m = kept.first.map({ x[$0] }) {
            for i in kept { x[i] = Foundation.exp(x[i] - m) }
        }
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
        return kept.last ?? 0
    }
}
