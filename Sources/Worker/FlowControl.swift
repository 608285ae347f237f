/// Pauses fetching when queued work passes a bound and resumes below half of it (hysteresis),
/// so memory stays bounded under any load while the poll loop keeps running.
public struct FlowControl: Sendable, Equatable {
    public enum Action: Sendable, Equatable { case pause, resume }

    public let high: Int
    public let low: Int
    public private(set) var paused = false

    public init(maxQueuedTokens: Int) {
        high = max(1, maxQueuedTokens)
        low = high / 2
    }

    /// Feeds the current number of queued tokens; returns what to do, if anything.
    public mutating func update(queuedTokens: Int) -> Action? {
        if !paused, queuedTokens > high {
            paused = true
            return .pause
        }
        if paused, queuedTokens <= low {
            paused = false
            return .resume
        }
        return nil
    }
}
