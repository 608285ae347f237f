import Synchronization

/// Liveness and readiness, read by the HTTP probes from any thread.
public final class WorkerStatus: Sendable {
    private struct State {
        var warmed = false
        var assigned = 0
        var stopping = false
    }
    private let state = Mutex(State())

    public init() {}

    /// Ready: heads loaded and warmed, partitions assigned, not shutting down.
    public var isReady: Bool { state.withLock { $0.warmed && $0.assigned > 0 && !$0.stopping } }
    public var assignedPartitions: Int { state.withLock { $0.assigned } }

    func setWarmed() { state.withLock { $0.warmed = true } }
    func setAssigned(_ count: Int) { state.withLock { $0.assigned = count } }
    func setStopping() { state.withLock { $0.stopping = true } }
}
