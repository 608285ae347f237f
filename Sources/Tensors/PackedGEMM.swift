import CKernels
import Foundation

/// Which GEMM runs the encoder's weight GEMMs (out = x · Wᵀ with W fixed at load).
public enum WeightGEMM: String, Sendable, CustomStringConvertible {
    /// Ours (`Sources/CKernels/gemm.c`): W packed once at load into 32-column panels; AVX-512,
    /// AVX2+FMA or portable C at run time; no repacking of W and no zeroing pass per call.
    case packed
    /// OpenBLAS sgemm on the row-major W (it repacks W and zeroes the output on every call).
    case openBLAS

    public var description: String { self == .packed ? "own packed GEMM" : "OpenBLAS sgemm" }

    /// The decision rule: ours when its kernels are at least as wide as OpenBLAS's and at least
    /// AVX2+FMA (measured on the encoder's shapes: 2× OpenBLAS's Haswell kernels with AVX-512,
    /// equal to them with AVX2, and level with OpenBLAS's own AVX-512 kernels up to ahead on short
    /// shapes; the portable C reaches ~1/6 of OpenBLAS, so OpenBLAS keeps that case, as it does
    /// when `NORBERT_KERNELS` caps ours below OpenBLAS's width). `NORBERT_GEMM=packed|openblas`
    /// overrides it (for measuring).
    public static func preferred(report: KernelReport = .current()) -> WeightGEMM {
        report.weightGEMM
    }

    /// The rule on the kernel widths: ours (the element-wise kernels' level, which our GEMM shares)
    /// and OpenBLAS's (from its core name).
    public static func preferred(
        ours: KernelLevel, blas: KernelLevel,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) -> WeightGEMM {
        switch environment["NORBERT_GEMM"]?.lowercased() {
        case "packed", "own": return .packed
        case "openblas": return .openBLAS
        default: break
        }
        return ours >= .avx2 && ours >= blas ? .packed : .openBLAS
    }
}

/// A Linear weight W [rows, cols] (PyTorch layout: out_features × in_features) ready for
/// out[m, rows] = x[m, cols] · Wᵀ: packed once for our GEMM, or kept row-major for OpenBLAS — one
/// copy either way (the packed form replaces the row-major one; it is larger only by the zero
/// padding of the last panel when rows is not a multiple of 32). Written once, then only read.
public final class LinearWeight: @unchecked Sendable {
    public let rows: Int, cols: Int
    public let gemm: WeightGEMM
    /// Packed panels [ceil(rows/32)][cols][32], or W [rows, cols] row-major.
    let storage: FloatBuffer

    public init(_ w: UnsafePointer<Float>, rows: Int, cols: Int, gemm: WeightGEMM) {
        self.rows = rows
        self.cols = cols
        self.gemm = gemm
        switch gemm {
        case .packed:
            storage = FloatBuffer(count: nb_gemm_packed_count(rows, cols))
            nb_gemm_pack_nt(storage.pointer, w, cols, rows, cols)
        case .openBLAS:
            storage = FloatBuffer(count: rows * cols)
            storage.pointer.update(from: w, count: rows * cols)
        }
    }

    public convenience init(_ w: FloatBuffer, rows: Int, cols: Int, gemm: WeightGEMM) {
        precondition(w.count == rows * cols, "weight [\(rows), \(cols)] from \(w.count) values")
        self.init(w.pointer, rows: rows, cols: cols, gemm: gemm)
    }

    /// out[m, rows] = x[m, cols] · Wᵀ, or out += x · Wᵀ when `accumulate` (row strides ldc, lda).
    @inline(__always)
    public func apply(
        _ out: UnsafeMutablePointer<Float>, ldc: Int, _ x: UnsafePointer<Float>, lda: Int, m: Int,
        accumulate: Bool = false
    ) {
        guard m > 0, rows > 0 else { return }
        switch gemm {
        case .packed:
            nb_gemm_nt_packed(out, ldc, x, lda, storage.pointer, m, rows, cols, 1, accumulate ? 1 : 0)
        case .openBLAS:
            GEMM.nt(out, ldc: ldc, x, lda: lda, storage.pointer, ldb: cols, m: m, n: rows, k: cols, beta: accumulate ? 1 : 0)
        }
    }

    public var byteCount: Int { storage.byteCount }
}
