import CKernels
import COpenBLAS
import Foundation
import Synchronization

/// The CPU's vector extensions, from cpuid (with the OS's register-state support checked).
public struct CPUFeatures: Sendable, Equatable {
    public let avx2: Bool, fma: Bool
    /// AVX-512 F, BW, DQ and VL together (what the AVX-512 kernels need).
    public let avx512: Bool
    public let avx512bf16: Bool, avx512vnni: Bool, amx: Bool

    public init(bits: UInt32) {
        func has(_ flag: Int) -> Bool { bits & UInt32(truncatingIfNeeded: flag) != 0 }
        avx2 = has(NB_CPU_AVX2)
        fma = has(NB_CPU_FMA)
        avx512 = has(NB_CPU_AVX512F) && has(NB_CPU_AVX512BW) && has(NB_CPU_AVX512DQ) && has(NB_CPU_AVX512VL)
        avx512bf16 = avx512 && has(NB_CPU_AVX512BF16)
        avx512vnni = avx512 && has(NB_CPU_AVX512VNNI)
        amx = has(NB_CPU_AMX)
    }

    /// This machine's.
    public static var current: CPUFeatures { CPUFeatures(bits: nb_cpu_features()) }

    /// The widest kernel level the CPU supports.
    public var widestLevel: KernelLevel { avx512 ? .avx512 : (avx2 && fma ? .avx2 : .portable) }

    /// e.g. "AVX-512 (F/BW/DQ/VL, BF16, VNNI)", "AVX2+FMA", "SSE2 only".
    public var widest: String {
        if avx512 {
            let extras = [(avx512bf16, "BF16"), (avx512vnni, "VNNI"), (amx, "AMX")].filter(\.0).map(\.1)
            return "AVX-512 (F/BW/DQ/VL" + extras.map { ", " + $0 }.joined() + ")"
        }
        if avx2 && fma { return "AVX2+FMA" }
        return "SSE2 only"
    }
}

/// Which kernels run: OpenBLAS's kernel set (its core name), the element-wise kernels' variant,
/// and the CPU's widest extension; and, when a narrower set is forced than the CPU supports, what
/// that costs.
public struct KernelReport: Sendable {
    /// `openblas_get_corename()`, e.g. "Haswell", "SkylakeX", "Cooperlake".
    public let blasCore: String
    /// `openblas_get_config()`, e.g. "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY Haswell MAX_THREADS=64".
    public let blasConfig: String
    public let cpu: CPUFeatures
    /// The element-wise kernels' variant (process-wide).
    public let elementwise: KernelLevel
    /// OPENBLAS_CORETYPE, when set.
    public let forcedCoreType: String?
    /// What runs the encoder's weight GEMMs (`WeightGEMM.preferred` unless given).
    public let weightGEMM: WeightGEMM

    public init(
        blasCore: String, blasConfig: String, cpu: CPUFeatures, elementwise: KernelLevel, forcedCoreType: String?,
        weightGEMM: WeightGEMM? = nil
    ) {
        self.blasCore = blasCore
        self.blasConfig = blasConfig
        self.cpu = cpu
        self.elementwise = elementwise
        self.forcedCoreType = forcedCoreType
        self.weightGEMM = weightGEMM ?? WeightGEMM.preferred(ours: elementwise, blas: Self.level(ofCore: blasCore))
    }

    /// This process's.
    public static func current() -> KernelReport {
        let env = ProcessInfo.processInfo.environment
        return KernelReport(
            blasCore: openblas_get_corename().map { String(cString: $0) } ?? "unknown",
            blasConfig: openblas_get_config().map { String(cString: $0).trimmingCharacters(in: .whitespaces) } ?? "unknown",
            cpu: .current, elementwise: Vector.level,
            forcedCoreType: env["OPENBLAS_CORETYPE"].flatMap { $0.isEmpty ? nil : $0 })
    }

    /// The vector width of OpenBLAS's kernel set, from its core name.
    public var blasLevel: KernelLevel { Self.level(ofCore: blasCore) }

    /// The vector width of an OpenBLAS kernel set (`openblas_get_corename()`).
    public static func level(ofCore core: String) -> KernelLevel {
        switch core.lowercased() {
        case "skylakex", "cooperlake", "sapphirerapids": .avx512
        case "haswell", "zen", "excavator": .avx2
        default: .portable
        }
    }

    /// e.g. "own packed GEMM (AVX-512)" or "OpenBLAS sgemm".
    public var weightGEMMDescription: String {
        weightGEMM == .packed ? "\(weightGEMM) (\(elementwise))" : weightGEMM.description
    }

