import CKernels

/// Sliding-window attention for one sequence and one head, in query blocks with an online
/// softmax over key chunks, so memory is O(blockRows × chunkKeys) whatever the length.
///
/// Visibility (the reference's eager path): key j is visible from the query at absolute
/// position p when |p − j| ≤ window (bidirectional) or 0 ≤ p − j ≤ window (causal).
public struct AttentionScratch {
    var scores = Scratch()
    var rowMax = Scratch()
    var rowSum = Scratch()
    /// Keys or values of the current block packed for our GEMM.
    var packed = Scratch()
    public init() {}
}

public enum Attention {
    public static let blockRows = 64
    public static let chunkKeys = 1024
    /// Most scores [queries × keys] of a head computed as one block (256 KB of float32).
    public static let singleBlockScores = 64 * 1024
    /// Whether the one-chunk blocks (every block of a short sequence) run their two GEMMs on our
    /// packed GEMM (keys and values packed per block: ~1/rows of the block's work) instead of
    /// OpenBLAS: the weight GEMMs' rule, `WeightGEMM.preferred()`, decided once per process.
    public static let packedGEMM = WeightGEMM.preferred() == .packed

    /// out[nq, dv] = softmax_window(scale · q kᵀ) v.
    /// - q: [nq, d] (row stride ldq); query i sits at absolute position `queryStart + i`.
    /// - k: [nk, d] (ldk), v: [nk, dv] (ldv); key j sits at absolute position j.
    /// - out: [nq, dv] (ldo); rows of queries that see no key are zero.
    public static func windowed(
        _ out: UnsafeMutablePointer<Float>, ldo: Int,
        q: UnsafePointer<Float>, ldq: Int,
        k: UnsafePointer<Float>, ldk: Int,
        v: UnsafePointer<Float>, ldv: Int,
        queries nq: Int, queryStart: Int, keys nk: Int,
        headDim d: Int, valueDim dv: Int,
        window w: Int, causal: Bool, scale: Float,
        scratch: inout AttentionScratch
    ) {
        // Short sequences (all scores of a head within `singleBlockScores`) run as one block: one
        // GEMM for the scores, one for the output.
        let span = min(max(nk, 1), chunkKeys)
        let bq = nq * span <= singleBlockScores ? max(nq, 1) : min(blockRows, max(nq, 1))
        let s = scratch.scores.reserve(bq * span)
        let rowMax = scratch.rowMax.reserve(bq)
        let rowSum = scratch.rowSum.reserve(bq)
        let ahead = causal ? 0 : w

        var q0 = 0
        while q0 < nq {
            let rows = min(bq, nq - q0)
            let pFirst = queryStart + q0, pLast = pFirst + rows - 1
            let lo = max(0, pFirst - w)
            let hi = min(nk, pLast + ahead + 1)
            if hi - lo <= chunkKeys {
                // One key chunk: plain softmax (normalised in place), then P·V straight into out.
                let cols = max(hi - lo, 0)
                if cols == 0 {
                    for r in 0..<rows { (out + (q0 + r) * ldo).update(repeating: 0, count: dv) }
                    q0 += rows
                    continue
                }
                let packed =
                    packedGEMM
                    ? scratch.packed.reserve(max(nb_gemm_packed_count(cols, d), nb_gemm_packed_count(dv, cols))) : nil
                if let packed {
                    // keys [cols, d] as a weight [n = cols, k = d]; values [cols, dv] as B [k = cols, n = dv].
                    nb_gemm_pack_nt(packed, k + lo * ldk, ldk, cols, d)
                    nb_gemm_nt_packed(s, cols, q + q0 * ldq, ldq, packed, rows, cols, d, scale, 0)
                } else {
                    GEMM.nt(
                        s, ldc: cols, q + q0 * ldq, lda: ldq, k + lo * ldk, ldb: ldk,
                        m: rows, n: cols, k: d, alpha: scale)
                }
                for r in 0..<rows {
                    let p = pFirst + r
                    let a = min(max(lo, p - w) - lo, cols)
                    let b = min(max(min(hi, p + ahead + 1) - lo, a), cols)
                    Vector.softmaxRow(s + r * cols, cols: cols, visible: a, b)
                }
                if let packed {
                    // Values read in place where the level has the kernel (AVX-512), else packed.
                    if nb_gemm_nn_direct(out + q0 * ldo, ldo, s, cols, v + lo * ldv, ldv, rows, dv, cols, 1, 0) == 0 {
                        nb_gemm_pack_nn(packed, v + lo * ldv, ldv, dv, cols)
                        nb_gemm_nt_packed(out + q0 * ldo, ldo, s, cols, packed, rows, dv, cols, 1, 0)
                    }
                } else {
                    GEMM.nn(
                        out + q0 * ldo, ldc: ldo, s, lda: cols, v + lo * ldv, ldb: ldv,
                        m: rows, n: dv, k: cols, beta: 0)
                }
                q0 += rows
                continue
            }
            for r in 0..<rows {
                rowMax[r] = -.infinity
                rowSum[r] = 0
                let o = out + (q0 + r) * ldo
                for c in 0..<dv { o[c] = 0 }
            }
            var c0 = lo
            while c0 < hi {
                let cols = min(chunkKeys, hi - c0)
                GEMM.nt(
                    s, ldc: cols, q + q0 * ldq, lda: ldq, k + c0 * ldk, ldb: ldk,
                    m: rows, n: cols, k: d, alpha: scale)
                var anyVisible = false
                for r in 0..<rows {
                    let p = pFirst + r
                    let a = max(c0, p - w, 0) - c0
                    let b = max(min(c0 + cols, p + ahead + 1, nk) - c0, a)
                    if a < b { anyVisible = true }
                    let factor = Vector.softmaxChunkRow(
                        s + r * cols, cols: cols, visible: a, b,
                        rowMax: rowMax + r, rowSum: rowSum + r)
                    if factor != 1 && factor != 0 { Vector.scale(out + (q0 + r) * ldo, by: factor, count: dv) }
                }
                if anyVisible {
                    GEMM.nn(
                        out + q0 * ldo, ldc: ldo, s, lda: cols, v + c0 * ldv, ldb: ldv,
                        m: rows, n: dv, k: cols, beta: 1)
                }
                c0 += cols
            }
            for r in 0..<rows where rowSum[r] > 0 {
                Vector.scale(out + (q0 + r) * ldo, by: 1 / rowSum[r], count: dv)
            }
            q0 += rows
        }
    }
}
