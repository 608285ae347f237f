/// Vectorised float32 element-wise kernels (SIMD16, scalar tails). Output first, then inputs.

public typealias F16x = SIMD16<Float>

@inline(__always) func load(_ p: UnsafePointer<Float>) -> F16x {
    UnsafeRawPointer(p).loadUnaligned(as: F16x.self)
}
@inline(__always) func store(_ v: F16x, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: F16x.self)
}

public enum Vector {
    /// e^x for every lane, ~1 ulp relative error over the float range; inputs below -87.3 give 0.
    @inline(__always)
    public static func exp(_ x: F16x) -> F16x {
        let lo = F16x(repeating: -87.33654), hi = F16x(repeating: 88.72283)
        var v = x.clamped(lowerBound: lo, upperBound: hi)
        // n = round(x / ln2); r = x - n ln2 (two-step Cody-Waite)
        let n = (v * 1.442695040888963).rounded(.toNearestOrEven)
        v = v - n * 0.693359375
        v = v - n * -2.12194440e-4
        var p = F16x(repeating: 1.9875691500e-4)
        p = p * v + 1.3981999507e-3
        p = p * v + 8.3334519073e-3
        p = p * v + 4.1665795894e-2
        p = p * v + 1.6666665459e-1
        p = p * v + 5.0000001201e-1
        let v2 = v * v
        p = p * v2 + v + 1
        // 2^n by building the exponent bits
        let bits = (SIMD16<Int32>(n) &+ 127) &<< 23
        let scale = unsafeBitCast(bits, to: F16x.self)
        var r = p * scale
        r.replace(with: 0, where: x .< lo)
        return r
    }

    @inline(__always)
    public static func exp(_ x: Float) -> Float { exp(F16x(repeating: x))[0] }

    /// tanh-approximated GELU (transformers `gelu_new`): 0.5 x (1 + tanh(√(2/π)(x + 0.044715 x³))).
    @inline(__always)
    public static func gelu(_ x: F16x) -> F16x {
        let u = 0.7978845608028654 * (x + 0.044715 * x * x * x)
        // tanh(u) = 1 - 2 / (e^{2u} + 1), stable for both signs since exp saturates.
        let t = 1 - 2 / (exp(2 * u) + 1)
        return 0.5 * x * (1 + t)
    }

    @inline(__always)
    public static func gelu(_ x: Float) -> Float { gelu(F16x(repeating: x))[0] }

    /// out[i] = x[i] * gelu(gate[i]) for n elements (GeGLU).
    public static func geglu(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ gate: UnsafePointer<Float>, count n: Int) {
        var i = 0
        while i + 16 <= n {
            store(load(x + i) * gelu(load(gate + i)), out + i)
            i += 16
        }
        while i < n { out[i] = x[i] * gelu(gate[i]); i += 1 }
    }

    /// In place: x[i] = gelu(x[i]).
    public static func geluInPlace(_ x: UnsafeMutablePointer<Float>, count n: Int) {
        var i = 0
        while i + 16 <= n { store(gelu(load(x + i)), x + i); i += 16 }
        while i < n { x[i] = gelu(x[i]); i += 1 }
    }

    /// out[i] = a * x[i] + b * y[i].
    public static func mix(_ out: UnsafeMutablePointer<Float>, _ a: Float, _ x: UnsafePointer<Float>, _ b: Float, _ y: UnsafePointer<Float>, count n: Int) {
        var i = 0
        while i + 16 <= n { store(a * load(x + i) + b * load(y + i), out + i); i += 16 }
        while i < n { out[i] = a * x[i] + b * y[i]; i += 1 }
    }

    /// out[i] = s * (a * x[i] + b * y[i]) — the reference's softplus-gained lambda mixes, evaluated in its order.
    public static func scaledMix(_ out: UnsafeMutablePointer<Float>, _ s: Float, _ a: Float, _ x: UnsafePointer<Float>, _ b: Float, _ y: UnsafePointer<Float>, count n: Int) {
        var i = 0
        while i + 16 <= n { store(s * (a * load(x + i) + b * load(y + i)), out + i); i += 16 }
        while i < n { out[i] = s * (a * x[i] + b * y[i]); i += 1 }
    }

