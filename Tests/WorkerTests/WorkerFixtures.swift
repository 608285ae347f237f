import Foundation
import Kafka
import Logging
import Pipelines
import ServiceLifecycle
import Synchronization
import TestSupport
import Testing
import Tokenizers
import Wire

@testable import Worker

enum WorkerFixtures {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static func tiny(_ name: String) -> String { root.appendingPathComponent("Tests/Fixtures/norbert4-tiny/\(name)").path }

    static let heads: [HeadSpec] = TinyHeads.folders.map { HeadSpec(name: $0.name, directory: tiny($0.folder)) }
    static let engine: PipelineEngine? = try? PipelineEngine(
        heads: heads, tokenizerDirectory: root.appendingPathComponent("Tests/Fixtures/tokenizer").path)

    static func lines(_ name: String) throws -> [String] {
        try String(contentsOf: root.appendingPathComponent("schemas/examples/\(name)"), encoding: .utf8)
            .split(separator: "\n").map(String.init).filter { !$0.isEmpty }
    }
    static func exampleRequests() throws -> [String] { try lines("requests.jsonl") }
    static func badRequests() throws -> [String] { try lines("bad-requests.jsonl") }

    static func replacingID(_ line: String, with id: String) -> String {
        guard case .object(var pairs)? = try? JSONValue.parse(Array(line.utf8), context: "t") else { return line }
        pairs = pairs.map { $0.0 == "id" ? ("id", .string(id)) : $0 }
        return JSONValue.object(pairs).jsonText
    }

    /// Responses a valid request gets: one per head named in `heads`, else one.
    static func responseCount(_ line: String) -> Int {
        guard let json = try? JSONValue.parse(Array(line.utf8), context: "t"), let heads = json["heads"]?.arrayValue else { return 1 }
        return heads.count
    }

    static func produce(_ messages: [KafkaProducerMessage], servers: String) async throws {
        var configuration = KafkaProducerConfiguration(bootstrapServers: servers)
        configuration.maxMessageBytes = 4 << 20  // requesters may send more than the worker's producer accepts
        let producer = try KafkaProducer(configuration: configuration)
        var pending: [KafkaPendingDelivery] = []
        for message in messages { pending.append(try await producer.enqueue(message)) }
        for delivery in pending { _ = try await delivery.get() }
        try await producer.close(timeout: .seconds(10))
    }

    /// Reads `count` messages of `topic` from the beginning (fresh group); fails after `timeout`.
    static func consume(_ topic: String, servers: String, count: Int, timeout: Duration = .seconds(60)) async throws
        -> [KafkaConsumerMessage]
    {
        var configuration = KafkaConsumerConfiguration(bootstrapServers: servers, groupID: "reader-\(UUID().uuidString)")
        configuration.autoOffsetReset = .earliest
        let consumer = try KafkaConsumer(configuration: configuration)
        try consumer.subscribe(topics: [topic])
        let reader = Task { () throws -> [KafkaConsumerMessage] in
            var out: [KafkaConsumerMessage] = []
            guard count > 0 else { return out }
            for try await message in consumer.messages {
                out.append(message)
                if out.count >= count { break }
            }
            return out
        }
        let watchdog = Task {
            try await Task.sleep(for: timeout)
            reader.cancel()
            try? await consumer.close()
        }
        defer { watchdog.cancel() }
        let out = try await reader.value
        try? await consumer.close()
        try #require(out.count == count, "read \(out.count) of \(count) messages from \(topic)")
        return out
    }

    /// Polls the group's committed offsets until their sum reaches `total` (or 20 s); returns the sum.
    static func waitForCommitted(group: String, topic: String, partitions: Int32, servers: String, total: Int) async throws -> Int {
        let probe = try KafkaConsumer(configuration: KafkaConsumerConfiguration(bootstrapServers: servers, groupID: group))
        defer { Task { try? await probe.close() } }
        let list = (0..<partitions).map { KafkaTopicPartition(topic: topic, partition: $0) }
        var sum = 0
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            let committed = try await probe.committed(list)
            sum = committed.reduce(0) { $0 + Int($1.offset ?? 0) }
            if sum >= total { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        return sum
    }

    /// A worker configuration for the tests' topics (`req` → `res`, dead letters to `dlq`), a
    /// fresh group named after `prefix`, and a 6 s session.
    static func configuration(_ servers: String, group prefix: String) -> WorkerConfiguration {
        var configuration = WorkerConfiguration(
            bootstrapServers: servers, groupID: "\(prefix)-\(UUID().uuidString)", requestTopics: ["req"],
            resultsTopic: "res", deadLetterTopic: "dlq")
        configuration.kafka = ["session.timeout.ms": "6000", "heartbeat.interval.ms": "500"]
        configuration.replyToAllow = ["mine"]
        return configuration
    }
}

/// A worker running in process in its own service group (as `serve` runs it).
struct RunningWorker {
    let group: ServiceGroup
    let task: Task<Void, Error>
    let metrics: WorkerMetrics
    /// What the worker's `/readyz` reads.
    let status: WorkerStatus
    private let exited = Flag()

    init<Backend: InferenceBackend>(_ configuration: WorkerConfiguration, backend: Backend, recorder: LogRecorder? = nil) {
        var logger = recorder.map { recorder in Logger(label: "test") { _ in recorder.handler() } } ?? Logger(label: "test")
        // FAULT_DEBUG=<librdkafka debug contexts> (WorkerFaultTests): the worker logs at debug level too.
        if ProcessInfo.processInfo.environment["FAULT_DEBUG"] != nil { logger.logLevel = .debug }
        let worker = Worker(configuration: configuration, backend: backend, logger: logger)
        metrics = worker.metrics
        status = worker.status
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: worker, successTerminationBehavior: .gracefullyShutdownGroup)], logger: Logger(label: "test")))
        self.group = group
        let exited = self.exited
        task = Task {
            defer { exited.set() }
            try await group.run()
        }
    }

    /// Whether the worker's service group has returned (on its own, e.g. after a fatal error, or
    /// after ``stop()``).
    var hasExited: Bool { exited.isSet }

    final class Flag: Sendable {
        private let value = Atomic<Bool>(false)
        func set() { value.store(true, ordering: .releasing) }
        var isSet: Bool { value.load(ordering: .acquiring) }
    }

    /// Graceful shutdown (what SIGTERM does); rethrows the worker's error.
    func stop() async throws {
        await group.triggerGracefulShutdown()
        try await task.value
    }
}

/// Keeps the worker's log lines (level and message) for tests that assert what an operator sees.
final class LogRecorder: Sendable {
    private let lines = Mutex<[(level: Logger.Level, message: String)]>([])

    var records: [(level: Logger.Level, message: String)] { lines.withLock { $0 } }

    func handler() -> some LogHandler { Handler(recorder: self) }

    private struct Handler: LogHandler {
        let recorder: LogRecorder
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .info
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        func log(
            level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String, file: String, function: String,
            line: UInt
        ) {
            recorder.lines.withLock { $0.append((level, message.description)) }
        }
    }
}
