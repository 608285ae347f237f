import CKernels

/// The variants of the element-wise kernels, narrowest first.
public enum KernelLevel: Int32, Sendable, Comparable, CaseIterable, CustomStringConvertible {
    case portable = 0
    case avx2 = 1
    case avx512 = 2

    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
    public var description: String {
        switch self {
        case .portable: "portable C"
        case .avx2: "AVX2+FMA"
        case .avx512: "AVX-512"
        }
    }
}

/// Element-wise float32 kernels (C; AVX-512, AVX2/FMA or portable, chosen at run time). Output
/// first, then inputs.
public enum Vector {
    /// True when the AVX2/FMA (or wider) code paths run on this thread.
    public static var isVectorized: Bool { nb_kernels_vectorized() != 0 }

    /// The widest kernel variant this CPU supports.
    public static var detectedLevel: KernelLevel { KernelLevel(rawValue: nb_kernels_detected_level()) ?? .portable }

    /// The variant in use on this thread (NORBERT_KERNELS=portable|avx2|avx512 caps it process-wide).
    public static var level: KernelLevel { KernelLevel(rawValue: nb_kernels_level()) ?? .portable }

    /// Runs `body` with the kernels of `level` (capped at the detected one) on this thread only:
    /// how tests compare every variant with the portable one on the same CPU.
    public static func withLevel<R>(_ level: KernelLevel, _ body: () throws -> R) rethrows -> R {
        nb_kernels_force_level_this_thread(level.rawValue)
        defer { nb_kernels_force_level_this_thread(-1) }
        return try body()
    }

    /// out[i] = e^x[i], x clamped to [-87.34, 88.38].
    public static func exp(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count n: Int) {
        nb_exp(out, x, n)
    }

    public static func exp(_ x: Float) -> Float {
        var input = x, output: Float = 0
        nb_exp(&output, &input, 1)
        return output
    }

    /// tanh-approximated GELU (transformers `gelu_new`): 0.5 x (1 + tanh(√(2/π)(x + 0.044715 x³))), in place.
    public static func geluInPlace(_ x: UnsafeMutablePointer<Float>, count n: Int) { nb_gelu(x, n) }

    /// GeGLU over rows of up [rows, 2·inter]: out[r, i] = up[r, i] · gelu(up[r, inter + i]).
    public static func geglu(_ out: UnsafeMutablePointer<Float>, up: UnsafePointer<Float>, rows: Int, inter: Int) {
        nb_geglu_rows(out, up, rows, inter)
    }

    /// out[i] = a · x[i] + b · y[i].
    public static func mix(
        _ out: UnsafeMutablePointer<Float>, _ a: Float, _ x: UnsafePointer<Float>, _ b: Float, _ y: UnsafePointer<Float>, count n: Int
    ) {
        nb_scaled_mix(out, 1, a, x, b, y, n)
    }

    /// out[i] = s · (a · x[i] + b · y[i]) — the reference's softplus-gained lambda mixes, in its order.
    public static func scaledMix(
        _ out: UnsafeMutablePointer<Float>, _ s: Float, _ a: Float, _ x: UnsafePointer<Float>, _ b: Float, _ y: UnsafePointer<Float>,
        count n: Int
    ) {
        nb_scaled_mix(out, s, a, x, b, y, n)
    }

    /// out[i] = (s · (a · x[i] + b · y[i]) + p[i]) (+ q[i]), in that order; out may alias x or y.
    public static func scaledMixAdd(
        _ out: UnsafeMutablePointer<Float>, _ s: Float, _ a: Float, _ x: UnsafePointer<Float>, _ b: Float, _ y: UnsafePointer<Float>,
        plus p: UnsafePointer<Float>, _ q: UnsafePointer<Float>? = nil, count n: Int
    ) {
        nb_scaled_mix_add(out, s, a, x, b, y, p, q, n)
    }

