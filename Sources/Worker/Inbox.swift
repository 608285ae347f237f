import Synchronization

/// The driver's inputs, sent from any task or thread, read in order by one task. Unbounded
/// (the poll task waits for its messages to be taken, so the senders' own bounds hold it).
///
/// Unlike `AsyncStream`, waiting is not ended by cancellation: the driver reads until everything
/// it started has reported back, so no sender is left waiting on an answer that never comes.
final class Inbox<Element: Sendable>: Sendable {
    private struct State {
        var items: [Element] = []
        var head = 0
        var reader: CheckedContinuation<Element, Never>?
    }
    private let state = Mutex(State())

    init() {}

    func send(_ element: Element) {
        let reader = state.withLock { state -> CheckedContinuation<Element, Never>? in
            if let reader = state.reader {
                state.reader = nil
                return reader
            }
            state.items.append(element)
            return nil
        }
        reader?.resume(returning: element)
    }

    /// The next input, waiting for one if none is there.
    func next() async -> Element {
        await withCheckedContinuation { continuation in
            let ready = state.withLock { state -> Element? in
                guard state.head < state.items.count else {
                    state.reader = continuation
                    return nil
                }
                let element = state.items[state.head]
                state.head += 1
                if state.head == state.items.count {
                    state.items.removeAll(keepingCapacity: state.items.count <= 1024)
                    state.head = 0
                } else if state.head >= 1024, state.head * 2 >= state.items.count {
                    state.items.removeFirst(state.head)
                    state.head = 0
                }
                return element
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }
}
