import Foundation
import Tensors

/// Rotary position tables for one base θ: cos and sin of position × θ^(−2j/d), j < d/2, computed
/// as the reference does in float32 (`inv_freq = 1 / θ^(arange(0, d, 2) / d)`, angle = pos · inv_freq).
/// Tables cover `count` positions; `RotaryTable.extended(to:)` builds longer ones on demand, so any
/// length works (the reference stops at max_sequence_length).
public final class RotaryTable: Sendable {
    public let theta: Double
    public let half: Int
    public let count: Int
    let cos: FloatBuffer  // [count, half]
    let sin: FloatBuffer  // [count, half]

    public init(theta: Double, headDim d: Int, positions count: Int) {
        self.theta = theta
        half = d / 2
        self.count = count
        cos = FloatBuffer(count: count * half)
        sin = FloatBuffer(count: count * half)
        let invFreq: [Float] = (0..<half).map { j in
            let exponent = Float(2 * j) / Float(d)
            return 1 / Float(Foundation.pow(theta, Double(exponent)))
        }
        for p in 0..<count {
            for j in 0..<half {
                let angle = Double(Float(p) * invFreq[j])
                cos.pointer[p * half + j] = Float(Foundation.cos(angle))
                sin.pointer[p * half + j] = Float(Foundation.sin(angle))
            }
        }
    }

    /// cos and sin [d/2] of position p.
    @inline(__always)
    func tables(position p: Int) -> (UnsafePointer<Float>, UnsafePointer<Float>) {
        (UnsafePointer(cos.pointer + p * half), UnsafePointer(sin.pointer + p * half))
    }
}
