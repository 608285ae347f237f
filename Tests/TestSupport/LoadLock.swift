/// Keeps the heaviest tests (worker processes answering thousands of requests on both cores) and
/// the tests that depend on the dev broker's rebalance timing (its rejoin window is the session
/// timeout minus 1 s) from running at the same time. `swift test` runs every test target in one
/// process and suites in parallel; each such test holds this lock for its whole run.
public actor LoadLock {
    public static let shared = LoadLock()

    private var held = false
    private var waiting: [CheckedContinuation<Void, Never>] = []

    /// Runs `body` while no other holder runs.
    public static func exclusive<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        await shared.acquire()
        do {
            let value = try await body()
            await shared.release()
            return value
        } catch {
            await shared.release()
            throw error
        }
    }

    private func acquire() async {
        guard held else {
            held = true
            return
        }
        await withCheckedContinuation { waiting.append($0) }
    }

    private func release() {
        if waiting.isEmpty { held = false } else { waiting.removeFirst().resume() }
    }
}
