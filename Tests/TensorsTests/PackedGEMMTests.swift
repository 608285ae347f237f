import CKernels
import Foundation
import Tensors
import Testing

/// Our packed weight GEMM (`LinearWeight`, Sources/CKernels/gemm.c) in every variant this CPU has
/// (portable, AVX2+FMA, AVX-512, forced per thread) against a double-precision loop, on shapes
/// around the tiles (AVX-512 12 × 32, AVX2 6 × 16, portable 4 × 32) and the K block (1,024).
@Suite struct PackedGEMMTests {
    /// (m, n, k): empty, single, tile ±1, primes, several K blocks, one column, k = 0.
    static let shapes: [(Int, Int, Int)] = [
        (0, 5, 3), (1, 1, 1), (1, 32, 192), (11, 31, 7), (12, 32, 16), (13, 33, 17), (6, 16, 5), (7, 17, 9),
        (37, 97, 131), (25, 65, 513), (7, 96, 1_031), (5, 40, 2_100), (12, 1, 512), (3, 64, 0), (97, 192, 192),
    ]
    static let levels = KernelLevel.allCases

    /// Relative error bound: each element within 1e-5 of the sum of the magnitudes of its terms
    /// (float32 accumulation of up to ~1,000 terms rounds at ~1e-6 of that sum; a wrong element is
    /// off by whole terms).
    static let tolerance = 1e-5

    /// Runs one case; returns the largest error relative to the sum of magnitudes, and checks that
    /// nothing outside out[m, n] (the row padding of ldc) is written.
    static func run(_ gemm: WeightGEMM, m: Int, n: Int, k: Int, accumulate: Bool) -> Double {
        var rng = SplitMix64(seed: UInt64(m * 1_000_003 + n * 1_009 + k))
        let lda = k + 3, ldc = n + 5
        let x = (0..<(m * lda)).map { _ in rng.symmetricUnit() }
        let w = (0..<(n * k)).map { _ in rng.symmetricUnit() }
        let c0 = (0..<(m * ldc)).map { i in i % ldc < n ? rng.symmetricUnit() : Float.nan }
        // + [0]: a pointer even when n·k = 0.
        let weight = (w + [0]).withUnsafeBufferPointer { LinearWeight($0.baseAddress!, rows: n, cols: k, gemm: gemm) }
        var c = c0
        c.withUnsafeMutableBufferPointer { out in
            x.withUnsafeBufferPointer { xp in
                guard let o = out.baseAddress, let a = xp.baseAddress else { return }
                weight.apply(o, ldc: ldc, a, lda: lda, m: m, accumulate: accumulate)
            }
        }
        var worst = 0.0
        for i in 0..<m {
            for j in 0..<ldc {
                let got = c[i * ldc + j]
                guard j < n else {
                    #expect(got.isNaN, "\(gemm) \(m)×\(n)×\(k): wrote past column \(n) (row \(i), column \(j))")
                    continue
                }
                var sum = accumulate ? Double(c0[i * ldc + j]) : 0, magnitude = abs(sum)
                for p in 0..<k {
                    let term = Double(x[i * lda + p]) * Double(w[j * k + p])
                    sum += term
                    magnitude += abs(term)
                }
                #expect(got.isFinite, "\(gemm) \(m)×\(n)×\(k) [\(i), \(j)] is \(got)")
                worst = max(worst, abs(Double(got) - sum) / max(magnitude, 1e-30))
            }
        }
        return worst
    }

    @Test(arguments: levels)
    func everyVariantMatchesADoubleLoop(level: KernelLevel) {
        guard level <= Vector.detectedLevel else {
            print("packed GEMM: \(level) not on this CPU (widest \(Vector.detectedLevel)): skipped")
            return
        }
        var worst = 0.0
        Vector.withLevel(level) {
            #expect(Vector.level == level)
            for (m, n, k) in Self.shapes {
                for accumulate in [false, true] {
                    let error = Self.run(.packed, m: m, n: n, k: k, accumulate: accumulate)
                    #expect(error <= Self.tolerance, "\(level) \(m)×\(n)×\(k) accumulate \(accumulate): relative error \(error)")
                    worst = max(worst, error)
                }
            }
        }
        print("packed GEMM \(level): \(Self.shapes.count * 2) cases, max error / Σ|terms| \(String(format: "%.2e", worst))")
    }

