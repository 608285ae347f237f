import Foundation
import Tensors
import Testing

/// Kernels against straightforward double-precision references.
@Suite struct KernelTests {
    struct Rng {
        var state: UInt64
        mutating func next() -> Float {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Float(state >> 40) / Float(1 << 24) * 2 - 1
        }
    }

    @Test func expIsAccurate() {
        // Whole vectors, so the SIMD path runs (a single value takes the scalar tail).
        let x = (0..<13_520).map { Float(-87) + Float($0) * 0.013 }  // up to 88.75: past the clamp
        var y = [Float](repeating: 0, count: x.count)
        y.withUnsafeMutableBufferPointer { o in x.withUnsafeBufferPointer { Vector.exp(o.baseAddress!, $0.baseAddress!, count: x.count) } }
        var worst: Double = 0
        for (input, output) in zip(x, y) where input <= 88.37 {
            let want = Foundation.exp(Double(input))
            worst = max(worst, abs(Double(output) - want) / want)
        }
        #expect(y.allSatisfy { $0.isFinite && $0 > 0 }, "finite and positive over the whole float range")
        print("exp max relative error: \(worst) (vectorized: \(Vector.isVectorized))")
        #expect(worst < 4e-7)
        #expect(Vector.exp(-1000) < 1e-37)
    }

    @Test func geluMatchesTanhFormula() {
        var values = (0..<1000).map { Float($0 - 500) / 50 }
        let expected = values.map { x -> Double in
            let d = Double(x)
            return 0.5 * d * (1 + Foundation.tanh(0.7978845608028654 * (d + 0.044715 * d * d * d)))
        }
        values.withUnsafeMutableBufferPointer { Vector.geluInPlace($0.baseAddress!, count: $0.count) }
        let worst = zip(values, expected).map { abs(Double($0) - $1) }.max() ?? .infinity
        print("gelu max abs error: \(worst)")
        #expect(worst < 2e-6)
    }

    @Test(arguments: [1, 7, 16, 64, 192, 1000])
    func layerNormMatchesDouble(cols: Int) {
        var rng = Rng(state: UInt64(cols))
        let rows = 5
        let x = (0..<(rows * cols)).map { _ in rng.next() * 3 + 0.5 }
        let gain = (0..<cols).map { _ in rng.next() + 1 }
        var out = [Float](repeating: 0, count: rows * cols)
        out.withUnsafeMutableBufferPointer { o in
            x.withUnsafeBufferPointer { xb in
                gain.withUnsafeBufferPointer { g in
                    Vector.layerNorm(
                        o.baseAddress!, ldo: cols, xb.baseAddress!, ldx: cols, rows: rows, cols: cols, eps: 1e-7, gain: g.baseAddress)
                }
            }
        }
        var worst: Double = 0
        for r in 0..<rows {
            let row = x[(r * cols)..<((r + 1) * cols)].map(Double.init)
            let mean = row.reduce(0, +) / Double(cols)
            let variance = row.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(cols)
            for j in 0..<cols {
                let want = (row[j] - mean) / (variance + 1e-7).squareRoot() * Double(gain[j])
                worst = max(worst, abs(Double(out[r * cols + j]) - want))
            }
        }
        #expect(worst < 2e-5, "cols \(cols): \(worst)")
    }

    /// Windowed attention (query blocks, online softmax over several key chunks) against a naive
    /// double-precision softmax, bidirectional and causal, with and without a cached prefix.
    @Test(arguments: [
        (1, 0, 3000, 5000, false), (200, 0, 200, 7, false), (300, 0, 2500, 1500, false),
        (2100, 0, 2100, 3000, true), (1, 2999, 3000, 1100, true), (5, 40, 45, 16, true),
    ])
    func windowedAttention(nq: Int, queryStart: Int, nk: Int, window: Int, causal: Bool) {
        let d = 16, dv = 8
        var rng = Rng(state: UInt64(nq * 31 + nk))
        let q = (0..<(nq * d)).map { _ in rng.next() * 2 }
        let k = (0..<(nk * d)).map { _ in rng.next() * 2 }
        let v = (0..<(nk * dv)).map { _ in rng.next() }
        var out = [Float](repeating: .nan, count: nq * dv)
        var scratch = AttentionScratch()
        let scale: Float = 0.25
        out.withUnsafeMutableBufferPointer { o in
            q.withUnsafeBufferPointer { qb in
                k.withUnsafeBufferPointer { kb in
                    v.withUnsafeBufferPointer { vb in
                        Attention.windowed(
                            o.baseAddress!, ldo: dv, q: qb.baseAddress!, ldq: d, k: kb.baseAddress!, ldk: d,
                            v: vb.baseAddress!, ldv: dv, queries: nq, queryStart: queryStart, keys: nk,
                            headDim: d, valueDim: dv, window: window, causal: causal, scale: scale, scratch: &scratch)
                    }
                }
            }
        }
        var worst: Double = 0
        for i in Swift.stride(from: 0, to: nq, by: max(1, nq / 40)) {
            let p = queryStart + i
            let keys = (0..<nk).filter { j in causal ? (p - j >= 0 && p - j <= window) : abs(p - j) <= window }
            let scores = keys.map { j in (0..<d).reduce(0.0) { $0 + Double(q[i * d + $1]) * Double(k[j * d + $1]) } * Double(scale) }
            let m = scores.max() ?? 0
            let e = scores.map { Foundation.exp($0 - m) }
            let z = e.reduce(0, +)
            for c in 0..<dv {
                let want = zip(keys, e).reduce(0.0) { $0 + $1.1 * Double(v[$1.0 * dv + c]) } / z
                worst = max(worst, abs(Double(out[i * dv + c]) - want))
            }
        }
        #expect(worst < 1e-5, "max |Δ| \(worst)")
    }
}
