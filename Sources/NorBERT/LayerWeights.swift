import Foundation
import Tensors

/// softplus(x) = log(1 + e^x), evaluated in double and rounded (torch: threshold 20 → identity).
@inline(__always) func softplus(_ x: Float) -> Float {
    x > 20 ? x : Float(Foundation.log1p(Foundation.exp(Double(x))))
}

/// Loads `name` [rows, cols] and multiplies column c by (scale[c] + 1): the reference's
/// `CastedLinearIn` weight, folded once at load (bit-identical to what it computes per call).
func foldedLinear(_ source: any WeightSource, weights names: [String], rows: [Int], scale: String, cols: Int) throws -> FloatBuffer {
    let s = try source.floats(scale, shape: [cols])
    let total = rows.reduce(0, +)
    let out = FloatBuffer(count: total * cols)
    var row0 = 0
    for (name, r) in zip(names, rows) {
        let w = try source.floats(name, shape: [r, cols])
        for i in 0..<r {
            for c in 0..<cols {
                out.pointer[(row0 + i) * cols + c] = w[i * cols + c] * (s[c] + 1)
            }
        }
        row0 += r
    }
    return out
}

/// One GEMM weight in the form the encoder's precision runs — float32 (packed for our GEMM or
/// row-major for OpenBLAS, see `LinearWeight`) or bfloat16 (as its bf16 GEMM prepared it) — one
/// copy, not both.
enum GEMMWeight: Sendable {
    case float32(LinearWeight)
    case bf16(BF16Buffer, BF16GEMM)

    /// W [rows, cols] after folding: converted to bf16 once (as the reference's bf16 autocast
    /// rounds the weight it uses) when `bf16` is given, else packed or kept for `gemm`.
    init(_ w: FloatBuffer, rows: Int, cols: Int, gemm: WeightGEMM, bf16: BF16GEMM?) {
        if let bf16 {
            self = .bf16(bf16.prepare(w, rows: rows, cols: cols), bf16)
        } else {
            self = .float32(LinearWeight(w, rows: rows, cols: cols, gemm: gemm))
        }
    }

    /// Packed once at load (our float32 or bf16 GEMM): no per-call cost for small row blocks.
    var isPacked: Bool {
        switch self {
        case .float32(let w): w.gemm == .packed
        case .bf16(_, let gemm): gemm.packsWeights
        }
    }

    var byteCount: Int {
        switch self {
        case .float32(let w): w.byteCount
        case .bf16(let w, _): w.byteCount
        }
    }
}

/// One encoder layer's weights with every weight-only constant folded in.
/// Names follow the reference state dict (`encoder.layers.{i}.…`).
public final class LayerWeights: Sendable {
    public let index: Int
    public let window: Int
    public let isGlobal: Bool
    // Residual mixes: lambdas [6] of the reference `Layer`.
    let attnA: Float, attnB: Float  // value input: (1-l0) h + l0 e
    let qkA: Float, qkB: Float  // qk input: (1-l1) h + l1 e
    let mlpS: Float, mlpA: Float, mlpB: Float  // softplus(l2) ((1-l3) h + l3 e)
    let resS: Float, resA: Float, resB: Float  // softplus(l4) ((1-l5) h + l5 e)
    let valueMix: Float  // attention.lambdas[0]
    // The five GEMM weights, in the precision's form (see GEMMWeight).
    let wqk: GEMMWeight  // [2·heads·dqk, hidden], q rows then k rows
    let wv: GEMMWeight  // [heads·dv, hidden]
    let wo: GEMMWeight  // [hidden, heads·dv]
    let qGain: FloatBuffer  // (q_scale + 1) [heads·dqk]
    let kGain: FloatBuffer  // (k_scale + 1) [heads·dqk]
    let wup: GEMMWeight  // [2·intermediate, hidden], linear half then gate half
    let wdown: GEMMWeight  // [hidden, intermediate]

    init(
        _ source: any WeightSource, config c: NorBERTConfig, index i: Int, bf16: BF16GEMM? = nil,
        gemm: WeightGEMM = .openBLAS
    ) throws {
        let p = "encoder.layers.\(i)."
        let h = c.hiddenSize, nh = c.numAttentionHeads, dqk = c.queryKeyHeadSize, dv = c.valueHeadSize
        index = i
        window = c.window(ofLayer: i)
        isGlobal = c.isGlobalLayer(i)
        let l = try source.floats(p + "lambdas", shape: [6])
        attnA = 1 - l[0]
        attnB = l[0]
        qkA = 1 - l[1]
        qkB = l[1]
        mlpS = softplus(l[2])
        mlpA = 1 - l[3]
        mlpB = l[3]
        resS = softplus(l[4])
        resA = 1 - l[5]
        resB = l[5]
        valueMix = try source.floats(p + "attention.lambdas", shape: [1])[0]
        let inter = c.intermediateSize
        let qk = try foldedLinear(
            source, weights: [p + "attention.qk_proj.weights.0", p + "attention.qk_proj.weights.1"],
            rows: [nh * dqk, nh * dqk], scale: p + "attention.qk_proj.scale", cols: h)
        let v = try foldedLinear(
            source, weights: [p + "attention.v_proj.weight"], rows: [nh * dv],
            scale: p + "attention.v_proj.scale", cols: h)
        let o = try foldedLinear(
            source, weights: [p + "attention.out_proj.weight"], rows: [h],
            scale: p + "attention.out_proj.scale", cols: nh * dv)
        qGain = FloatBuffer(try source.floats(p + "attention.q_scale", shape: [nh, dqk]).map { $0 + 1 })
        kGain = FloatBuffer(try source.floats(p + "attention.k_scale", shape: [nh, dqk]).map { $0 + 1 })
        let up = try foldedLinear(
            source, weights: [p + "mlp.up_proj.weights.0", p + "mlp.up_proj.weights.1"],
            rows: [inter, inter], scale: p + "mlp.up_proj.scale", cols: h)
        let down = try foldedLinear(
            source, weights: [p + "mlp.down_proj.weight"], rows: [h],
            scale: p + "mlp.down_proj.scale", cols: inter)
        // Converted or packed after the (scale + 1) folding; the folded float32 buffers are dropped here.
        wqk = GEMMWeight(qk, rows: 2 * nh * dqk, cols: h, gemm: gemm, bf16: bf16)
        wv = GEMMWeight(v, rows: nh * dv, cols: h, gemm: gemm, bf16: bf16)
        wo = GEMMWeight(o, rows: h, cols: nh * dv, gemm: gemm, bf16: bf16)
        wup = GEMMWeight(up, rows: 2 * inter, cols: h, gemm: gemm, bf16: bf16)
        wdown = GEMMWeight(down, rows: h, cols: inter, gemm: gemm, bf16: bf16)
    }

    var byteCount: Int {
        [wqk, wv, wo, wup, wdown].reduce(0) { $0 + $1.byteCount } + qGain.byteCount + kGain.byteCount
    }
}