    /// The OpenBLAS form of the same weight (row-major, sgemm) answers the same cases.
    @Test func openBLASFormMatchesADoubleLoop() {
        var worst = 0.0
        for (m, n, k) in Self.shapes {
            for accumulate in [false, true] {
                let error = Self.run(.openBLAS, m: m, n: n, k: k, accumulate: accumulate)
                #expect(error <= Self.tolerance, "OpenBLAS \(m)×\(n)×\(k) accumulate \(accumulate): \(error)")
                worst = max(worst, error)
            }
        }
        print("LinearWeight through OpenBLAS: max error / Σ|terms| \(String(format: "%.2e", worst))")
    }

    /// The packed form holds one copy: panels of 32 rows of W, the last zero-padded.
    @Test func packedSizeIsOneCopyPlusPanelPadding() {
        let w = [Float](repeating: 1, count: 33 * 10)
        let packed = w.withUnsafeBufferPointer { LinearWeight($0.baseAddress!, rows: 33, cols: 10, gemm: .packed) }
        let plain = w.withUnsafeBufferPointer { LinearWeight($0.baseAddress!, rows: 33, cols: 10, gemm: .openBLAS) }
        #expect(packed.byteCount == 64 * 10 * 4)
        #expect(plain.byteCount == 33 * 10 * 4)
    }

    /// The decision rule: ours when at least as wide as OpenBLAS's kernels and at least AVX2;
    /// NORBERT_GEMM overrides.
    @Test func decisionRule() {
        let none: [String: String] = [:]
        #expect(WeightGEMM.preferred(ours: .avx512, blas: .avx2, environment: none) == .packed)
        #expect(WeightGEMM.preferred(ours: .avx512, blas: .avx512, environment: none) == .packed)
        #expect(WeightGEMM.preferred(ours: .avx2, blas: .avx2, environment: none) == .packed)
        #expect(WeightGEMM.preferred(ours: .avx2, blas: .avx512, environment: none) == .openBLAS)
        #expect(WeightGEMM.preferred(ours: .portable, blas: .portable, environment: none) == .openBLAS)
        #expect(WeightGEMM.preferred(ours: .avx512, blas: .avx2, environment: ["NORBERT_GEMM": "openblas"]) == .openBLAS)
        #expect(WeightGEMM.preferred(ours: .portable, blas: .avx2, environment: ["NORBERT_GEMM": "packed"]) == .packed)
    }
}

/// The start-up self-check covers our packed GEMM: a wrong element from it is refused, naming it.
@Suite struct PackedGEMMSelfCheckTests {
    @Test func selfCheckCoversThePackedGEMM() throws {
        for level in KernelLevel.allCases where level <= Vector.detectedLevel {
            let summary = try Vector.withLevel(level) { try BLASSelfCheck.run() }
            print(summary)
            #expect(summary.contains("own packed GEMM (\(level))"))
        }
        let faulty: BLASSelfCheck.Call = { t, out, ldc, a, lda, b, ldb, m, n, k, alpha, beta in
            BLASSelfCheck.packed(t, out, ldc, a, lda, b, ldb, m, n, k, alpha, beta)
            if m >= 64 { out[(m - 1) * ldc + n - 1] += 1e-2 }
        }
        do {
            try BLASSelfCheck.run(packed: faulty)
            Issue.record("a wrong packed GEMM passed the self-check")
        } catch {
            print(error.description)
            #expect(error.description.contains("BLAS self-check failed: own packed GEMM"))
        }
    }
}

/// The attention form: B [k, n] packed by `nb_gemm_pack_nn` (values) and alpha (the score scale),
/// every variant against a double loop (via `Attention`'s packed path the fixtures cover it too).
@Suite struct PackedGEMMAttentionFormTests {
    @Test(arguments: KernelLevel.allCases)
    func packNNWithAlpha(level: KernelLevel) {
        guard level <= Vector.detectedLevel else { return }
        var worst = 0.0
        for (m, n, k) in [(1, 1, 1), (13, 64, 37), (128, 64, 128), (7, 33, 1_030)] {
            var rng = SplitMix64(seed: UInt64(m * 31 + n * 7 + k))
            let x = (0..<(m * k)).map { _ in rng.symmetricUnit() }, b = (0..<(k * n)).map { _ in rng.symmetricUnit() }
            var out = [Float](repeating: .nan, count: m * n)
            let alpha: Float = 0.125
            Vector.withLevel(level) {
                var packed = [Float](repeating: .nan, count: nb_gemm_packed_count(n, k))
                packed.withUnsafeMutableBufferPointer { nb_gemm_pack_nn($0.baseAddress!, b, n, n, k) }
                out.withUnsafeMutableBufferPointer { nb_gemm_nt_packed($0.baseAddress!, n, x, k, packed, m, n, k, alpha, 0) }
            }
            for i in 0..<m {
                for j in 0..<n {
                    var sum = 0.0, magnitude = 0.0
                    for p in 0..<k {
                        let t = Double(x[i * k + p]) * Double(b[p * n + j])
                        sum += t
                        magnitude += abs(t)
                    }
                    worst = max(worst, abs(Double(out[i * n + j]) - Double(alpha) * sum) / max(Double(alpha) * magnitude, 1e-30))
                }
            }
        }
        print("packed GEMM \(level), x·B with B packed by rows, alpha 0.125: max error / Σ|terms| \(String(format: "%.2e", worst))")
        #expect(worst <= PackedGEMMTests.tolerance)
    }

