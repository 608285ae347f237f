import Foundation
import Testing

/// End to end: `norbert-worker broker` as a separate process. Starts it, reads
/// bootstrap.servers from its stdout, round-trips messages through it (with the hidden
/// `broker check` client, since this test target does not link the Kafka library), then
/// SIGTERMs it and expects a prompt exit 0.
@Suite("norbert-worker broker", .timeLimit(.minutes(3)))
struct BrokerCommandTests {
    @Test("serves, round-trips messages, exits 0 promptly on SIGTERM")
    func serveRoundTripAndTerminate() async throws {
        let binary = try #require(CLI.binary(), "norbert-worker binary not found next to the test bundle; build it first (swift build)")
        let bootstrapFile = FileManager.default.temporaryDirectory.appendingPathComponent("broker-bootstrap-\(UUID().uuidString).txt")
        defer { try? FileManager.default.removeItem(at: bootstrapFile) }

        let broker = try RunningProcess(binary, ["broker", "--brokers", "3", "--topic", "e2e:4", "--topic", "other:1", "--bootstrap-file", bootstrapFile.path])
        defer { broker.kill() }
        let line = try await broker.firstStdoutLine(timeout: .seconds(20))
        let bootstrap = line.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(bootstrap.split(separator: ",").count == 3)
        #expect(bootstrap.split(separator: ",").allSatisfy { $0.hasPrefix("127.0.0.1:") || $0.hasPrefix("localhost:") })
        let written = try String(contentsOf: bootstrapFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(written == bootstrap)

        let check = try RunningProcess(binary, ["broker", "check", "--bootstrap-servers", bootstrap, "--topic", "e2e", "--messages", "1000", "--timeout", "60"])
        defer { check.kill() }
        let checkStatus = try await check.waitForExit(timeout: .seconds(90))
        let checkOutput = check.stdoutText()
        #expect(checkStatus == 0, "broker check failed: \(checkOutput) \(check.stderrText().suffix(2000))")
        #expect(checkOutput.contains("ok: 1000 messages"))

        let started = ContinuousClock.now
        broker.signal(SIGTERM)
        let status = try await broker.waitForExit(timeout: .seconds(10))
        let elapsed = ContinuousClock.now - started
        #expect(status == 0)
        #expect(broker.exitedNormally)
        #expect(elapsed < .seconds(5), "broker took \(elapsed) to exit")
    }

    @Test("SIGINT also stops it with exit 0")
    func sigint() async throws {
        let binary = try #require(CLI.binary())
        let broker = try RunningProcess(binary, ["broker", "--brokers", "1"])
        defer { broker.kill() }
        _ = try await broker.firstStdoutLine(timeout: .seconds(20))
        broker.signal(SIGINT)
        #expect(try await broker.waitForExit(timeout: .seconds(10)) == 0)
    }

    @Test("a malformed --topic is rejected")
    func badTopic() async throws {
        let binary = try #require(CLI.binary())
        let broker = try RunningProcess(binary, ["broker", "--topic", "t:zero"])
        defer { broker.kill() }
        let status = try await broker.waitForExit(timeout: .seconds(20))
        #expect(status != 0)
        #expect(broker.stderrText().contains("PARTITIONS"))
    }
}

/// A child process with captured stdout/stderr and bounded waits.
final class RunningProcess: @unchecked Sendable {
    private let process = Process()
    private let stdoutPipe = Pipe()
    private let stderrPipe = Pipe()
    private let lock = NSLock()
    private var stdoutData = Data()
    private var stderrData = Data()
    private var exitStatus: Int32?
    private var exitWaiters: [CheckedContinuation<Int32, Never>] = []
    private var lineWaiters: [CheckedContinuation<String?, Never>] = []
    private var stdoutClosed = false

