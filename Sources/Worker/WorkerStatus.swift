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
    private let lanes = Mutex<(progress: LaneProgress, stallTimeout: Duration)?>(nil)

    public init() {}

    /// Watches the lanes' progress: `/livez` fails once a busy lane has made no progress (no
    /// batch started or finished, no encoder pass or decoding step) for `stallTimeout`.
    func watch(_ progress: LaneProgress, stallTimeout: Duration) { lanes.withLock { $0 = (progress, stallTimeout) } }

    /// Why the process should be restarted (the `/livez` body), or nil while it is live.
    public var livenessFailure: String? {
        guard let (progress, timeout) = lanes.withLock({ $0 }) else { return nil }
        let stuck = progress.snapshot().enumerated().filter { $0.element.stalled > timeout }
        guard let first = stuck.first else { return nil }
        return
            """
            lane \(first.offset) has made no progress for \(first.element.stalled.components.seconds) s (limit \
            \(timeout.components.seconds) s)
            """
    }

    /// The lanes' progress, once the worker runs.
    var laneProgress: LaneProgress? { lanes.withLock { $0?.progress } }

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