    /// out[i] += x[i].
    public static func add(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, count n: Int) {
        var i = 0
        while i + 16 <= n { store(load(out + i) + load(x + i), out + i); i += 16 }
        while i < n { out[i] += x[i]; i += 1 }
    }

    /// out[i] *= s.
    public static func scale(_ out: UnsafeMutablePointer<Float>, by s: Float, count n: Int) {
        var i = 0
        while i + 16 <= n { store(load(out + i) * s, out + i); i += 16 }
        while i < n { out[i] *= s; i += 1 }
    }

    /// Sum of x[0..<n].
    @inline(__always)
    public static func sum(_ x: UnsafePointer<Float>, count n: Int) -> Float {
        var acc = F16x(repeating: 0)
        var i = 0
        while i + 16 <= n { acc += load(x + i); i += 16 }
        var s = acc.sum()
        while i < n { s += x[i]; i += 1 }
        return s
    }

    /// max of x[0..<n] (n > 0).
    @inline(__always)
    public static func max(_ x: UnsafePointer<Float>, count n: Int) -> Float {
        var m = -Float.infinity
        var i = 0
        if n >= 16 {
            var acc = F16x(repeating: -.infinity)
            while i + 16 <= n { acc = pointwiseMax(acc, load(x + i)); i += 16 }
            m = acc.max()
        }
        while i < n { m = Swift.max(m, x[i]); i += 1 }
        return m
    }

    /// x[i] = exp(x[i] - shift) in place; returns the sum of the results.
    @inline(__always)
    public static func expShiftedSum(_ x: UnsafeMutablePointer<Float>, shift: Float, count n: Int) -> Float {
        var acc = F16x(repeating: 0)
        var i = 0
        let s = F16x(repeating: shift)
        while i + 16 <= n {
            let e = exp(load(x + i) - s)
            store(e, x + i)
            acc += e
            i += 16
        }
        var total = acc.sum()
        if i < n {
            var tail = F16x(repeating: -.infinity)
            for j in 0..<(n - i) { tail[j] = x[i + j] }
            let e = exp(tail - s)
            for j in 0..<(n - i) { x[i + j] = e[j]; total += e[j] }
        }
        return total
    }

    /// Non-affine LayerNorm of `rows` rows of `cols` values (row strides `ldo`, `ldx`); in place allowed.
    /// Two-pass mean and biased variance in float32, as torch.nn.LayerNorm without weights.
    public static func layerNorm(_ out: UnsafeMutablePointer<Float>, ldo: Int, _ x: UnsafePointer<Float>, ldx: Int, rows: Int, cols: Int, eps: Float) {
        for r in 0..<rows {
            normalizeRow(out + r * ldo, x + r * ldx, cols: cols, eps: eps, gain: nil)
        }
    }

    /// LayerNorm of one row, optionally times a gain vector.
    @inline(__always)
    public static func normalizeRow(_ o: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, cols n: Int, eps: Float, gain: UnsafePointer<Float>?) {
        let mean = sum(x, count: n) / Float(n)
        var acc = F16x(repeating: 0)
        let m = F16x(repeating: mean)
        var i = 0
        while i + 16 <= n { let d = load(x + i) - m; acc += d * d; i += 16 }
        var ss = acc.sum()
        while i < n { let d = x[i] - mean; ss += d * d; i += 1 }
        let inv = 1 / (ss / Float(n) + eps).squareRoot()
        let vinv = F16x(repeating: inv)
        i = 0
        if let g = gain {
            while i + 16 <= n { store((load(x + i) - m) * vinv * load(g + i), o + i); i += 16 }
            while i < n { o[i] = (x[i] - mean) * inv * g[i]; i += 1 }
        } else {
            while i + 16 <= n { store((load(x + i) - m) * vinv, o + i); i += 16 }
            while i < n { o[i] = (x[i] - mean) * inv; i += 1 }
        }
    }
}
