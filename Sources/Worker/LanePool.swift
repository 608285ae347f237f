import Dispatch
import Synchronization
import Wire

/// Inference lanes: one serial dispatch queue (its own thread, never Swift's cooperative pool)
/// per lane; each runs one batch at a time on the backend's lane-local state.
///
/// Short work never waits behind a long generation: a lane running one takes a second, short
/// batch in its *side slot* and runs it between two steps of the long one (on the lane's second
/// workspace), or right after it if it ends first. Every batch start, step and end is recorded
/// as the lane's progress (``LaneProgress``): `/livez` fails when a busy lane stops progressing.
final class LanePool<Backend: InferenceBackend>: Sendable {
    let backend: Backend
    let progress: LaneProgress
    private let queues: [DispatchQueue]
    private let sides: Mutex<[SideBatch?]>

    /// A batch waiting in a lane's side slot, run once by whoever takes it first.
    struct SideBatch: Sendable {
        var jobs: [Backend.Job]
        var emit: @Sendable (Int, BackendResponse) -> Void
        var done: @Sendable ([[BackendResponse]], ContinuousClock.Instant) -> Void
    }

    init(backend: Backend, lanes: Int, progress: LaneProgress? = nil) {
        self.backend = backend
        let count = max(1, lanes)
        queues = (0..<count).map { DispatchQueue(label: "norbert-worker.lane-\($0)", qos: .userInitiated) }
        sides = Mutex(Array(repeating: nil, count: count))
        self.progress = progress ?? LaneProgress(lanes: count)
    }

    var count: Int { queues.count }

    /// Runs `jobs` in `slot` and returns the backend's responses, one list per job (a missing
    /// list becomes an internal-error response), and when the lane started the batch (it may
    /// have been running another one when the batch was handed to it). A regular slot queues
    /// the batch on its lane; a side slot runs it between two steps of the batch the lane is
    /// running, or after it (the worker hands out one side batch per lane). Streamed partials
    /// go to `emit` on the lane's thread as the backend computes them.
    ///
    /// Returns nil at once when the calling task is cancelled (shutdown past its deadline): the
    /// lane finishes the batch on its own thread and its results are dropped.
    func run(
        _ jobs: [Backend.Job], slot: LaneSlots.Slot, emit: @escaping @Sendable (Int, BackendResponse) -> Void
    ) async -> (results: [[BackendResponse]], started: ContinuousClock.Instant)? {
        let lane = slot.lane
        let outcome = LaneOutcome()
        let finished: (results: [[BackendResponse]], started: ContinuousClock.Instant)? = await withTaskCancellationHandler {
            if slot.side {
                sides.withLock { $0[lane] = SideBatch(jobs: jobs, emit: emit, done: { outcome.finish(($0, $1)) }) }
                // If the lane's batch ends before its next step, the lane's queue runs it next.
                queues[lane].async { self.runSide(lane) }
            } else {
                queues[lane].async {
                    let started = ContinuousClock.now
                    self.progress.started(lane)
                    let results = self.backend.run(jobs, lane: lane, emit: emit, between: { self.betweenSteps(lane) })
                    self.progress.finished(lane)
                    outcome.finish((results, started))
                    // A side batch handed over as this one ended runs now.
                    self.runSide(lane)
                }
            }
            return await outcome.wait()
        } onCancel: {
            outcome.finish(nil)
        }
        guard let finished else { return nil }
        return (complete(finished.results, jobs: jobs.count), finished.started)
    }

    private func betweenSteps(_ lane: Int) {
        progress.stepped(lane)
        runSide(lane)
    }

    /// Runs the side batch of `lane`, if one waits (on the lane's thread, second workspace).
    private func runSide(_ lane: Int) {
        guard
            let side = sides.withLock({ slots -> SideBatch? in
                let taken = slots[lane]
                slots[lane] = nil
                return taken
            })
        else { return }
        let started = ContinuousClock.now
        let results = backend.run(side.jobs, lane: count + lane, emit: side.emit, between: { self.progress.stepped(lane) })
        progress.stepped(lane)
        side.done(results, started)
    }

    /// One list per job: a missing one becomes an internal-error response.
    private func complete(_ results: [[BackendResponse]], jobs: Int) -> [[BackendResponse]] {
        guard results.count != jobs else { return results }
        return (0..<jobs).map { index in
            if index < results.count, !results[index].isEmpty { return results[index] }
            let text = "the inference backend returned no response for this request"
            let value = backend.errorResponse(code: ErrorCode.internalError.rawValue, message: text, id: nil)
            let rejection = RequestRejection(code: "internal_error", message: text, response: value)
            return [BackendResponse(value: value, rejection: rejection, outcome: "internal_error", task: "unknown", head: "none")]
        }
    }

    /// Warms every lane up (concurrently).
    func warmUp() async {
        await withTaskGroup(of: Void.self) { group in
            for lane in queues.indices {
                let backend = self.backend, queue = queues[lane]
                group.addTask {
                    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                        queue.async {
                            backend.warmUp(lane: lane)
                            continuation.resume()
                        }
                    }
                }
            }
        }
    }
}

/// A lane's result, handed over once: by the lane when the batch ends, or as nil when the
/// waiting task is cancelled, whichever comes first.
final class LaneOutcome: Sendable {
    typealias Value = (results: [[BackendResponse]], started: ContinuousClock.Instant)
    private enum State {
        case pending(CheckedContinuation<Value?, Never>?)
        case done(Value?)
    }
    private let state = Mutex(State.pending(nil))

    func wait() async -> Value? {
        await withCheckedContinuation { continuation in
            let ready = state.withLock { state -> Value?? in
                switch state {
                case .done(let value): return .some(value)
                case .pending:
                    state = .pending(continuation)
                    return nil
                }
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }

    func finish(_ value: Value?) {
        let waiting = state.withLock { state -> CheckedContinuation<Value?, Never>? in
            guard case .pending(let continuation) = state else { return nil }
            state = .done(value)
            return continuation
        }
        waiting?.resume(returning: value)
    }
}

/// When each lane last made progress (started a batch, finished a step or a batch) and whether
/// it is busy: read by `/livez` and `/metrics` from any thread.
public final class LaneProgress: Sendable {
    private struct Lane {
        var busy = false
        var last = ContinuousClock.now
        var steps: UInt64 = 0
    }
    private let lanes: Mutex<[Lane]>

    public init(lanes: Int) { self.lanes = Mutex(Array(repeating: Lane(), count: max(1, lanes))) }

    func started(_ lane: Int) { update(lane) { $0.busy = true } }
    func stepped(_ lane: Int) { update(lane) { $0.steps &+= 1 } }
    func finished(_ lane: Int) { update(lane) { $0.busy = false } }

    private func update(_ lane: Int, _ body: (inout Lane) -> Void) {
        lanes.withLock { lanes in
            guard lanes.indices.contains(lane) else { return }
            body(&lanes[lane])
            lanes[lane].last = .now
        }
    }

    /// Per lane: how long it has been busy without progress (zero when idle), and its steps.
    public func snapshot(now: ContinuousClock.Instant = .now) -> [(stalled: Duration, steps: UInt64)] {
        lanes.withLock { lanes in lanes.map { ($0.busy ? now - $0.last : .zero, $0.steps) } }
    }
}
