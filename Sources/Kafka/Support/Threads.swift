import Dispatch
import Foundation
import Synchronization

/// Runs blocking work on a fresh thread, off Swift's cooperative pool, and awaits its result.
func runOffPool<T: Sendable>(_ name: String, _ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        let thread = Thread {
            continuation.resume(returning: body())
        }
        thread.name = name
        thread.stackSize = 1 << 20
        thread.start()
    }
}

/// A dedicated thread that runs `iteration` until stopped (the blocking librdkafka polls live
/// here, never on the cooperative pool). `iteration` must return within its own poll timeout.
final class PollThread: Sendable {
    private let stopRequested = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)
    private let started = Atomic<Bool>(false)

    init() {}

    var isStopRequested: Bool { stopRequested.load(ordering: .acquiring) }

    func start(name: String, iteration: @escaping @Sendable () -> Void, onExit: @escaping @Sendable () -> Void = {}) {
        guard !started.exchange(true, ordering: .acquiringAndReleasing) else { return }
        let thread = Thread { [self] in
            while !stopRequested.load(ordering: .acquiring) { iteration() }
            onExit()
            finished.signal()
        }
        thread.name = name
        thread.start()
    }

    func requestStop() { stopRequested.store(true, ordering: .releasing) }

    /// Requests a stop and blocks until the thread has exited (call off the cooperative pool).
    /// Returns false if it did not exit within `timeout`.
    @discardableResult
    func stopAndJoin(timeout: Duration = .seconds(30)) -> Bool {
        requestStop()
        guard started.load(ordering: .acquiring) else { return true }
        let deadline = DispatchTime.now() + .milliseconds(Int(timeout.milliseconds))
        guard finished.wait(timeout: deadline) == .success else { return false }
        finished.signal()  // later joins return at once
        return true
    }
}
