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
    /// Rows per block of the row-wise parts of a layer with OpenBLAS, which repacks the weights on
    /// every call (large enough for full-rate GEMMs; bounds the block scratch).
    static let openBLASRowBlock = 2048
    /// Rows per block with packed weights (our GEMMs: no per-call cost): a block's inputs, its
    /// projections and its [rows, 2·intermediate] up-projection stay in L2 between the GEMMs and
    /// the element-wise kernels around them (see docs/performance.md, "Row blocks").
    static let packedRowBlock = 256

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

    /// One reference `Layer.forward` over every packed row (in place on ws.hidden), in three
    /// phases: the attention inputs row block by row block, attention per sequence and head, then
    /// the attention output and the MLP row block by row block. Every step but attention is per
    /// row, so a block's intermediates never leave L2; only q/k, v and the attention output are
    /// held for all rows.
    func runLayer(_ L: LayerWeights, batch: PackedBatch, causal: Bool, caches: [KVCache]?, ws: EncoderWorkspace) {
        let c = config
        let n = batch.totalTokens, vw = c.numAttentionHeads * c.valueHeadSize
        // The buffers every row of the layer needs (attention spans a sequence's rows).
        ws.qk.reserve(n * 2 * c.numAttentionHeads * c.queryKeyHeadSize)
        ws.v.reserve(n * vw)
        ws.attn.reserve(n * vw)
        if L.index == 0 { ws.firstLayerValues.reserve(n * vw) }
        let block = min(n, L.wqk.isPacked ? Self.packedRowBlock : Self.openBLASRowBlock)
        var r0 = 0
        while r0 < n {
            attentionInputs(L, rows: r0..<min(n, r0 + block), batch: batch, caches: caches, ws: ws)
            r0 += block
        }
        attention(L, batch: batch, causal: causal, caches: caches, ws: ws)
        r0 = 0
        while r0 < n {
            outputAndMLP(L, rows: r0..<min(n, r0 + block), ws: ws)
            r0 += block
        }
    }

    /// Rows `rows` of q/k (per-head LayerNorm, RoPE) and v (mixed with v1) from the residual
    /// stream: the value and q/k inputs are lambda mixes of h and e, each LayerNormed.
    private func attentionInputs(_ L: LayerWeights, rows: Range<Int>, batch: PackedBatch, caches: [KVCache]?, ws: EncoderWorkspace) {
        let c = config
        let m = rows.count, h = c.hiddenSize, nh = c.numAttentionHeads, dqk = c.queryKeyHeadSize
        let qkw = 2 * nh * dqk, vw = nh * c.valueHeadSize
        let hid = ws.hidden.pointer + rows.lowerBound * h, emb = ws.embedded.pointer + rows.lowerBound * h
        let qk = ws.qk.pointer + rows.lowerBound * qkw, v = ws.v.pointer + rows.lowerBound * vw
        let valueIn = ws.valueThenMLPInput.reserve(m * h), qkIn = ws.qkInputThenMLPOutput.reserve(m * h)
        // (Mix and norm fused per row: one pass over the block each.)
        Vector.mixLayerNorm(valueIn, L.attnA, hid, L.attnB, emb, rows: m, cols: h, eps: eps)
        Vector.mixLayerNorm(qkIn, L.qkA, hid, L.qkB, emb, rows: m, cols: h, eps: eps)
        linear(qk, ldc: qkw, qkIn, L.wqk, m: m, n: qkw, k: h, ws: ws)
        // Values: layer 0's become v1; later layers mix theirs with v1.
        let v1 = ws.firstLayerValues.pointer + rows.lowerBound * vw
        if L.index == 0 {
            linear(v1, ldc: vw, valueIn, L.wv, m: m, n: vw, k: h, ws: ws)
            v.update(from: v1, count: m * vw)
        } else {
            linear(v, ldc: vw, valueIn, L.wv, m: m, n: vw, k: h, ws: ws)
            Vector.mix(v, 1 - L.valueMix, v, L.valueMix, v1, count: m * vw)
        }
        // Per-head q/k LayerNorm × (scale + 1), then RoPE at each token's position in its sequence:
        // one call per sequence's share of the block (cos/sin rows from its first position).
        for s in batch.sequences(overlapping: rows) {
            let start = batch.offsets[s]
            let first = max(start, rows.lowerBound), end = min(start + batch.length(s), rows.upperBound)
            let past = caches?[s].length ?? 0
            let rope = rotary(for: L, positions: past + batch.length(s), ws: ws)
            let (cos, sin) = rope.tables(position: past + first - start)
            Vector.qkNormRope(
                ws.qk.pointer + first * qkw, ld: qkw, rows: end - first, heads: nh, headDim: dqk,
                qGain: L.qGain.pointer, kGain: L.kGain.pointer, cos: cos, sin: sin, eps: eps)
        }
    }

    /// Attention of every sequence and head over ws.qk and ws.v into ws.attn (with a KV cache:
    /// over the sequence's cached keys and values too, after appending this pass's).
    private func attention(_ L: LayerWeights, batch: PackedBatch, causal: Bool, caches: [KVCache]?, ws: EncoderWorkspace) {
        let c = config
        let nh = c.numAttentionHeads, dqk = c.queryKeyHeadSize, dv = c.valueHeadSize
        let qkw = 2 * nh * dqk, vw = nh * dv
        let qk = ws.qk.pointer, v = ws.v.pointer, attn = ws.attn.pointer
        let scale = 1 / Float(dqk).squareRoot()
        for s in 0..<batch.count {
            let start = batch.offsets[s], len = batch.length(s)
            if let cache = caches?[s] {
                let past = cache.length
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
    }

    /// Rows `rows` of the new residual stream: the attention output LayerNormed and projected,
    /// the MLP on its input, and the residual mix.
    private func outputAndMLP(_ L: LayerWeights, rows: Range<Int>, ws: EncoderWorkspace) {
        let c = config
        let m = rows.count, h = c.hiddenSize, inter = c.intermediateSize
        let vw = c.numAttentionHeads * c.valueHeadSize
        let hid = ws.hidden.pointer + rows.lowerBound * h, emb = ws.embedded.pointer + rows.lowerBound * h
        let attn = ws.attn.pointer + rows.lowerBound * vw
        let proj = ws.proj.reserve(m * h)
        Vector.layerNorm(attn, ldo: vw, attn, ldx: vw, rows: m, cols: vw, eps: eps)
        linear(proj, ldc: h, attn, L.wo, m: m, n: h, k: vw, ws: ws)

        // MLP input: softplus(l2)((1-l3) h + l3 e) + attention output. (Mix, add and the MLP's
        // input LayerNorm fused per row.) The block's value and q/k inputs are dead now: the MLP's
        // input and output take their buffers.
        let mlpIn = ws.valueThenMLPInput.reserve(m * h), mlpOut = ws.qkInputThenMLPOutput.reserve(m * h)
        Vector.mixLayerNorm(mlpIn, scale: L.mlpS, L.mlpA, hid, L.mlpB, emb, plus: proj, rows: m, cols: h, eps: eps)
        let up = ws.up.reserve(m * 2 * inter), act = ws.act.reserve(m * inter)
        linear(up, ldc: 2 * inter, mlpIn, L.wup, m: m, n: 2 * inter, k: h, ws: ws)
        Vector.gegluLayerNorm(act, up: up, rows: m, inter: inter, eps: eps)
        linear(mlpOut, ldc: h, act, L.wdown, m: m, n: h, k: inter, ws: ws)

        // New state: softplus(l4)((1-l5) h + l5 e) + attention output + MLP output, in one pass.
        Vector.scaledMixAdd(hid, L.resS, L.resA, hid, L.resB, emb, plus: proj, mlpOut, count: m * h)
    }
}
