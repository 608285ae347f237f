import Synchronization

/// Liveness and readiness, read by the HTTP probes from any thread.
public final class WorkerStatus: Sendable {
    private struct State {
        var warmed = false
        var assigned = 0
        var stopping = false
        /// Answers waiting for the broker while fetching is paused because of them (0: none).
        var awaitingBroker = 0
    }
    private let state = Mutex(State())

    public init() {}

    /// Ready: heads loaded and warmed, partitions assigned, not shutting down, and not paused
    /// because the broker does not acknowledge answers.
    public var isReady: Bool { notReadyReason == nil }

    /// Why the worker is not ready (the `/readyz` body), or nil when it is.
    public var notReadyReason: String? {
        state.withLock { s in
            if s.stopping { return "stopping" }
            if !s.warmed { return "loading and warming up the heads" }
            if s.assigned == 0 { return "no partitions assigned" }
            if s.awaitingBroker > 0 { return "fetching paused: \(s.awaitingBroker) answers waiting for the broker to acknowledge them" }
            return nil
        }
    }
    public var assignedPartitions: Int { state.withLock { $0.assigned } }

    func setWarmed() { state.withLock { $0.warmed = true } }
    func setAssigned(_ count: Int) { state.withLock { $0.assigned = count } }
    func setStopping() { state.withLock { $0.stopping = true } }
    func setAwaitingBroker(_ count: Int) { state.withLock { $0.awaitingBroker = count } }
}
