import NorBERT
import Tensors
import Wire

/// The buffers one thread runs batches on (one per concurrent caller of ``PipelineEngine/run``).
public typealias PipelineWorkspace = EncoderWorkspace

/// A request decoded, validated, resolved to its heads and priced: what ``PipelineEngine/run``
/// answers and what a batcher packs (by ``cost``'s ``RequestCost/batchTokens``).
public struct PreparedRequest: Sendable {
    /// One (head, task) the request asks for, in response order.
    public struct Target: Sendable, Equatable {
        public var head: String
        public var task: PipelineTask
    }

    public var request: PipelineRequest
    public var targets: [Target]
    public var cost: RequestCost
    /// Requests with equal groups run on the same encoder (their first head's) and may share a pass.
    public var encoderGroup: Int

    /// The heads, joined by `+` (a metric label).
    public var headLabel: String { targets.map(\.head).joined(separator: "+") }
}

/// A request that cannot run: its error and the error response it gets.
public struct RejectedRequest: Error, Sendable {
    public var error: PipelineError
    public var response: PipelineResponse
    /// The request, when it decoded.
    public var request: PipelineRequest?
    /// The `task` string as given (also one no task has), when it could be read.
    public var taskName: String?
    /// The heads it names when all are configured (or the first that serves its task when it names
    /// none), joined by `+`; `none` when there is no such head. A metric label.
    public var headLabel: String
}

extension PipelineEngine {
    /// The engine's bounds of request options (maximum input, `max-top-k`, `max-new-tokens`).
    public var optionBounds: OptionBounds {
        OptionBounds(
            maxInputTokens: maxInputTokens, maxTopK: configuration.limits.maxTopK,
            maxNewTokens: configuration.limits.maxNewTokens)
    }

    /// OpenBLAS threads of the process (the worker runs lanes of one thread each).
    public static func setBLASThreads(_ threads: Int) { BLAS.setThreads(threads) }

    /// Decodes one request line (UTF-8 JSON), validates it, resolves its heads and prices it
    /// against the cost limits, as ``run(_:workspace:onPartial:between:)`` does before any work:
    /// the one entry point of `infer` and the worker. A rejected request's response is the one
    /// `run` would give it.
    public func prepare(_ line: [UInt8]) -> Result<PreparedRequest, RejectedRequest> {
        switch PipelineRequest.decode(line) {
        case .success(let request): return prepare(request)
        case .failure(let failure):
            let response = PipelineResponse.failure(id: failure.id, task: failure.task.flatMap(PipelineTask.init(rawValue:)), failure.error)
            return .failure(
                RejectedRequest(
                    error: failure.error, response: response, request: nil, taskName: failure.task,
                    headLabel: "none"))
        }
    }

    /// Resolves and prices a decoded request (see ``prepare(_:)-([UInt8])``).
    public func prepare(_ request: PipelineRequest) -> Result<PreparedRequest, RejectedRequest> {
        do {
            let (cost, pairs) = try priced(request)
            return .success(
                PreparedRequest(
                    request: request, targets: pairs.map { .init(head: $0.0.name, task: $0.1) }, cost: cost,
                    encoderGroup: pairs.first?.0.encoderGroup ?? -1))
        } catch {
            let response = PipelineResponse.failure(id: request.id, task: request.task, head: request.head, error)
            return .failure(
                RejectedRequest(
                    error: error, response: response, request: request, taskName: request.task?.rawValue,
                    headLabel: labelHeads(request)))
        }
    }

    /// Runs prepared requests (see ``run(_:workspace:onPartial:between:)``).
    public func run(
        _ prepared: [PreparedRequest], workspace: PipelineWorkspace, onPartial: PartialHandler? = nil,
        between: (() -> Void)? = nil
    ) -> BatchResult {
        run(prepared.map(\.request), prepared: prepared, workspace: workspace, onPartial: onPartial, between: between)
    }

    /// A prepared request's (head, task) pairs (its heads are this engine's).
    func targets(of prepared: PreparedRequest) throws(PipelineError) -> [(LoadedHead, PipelineTask)] {
        var out: [(LoadedHead, PipelineTask)] = []
        for target in prepared.targets {
            guard let head = byName[target.head] else { throw PipelineError(.internalError, "head '\(target.head)' is not configured") }
            out.append((head, target.task))
        }
        return out
    }

    /// The heads a rejected request names when all are configured, else the first serving its task.
    func labelHeads(_ r: PipelineRequest) -> String {
        let named = r.heads ?? r.head.map { [$0] } ?? []
        guard named.allSatisfy({ byName[$0] != nil }) else { return "none" }
        let heads = named.isEmpty ? heads.filter { head in r.task.map(head.serves) ?? false }.prefix(1).map(\.name) : named
        return heads.isEmpty ? "none" : heads.joined(separator: "+")
    }
}
