import Foundation
import SafeTensors
import Tensors

/// Where float32 weights come from: a checkpoint folder, or generated values for benchmarks.
public protocol WeightSource: Sendable {
    func contains(_ name: String) -> Bool
    /// The stored shape, when the source knows it without loading (nil: unknown or absent).
    func shape(of name: String) -> [Int]?
    /// The tensor's values as float32, after checking that its shape is `shape`.
    func floats(_ name: String, shape: [Int]) throws -> [Float]
}

extension Checkpoint: WeightSource {
    public func shape(of name: String) -> [Int]? { info(name)?.shape }
    public func floats(_ name: String, shape: [Int]) throws -> [Float] {
        do {
            return try tensor(name, shape: shape).storage
        } catch let error as SafeTensorsError {
            throw NorBERTError.checkpoint(message: error.description)
        }
    }
}

/// Deterministic pseudo-random weights (benchmarks and tests of model shapes that have no checkpoint).
public struct RandomWeights: WeightSource {
    public let seed: UInt64
    public init(seed: UInt64 = 42) { self.seed = seed }
    /// Encoder tensors only: a model built from it has the base head.
    public func contains(_ name: String) -> Bool { !name.hasPrefix("classifier.") }
    public func shape(of name: String) -> [Int]? { nil }
    public func floats(_ name: String, shape: [Int]) throws -> [Float] {
        var rng = SplitMix64(seed: seed ^ name.hashValueStable)
        let amplitude: Float = name.hasSuffix("lambdas") ? 0.5 : (name.contains("scale") ? 0.1 : 0.08)
        return (0..<shape.reduce(1, *)).map { _ in rng.symmetricUnit() * amplitude }
    }
}

extension String {
    /// FNV-1a: stable across runs (Swift's hashValue is seeded per process).
    var hashValueStable: UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return h
    }
}