    init(_ executable: URL, _ arguments: [String]) throws {
        process.executableURL = executable
        process.arguments = arguments
        process.standardOutput = stdoutPipe
        process.standardError = stderrPipe
        process.standardInput = FileHandle.nullDevice
        stdoutPipe.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            self?.received(stdout: data)
        }
        stderrPipe.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            guard let self else { return }
            if data.isEmpty { handle.readabilityHandler = nil }
            lock.withLock { stderrData.append(data) }
        }
        process.terminationHandler = { [weak self] process in
            self?.terminated(process.terminationStatus)
        }
        try process.run()
    }

    private func received(stdout data: Data) {
        let waiters: [CheckedContinuation<String?, Never>]
        let line: String?
        lock.lock()
        if data.isEmpty {
            stdoutClosed = true
            stdoutPipe.fileHandleForReading.readabilityHandler = nil
        }
        stdoutData.append(data)
        line = firstLine()
        if line != nil || stdoutClosed {
            waiters = lineWaiters
            lineWaiters = []
        } else {
            waiters = []
        }
        lock.unlock()
        for waiter in waiters { waiter.resume(returning: line) }
    }

    private func firstLine() -> String? {
        guard let newline = stdoutData.firstIndex(of: UInt8(ascii: "\n")) else { return nil }
        return String(decoding: stdoutData[stdoutData.startIndex..<newline], as: UTF8.self)
    }

    private func terminated(_ status: Int32) {
        lock.lock()
        exitStatus = status
        let waiters = exitWaiters
        exitWaiters = []
        let lines = lineWaiters
        lineWaiters = []
        lock.unlock()
        for waiter in waiters { waiter.resume(returning: status) }
        for waiter in lines { waiter.resume(returning: nil) }
    }

    var exitedNormally: Bool { process.terminationReason == .exit }
    func stdoutText() -> String { lock.withLock { String(decoding: stdoutData, as: UTF8.self) } }
    func stderrText() -> String { lock.withLock { String(decoding: stderrData, as: UTF8.self) } }
    func signal(_ number: Int32) { if process.isRunning { Foundation.kill(process.processIdentifier, number) } }
    func kill() { signal(SIGKILL) }

    /// The first stdout line; throws if the process ends first or `timeout` passes.
    func firstStdoutLine(timeout: Duration) async throws -> String {
        let result: String?? = try await bounded(timeout) { [self] in
            await withCheckedContinuation { continuation in
                lock.lock()
                if let line = firstLine() {
                    lock.unlock()
                    continuation.resume(returning: line)
                } else if stdoutClosed || exitStatus != nil {
                    lock.unlock()
                    continuation.resume(returning: nil)
                } else {
                    lineWaiters.append(continuation)
                    lock.unlock()
                }
            }
        }
        guard let result else { throw ProcessTimeout(what: "first stdout line; stderr: \(stderrText().suffix(1000))") }
        guard let line = result else { throw ProcessTimeout(what: "process ended before printing; stderr: \(stderrText().suffix(1000))") }
        return line
    }

    /// The exit status; throws if `timeout` passes first.
    func waitForExit(timeout: Duration) async throws -> Int32 {
        let status: Int32? = try await bounded(timeout) { [self] in
            await withCheckedContinuation { continuation in
                lock.lock()
                if let exitStatus {
                    lock.unlock()
                    continuation.resume(returning: exitStatus)
                } else {
                    exitWaiters.append(continuation)
                    lock.unlock()
                }
            }
        }
        guard let status else { throw ProcessTimeout(what: "process exit") }
        return status
    }

    /// `body`'s value, or nil after `timeout` (the waiter is left to be resumed at exit).
    private func bounded<T: Sendable>(_ timeout: Duration, _ body: @escaping @Sendable () async -> T) async throws -> T? {
        await withTaskGroup(of: T?.self) { group in
            group.addTask { await body() }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            if first == nil { kill() }  // ends the body's wait too
            return first
        }
    }
}

struct ProcessTimeout: Error, CustomStringConvertible {
    var what: String
    var description: String { "timed out waiting for \(what)" }
}
