import Tensors

/// Key/value cache of one sequence for incremental causal decoding: per layer, the normed and
/// rotated keys and the mixed values of every position run so far, plus the layer-0 values
/// (v1) are not needed again (they only feed later layers of the same token).
public final class KVCache {
    public internal(set) var length = 0
    var keys: [Scratch]
    var values: [Scratch]
    var capacity = 0
    let keyWidth: Int, valueWidth: Int

    public init(config: NorBERTConfig) {
        keys = Array(repeating: Scratch(), count: config.numLayers)
        values = Array(repeating: Scratch(), count: config.numLayers)
        keyWidth = config.numAttentionHeads * config.queryKeyHeadSize
        valueWidth = config.numAttentionHeads * config.valueHeadSize
    }

    func ensure(_ positions: Int) {
        guard positions > capacity else { return }
        let newCap = max(positions, capacity * 2, 64)
        for l in 0..<keys.count {
            let oldK = keys[l].storage, oldV = values[l].storage
            keys[l] = Scratch()
            values[l] = Scratch()
            let k = keys[l].reserve(newCap * keyWidth), v = values[l].reserve(newCap * valueWidth)
            if length > 0 {
                k.update(from: oldK.pointer, count: length * keyWidth)
                v.update(from: oldV.pointer, count: length * valueWidth)
            }
        }
        capacity = newCap
    }
}

extension Encoder {
    /// Rows per MLP block (bounds the GeGLU scratch; large enough for full-rate GEMMs) with OpenBLAS,
    /// which repacks the weights on every call.
    static let mlpRowBlock = 2048
    /// Rows per MLP block with packed weights (our GEMMs: no per-call cost), so the block's
    /// [rows, 2·intermediate] up-projection stays in L2 for GeGLU and the down-projection (xsmall
    /// 128×32 and 32×128: +3% to +28% over 2,048 rows; 64–512 within a few percent of 256).
    static let packedMLPRowBlock = 256

    /// out[m, n] = x[m, k] · Wᵀ for a weight W [n, k] and contiguous x (row stride k): float32
    /// (our packed GEMM or OpenBLAS sgemm, as chosen at load: `WeightGEMM.preferred`), or in bf16:
    /// x rounded to bf16 into lane scratch, then the bf16 GEMM on the bf16 weight.
    @inline(__always)
    func linear(
        _ out: UnsafeMutablePointer<Float>, ldc: Int, _ x: UnsafePointer<Float>, _ w: GEMMWeight,
        m: Int, n: Int, k: Int, ws: EncoderWorkspace
    ) {
        switch w {
        case .float32(let w32):
            w32.apply(out, ldc: ldc, x, lda: k, m: m)
        case .bf16(let w16, let gemm):
            let x16 = ws.x16.reserve(m * k)
            BF16.convert(x16, x, count: m * k)
            gemm.nt(out, ldc: ldc, x16, lda: k, w16.pointer, ldb: k, m: m, n: n, k: k)
        }
    }

