/// Polls `condition` every 50 ms until it holds, checking once more at `timeout`; then throws
/// ``WaitTimeout`` (a thrown error fails the test with its description). Shared by the test targets.
public func eventually(_ timeout: Duration, _ what: String, _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(50))
    }
    if try await condition() { return }
    throw WaitTimeout(what: what, after: timeout)
}

public struct WaitTimeout: Error, CustomStringConvertible {
    public var what: String
    public var after: Duration
    public var description: String { "timed out after \(after) waiting for \(what)" }
}
