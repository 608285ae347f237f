import Foundation

/// Float32 score functions as the transformers pipelines compute them with numpy.
enum Scores {
    static func softmax(_ x: ArraySlice<Float>) -> [Float] {
        guard let m = x.max() else { return [] }
        let e = x.map { Foundation.exp($0 - m) }
        let s = e.reduce(0, +)
        return e.map { $0 / s }
    }

    static func softmax(_ x: [Float]) -> [Float] { softmax(x[...]) }

    static func sigmoid(_ x: [Float]) -> [Float] { x.map { 1 / (1 + Foundation.exp(-$0)) } }

    /// First index of the largest value.
    static func argmax(_ x: ArraySlice<Float>) -> Int {
        var best = x.startIndex
        for i in x.indices where x[i] > x[best] { best = i }
        return best - x.startIndex
    }

    static func argmax(_ x: [Float]) -> Int { argmax(x[...]) }

    /// Indices sorted by value, largest first, stable (equal values keep index order).
    static func order(_ x: [Float]) -> [Int] {
        x.indices.sorted { x[$0] != x[$1] ? x[$0] > x[$1] : $0 < $1 }
    }

    /// The `k` largest of `x` at `candidates`, largest first (lower index first on ties), without
    /// sorting the whole vocabulary.
    static func top(_ k: Int, of x: [Float], among candidates: [Int]) -> [Int] {
        guard k > 0 else { return [] }
        if k >= candidates.count {
            return candidates.sorted { x[$0] != x[$1] ? x[$0] > x[$1] : $0 < $1 }
        }
        func before(_ a: Int, _ b: Int) -> Bool { x[a] != x[b] ? x[a] > x[b] : a < b }
        var best: [Int] = []
        best.reserveCapacity(k + 1)
        for i in candidates {
            if best.count == k, let last = best.last, !before(i, last) { continue }
            var lo = 0, hi = best.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if before(best[mid], i) { lo = mid + 1 } else { hi = mid }
            }
            best.insert(i, at: lo)
            if best.count > k { best.removeLast() }
        }
        return best
    }
}
