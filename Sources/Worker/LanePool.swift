import Dispatch

/// Inference lanes: one serial dispatch queue (its own thread, never Swift's cooperative pool)
/// per lane; each runs one batch at a time on the backend's lane-local state.
final class LanePool<Backend: InferenceBackend>: Sendable {
    let backend: Backend
    private let queues: [DispatchQueue]

    init(backend: Backend, lanes: Int) {
        self.backend = backend
        queues = (0..<max(1, lanes)).map { DispatchQueue(label: "norbert-worker.lane-\($0)", qos: .userInitiated) }
    }

    var count: Int { queues.count }

    /// Runs `jobs` on `lane` and returns the backend's responses, one list per job (a missing
    /// list becomes an internal-error response). Streamed partials go to `emit` on the lane's
    /// thread as the backend computes them. Also returns when the lane started the batch (it may
    /// have been running another one when the batch was handed to it).
    func run(_ jobs: [Backend.Job], lane: Int, emit: @escaping @Sendable (Int, BackendResponse) -> Void) async -> (results: [[BackendResponse]], started: ContinuousClock.Instant) {
        let backend = self.backend
        let (results, started): ([[BackendResponse]], ContinuousClock.Instant) = await withCheckedContinuation { continuation in
            queues[lane].async {
                let started = ContinuousClock.now
                continuation.resume(returning: (backend.run(jobs, lane: lane, emit: emit), started))
            }
        }
        return (complete(results, jobs: jobs.count), started)
    }

    /// One list per job: a missing one becomes an internal-error response.
    private func complete(_ results: [[BackendResponse]], jobs: Int) -> [[BackendResponse]] {
        guard results.count != jobs else { return results }
        return (0..<jobs).map { index in
            if index < results.count, !results[index].isEmpty { return results[index] }
            let text = "the inference backend returned no response for this request"
            let value = backend.errorResponse(code: "internal_error", message: text, id: nil)
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
