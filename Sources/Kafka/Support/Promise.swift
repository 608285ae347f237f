import Dispatch
import Synchronization

/// A one-shot result that many may await; the first `complete` wins.
final class Promise<Value: Sendable>: Sendable {
    private struct State {
        var result: Result<Value, KafkaError>?
        var waiters: [CheckedContinuation<Result<Value, KafkaError>, Never>] = []
        var callbacks: [@Sendable (Result<Value, KafkaError>) -> Void] = []
    }
    private let state = Mutex(State())

    init() {}

    /// Returns false if the promise was already completed.
    @discardableResult
    func complete(_ result: Result<Value, KafkaError>) -> Bool {
        let taken: State? = state.withLock { state in
            guard state.result == nil else { return nil }
            state.result = result
            defer {
                state.waiters = []
                state.callbacks = []
            }
            return state
        }
        guard let taken else { return false }
        for waiter in taken.waiters { waiter.resume(returning: result) }
        for callback in taken.callbacks { callback(result) }
        return true
    }

    var isCompleted: Bool { state.withLock { $0.result != nil } }

    var result: Result<Value, KafkaError> {
        get async {
            await withCheckedContinuation { continuation in
                let ready: Result<Value, KafkaError>? = state.withLock { state in
                    if let result = state.result { return result }
                    state.waiters.append(continuation)
                    return nil
                }
                if let ready { continuation.resume(returning: ready) }
            }
        }
    }

    func onComplete(_ callback: @escaping @Sendable (Result<Value, KafkaError>) -> Void) {
        let ready: Result<Value, KafkaError>? = state.withLock { state in
            if let result = state.result { return result }
            state.callbacks.append(callback)
            return nil
        }
        if let ready { callback(ready) }
    }

    /// Completes with `timedOut` after `timeout` unless completed before.
    /// A dispatch timer, not a sleeping Task: a Task resumes only when a thread of Swift's
    /// cooperative pool is free, so on a busy machine the deadline slipped and a slow broker's
    /// answer won the race (a 500 ms commit against 1.5 s of latency "succeeded" after ~1.5 s).
    func expire(after timeout: Duration, what: String) {
        let (seconds, attoseconds) = timeout.components
        // At most Int32.max seconds (~68 years): multiplying a larger count by 10⁹ would overflow.
        let wholeSeconds = min(max(0, seconds), Int64(Int32.max))
        let nanoseconds = wholeSeconds * 1_000_000_000 + max(0, attoseconds) / 1_000_000_000
        DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(Int(nanoseconds))) { [weak self] in
            self?.complete(.failure(.timedOut(what)))
        }
    }
}

/// Promises keyed by an integer id that travels through librdkafka as an opaque pointer.
final class PromiseRegistry<Value: Sendable>: Sendable {
    private struct State {
        var nextID: UInt = 1
        var pending: [UInt: Promise<Value>] = [:]
    }
    private let state = Mutex(State())

    init() {}

    func register(_ promise: Promise<Value>) -> UInt {
        state.withLock { state in
            let id = state.nextID
            state.nextID &+= 1
            if state.nextID == 0 { state.nextID = 1 }
            state.pending[id] = promise
            return id
        }
    }

    func take(_ id: UInt) -> Promise<Value>? { state.withLock { $0.pending.removeValue(forKey: id) } }

    func takeAll() -> [Promise<Value>] {
        state.withLock { state in
            defer { state.pending = [:] }
            return Array(state.pending.values)
        }
    }

    var count: Int { state.withLock { $0.pending.count } }
}
