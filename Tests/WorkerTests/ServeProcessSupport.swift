import Foundation
import Kafka
import Synchronization
@_exported import TestSupport

/// Reads a topic continuously into a shared list (a fresh group from the beginning).
final class TopicReader: Sendable {
    let consumer: KafkaConsumer
    let topic: String
    private let received: MessageBox
    private let task: Task<Void, Never>

    init(topic: String, servers: String) throws {
        var configuration = KafkaConsumerConfiguration(bootstrapServers: servers, groupID: "reader-\(UUID().uuidString)")
        configuration.autoOffsetReset = .earliest
        // The dev broker holds a fetch for the full fetch.wait.max.ms (default 500 ms) even when
        // messages arrive meanwhile: poll it briefly so the reader sees answers promptly.
        configuration.properties["fetch.wait.max.ms"] = "10"
        self.topic = topic
        consumer = try KafkaConsumer(configuration: configuration)
        try consumer.subscribe(topics: [topic])
        let consumer = self.consumer, received = MessageBox()
        self.received = received
        task = Task { do { for try await m in consumer.messages { received.list.withLock { $0.append(m) } } } catch {} }
    }

    var messages: [KafkaConsumerMessage] { received.list.withLock { $0 } }

    /// The messages read after the first `start` (cheap to poll as the list grows).
    func messages(from start: Int) -> [KafkaConsumerMessage] {
        received.list.withLock { start < $0.count ? Array($0[start...]) : [] }
    }

    /// Waits until the reader has read everything below the topic's current high watermark
    /// (one partition), so a snapshot taken afterwards holds every message already written.
    func catchUp(partition: Int32 = 0, timeout: Duration) async throws {
        let high = try await consumer.watermarks(topic: topic, partition: partition).high
        try await waitUntil(timeout: timeout) { messages in
            messages.last(where: { $0.partition == partition }).map { $0.offset >= high - 1 } ?? (high == 0)
        }
    }

    func waitUntil(timeout: Duration, _ condition: ([KafkaConsumerMessage]) -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while !condition(messages) {
            guard ContinuousClock.now < deadline else {
                throw ChildError("condition not met within \(timeout); have \(messages.count) messages")
            }
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

/// Final responses (`norbert-final: true`) read so far, by key, tallied incrementally.
struct FinalTally {
    private(set) var counts: [String: Int] = [:]
    private(set) var total = 0
    /// Messages of the reader tallied so far.
    private(set) var scanned = 0

    mutating func update(_ reader: TopicReader) {
        let new = reader.messages(from: scanned)
        scanned += new.count
        for m in new where m.headerValues("norbert-final").first == .some(Array("true".utf8)) {
            counts[String(decoding: m.key ?? [], as: UTF8.self), default: 0] += 1
            total += 1
        }
    }

    var answered: Set<String> { Set(counts.keys) }
}
