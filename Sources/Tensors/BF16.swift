import CKernels
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Precision of the encoder's weight GEMMs.
public enum Precision: String, Sendable, CaseIterable, CustomStringConvertible {
    /// float32 everywhere (exact to the reference).
    case float32
    /// Projections and MLP GEMMs with bfloat16 inputs and float32 accumulation (our AVX512-BF16
    /// GEMM, needs AVX512-BF16); weights converted once at load; everything else float32.
    case bf16
    public var description: String { rawValue }
}

/// bfloat16 storage (raw bits), 64-byte aligned, stable address; written once, then only read.
public final class BF16Buffer: @unchecked Sendable {
    public let count: Int
    public let pointer: UnsafeMutablePointer<UInt16>

    public init(count: Int) {
        self.count = count
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * 2, alignment: 64)
        pointer = raw.bindMemory(to: UInt16.self, capacity: max(count, 1))
        pointer.initialize(repeating: 0, count: max(count, 1))
    }

    /// The float32 values rounded to bfloat16 (nearest even).
    public convenience init(_ values: FloatBuffer) {
        self.init(count: values.count)
        BF16.convert(pointer, values.pointer, count: values.count)
    }

    deinit { UnsafeMutableRawPointer(pointer).deallocate() }
    public var byteCount: Int { count * 2 }
}

/// A growable lane-local bfloat16 scratch buffer.
public struct BF16Scratch {
    public private(set) var storage = BF16Buffer(count: 0)
    public init() {}
    public mutating func reserve(_ n: Int) -> UnsafeMutablePointer<UInt16> {
        if storage.count < n { storage = BF16Buffer(count: n + n / 4) }
        return storage.pointer
    }
}

public enum BF16 {
    /// out[i] = bf16(x[i]), round to nearest even.
    public static func convert(_ out: UnsafeMutablePointer<UInt16>, _ x: UnsafePointer<Float>, count n: Int) {
        nb_to_bf16(out, x, n)
    }

    /// The float32 value of bfloat16 bits.
    @inline(__always) public static func float(_ bits: UInt16) -> Float { Float(bitPattern: UInt32(bits) << 16) }
}

/// Why bf16 cannot run here.
public struct PrecisionUnavailable: Error, CustomStringConvertible, Sendable {
    public let description: String
}

/// A GEMM with bfloat16 inputs and float32 accumulation:
/// out[M, N] = a[M, K] · b[N, K]ᵀ (row-major a, leading dimensions lda, ldc; beta 0), b as
/// `prepare` made it: row-major bf16 [N, K] (ldb), or packed panels for our kernel (ldb unused).
public struct BF16GEMM: Sendable {
    public typealias Call =
        @Sendable (
            _ out: UnsafeMutablePointer<Float>, _ ldc: Int, _ a: UnsafePointer<UInt16>, _ lda: Int,
            _ b: UnsafePointer<UInt16>, _ ldb: Int, _ m: Int, _ n: Int, _ k: Int
        ) -> Void
    public let name: String
    public let call: Call
    /// b is packed once by `prepare` (our kernel's panels) instead of row-major.
    public let packsWeights: Bool

    public init(name: String, packsWeights: Bool = false, call: @escaping Call) {
        self.name = name
        self.packsWeights = packsWeights
        self.call = call
    }

    /// W [rows, cols] float32 → the bf16 form `call` takes as b (rounded to nearest even once).
    public func prepare(_ w: FloatBuffer, rows: Int, cols: Int) -> BF16Buffer {
        guard packsWeights else { return BF16Buffer(w) }
        let packed = BF16Buffer(count: nb_gemm_bf16_packed_count(rows, cols))
        nb_gemm_bf16_pack_nt(packed.pointer, w.pointer, cols, rows, cols)
        return packed
    }

