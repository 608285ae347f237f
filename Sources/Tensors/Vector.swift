import CKernels

/// Element-wise float32 kernels (C, AVX2/FMA when the CPU has them). Output first, then inputs.
public enum Vector {
    /// True when the AVX2/FMA code paths run on this CPU.
    public static var isVectorized: Bool { nb_kernels_vectorized() != 0 }

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
    public static func mix(_ out: UnsafeMutablePointer<Float>, _ a: Float, _ x: UnsafePointer<Float>, _ b: Float, _ y: UnsafePointer<Float>, count n: Int) {
        nb_scaled_mix(out, 1, a, x, b, y, n)
    }

    /// out[i] = s · (a · x[i] + b · y[i]) — the reference's softplus-gained lambda mixes, in its order.
    public static func scaledMix(_ out: UnsafeMutablePointer<Float>, _ s: Float, _ a: Float, _ x: UnsafePointer<Float>, _ b: Float, _ y: UnsafePointer<Float>, count n: Int) {
        nb_scaled_mix(out, s, a, x, b, y, n)
    }

    /// out[i] += x[i].
    public static func add(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count n: Int) { nb_add(out, x, nil, n) }

    /// out[i] = (out[i] + x[i]) + y[i].
    public static func add(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, count n: Int) { nb_add(out, x, y, n) }

    /// out[i] *= s.
    public static func scale(_ out: UnsafeMutablePointer<Float>, by s: Float, count n: Int) { nb_scale(out, s, n) }

    /// Non-affine LayerNorm of `rows` rows of `cols` values (row strides `ldo`, `ldx`; in place allowed),
    /// optionally times gain[cols]. Two-pass mean and biased variance in float32, as torch.nn.LayerNorm.
    public static func layerNorm(_ out: UnsafeMutablePointer<Float>, ldo: Int, _ x: UnsafePointer<Float>, ldx: Int,
                                 rows: Int, cols: Int, eps: Float, gain: UnsafePointer<Float>? = nil) {
        nb_layer_norm(out, ldo, x, ldx, rows, cols, eps, gain)
    }

    /// Per-head LayerNorm × gain, then rotary embedding with this position's cos/sin [d/2].
    public static func headNormRope(_ x: UnsafeMutablePointer<Float>, heads: Int, headDim d: Int, gain: UnsafePointer<Float>,
                                    cos: UnsafePointer<Float>, sin: UnsafePointer<Float>, eps: Float) {
        nb_head_norm_rope(x, heads, d, gain, cos, sin, eps)
    }

    /// One row of an online softmax over a key chunk (see `nb_softmax_chunk_row`); returns the
    /// factor by which earlier accumulated outputs of this row must be multiplied.
    @inline(__always)
    public static func softmaxChunkRow(_ row: UnsafeMutablePointer<Float>, cols: Int, visible a: Int, _ b: Int,
                                       rowMax: UnsafeMutablePointer<Float>, rowSum: UnsafeMutablePointer<Float>) -> Float {
        nb_softmax_chunk_row(row, cols, a, b, rowMax, rowSum)
    }
}
