import NorBERT
import Pipelines
import Synchronization
import Tensors
import Wire

/// The production ``InferenceBackend``: requests and responses of schemas/ (the same as
/// `infer`), run by a `PipelineEngine` over heads that share encoders. One `EncoderWorkspace`
/// per lane; OpenBLAS is set to one thread (lanes give the parallelism).
public final class PipelinesBackend: InferenceBackend {
    public struct Job: Sendable {
        var request: PipelineRequest
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
        BLAS.setThreads(1)
    }

    /// Decodes and prices a request (``PipelineEngine/cost(of:)``): over a cost limit it is
    /// rejected here, before it is queued; otherwise its batch cost is ``RequestCost/batchTokens``.
    /// Tokenizes only a request whose input bytes could pass a limit (a big text in windows, a
    /// long QA context with small windows, …), never builds windows.
    public func prepare(_ value: [UInt8]) -> Result<PreparedJob<Job>, RequestRejection> {
        let request: PipelineRequest
        switch PipelineRequest.decode(value) {
        case .success(let decoded): request = decoded
        case .failure(let failure):
            let response = PipelineResponse.failure(id: failure.id, task: failure.task.flatMap(PipelineTask.init(rawValue:)), failure.error)
            return .failure(rejection(failure.error, response: response, task: failure.task ?? "unknown", head: "none"))
        }
        let named = request.heads ?? request.head.map { [$0] } ?? []
        let known = named.allSatisfy { engine.head(named: $0) != nil }
        let heads = named.isEmpty ? engine.heads.filter { head in request.task.map(head.serves) ?? false }.prefix(1).map(\.name) : named
        let task = request.task?.rawValue ?? "heads"
        let head = heads.isEmpty || !known ? "none" : heads.joined(separator: "+")
        // Priced before queueing: a request over a limit (or naming an unknown head) is rejected
        // here, so it is dead-lettered without running anything.
        let cost: RequestCost
        switch engine.cost(of: request) {
        case .success(let priced): cost = priced
        case .failure(let error):
            return .failure(rejection(error, response: .failure(id: request.id, task: request.task, head: request.head, error),
                                      task: request.task?.rawValue ?? "unknown", head: head))
        }
        let encoderKey = heads.first.flatMap { engine.head(named: $0)?.encoderGroup } ?? -1
        var prepared = PreparedJob(job: Job(request: request, task: task, head: head), tokens: max(1, cost.batchTokens),
                                   encoderKey: encoderKey, task: task, head: head, id: request.id)
        // Generations batch apart and never hold short requests up (see LaneSlots).
        prepared.steps = cost.generatedTokens
        return .success(prepared)
    }

    public func run(_ batch: [Job], lane: Int, emit: (Int, BackendResponse) -> Void, between: () -> Void) -> [[BackendResponse]] {
        let workspace = workspaces[lane % workspaces.count]
        let result = withoutActuallyEscaping(emit) { emit in
            withoutActuallyEscaping(between) { between in
                workspace.withWorkspace { workspace in
                    engine.run(batch.map(\.request), workspace: workspace, onPartial: { index, partial in
                        let job = batch[index]
                        emit(index, BackendResponse(value: Array(partial.jsonLine.utf8), isFinal: false, task: partial.task?.rawValue ?? job.task, head: partial.head ?? job.head))
                    }, between: between)
                }
            }
        }
        return zip(batch, result.responses.indices).map { job, request in
            // A failed request is dead-lettered, internal errors too: its message is kept for a
            // replay once the cause is fixed, not committed away.
            let rejection = result.responses[request].compactMap { response -> RequestRejection? in
                guard let error = response.error else { return nil }
                return RequestRejection(code: error.code.rawValue, message: error.message, response: Array(response.jsonLine.utf8),
                                        task: job.task, head: response.head ?? job.head, id: response.id)
            }.first
            // The partials went to `emit` as they came; these are the heads' final responses.
            let responses = result.responses[request]
            return responses.enumerated().map { index, response in
                let last = index == responses.count - 1
                return BackendResponse(
                    value: Array(response.jsonLine.utf8), isFinal: last, rejection: last ? rejection : nil,
                    outcome: response.error?.code.rawValue ?? "ok", task: response.task?.rawValue ?? job.task, head: response.head ?? job.head)
            }
        }
    }

    public func warmUp(lane: Int) {
        var lines: [[UInt8]] = []
        for head in engine.heads {
            let task = head.tasks.first ?? .featureExtraction
            let body: String
            switch task {
            case .questionAnswering: body = #""question": "Hvem?", "context": "Per kom.""#
            case .multipleChoice: body = #""question": "Hva?", "choices": ["Ja", "Nei"]"#
            case .textGeneration: body = #""text": "Hei", "options": {"max_new_tokens": 1}"#
            default: body = #""text": "Hei på deg.""#
            }
            lines.append(Array(#"{"id": "warm-up", "task": "\#(task.rawValue)", "head": "\#(head.name)", \#(body)}"#.utf8))
        }
        let workspace = workspaces[lane % workspaces.count]
        _ = workspace.withWorkspace { engine.respond(toLines: lines, workspace: $0) }
    }

    public func errorResponse(code: String, message: String, id: String?) -> [UInt8] {
        let error = JSONValue.object([("code", .string(code)), ("message", .string(message))])
        return Array(JSONValue.object([("id", id.map(JSONValue.string) ?? .null), ("error", error)]).jsonText.utf8)
    }

    private func rejection(_ error: PipelineError, response: PipelineResponse, task: String, head: String) -> RequestRejection {
        RequestRejection(code: error.code.rawValue, message: error.message, response: Array(response.jsonLine.utf8), task: task, head: head, id: response.id)
    }
}

/// A lane's encoder workspace. `EncoderWorkspace` is a plain (non-Sendable) buffer class; every
/// use goes through the lock, so at most one batch touches it at a time (in practice only the
/// lane's own queue does, so the lock is never contended).
final class LaneWorkspace: @unchecked Sendable {
    private let lock = Mutex(())
    private let workspace = EncoderWorkspace()
    func withWorkspace<T>(_ body: (EncoderWorkspace) -> T) -> T {
        lock.withLock { _ in body(workspace) }
    }
}
