import Foundation
import Tensors
import Testing

@Suite struct BF16Tests {
    static func bits(_ x: Float) -> UInt16 {
        var out: UInt16 = 0
        var input = x
        BF16.convert(&out, &input, count: 1)
        return out
    }

    @Test func roundsToNearestEven() {
        #expect(Self.bits(1) == 0x3F80)
        #expect(Self.bits(-2) == 0xC000)
        #expect(Self.bits(Float(bitPattern: 0x3F80_8000)) == 0x3F80)  // tie, even below
        #expect(Self.bits(Float(bitPattern: 0x3F81_8000)) == 0x3F82)  // tie, even above
        #expect(Self.bits(Float(bitPattern: 0x3F80_8001)) == 0x3F81)  // just above the tie
        #expect(Self.bits(.infinity) == 0x7F80)
        #expect(BF16.float(Self.bits(.nan)).isNaN)
        #expect(Self.bits(Float.greatestFiniteMagnitude) == 0x7F80)  // rounds up to infinity, as torch does
    }

    /// The AVX-512 conversion equals the portable one bit for bit (masked tail included).
    @Test func vectorConversionEqualsPortable() {
        var rng = SplitMix64(seed: 16)
        // Any bits: NaNs, infinities, subnormals.
        var x = (0..<1_037).map { _ in Float(bitPattern: UInt32(truncatingIfNeeded: rng.next())) }
        x += [0x3F80_8000, 0x3F81_8000, 0x7F7F_FFFF, 0x0000_8000].map { Float(bitPattern: $0) }
        func run(_ level: KernelLevel) -> [UInt16] {
            Vector.withLevel(level) {
                var out = [UInt16](repeating: 0, count: x.count)
                out.withUnsafeMutableBufferPointer { o in BF16.convert(o.baseAddress!, x, count: x.count) }
                return out
            }
        }
        let portable = run(.portable)
        for level in [KernelLevel.avx2, .avx512] where level <= Vector.detectedLevel {
            let got = run(level)
            let same = zip(got, portable).allSatisfy { a, b in a == b || (BF16.float(a).isNaN && BF16.float(b).isNaN) }
            #expect(same, "\(level)")
        }
    }

    static func gemmCase(_ gemm: BF16GEMM, m: Int, n: Int, k: Int) -> Double {
        var rng = SplitMix64(seed: UInt64(m * n * k))
        let a = (0..<(m * k)).map { _ in rng.symmetricUnit() }, b = (0..<(n * k)).map { _ in rng.symmetricUnit() }
        let a16 = FloatBuffer(a), b16 = FloatBuffer(b)
        let pa = BF16Buffer(a16), pb = BF16Buffer(b16)  // row-major bits, for the double loop
        let weight = gemm.prepare(b16, rows: n, cols: k)  // the GEMM's own form (packed for ours)
        let out = FloatBuffer(count: m * n)
        gemm.nt(out.pointer, ldc: n, pa.pointer, lda: k, weight.pointer, ldb: k, m: m, n: n, k: k)
        var worst = 0.0
        for i in 0..<m {
            for j in 0..<n {
                var want = 0.0
                for p in 0..<k { want += Double(BF16.float(pa.pointer[i * k + p])) * Double(BF16.float(pb.pointer[j * k + p])) }
                worst = max(worst, abs(Double(out.pointer[i * n + j]) - want))
            }
        }
        return worst
    }

    @Test func referenceGEMMAccumulatesBF16ProductsInFloat32() {
        let worst = Self.gemmCase(.reference, m: 7, n: 33, k: 130)
        print("bf16 reference GEMM vs double: max |Δ| \(worst)")
        #expect(worst < 1e-5)
    }

    /// Our packed bf16 GEMM — AVX512-BF16 (vdpbf16ps) where the CPU has it, the portable loop of the
    /// same arithmetic under forced portable kernels — against a double loop over the exact bf16
    /// products, on shapes around its 12 × 32 tiles, odd K, and two K blocks (K > 2,048). Tolerance:
    /// 1e-5 absolute for these unit-range inputs (float32 sums of up to 2,100 products; the
    /// reference loop's own test uses the same bound).
    @Test(arguments: [KernelLevel.portable, .avx512])
    func ownGEMMMatchesExactProductsSummedInFloat32(level: KernelLevel) {
        guard level <= Vector.detectedLevel else { return print("own bf16 GEMM: \(level) not on this CPU: skipped") }
        let native = level == .avx512 && CPUFeatures.current.avx512bf16
        var worst = 0.0
        Vector.withLevel(level) {
            let shapes = [(1, 1, 1), (1, 32, 2), (13, 33, 17), (12, 32, 192), (11, 31, 7), (37, 97, 131), (25, 65, 2_100), (3, 5, 0)]
            for (m, n, k) in shapes {
                let error = Self.gemmCase(.packedKernel, m: m, n: n, k: k)
                #expect(error < 1e-5 * max(1, Double(k) / 130), "\(level) \(m)×\(n)×\(k): \(error)")
                worst = max(worst, error)
            }
        }
        print("own bf16 GEMM (\(native ? "AVX512-BF16" : "portable loop")) vs double: max |Δ| \(worst)")
    }

    /// `--precision bf16`'s GEMM: ours where the CPU has AVX512-BF16, else a refusal naming it.
    @Test func ownGEMMOrAClearRefusal() {
        if CPUFeatures.current.avx512bf16 {
            #expect((try? BF16GEMM.own())?.packsWeights == true)
        }
        do {
            _ = try BF16GEMM.own(cpu: CPUFeatures(bits: 0))
            Issue.record("bf16 accepted on a CPU without AVX512-BF16")
        } catch {
            #expect(error.description.contains("--precision bf16 needs a CPU with AVX512-BF16"))
        }
    }

    /// OpenBLAS's sbgemm where this machine has it (AVX512-BF16 and a bfloat16 build); otherwise a
    /// refusal that says which of the two is missing.
    @Test func openBLASSBGEMMOrAClearRefusal() {
        do {
            let gemm = try BF16GEMM.openBLAS()
            let worst = Self.gemmCase(gemm, m: 70, n: 96, k: 200)
            print("OpenBLAS sbgemm vs double: max |Δ| \(worst)")
            #expect(worst < 1e-4)
        } catch {
            print("bf16 unavailable here: \(error.description)")
            #expect(error.description.contains("AVX512-BF16") || error.description.contains("cblas_sbgemm"))
        }
        #expect(throws: PrecisionUnavailable.self) { _ = try BF16GEMM.openBLAS(cpu: CPUFeatures(bits: 0)) }
    }
}