    /// out[r, :] = LayerNorm(s · (a · x[r, :] + b · y[r, :]) + p[r, :]) over `rows` contiguous rows of
    /// `cols` (fused mix + norm, rounded as `scaledMixAdd` then `layerNorm`); out may alias x or y.
    public static func mixLayerNorm(
        _ out: UnsafeMutablePointer<Float>, scale s: Float = 1, _ a: Float, _ x: UnsafePointer<Float>,
        _ b: Float, _ y: UnsafePointer<Float>, plus p: UnsafePointer<Float>? = nil,
        rows: Int, cols: Int, eps: Float
    ) {
        nb_mix_layer_norm(out, s, a, x, b, y, p, rows, cols, eps)
    }

    /// GeGLU then LayerNorm per row: out[r, :] = LayerNorm(up[r, :inter] · gelu(up[r, inter:])); up [rows, 2·inter].
    public static func gegluLayerNorm(_ out: UnsafeMutablePointer<Float>, up: UnsafePointer<Float>, rows: Int, inter: Int, eps: Float) {
        nb_geglu_norm_rows(out, up, rows, inter, eps)
    }

    /// out[i] += x[i].
    public static func add(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count n: Int) { nb_add(out, x, nil, n) }

    /// out[i] = (out[i] + x[i]) + y[i].
    public static func add(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, count n: Int) {
        nb_add(out, x, y, n)
    }

    /// out[i] *= s.
    public static func scale(_ out: UnsafeMutablePointer<Float>, by s: Float, count n: Int) { nb_scale(out, s, n) }

    /// Non-affine LayerNorm of `rows` rows of `cols` values (row strides `ldo`, `ldx`; in place allowed),
    /// optionally times gain[cols]. Two-pass mean and biased variance in float32, as torch.nn.LayerNorm.
    public static func layerNorm(
        _ out: UnsafeMutablePointer<Float>, ldo: Int, _ x: UnsafePointer<Float>, ldx: Int,
        rows: Int, cols: Int, eps: Float, gain: UnsafePointer<Float>? = nil
    ) {
        nb_layer_norm(out, ldo, x, ldx, rows, cols, eps, gain)
    }

    /// Per-head LayerNorm × gain, then rotary embedding with this position's cos/sin [d/2].
    public static func headNormRope(
        _ x: UnsafeMutablePointer<Float>, heads: Int, headDim d: Int, gain: UnsafePointer<Float>,
        cos: UnsafePointer<Float>, sin: UnsafePointer<Float>, eps: Float
    ) {
        nb_head_norm_rope(x, heads, d, gain, cos, sin, eps)
    }

    /// Per-head LayerNorm + RoPE of both halves of `rows` token rows of qk [rows, ld ≥ 2·heads·d]
    /// (q half × qGain, k half × kGain); row t takes cos/sin row t of tables [rows, d/2].
    public static func qkNormRope(
        _ qk: UnsafeMutablePointer<Float>, ld: Int, rows: Int, heads: Int, headDim d: Int,
        qGain: UnsafePointer<Float>, kGain: UnsafePointer<Float>,
        cos: UnsafePointer<Float>, sin: UnsafePointer<Float>, eps: Float
    ) {
        nb_qk_norm_rope_rows(qk, ld, rows, heads, d, qGain, kGain, cos, sin, eps)
    }

    /// Softmax of row[a..<b) of a row of `cols` scores, normalised; entries outside set to 0.
    @inline(__always)
    public static func softmaxRow(_ row: UnsafeMutablePointer<Float>, cols: Int, visible a: Int, _ b: Int) {
        nb_softmax_row(row, cols, a, b)
    }

    /// One row of an online softmax over a key chunk (see `nb_softmax_chunk_row`); returns the
    /// factor by which earlier accumulated outputs of this row must be multiplied.
    @inline(__always)
    public static func softmaxChunkRow(
        _ row: UnsafeMutablePointer<Float>, cols: Int, visible a: Int, _ b: Int,
        rowMax: UnsafeMutablePointer<Float>, rowSum: UnsafeMutablePointer<Float>
    ) -> Float {
        nb_softmax_chunk_row(row, cols, a, b, rowMax, rowSum)
    }
}
