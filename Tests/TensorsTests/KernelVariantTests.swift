import Foundation
import Tensors
import Testing

/// Every vectorised variant of the element-wise kernels (AVX2, AVX-512) against the portable C
/// on the CPU running the tests. Variants this CPU lacks are reported and skipped.
@Suite struct KernelVariantTests {
    struct Rng {
        var state: UInt64
        mutating func next() -> Float {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Float(state >> 40) / Float(1 << 24) * 2 - 1
        }
        mutating func values(_ n: Int, scale: Float = 1, offset: Float = 0) -> [Float] { (0..<n).map { _ in next() * scale + offset } }
    }

    static let wide: [KernelLevel] = [.avx2, .avx512]

    /// Runs `body` under the portable kernels and under each wider variant this CPU has; returns
    /// (variant, max |Δ| against portable) pairs and prints them.
    static func compare(_ name: String, _ body: () -> [Float]) -> [(KernelLevel, Float)] {
        let reference = Vector.withLevel(.portable) { body() }
        var out: [(KernelLevel, Float)] = []
        for level in wide {
            guard level <= Vector.detectedLevel else {
                print("\(name): \(level) not on this CPU (widest \(Vector.detectedLevel)): skipped")
                continue
            }
            let got = Vector.withLevel(level) { body() }
            #expect(Vector.withLevel(level) { Vector.level } == level)
            #expect(got.count == reference.count)
            let worst = zip(got, reference).map { abs($0 - $1) }.max() ?? 0
            #expect(got.allSatisfy { $0.isFinite }, "\(name) \(level): non-finite output")
            print("\(name): \(level) vs portable max |Δ| \(worst)")
            out.append((level, worst))
        }
        return out
    }

    @Test func levelsAreConsistent() {
        #expect(Vector.withLevel(.portable) { Vector.level } == .portable)
        #expect(Vector.withLevel(.portable) { Vector.isVectorized } == false)
        #expect(CPUFeatures.current.widestLevel == Vector.detectedLevel)
        let report = KernelReport.current()
        print(report.summary)
        print(report.narrowerNote ?? "no narrower kernels than the CPU supports")
        #expect(!report.blasCore.isEmpty)
    }