    /// One line: what runs and what the CPU has.
    public var summary: String {
        "kernels: OpenBLAS \(blasCore) (\(blasLevel == .portable ? "SSE/AVX" : blasLevel.description)), element-wise \(elementwise), "
            + "weight GEMMs \(weightGEMMDescription); CPU widest: \(cpu.widest); \(blasConfig)"
    }

    /// Set when OpenBLAS or the element-wise kernels run narrower than the CPU allows, with the cost.
    public var narrowerNote: String? {
        let widest = cpu.widestLevel
        var parts: [String] = []
        if blasLevel < widest {
            let why = forcedCoreType.map { "OPENBLAS_CORETYPE=\($0) forces" } ?? "this OpenBLAS build picked"
            let cost =
                weightGEMM == .packed
                ? "they run only what our packed GEMM does not (attention over key spans past 1,024, the heads); "
                    + "the weight GEMMs and short attention run on our GEMM (\(elementwise)): short texts measured within "
                    + "0–14% of OpenBLAS's own choice on a 2-core AMD EPYC"
                : widest == .avx512
                    ? "GEMMs (~85% of encoder time) run at about half their rate: sgemm 120 vs 237 GFLOP/s per core measured on a "
                        + "2-core AMD EPYC, encoder ~0.6× throughput"
                    : "GEMMs run at a fraction of their rate"
            parts.append(
                """
                \(why) OpenBLAS's \(blasCore) kernels (\(blasLevel == .portable ? "SSE/AVX" : blasLevel.description)) on a CPU with \
                \(widest): \(cost)
                """
                    + (forcedCoreType != nil ? "; unset OPENBLAS_CORETYPE to let OpenBLAS choose" : ""))
        }
        if elementwise < widest {
            parts.append(
                "NORBERT_KERNELS caps the element-wise kernels at \(elementwise) (CPU: \(widest)): they take ~10–15% of encoder time")
        }
        return parts.isEmpty ? nil : "narrower kernels than the CPU supports: " + parts.joined(separator: "; ")
    }

    private static let warned = Atomic<Bool>(false)

    /// `narrowerNote` the first time it is asked for in this process, nil afterwards (said once).
    public func narrowerNoteOnce() -> String? {
        guard let note = narrowerNote else { return nil }
        return Self.warned.exchange(true, ordering: .relaxed) ? nil : note
    }
}

/// A start-up check that the GEMMs of the chosen OpenBLAS kernels, and our packed weight GEMM
/// when it runs the weight GEMMs, compute what a plain loop computes: a broken BLAS build (or a
/// kernel miscompiled for this CPU) must not answer wrongly.
public enum BLASSelfCheck {
    /// One GEMM: out[M, N] = alpha · a[M, K] · (b[N, K]ᵀ when transposedB, else b[K, N]) + beta · out.
    public typealias Call =
        @Sendable (
            _ transposedB: Bool, _ out: UnsafeMutablePointer<Float>, _ ldc: Int,
            _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int,
            _ m: Int, _ n: Int, _ k: Int, _ alpha: Float, _ beta: Float
        ) -> Void

    /// The real thing: `GEMM.nt` / `GEMM.nn`.
    public static let blas: Call = { t, out, ldc, a, lda, b, ldb, m, n, k, alpha, beta in
        if t {
            GEMM.nt(out, ldc: ldc, a, lda: lda, b, ldb: ldb, m: m, n: n, k: k, alpha: alpha, beta: beta)
        } else {
            GEMM.nn(out, ldc: ldc, a, lda: lda, b, ldb: ldb, m: m, n: n, k: k, alpha: alpha, beta: beta)
        }
    }

    /// Our packed GEMM at this thread's kernel level (`LinearWeight` packs b [N, K], ldb = K, per
    /// call): x·Wᵀ only, alpha 1, beta 0 or 1 — what the encoder uses.
    public static let packed: Call = { _, out, ldc, a, lda, b, _, m, n, k, _, beta in
        LinearWeight(b, rows: n, cols: k, gemm: .packed).apply(out, ldc: ldc, a, lda: lda, m: m, accumulate: beta != 0)
    }

    public struct Failure: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    /// (transposedB, m, n, k, alpha, beta): tiny, odd, and projection-like shapes, both layouts,
    /// with and without accumulation. 2.6 M multiply-adds in all.
    static let cases: [(Bool, Int, Int, Int, Float, Float)] = [
        (true, 1, 1, 1, 1, 0), (true, 3, 5, 7, 1, 0), (false, 5, 3, 9, 0.5, 0),
        (true, 64, 192, 64, 1, 0), (false, 33, 64, 65, 1, 1), (true, 96, 130, 200, 0.125, 0),
        (false, 64, 64, 64, 1, 1),
    ]

