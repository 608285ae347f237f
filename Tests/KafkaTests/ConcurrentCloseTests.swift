import Foundation
import TestSupport
import Testing

@testable import Kafka

@Suite("Closing a consumer", .timeLimit(.minutes(1)))
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

    /// librdkafka before 2.3.0 asserts in rd_kafka_destroy (rd_kafka_sticky_assignor_state_destroy,
    /// librdkafka#4312) when a cooperative-sticky consumer joined a group (JoinGroup answered)
    /// but never completed a SyncGroup: a worker stopped by SIGTERM during a rebalance aborted
    /// (the soak test's workers leaving the group exited with SIGABRT). SyncGroup is refused
    /// here until the consumer closes, so it never gets its first assignment.
    @Test("closing a consumer that joined but never got its first assignment does not abort")
    func closeBeforeFirstAssignment() async throws {
        let topic = uniqueName("join")
        let cluster = try makeCluster(topics: [topic: 2])
        cluster.pushRequestErrors(.syncGroup, Array(repeating: .rebalanceInProgress, count: 200))
        let consumer = try KafkaConsumer(configuration: consumerConfiguration(cluster.bootstrapServers, group: uniqueName("g")))
        try consumer.subscribe(topics: [topic])
        // The dev broker answers the first JoinGroup after ~3 s; then every SyncGroup fails.
        try await Task.sleep(for: .seconds(5))
        #expect(try consumer.assignment().isEmpty)
        try? await consumer.close()
        #expect(consumer.core.phase.withLock { $0 } == .closed)
        cluster.clearRequestErrors(.syncGroup)
    }
}
