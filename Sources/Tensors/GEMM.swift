import COpenBLAS

/// Matrix products through OpenBLAS sgemm (row-major).
public enum GEMM {
    /// out[M, N] = alpha * a[M, K] · b[N, K]ᵀ + beta * out — the layout of `x · Wᵀ` for a
    /// PyTorch `Linear` weight W [out_features, in_features]. Leading dimensions are row strides.
    @inline(__always)
    public static func nt(
        _ out: UnsafeMutablePointer<Float>, ldc: Int,
        _ a: UnsafePointer<Float>, lda: Int,
        _ b: UnsafePointer<Float>, ldb: Int,
        m: Int, n: Int, k: Int, alpha: Float = 1, beta: Float = 0
    ) {
        guard m > 0, n > 0 else { return }
        cblas_sgemm(
            CblasRowMajor, CblasNoTrans, CblasTrans, Int32(m), Int32(n), Int32(k),
            alpha, a, Int32(lda), b, Int32(ldb), beta, out, Int32(ldc))
    }

    /// out[M, N] = alpha * a[M, K] · b[K, N] + beta * out.
    @inline(__always)
    public static func nn(
        _ out: UnsafeMutablePointer<Float>, ldc: Int,
        _ a: UnsafePointer<Float>, lda: Int,
        _ b: UnsafePointer<Float>, ldb: Int,
        m: Int, n: Int, k: Int, alpha: Float = 1, beta: Float = 0
    ) {
        guard m > 0, n > 0 else { return }
        cblas_sgemm(
            CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k),
            alpha, a, Int32(lda), b, Int32(ldb), beta, out, Int32(ldc))
    }
}