    /// Cases of our packed GEMM: around its tiles (12 × 32 AVX-512, 6 × 16 AVX2), a partial last
    /// panel, two K blocks (K > 1,024), with and without accumulation. 5.4 M multiply-adds.
    static let packedCases: [(Bool, Int, Int, Int, Float, Float)] = [
        (true, 1, 1, 1, 1, 0), (true, 13, 33, 17, 1, 0), (true, 64, 192, 64, 1, 0),
        (true, 25, 65, 1_030, 1, 1), (true, 96, 130, 200, 1, 0), (true, 12, 32, 1_030, 1, 1),
    ]

    /// Runs the GEMMs through `gemm` (and `packed` unless nil) and compares every element with a
    /// double-precision loop, within 1e-5 of the sum of the magnitudes it adds up (a few float32
    /// roundings of each term; a wrong kernel is off by whole terms). Returns a one-line summary.
    @discardableResult
    public static func run(_ gemm: Call = blas, packed: Call? = BLASSelfCheck.packed) throws(Failure) -> String {
        var rng = SplitMix64(seed: 0x5E1F_C4EC)
        var worst = 0.0
        for (index, shape) in cases.enumerated() {
            worst = max(
                worst,
                try check(gemm, shape, rng: &rng) { element, got, want in
                    let (t, m, n, k, alpha, beta) = shape
                    return "BLAS self-check failed: sgemm \(t ? "x·Wᵀ" : "x·W") case \(index + 1) (\(m)×\(n)×\(k), alpha \(alpha), "
                        + "beta \(beta)) element \(element) is \(got), a plain loop gives \(want); this OpenBLAS build computes wrong "
                        + "results on this CPU (core \(KernelReport.current().blasCore)); try another OPENBLAS_CORETYPE or OpenBLAS build"
                })
        }
        guard let packed else {
            return "BLAS self-check: \(cases.count) sgemm cases match a plain loop (max relative error \(String(format: "%.1e", worst)))"
        }
        let level = Vector.level
        for (index, shape) in packedCases.enumerated() {
            worst = max(
                worst,
                try check(packed, shape, rng: &rng) { element, got, want in
                    let (_, m, n, k, _, beta) = shape
                    return "BLAS self-check failed: own packed GEMM (\(level)) x·Wᵀ case \(index + 1) (\(m)×\(n)×\(k), beta \(beta)) "
                        + "element \(element) is \(got), a plain loop gives \(want); this build's GEMM kernel computes wrong results on "
                        + "this CPU; NORBERT_GEMM=openblas runs the weight GEMMs on OpenBLAS instead"
                })
        }
        return "BLAS self-check: \(cases.count) sgemm cases and \(packedCases.count) of the own packed GEMM (\(level)) match a plain loop "
            + "(max relative error \(String(format: "%.1e", worst)))"
    }

    /// One case through `gemm`; the worst relative error, or a Failure worded by `failure(element, got, want)`.
    private static func check(
        _ gemm: Call, _ shape: (Bool, Int, Int, Int, Float, Float), rng: inout SplitMix64,
        failure: (String, Double, Double) -> String
    ) throws(Failure) -> Double {
        let (t, m, n, k, alpha, beta) = shape
        let a = (0..<(m * k)).map { _ in rng.symmetricUnit() }
        let b = (0..<(k * n)).map { _ in rng.symmetricUnit() }
        let c0 = (0..<(m * n)).map { _ in rng.symmetricUnit() }
        var c = c0
        c.withUnsafeMutableBufferPointer { cp in
            a.withUnsafeBufferPointer { ap in
                b.withUnsafeBufferPointer { bp in
                    guard let o = cp.baseAddress, let pa = ap.baseAddress, let pb = bp.baseAddress else { return }
                    gemm(t, o, n, pa, k, pb, t ? k : n, m, n, k, alpha, beta)
                }
            }
        }
        var worst = 0.0
        for i in 0..<m {
            for j in 0..<n {
                var sum = 0.0, magnitude = 0.0
                for p in 0..<k {
                    let term = Double(a[i * k + p]) * Double(t ? b[j * k + p] : b[p * n + j])
                    sum += term
                    magnitude += abs(term)
                }
                let want = Double(alpha) * sum + Double(beta) * Double(c0[i * n + j])
                let bound = Double(abs(alpha)) * magnitude + Double(abs(beta)) * Double(abs(c0[i * n + j]))
                let got = Double(c[i * n + j])
                let error = abs(got - want) / max(bound, 1e-30)
                guard error <= 1e-5, got.isFinite else { throw Failure(description: failure("[\(i), \(j)]", got, want)) }
                worst = max(worst, error)
            }
        }
        return worst
    }
}
