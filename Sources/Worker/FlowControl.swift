/// Pauses fetching when the worker holds too much and resumes once everything is below half of
/// its bound (hysteresis), so memory stays bounded under any load — including while the results
/// topic does not acknowledge — and the poll loop keeps running. Three measures:
/// - queued tokens: encoder work waiting for a lane;
/// - in flight: messages received and not yet answered (queued, running, or waiting for the
///   broker to acknowledge their answer or dead letter — rejected messages count too);
/// - in-flight bytes: the same messages' keys, values and headers.
public struct FlowControl: Sendable, Equatable {
    public enum Action: Sendable, Equatable { case pause, resume }

    /// What the worker holds right now.
    public struct Load: Sendable, Equatable {
        public var queuedTokens: Int
        public var inFlight: Int
        public var inFlightBytes: Int
        public init(queuedTokens: Int, inFlight: Int = 0, inFlightBytes: Int = 0) {
            self.queuedTokens = queuedTokens
            self.inFlight = inFlight
            self.inFlightBytes = inFlightBytes
        }
    }

    public let high: Load
    public let low: Load
    public private(set) var paused = false

    public init(maxQueuedTokens: Int, maxInFlight: Int = .max, maxInFlightBytes: Int = .max) {
        high = Load(queuedTokens: max(1, maxQueuedTokens), inFlight: max(1, maxInFlight), inFlightBytes: max(1, maxInFlightBytes))
        low = Load(queuedTokens: high.queuedTokens / 2, inFlight: high.inFlight / 2, inFlightBytes: high.inFlightBytes / 2)
    }

    /// Feeds the current load; returns what to do, if anything.
    public mutating func update(_ load: Load) -> Action? {
        if !paused, load.queuedTokens > high.queuedTokens || load.inFlight > high.inFlight || load.inFlightBytes > high.inFlightBytes {
            paused = true
            return .pause
        }
        if paused, load.queuedTokens <= low.queuedTokens, load.inFlight <= low.inFlight, load.inFlightBytes <= low.inFlightBytes {
            paused = false
            return .resume
        }
        return nil
    }

    /// Feeds the number of queued tokens alone.
    public mutating func update(queuedTokens: Int) -> Action? { update(Load(queuedTokens: queuedTokens)) }
}
