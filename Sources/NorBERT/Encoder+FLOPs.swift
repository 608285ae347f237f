extension Encoder {
    /// Floating-point operations of one encoder pass (multiply-add = 2): every projection, and
    /// attention over the keys each query actually sees in its window. Element-wise work excluded.
    public func flops(_ batch: PackedBatch, causal: Bool = false) -> Double {
        let c = config
        let h = Double(c.hiddenSize), nh = Double(c.numAttentionHeads)
        let dqk = Double(c.queryKeyHeadSize), dv = Double(c.valueHeadSize), inter = Double(c.intermediateSize)
        let perToken = 2 * (h * 2 * nh * dqk + h * nh * dv + nh * dv * h + h * 2 * inter + inter * h)
        var total = perToken * Double(batch.totalTokens) * Double(c.numLayers)
        for layer in 0..<c.numLayers {
            let w = c.window(ofLayer: layer)
            for s in 0..<batch.count {
                let t = batch.length(s)
                var visible = 0
                for p in 0..<t {
                    let lo = max(0, p - w), hi = causal ? p : min(t - 1, p + w)
                    visible += hi - lo + 1
                }
                total += 2 * Double(visible) * nh * (dqk + dv)
            }
        }
        return total
    }
}
