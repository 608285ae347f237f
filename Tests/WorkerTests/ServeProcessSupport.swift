import Foundation
import Kafka
import Synchronization

/// The built `norbert-worker` binary: NORBERT_WORKER_BIN, else next to the test bundle.
enum WorkerBinary {
    static func locate() -> URL? {
        let fm = FileManager.default
        if let path = ProcessInfo.processInfo.environment["NORBERT_WORKER_BIN"], fm.isExecutableFile(atPath: path) { return URL(fileURLWithPath: path) }
        var starts: [URL] = []
        if let exe = try? fm.destinationOfSymbolicLink(atPath: "/proc/self/exe") { starts.append(URL(fileURLWithPath: exe)) }
        starts += Bundle.allBundles.map(\.bundleURL)
        for start in starts {
            var dir = start.deletingLastPathComponent()
            for _ in 0..<5 {
                let candidate = dir.appendingPathComponent("norbert-worker")
                var isDir: ObjCBool = false
                if fm.fileExists(atPath: candidate.path, isDirectory: &isDir), !isDir.boolValue, fm.isExecutableFile(atPath: candidate.path) { return candidate }
                dir = dir.deletingLastPathComponent()
            }
        }
        return nil
    }
}

/// A child process with its output collected (stdout lines awaited with a deadline).
final class ChildProcess: Sendable {
    private let process: Process
    private let output = OutputBox()

    init(_ arguments: [String], environment: [String: String] = [:]) throws {
        guard let binary = WorkerBinary.locate() else { throw ChildError("norbert-worker binary not found; build it first") }
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        process.environment = env
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        self.process = process
        let box = output
        out.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            if data.isEmpty { handle.readabilityHandler = nil }
            box.state.withLock { $0.out += String(decoding: data, as: UTF8.self) }
        }
        err.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            if data.isEmpty { handle.readabilityHandler = nil }
            box.state.withLock { $0.err += String(decoding: data, as: UTF8.self) }
        }
        try process.run()
    }

    var stdout: String { output.state.withLock { $0.out } }
    var stderr: String { output.state.withLock { $0.err } }
    var pid: Int32 { process.processIdentifier }

    /// Waits until stdout or stderr contains `text`.
    func waitFor(_ text: String, inStderr: Bool = false, timeout: Duration) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if (inStderr ? stderr : stdout).contains(text) { return }
            if !process.isRunning { throw ChildError("process exited (\(process.terminationStatus)) before printing '\(text)': \(stderr.suffix(2000))") }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw ChildError("no '\(text)' within \(timeout): \(stderr.suffix(2000))")
    }

    func signal(_ number: Int32) { if process.isRunning { kill(process.processIdentifier, number) } }

    func waitForExit(timeout: Duration) async throws -> Int32 {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            guard ContinuousClock.now < deadline else { throw ChildError("still running after \(timeout)") }
            try await Task.sleep(for: .milliseconds(20))
        }
        return process.terminationStatus
    }

    func kill9() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }
}

final class OutputBox: Sendable {
    let state = Mutex<(out: String, err: String)>(("", ""))
}

struct ChildError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

/// Reads a topic continuously into a shared list (a fresh group from the beginning).
final class TopicReader: Sendable {
    let consumer: KafkaConsumer
    private let received: MessageBox
    private let task: Task<Void, Never>

    init(topic: String, servers: String) throws {
        var configuration = KafkaConsumerConfiguration(bootstrapServers: servers, groupID: "reader-\(UUID().uuidString)")
        configuration.autoOffsetReset = .earliest
        consumer = try KafkaConsumer(configuration: configuration)
        try consumer.subscribe(topics: [topic])
        let consumer = self.consumer, received = MessageBox()
        self.received = received
        task = Task { do { for try await m in consumer.messages { received.list.withLock { $0.append(m) } } } catch {} }
    }

    var messages: [KafkaConsumerMessage] { received.list.withLock { $0 } }

    func waitUntil(timeout: Duration, _ condition: ([KafkaConsumerMessage]) -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while !condition(messages) {
            guard ContinuousClock.now < deadline else { throw ChildError("condition not met within \(timeout); have \(messages.count) messages") }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    func close() async {
        try? await consumer.close()
        task.cancel()
    }
}

final class MessageBox: Sendable {
    let list = Mutex<[KafkaConsumerMessage]>([])
}
