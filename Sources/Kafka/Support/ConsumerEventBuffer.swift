import Dispatch
import Synchronization

/// The bounded hand-over between the consumer's poll thread and the task iterating events.
///
/// The poll thread pushes; when `capacity` messages are waiting it blocks in
/// ``waitForSpace(timeout:)`` (so librdkafka stops being drained: backpressure). Control events
/// (rebalances, errors) never count against the capacity. An event pushed with an `ack`
/// semaphore is acknowledged when the caller asks for the following event (it has finished
/// handling it) or when the buffer finishes.
final class ConsumerEventBuffer: Sendable {
    typealias Next = Result<KafkaConsumerEvent?, KafkaError>

    private struct State {
        var items: [(event: KafkaConsumerEvent, ack: DispatchSemaphore?)] = []
        var head = 0
        var messages = 0
        var waiter: CheckedContinuation<Next, Never>?
        var ackOnNextCall: DispatchSemaphore?
        var finished = false
        var failure: KafkaError?
        var producerWaiting = false

        mutating func pop() -> (event: KafkaConsumerEvent, ack: DispatchSemaphore?)? {
            guard head < items.count else { return nil }
            let item = items[head]
            head += 1
            if head > 256 && head * 2 > items.count {
                items.removeFirst(head)
                head = 0
            }
            if case .message = item.event { messages -= 1 }
            return item
        }
    }

    private let state = Mutex(State())
    private let space = DispatchSemaphore(value: 0)
    let capacity: Int

    init(capacity: Int) { self.capacity = max(1, capacity) }

    /// Poll thread: appends an event (hands it straight to a waiting caller if there is one).
    func push(_ event: KafkaConsumerEvent, ack: DispatchSemaphore? = nil) {
        let handOver: (CheckedContinuation<Next, Never>, DispatchSemaphore?)? = state.withLock { state in
            guard !state.finished else {
                ack?.signal()
                return nil
            }
            if let waiter = state.waiter {
                state.waiter = nil
                state.ackOnNextCall = ack
                return (waiter, ack)
            }
            state.items.append((event, ack))
            if case .message = event { state.messages += 1 }
            return nil
        }
        if let (waiter, _) = handOver { waiter.resume(returning: .success(event)) }
    }

    /// Poll thread: true when there is room for more messages; otherwise waits up to
    /// `timeout` for the caller to take some and returns whether there is room now.
    func waitForSpace(timeout: Duration) -> Bool {
        let full = state.withLock { state -> Bool in
            let full = state.messages >= capacity && !state.finished
            state.producerWaiting = full
            return full
        }
        guard full else { return true }
        _ = space.wait(timeout: .now() + .milliseconds(Int(timeout.milliseconds)))
        return state.withLock { $0.messages < capacity || $0.finished }
    }

    /// Caller: the next event, `nil` after ``finish(error:)`` drained, or the terminal error.
    func next() async -> Next {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Next, Never>) in
                let (ready, ack, wake): (Next?, DispatchSemaphore?, Bool) = state.withLock { state in
                    let previousAck = state.ackOnNextCall
                    state.ackOnNextCall = nil
                    if let item = state.pop() {
                        state.ackOnNextCall = item.ack
                        let wake = state.producerWaiting && state.messages < capacity
                        if wake { state.producerWaiting = false }
                        return (.success(item.event), previousAck, wake)
                    }
                    if state.finished {
                        if let failure = state.failure {
                            state.failure = nil
                            return (.failure(failure), previousAck, false)
                        }
                        return (.success(nil), previousAck, false)
                    }
                    if Task.isCancelled { return (.success(nil), previousAck, false) }
                    state.waiter = continuation
                    let wake = state.producerWaiting
                    state.producerWaiting = false
                    return (nil, previousAck, wake)
                }
                ack?.signal()
                if wake { space.signal() }
                if let ready { continuation.resume(returning: ready) }
            }
        } onCancel: {
            let waiter = state.withLock { state in
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume(returning: .success(nil))
        }
    }

    /// Ends the sequence after the buffered events (with `error` thrown at the end, if any).
    /// Pending acknowledgements are released.
    func finish(error: KafkaError? = nil) {
        let (waiter, acks): (CheckedContinuation<Next, Never>?, [DispatchSemaphore]) = state.withLock { state in
            guard !state.finished else { return (nil, []) }
            state.finished = true
            state.failure = error
            var acks = state.items[state.head...].compactMap(\.ack)
            if let ack = state.ackOnNextCall { acks.append(ack) }
            state.ackOnNextCall = nil
            let waiter = state.waiter
            state.waiter = nil
            return (waiter, acks)
        }
        for ack in acks { ack.signal() }
        space.signal()
        if let waiter {
            if let error {
                state.withLock { $0.failure = nil }
                waiter.resume(returning: .failure(error))
            } else {
                waiter.resume(returning: .success(nil))
            }
        }
    }

    var isFinished: Bool { state.withLock { $0.finished } }
}
