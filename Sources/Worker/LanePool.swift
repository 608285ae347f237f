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

    /// Runs `jobs` on `lane` and returns the backend's responses, one list per job (a missing
    /// list becomes an internal-error response). Streamed partials go to `emit` on the lane's
    /// thread as the backend computes them. Also returns when the lane started the batch (it may
    /// have been running another one when the batch was handed to it).
    func run(_ jobs: [Backend.Job], lane: Int, emit: @escaping @Sendable (Int, BackendResponse) -> Void) async -> (results: [[BackendResponse]], started: ContinuousClock.Instant) {
        let (results, started): ([[BackendResponse]], ContinuousClock.Instant) = await withCheckedContinuation { continuation in
            queues[lane].async {
                let started = ContinuousClock.now
                self.progress.started(lane)
                let results = self.backend.run(jobs, lane: lane, emit: emit, between: { self.betweenSteps(lane) })
                self.progress.finished(lane)
                continuation.resume(returning: (results, started))
                // A side batch handed over as this one ended runs now.
                self.runSide(lane)
            }
        }
        return (complete(results, jobs: jobs.count), started)
    }

    /// Runs short `jobs` in `lane`'s side slot: between two steps of the batch the lane is
    /// running, or after it. The slot must be free (the worker hands out one side batch per lane).
    func runBetweenSteps(_ jobs: [Backend.Job], lane: Int, emit: @escaping @Sendable (Int, BackendResponse) -> Void) async -> (results: [[BackendResponse]], started: ContinuousClock.Instant) {
        let (results, started): ([[BackendResponse]], ContinuousClock.Instant) = await withCheckedContinuation { continuation in
            sides.withLock { $0[lane] = SideBatch(jobs: jobs, emit: emit, done: { continuation.resume(returning: ($0, $1)) }) }
            // If the lane's batch ends before its next step, the lane's queue runs it next.
            queues[lane].async { self.runSide(lane) }
        }
        return (complete(results, jobs: jobs.count), started)
    }

    private func betweenSteps(_ lane: Int) {
        progress.stepped(lane)
        runSide(lane)
    }

    /// Runs the side batch of `lane`, if one waits (on the lane's thread, second workspace).
    private func runSide(_ lane: Int) {
        guard let side = sides.withLock({ slots -> SideBatch? in
            let taken = slots[lane]
            slots[lane] = nil
            return taken
        }) else { return }
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