    /// x · B with B read in place (`nb_gemm_nn_direct`, attention's P · V where the level has it):
    /// equal, bit for bit, to B packed by `nb_gemm_pack_nn` then `nb_gemm_nt_packed` (k ≤ 1,024),
    /// with alpha and accumulation, and nothing read past column n (B's last row ends the buffer,
    /// so a read past it would fault under ASan) or written past out's columns.
    @Test(arguments: KernelLevel.allCases)
    func directNNEqualsThePackedForm(level: KernelLevel) {
        guard level <= Vector.detectedLevel else { return }
        for (m, n, k) in [
            (1, 1, 1), (13, 64, 37), (12, 32, 32), (25, 17, 5), (5, 16, 9), (14, 48, 20), (128, 64, 128), (7, 33, 1_024), (3, 70, 0),
        ] {
            let ldb = n + 9, ldc = n + 4
            var rng = SplitMix64(seed: UInt64(m * 37 + n * 5 + k))
            let x = (0..<(m * k + 1)).map { _ in rng.symmetricUnit() }
            let b = (0..<(max(k - 1, 0) * ldb + n)).map { _ in rng.symmetricUnit() }
            let start = (0..<(m * ldc)).map { i in i % ldc < n ? rng.symmetricUnit() : Float.nan }
            for (alpha, accumulate) in [(Float(1), Int32(0)), (0.125, 1)] {
                var packedOut = start, directOut = start
                var handled: Int32 = 0
                Vector.withLevel(level) {
                    var packed = [Float](repeating: .nan, count: nb_gemm_packed_count(n, k) + 1)
                    packed.withUnsafeMutableBufferPointer { nb_gemm_pack_nn($0.baseAddress!, b, ldb, n, k) }
                    packedOut.withUnsafeMutableBufferPointer {
                        nb_gemm_nt_packed($0.baseAddress!, ldc, x, k, packed, m, n, k, alpha, accumulate)
                    }
                    handled = directOut.withUnsafeMutableBufferPointer {
                        nb_gemm_nn_direct($0.baseAddress!, ldc, x, k, b, ldb, m, n, k, alpha, accumulate)
                    }
                }
                // AVX-512 has the direct kernel; narrower levels leave it to the packed form.
                #expect((handled == 1) == (level >= .avx512), "\(level)")
                guard handled == 1 else { continue }
                let same = zip(packedOut, directOut).allSatisfy { $0 == $1 || ($0.isNaN && $1.isNaN) }
                #expect(same, "\(level) direct x·B \(m)×\(n)×\(k), alpha \(alpha), accumulate \(accumulate)")
            }
        }
    }

    /// The pack of W [n, k] (row stride ldw > k, as attention's keys) is the same in every variant:
    /// element for element the portable one's (zeros past n), on shapes around the 16 × 16 blocks.
    @Test(arguments: KernelLevel.allCases)
    func packNTEqualsThePortableOne(level: KernelLevel) {
        guard level <= Vector.detectedLevel else { return }
        for (n, k) in [(1, 1), (5, 3), (16, 16), (17, 15), (31, 33), (32, 64), (33, 64), (100, 17), (128, 64), (64, 192), (3, 0)] {
            let ldw = k + 7
            var rng = SplitMix64(seed: UInt64(n * 131 + k))
            let w = (0..<(n * ldw + 1)).map { _ in rng.symmetricUnit() }
            func pack(_ l: KernelLevel) -> [Float] {
                var packed = [Float](repeating: .nan, count: nb_gemm_packed_count(n, k) + 1)
                Vector.withLevel(l) { packed.withUnsafeMutableBufferPointer { nb_gemm_pack_nt($0.baseAddress!, w, ldw, n, k) } }
                return packed
            }
            let expected = pack(.portable), got = pack(level)
            #expect(got.dropLast() == expected.dropLast(), "\(level) pack of \(n)×\(k)")
            #expect(got.last?.isNaN == true, "\(level) pack of \(n)×\(k) wrote past its end")
        }
    }
}