    /// What `--precision bf16` runs: our GEMM (Sources/CKernels/gemm_bf16.c: vdpbf16ps, 12 × 32
    /// tiles) on a CPU with AVX512-BF16 — the arithmetic of OpenBLAS's sbgemm, weights packed once,
    /// no OpenBLAS built with bfloat16 needed. Elsewhere it throws why not.
    public static func own(cpu: CPUFeatures = .current) throws(PrecisionUnavailable) -> BF16GEMM {
        guard cpu.avx512bf16 else {
            throw PrecisionUnavailable(
                description: "--precision bf16 needs a CPU with AVX512-BF16; this one has \(cpu.widest); use float32")
        }
        return packedKernel
    }

    /// Our packed kernel without the CPU check: AVX512-BF16 when this thread may use it
    /// (`nb_gemm_bf16_native`), else a portable loop of the same arithmetic (for tests).
    public static let packedKernel = BF16GEMM(name: "own AVX512-BF16 GEMM", packsWeights: true) { out, ldc, a, lda, b, _, m, n, k in
        nb_gemm_bf16_nt_packed(out, ldc, a, lda, b, m, n, k)
    }

    @inline(__always)
    public func nt(
        _ out: UnsafeMutablePointer<Float>, ldc: Int, _ a: UnsafePointer<UInt16>, lda: Int,
        _ b: UnsafePointer<UInt16>, ldb: Int, m: Int, n: Int, k: Int
    ) {
        guard m > 0, n > 0 else { return }
        call(out, ldc, a, lda, b, ldb, m, n, k)
    }

    /// cblas_sbgemm(order, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc); bfloat16 = uint16_t.
    typealias SBGEMMFunction =
        @convention(c) (
            Int32, Int32, Int32, Int32, Int32, Int32, Float, UnsafePointer<UInt16>?, Int32,
            UnsafePointer<UInt16>?, Int32, Float, UnsafeMutablePointer<Float>?, Int32
        ) -> Void

    /// OpenBLAS's `cblas_sbgemm`, looked up at run time (OpenBLAS builds without BUILD_BFLOAT16,
    /// such as Debian's 0.3.21, do not have it), on a CPU with AVX512-BF16. Throws why not otherwise.
    /// Not used by the commands (they take `own`); kept to compare with where sbgemm exists.
    public static func openBLAS(cpu: CPUFeatures = .current) throws(PrecisionUnavailable) -> BF16GEMM {
        guard cpu.avx512bf16 else {
            throw PrecisionUnavailable(
                description: "--precision bf16 needs a CPU with AVX512-BF16; this one has \(cpu.widest); use float32")
        }
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "cblas_sbgemm") else {  // RTLD_DEFAULT
            let config = KernelReport.current().blasConfig
            throw PrecisionUnavailable(
                description:
                    """
                    --precision bf16 needs OpenBLAS's cblas_sbgemm, which this OpenBLAS (\(config)) does not export: it was built \
                    without BUILD_BFLOAT16=1 (as Debian's packages are); use float32, or link an OpenBLAS built with bfloat16
                    """
            )
        }
        let sbgemm = unsafeBitCast(symbol, to: SBGEMMFunction.self)
        return BF16GEMM(name: "OpenBLAS cblas_sbgemm") { out, ldc, a, lda, b, ldb, m, n, k in
            // 101, 111, 112: CblasRowMajor, CblasNoTrans, CblasTrans.
            sbgemm(101, 111, 112, Int32(m), Int32(n), Int32(k), 1, a, Int32(lda), b, Int32(ldb), 0, out, Int32(ldc))
        }
    }

    /// A plain loop with float32 accumulation of exact bf16 products (what sbgemm computes, up to
    /// summation order). Slow; for tests and for measuring bf16's accuracy where sbgemm is missing.
    public static let reference = BF16GEMM(name: "reference loop") { out, ldc, a, lda, b, ldb, m, n, k in
        for i in 0..<m {
            for j in 0..<n {
                var sum: Float = 0
                for p in 0..<k { sum += BF16.float(a[i * lda + p]) * BF16.float(b[j * ldb + p]) }
                out[i * ldc + j] = sum
            }
        }
    }
}
