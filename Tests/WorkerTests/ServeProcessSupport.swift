import Foundation
import Kafka
import Synchronization
@_exported import TestSupport

/// Reads a topic continuously into a shared list (a fresh group from the beginning).
final class TopicReader: Sendable {
    let consumer: KafkaConsumer
    private let received: MessageBox
    private let task: Task<Void, Never>

    init(topic: String, servers: String) throws {
        var configuration = KafkaConsumerConfiguration(bootstrapServers: servers, groupID: "reader-\(UUID().uuidString)")
        configuration.autoOffsetReset = .earliest
        // The dev broker holds a fetch for the full fetch.wait.max.ms (default 500 ms) even when
        // messages arrive meanwhile: poll it briefly so the reader sees answers promptly.
        configuration.properties["fetch.wait.max.ms"] = "10"
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
