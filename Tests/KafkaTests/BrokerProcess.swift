import Foundation
import TestSupport

@testable import Kafka

/// Where the tests' broker lives: librdkafka's mock cluster in this process, or the built
/// `norbert-worker broker` binary as a separate process.
enum BrokerKind: String, CustomStringConvertible, CaseIterable, Sendable {
    case inProcess, separateProcess
    var description: String { rawValue }
}

/// A running broker of either kind.
final class TestBroker: Sendable {
    let bootstrapServers: String
    private let cluster: KafkaMockCluster?
    private let process: Process?

    /// `topics`: name → partitions.
    init(_ kind: BrokerKind, brokers: Int = 3, topics: [String: Int]) throws {
        switch kind {
        case .inProcess:
            let cluster = try makeCluster(brokers: brokers, topics: topics)
            self.cluster = cluster
            process = nil
            bootstrapServers = cluster.bootstrapServers
        case .separateProcess:
            guard let binary = NorbertBinary.locate() else {
                throw TimeoutError(what: "norbert-worker binary not found next to the test bundle")
            }
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("kafka-tests-bootstrap-\(UUID().uuidString)")
            let process = Process()
            process.executableURL = binary
            process.arguments =
                ["broker", "--brokers", String(brokers), "--bootstrap-file", file.path]
                + topics.flatMap { ["--topic", "\($0.key):\($0.value)"] }
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            process.standardInput = FileHandle.nullDevice
            try process.run()
            // The file appears (atomically) only once the broker serves.
            let deadline = Date().addingTimeInterval(20)
            var bootstrap: String?
            while Date() < deadline, process.isRunning {
                if let text = try? String(contentsOf: file, encoding: .utf8), text.hasSuffix("\n") {
                    bootstrap = text.trimmingCharacters(in: .whitespacesAndNewlines)
                    break
                }
                Thread.sleep(forTimeInterval: 0.02)
            }
            try? FileManager.default.removeItem(at: file)
            guard let bootstrap else {
                process.terminate()
                throw TimeoutError(what: "broker process did not become ready")
            }
            self.process = process
            cluster = nil
            bootstrapServers = bootstrap
        }
    }

    /// Stops the broker; for a process, SIGTERM and wait (bounded) for its exit status.
    @discardableResult
    func stop() -> Int32? {
        cluster?.shutdown()
        guard let process else { return 0 }
        if process.isRunning { process.terminate() }
        let deadline = Date().addingTimeInterval(10)
        while process.isRunning, Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            return nil
        }
        return process.terminationStatus
    }

    deinit { stop() }
}