    /// One reference `Layer.forward` over every packed row (in place on ws.hidden).
    func runLayer(_ L: LayerWeights, batch: PackedBatch, causal: Bool, caches: [KVCache]?, ws: EncoderWorkspace) {
        let c = config
        let n = batch.totalTokens, h = c.hiddenSize, nh = c.numAttentionHeads
        let dqk = c.queryKeyHeadSize, dv = c.valueHeadSize, inter = c.intermediateSize
        let qkw = 2 * nh * dqk, vw = nh * dv
        let hid = ws.hidden.pointer, emb = ws.embedded.pointer
        let valueIn = ws.valueThenMLPInput.reserve(n * h), qkIn = ws.qkInputThenMLPOutput.reserve(n * h)
        let qk = ws.qk.reserve(n * qkw), v = ws.v.reserve(n * vw)
        let attn = ws.attn.reserve(n * vw), proj = ws.proj.reserve(n * h)

        // Attention inputs: value input and qk input are lambda mixes of h and e, each LayerNormed.
        // (Mix and norm fused per row: one pass over [n, h] each.)
        Vector.mixLayerNorm(valueIn, L.attnA, hid, L.attnB, emb, rows: n, cols: h, eps: eps)
        Vector.mixLayerNorm(qkIn, L.qkA, hid, L.qkB, emb, rows: n, cols: h, eps: eps)
        linear(qk, ldc: qkw, qkIn, L.wqk, m: n, n: qkw, k: h, ws: ws)
        // Values: layer 0's become v1; later layers mix theirs with v1.
        if L.index == 0 {
            let v1 = ws.firstLayerValues.reserve(n * vw)
            linear(v1, ldc: vw, valueIn, L.wv, m: n, n: vw, k: h, ws: ws)
            v.update(from: v1, count: n * vw)
        } else {
            linear(v, ldc: vw, valueIn, L.wv, m: n, n: vw, k: h, ws: ws)
            Vector.mix(v, 1 - L.valueMix, v, L.valueMix, ws.firstLayerValues.pointer, count: n * vw)
        }
        // Per-head q/k LayerNorm × (scale + 1), then RoPE at each token's position in its sequence.
        let scale = 1 / Float(dqk).squareRoot()
        for s in 0..<batch.count {
            let start = batch.offsets[s], len = batch.length(s)
            let past = caches?[s].length ?? 0
            let rope = rotary(for: L, positions: past + len, ws: ws)
            // One call per sequence: rows start..<start+len of qk [n, qkw], cos/sin rows past..<past+len.
            let (cos, sin) = rope.tables(position: past)
            Vector.qkNormRope(
                qk + start * qkw, ld: qkw, rows: len, heads: nh, headDim: dqk,
                qGain: L.qGain.pointer, kGain: L.kGain.pointer, cos: cos, sin: sin, eps: eps)
            if let cache = caches?[s] {
                cache.ensure(past + len)
                let kc = cache.keys[L.index].pointer, vc = cache.values[L.index].pointer
                for t in 0..<len {
                    (kc + (past + t) * (nh * dqk)).update(from: qk + (start + t) * qkw + nh * dqk, count: nh * dqk)
                }
                (vc + past * vw).update(from: v + start * vw, count: len * vw)
                for head in 0..<nh {
                    Attention.windowed(
                        attn + start * vw + head * dv, ldo: vw,
                        q: qk + start * qkw + head * dqk, ldq: qkw,
                        k: kc + head * dqk, ldk: nh * dqk,
                        v: vc + head * dv, ldv: vw,
                        queries: len, queryStart: past, keys: past + len,
                        headDim: dqk, valueDim: dv, window: L.window, causal: causal,
                        scale: scale, scratch: &ws.attention)
                }
            } else {
                for head in 0..<nh {
                    Attention.windowed(
                        attn + start * vw + head * dv, ldo: vw,
                        q: qk + start * qkw + head * dqk, ldq: qkw,
                        k: qk + start * qkw + nh * dqk + head * dqk, ldk: qkw,
                        v: v + start * vw + head * dv, ldv: vw,
                        queries: len, queryStart: 0, keys: len,
                        headDim: dqk, valueDim: dv, window: L.window, causal: causal,
                        scale: scale, scratch: &ws.attention)
                }
            }
        }
        Vector.layerNorm(attn, ldo: vw, attn, ldx: vw, rows: n, cols: vw, eps: eps)
        linear(proj, ldc: h, attn, L.wo, m: n, n: h, k: vw, ws: ws)

        // MLP input: softplus(l2)((1-l3) h + l3 e) + attention output.
        // (Mix, add and the MLP's input LayerNorm fused per row.) The value and q/k inputs are dead
        // now: the MLP's input and output take their buffers.
        let mlpIn = valueIn, mlpOut = qkIn
        Vector.mixLayerNorm(mlpIn, scale: L.mlpS, L.mlpA, hid, L.mlpB, emb, plus: proj, rows: n, cols: h, eps: eps)
        // The MLP runs over row blocks so its [rows, 2·intermediate] scratch stays bounded.
        let block = min(n, L.wup.isPacked ? Self.packedMLPRowBlock : Self.mlpRowBlock)
        let up = ws.up.reserve(block * 2 * inter), act = ws.act.reserve(block * inter)
        var r0 = 0
        while r0 < n {
            let rows = min(block, n - r0)
            let x = mlpIn + r0 * h
            linear(up, ldc: 2 * inter, x, L.wup, m: rows, n: 2 * inter, k: h, ws: ws)
            Vector.gegluLayerNorm(act, up: up, rows: rows, inter: inter, eps: eps)
            linear(mlpOut + r0 * h, ldc: h, act, L.wdown, m: rows, n: h, k: inter, ws: ws)
            r0 += rows
        }

        // New state: softplus(l4)((1-l5) h + l5 e) + attention output + MLP output, in one pass.
        Vector.scaledMixAdd(hid, L.resS, L.resA, hid, L.resB, emb, plus: proj, mlpOut, count: n * h)
    }
}
