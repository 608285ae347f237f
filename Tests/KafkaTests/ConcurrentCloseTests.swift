import Foundation
import Testing
@testable import Kafka

@Suite("Concurrent close", .timeLimit(.minutes(1)))
struct ConcurrentCloseTests {
    /// The worker closes its consumer from a graceful-shutdown task and again after its poll
    /// loop ends. The second call used to return at once while the first still committed and
    /// left the group, so the process could exit in the middle of it (AddressSanitizer's leak
    /// check caught the consumer half torn down at exit).
    @Test("a close() that finds another under way returns only once the consumer is closed")
    func secondCloseWaitsForTheFirst() async throws {
        let topic = uniqueName("close")
        let cluster = try makeCluster(topics: [topic: 2])
        let producer = try KafkaProducer(configuration: producerConfiguration(cluster.bootstrapServers))
        try await produce(producer, topic: topic, count: 4, partitions: 2)
        try await producer.close()
        let consumer = try KafkaConsumer(configuration: consumerConfiguration(cluster.bootstrapServers, group: uniqueName("g")))
        try consumer.subscribe(topics: [topic])
        _ = try await collect(consumer, count: 4, timeout: .seconds(30), storing: true)
        // A slow broker makes the first close's commit and leave take a while.
        try cluster.setBrokerLatency(-1, .milliseconds(300))
        let first = Task { try await consumer.close() }
        try await eventually(.seconds(10), "first close under way") { consumer.core.phase.withLock { $0 } != .running }
        try await consumer.close()
        #expect(consumer.core.phase.withLock { $0 } == .closed)
        #expect(consumer.core.client.isDestroyed)
        try await first.value
        try cluster.setBrokerLatency(-1, .zero)
    }
}