    @Test(arguments: [1, 15, 16, 17, 64, 192, 640, 1000])
    func layerNorm(cols: Int) {
        var rng = Rng(state: UInt64(cols))
        let rows = 7
        let x = rng.values(rows * cols, scale: 3, offset: 0.5), gain = rng.values(cols, offset: 1)
        for (level, worst) in Self.compare(
            "layerNorm cols \(cols)",
            {
                var out = [Float](repeating: .nan, count: rows * cols)
                out.withUnsafeMutableBufferPointer { o in
                    Vector.layerNorm(o.baseAddress!, ldo: cols, x, ldx: cols, rows: rows, cols: cols, eps: 1e-7, gain: gain)
                }
                return out
            })
        { #expect(worst < 5e-6, "\(level)") }
        // Rows normed together (AVX-512 takes up to four at once) equal rows normed one by one,
        // bit for bit, at every level.
        for level in [KernelLevel.portable] + Self.wide where level <= Vector.detectedLevel {
            var together = [Float](repeating: .nan, count: rows * cols), alone = together
            Vector.withLevel(level) {
                together.withUnsafeMutableBufferPointer { o in
                    Vector.layerNorm(o.baseAddress!, ldo: cols, x, ldx: cols, rows: rows, cols: cols, eps: 1e-7, gain: gain)
                }
                alone.withUnsafeMutableBufferPointer { o in
                    x.withUnsafeBufferPointer { xs in
                        for r in 0..<rows {
                            Vector.layerNorm(
                                o.baseAddress! + r * cols, ldo: cols, xs.baseAddress! + r * cols, ldx: cols, rows: 1, cols: cols, eps: 1e-7,
                                gain: gain)
                        }
                    }
                }
            }
            #expect(together == alone, "\(level)")
        }
    }

    @Test(arguments: [8, 192, 200])
    func fusedMixLayerNormAndMixes(cols: Int) {
        var rng = Rng(state: 99 + UInt64(cols))
        let rows = 5, n = rows * cols
        let x = rng.values(n, scale: 2), y = rng.values(n, scale: 2), p = rng.values(n), q = rng.values(n)
        for (level, worst) in Self.compare(
            "mixLayerNorm cols \(cols)",
            {
                var out = [Float](repeating: .nan, count: n)
                out.withUnsafeMutableBufferPointer { o in
                    Vector.mixLayerNorm(o.baseAddress!, scale: 0.7, 0.8, x, 0.2, y, plus: p, rows: rows, cols: cols, eps: 1e-7)
                }
                return out
            })
        { #expect(worst < 5e-6, "\(level)") }
        // The mixes round identically in every variant (no fused multiply-add).
        for (level, worst) in Self.compare(
            "scaledMixAdd n \(n)",
            {
                var out = [Float](repeating: .nan, count: n), out2 = x, out3 = y
                out.withUnsafeMutableBufferPointer { o in Vector.scaledMixAdd(o.baseAddress!, 1.3, 0.6, x, 0.4, y, plus: p, q, count: n) }
                out2.withUnsafeMutableBufferPointer { o in Vector.add(o.baseAddress!, p, q, count: n) }
                out3.withUnsafeMutableBufferPointer { o in Vector.scale(o.baseAddress!, by: 0.37, count: n) }
                var out4 = [Float](repeating: .nan, count: n)
                out4.withUnsafeMutableBufferPointer { o in Vector.scaledMix(o.baseAddress!, 1.7, 0.6, x, 0.4, y, count: n) }
                return out + out2 + out3 + out4
            })
        { #expect(worst == 0, "\(level)") }
        // The fused mix + norm equals the two separate passes bit for bit.
        var separate = [Float](repeating: 0, count: n), fused = separate
        separate.withUnsafeMutableBufferPointer { o in
            Vector.scaledMixAdd(o.baseAddress!, 0.7, 0.8, x, 0.2, y, plus: p, count: n)
            Vector.layerNorm(o.baseAddress!, ldo: cols, o.baseAddress!, ldx: cols, rows: rows, cols: cols, eps: 1e-7)
        }
        fused.withUnsafeMutableBufferPointer { o in
            Vector.mixLayerNorm(o.baseAddress!, scale: 0.7, 0.8, x, 0.2, y, plus: p, rows: rows, cols: cols, eps: 1e-7)
        }
        #expect(separate == fused)
    }

    @Test(arguments: [5, 64, 512, 1664])
    func gegluGeluExp(inter: Int) {
        var rng = Rng(state: 7 + UInt64(inter))
        let rows = 3
        let up = rng.values(rows * 2 * inter, scale: 6)
        for (level, worst) in Self.compare(
            "geglu+norm inter \(inter)",
            {
                var a = [Float](repeating: .nan, count: rows * inter), b = a
                a.withUnsafeMutableBufferPointer { o in Vector.geglu(o.baseAddress!, up: up, rows: rows, inter: inter) }
                b.withUnsafeMutableBufferPointer { o in Vector.gegluLayerNorm(o.baseAddress!, up: up, rows: rows, inter: inter, eps: 1e-7) }
                var g = up
                g.withUnsafeMutableBufferPointer { Vector.geluInPlace($0.baseAddress!, count: $0.count) }
                return a + b + g
            })
        { #expect(worst < 2e-5, "\(level)") }
        let x = (0..<(rows * inter)).map { Float($0 % 353) * 0.5 - 88 }  // −88 … 88: both clamps
        for (level, worst) in Self.compare(
            "exp n \(x.count) (relative)",
            {
                var y = [Float](repeating: .nan, count: x.count)
                y.withUnsafeMutableBufferPointer { Vector.exp($0.baseAddress!, x, count: x.count) }
                // Relative error, as an absolute difference of ratios near 1.
                return zip(x, y).map { Float(Double($1) / Foundation.exp(min(max(Double($0), -87.33654), 88.37626))) }
            })
        { #expect(worst < 1e-6, "\(level)") }
    }

    @Test(arguments: [(3, 64), (10, 64), (2, 32), (1, 16), (2, 48)])
    func qkNormRope(heads: Int, d: Int) {
        var rng = Rng(state: UInt64(heads * 100 + d))
        let rows = 9, ld = 2 * heads * d + 3
        let qk = rng.values(rows * ld, scale: 4)
        let qGain = rng.values(heads * d, offset: 1), kGain = rng.values(heads * d, offset: 1)
        let cos = rng.values(rows * d / 2), sin = rng.values(rows * d / 2)
        for (level, worst) in Self.compare(
            "qkNormRope \(heads)×\(d)",
            {
                var x = qk
                x.withUnsafeMutableBufferPointer { o in
                    Vector.qkNormRope(
                        o.baseAddress!, ld: ld, rows: rows, heads: heads, headDim: d, qGain: qGain, kGain: kGain, cos: cos, sin: sin,
                        eps: 1e-7)
                }
                return x
            })
        { #expect(worst < 1e-5, "\(level)") }
        // The row-batched call equals per-token, per-half calls.
        var batched = qk, single = qk
        batched.withUnsafeMutableBufferPointer { o in
            Vector.qkNormRope(
                o.baseAddress!, ld: ld, rows: rows, heads: heads, headDim: d, qGain: qGain, kGain: kGain, cos: cos, sin: sin, eps: 1e-7)
        }
        single.withUnsafeMutableBufferPointer { o in
            cos.withUnsafeBufferPointer { c in
                sin.withUnsafeBufferPointer { s in
                    for t in 0..<rows {
                        let row = o.baseAddress! + t * ld
                        Vector.headNormRope(
                            row, heads: heads, headDim: d, gain: qGain, cos: c.baseAddress! + t * d / 2, sin: s.baseAddress! + t * d / 2,
                            eps: 1e-7)
                        Vector.headNormRope(
                            row + heads * d, heads: heads, headDim: d, gain: kGain, cos: c.baseAddress! + t * d / 2,
                            sin: s.baseAddress! + t * d / 2, eps: 1e-7)
                    }
                }
            }
        }
        #expect(batched == single)
    }

    @Test(arguments: [(40, 0, 40), (40, 3, 17), (1024, 100, 1000), (7, 0, 7), (33, 20, 20)])
    func softmax(cols: Int, a: Int, b: Int) {
        var rng = Rng(state: UInt64(cols * 7 + a))
        let scores = rng.values(cols, scale: 20)
        for (level, worst) in Self.compare(
            "softmax \(cols) [\(a), \(b))",
            {
                var row = scores, chunk = scores
                row.withUnsafeMutableBufferPointer { Vector.softmaxRow($0.baseAddress!, cols: cols, visible: a, b) }
                var m: Float = 3, sum: Float = 2
                let factor = chunk.withUnsafeMutableBufferPointer {
                    Vector.softmaxChunkRow($0.baseAddress!, cols: cols, visible: a, b, rowMax: &m, rowSum: &sum)
                }
                return row + chunk.map { $0 / sum } + [factor, m]
            })
        { #expect(worst < 1e-6, "\(level)") }
        var row = scores
        row.withUnsafeMutableBufferPointer { Vector.softmaxRow($0.baseAddress!, cols: cols, visible: a, b) }
        let total = row.reduce(0, +)
        #expect(a >= b ? total == 0 : abs(total - 1) < 1e-5)
    }

    /// Short-sequence attention (one block, one GEMM per head for the scores and one for the
    /// output) equals the chunked online softmax of longer inputs, and a naive softmax.
    @Test(arguments: [(32, 256, false), (128, 256, false), (128, 16, true), (200, 8_192, true)])
    func singleBlockAttention(n: Int, window: Int, causal: Bool) {
        let d = 64, dv = 64
        var rng = Rng(state: UInt64(n + window))
        let q = rng.values(n * d, scale: 2), k = rng.values(n * d, scale: 2), v = rng.values(n * dv)
        var out = [Float](repeating: .nan, count: n * dv)
        var scratch = AttentionScratch()
        out.withUnsafeMutableBufferPointer { o in
            Attention.windowed(
                o.baseAddress!, ldo: dv, q: q, ldq: d, k: k, ldk: d, v: v, ldv: dv, queries: n, queryStart: 0, keys: n,
                headDim: d, valueDim: dv, window: window, causal: causal, scale: 0.125, scratch: &scratch)
        }
        var worst: Double = 0
        for i in 0..<n {
            let keys = (0..<n).filter { j in causal ? (i - j >= 0 && i - j <= window) : abs(i - j) <= window }
            let s = keys.map { j in (0..<d).reduce(0.0) { $0 + Double(q[i * d + $1]) * Double(k[j * d + $1]) } * 0.125 }
            let m = s.max() ?? 0
            let e = s.map { Foundation.exp($0 - m) }
            let z = e.reduce(0, +)
            for c in 0..<dv {
                let want = zip(keys, e).reduce(0.0) { $0 + $1.1 * Double(v[$1.0 * dv + c]) } / z
                worst = max(worst, abs(Double(out[i * dv + c]) - want))
            }
        }
        print("single-block attention n \(n) window \(window) causal \(causal): max |Δ| \(worst)")
        #expect(worst < 1e-5)
    }

    @Test func blasSelfCheckPasses() throws {
        let summary = try BLASSelfCheck.run()
        print(summary)
        #expect(summary.contains("match"))
    }

    /// A wrong result injected through the seam (the real GEMM, then one element changed) is refused.
    @Test(arguments: [1e-2 as Float, 1, 1e6])
    func blasSelfCheckRefusesAWrongResult(delta: Float) {
        let faulty: BLASSelfCheck.Call = { t, out, ldc, a, lda, b, ldb, m, n, k, alpha, beta in
            BLASSelfCheck.blas(t, out, ldc, a, lda, b, ldb, m, n, k, alpha, beta)
            if m >= 64 { out[(m - 1) * ldc + n - 1] += delta }  // only the larger cases, last element
        }
        #expect(throws: BLASSelfCheck.Failure.self) { _ = try BLASSelfCheck.run(faulty) }
        do {
            try BLASSelfCheck.run(faulty)
        } catch {
            print(error.description)
            #expect(error.description.contains("BLAS self-check failed"))
        }
        let nan: BLASSelfCheck.Call = { t, out, ldc, a, lda, b, ldb, m, n, k, alpha, beta in
            BLASSelfCheck.blas(t, out, ldc, a, lda, b, ldb, m, n, k, alpha, beta)
            out[0] = .nan
        }
        #expect(throws: BLASSelfCheck.Failure.self) { _ = try BLASSelfCheck.run(nan) }
    }
}
