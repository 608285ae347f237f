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
    /// thread as the backend computes them.
    func run(_ jobs: [Backend.Job], lane: Int, emit: @escaping @Sendable (Int, BackendResponse) -> Void) async -> [[BackendResponse]] {
        let backend = self.backend
        let results: [[BackendResponse]] = await withCheckedContinuation { continuation in
            queues[lane].async {
                continuation.resume(returning: backend.run(jobs, lane: lane, emit: emit))
            }
        }
        guard results.count != jobs.count else { return results }
        return jobs.indices.map { index in
            if index < results.count, !results[index].isEmpty { return results[index] }
            let value = backend.errorResponse(code: "internal_error", message: "the inference backend returned no response for this request")
            return [BackendResponse(value: value, outcome: "internal_error", task: "unknown", head: "none")]
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
