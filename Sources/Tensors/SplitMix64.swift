/// SplitMix64: a small seeded generator, so a seed gives the same numbers on every machine
/// (random benchmark weights, sampling with a `seed`, deterministic corpora and tests).
public struct SplitMix64: RandomNumberGenerator, Sendable {
    public var state: UInt64
    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A value in 0..<n (0 when n ≤ 0).
    public mutating func below(_ n: Int) -> Int { n <= 0 ? 0 : Int(next() % UInt64(n)) }

    /// A float in [-1, 1).
    public mutating func symmetricUnit() -> Float { Float(next() >> 40) / Float(1 << 24) * 2 - 1 }
}
