import Pipelines
import Synchronization
import Wire

/// The production ``InferenceBackend``: requests and responses of schemas/ (the same as
/// `infer`), run by a `PipelineEngine` over heads that share encoders. One `PipelineWorkspace`
/// per lane; OpenBLAS is set to one thread (lanes give the parallelism).
public final class PipelinesBackend: InferenceBackend {
    public struct Job: Sendable {
        var prepared: PreparedRequest
        var task: String
        var head: String
    }

    public let engine: PipelineEngine
    public let lanes: Int
    private let workspaces: [LaneWorkspace]

    public init(engine: PipelineEngine, lanes: Int) {
        self.engine = engine
        self.lanes = max(1, lanes)
        workspaces = (0..<(2 * max(1, lanes))).map { _ in LaneWorkspace() }
        PipelineEngine.setBLASThreads(1)
    }

    /// Decodes, resolves and prices a request (``PipelineEngine/prepare(_:)-([UInt8])``): over a
    /// cost limit it is rejected here, before it is queued; otherwise its batch cost is
    /// ``RequestCost/batchTokens``. Tokenizes only a request whose input bytes could pass a limit
    /// (a big text in windows, a long QA context with small windows, …), never builds windows.
    public func prepare(_ value: [UInt8]) -> Result<PreparedJob<Job>, RequestRejection> {
        switch engine.prepare(value) {
        case .failure(let rejected):
            // Priced before queueing: a request over a limit (or naming an unknown head) is rejected
            // here, so it is dead-lettered without running anything.
            return .failure(
                rejection(
                    rejected.error, response: rejected.response, task: rejected.taskName ?? "unknown",
                    head: rejected.headLabel))
        case .success(let prepared):
            let task = prepared.request.task?.rawValue ?? "heads"
            let head = prepared.headLabel
            var job = PreparedJob(
                job: Job(prepared: prepared, task: task, head: head), tokens: max(1, prepared.cost.batchTokens),
                encoderKey: prepared.encoderGroup, task: task, head: head, id: prepared.request.id)
            // Generations batch apart and never hold short requests up (see LaneSlots).
            job.steps = prepared.cost.generatedTokens
            return .success(job)
        }
    }

    public func run(_ batch: [Job], lane: Int, emit: (Int, BackendResponse) -> Void, between: () -> Void) -> [[BackendResponse]] {
        let workspace = workspaces[lane % workspaces.count]
        let result = withoutActuallyEscaping(emit) { emit in
            withoutActuallyEscaping(between) { between in
                workspace.withWorkspace { workspace in
                    engine.run(
                        batch.map(\.prepared), workspace: workspace,
                        onPartial: { index, partial in
                            let job = batch[index]
                            emit(
                                index,
                                BackendResponse(
                                    value: Array(partial.jsonLine.utf8), isFinal: false, task: partial.task?.rawValue ?? job.task,
                                    head: partial.head ?? job.head))
                        }, between: between)
                }
            }
        }
        return zip(batch, result.responses.indices).map { job, request in
            // A failed request is dead-lettered, internal errors too: its message is kept for a
            // replay once the cause is fixed, not committed away.
            let rejection = result.responses[request].compactMap { response -> RequestRejection? in
                guard let error = response.error else { return nil }
                return RequestRejection(
                    code: error.code.rawValue, message: error.message, response: Array(response.jsonLine.utf8),
                    task: job.task, head: response.head ?? job.head, id: response.id)
            }.first
            // The partials went to `emit` as they came; these are the heads' final responses.
            let responses = result.responses[request]
            return responses.enumerated().map { index, response in
                let last = index == responses.count - 1
                return BackendResponse(
                    value: Array(response.jsonLine.utf8), isFinal: last, rejection: last ? rejection : nil,
                    outcome: response.error?.code.rawValue ?? "ok", task: response.task?.rawValue ?? job.task,
                    head: response.head ?? job.head)
            }
        }
    }

    public func warmUp(lane: Int) {
        let requests = engine.heads.map { head in
            PipelineRequest.minimal(id: "warm-up", task: head.tasks.first ?? .featureExtraction, head: head.name)
        }
        let workspace = workspaces[lane % workspaces.count]
        _ = workspace.withWorkspace { engine.run(requests, workspace: $0) }
    }

    public func errorResponse(code: String, message: String, id: String?) -> [UInt8] {
        let error = JSONValue.object([("code", .string(code)), ("message", .string(message))])
        return Array(JSONValue.object([("id", id.map(JSONValue.string) ?? .null), ("error", error)]).jsonText.utf8)
    }

    private func rejection(_ error: PipelineError, response: PipelineResponse, task: String, head: String) -> RequestRejection {
        RequestRejection(
            code: error.code.rawValue, message: error.message, response: Array(response.jsonLine.utf8), task: task, head: head,
            id: response.id)
    }
}

/// A lane's encoder workspace. `EncoderWorkspace` is a plain (non-Sendable) buffer class; every
/// use goes through the lock, so at most one batch touches it at a time (in practice only the
/// lane's own queue does, so the lock is never contended).
final class LaneWorkspace: @unchecked Sendable {
    private let lock = Mutex(())
    private let workspace = PipelineWorkspace()
    func withWorkspace<T>(_ body: (PipelineWorkspace) -> T) -> T {
        lock.withLock { _ in body(workspace) }
    }
}
