import Foundation
import TestSupport
import Testing

@testable import Kafka

/// `close()` keeps its deadline when the broker stops answering: the final commits count
/// against `closeTimeout`, not on top of it (the worker's shutdown budget relies on this).
@Suite("Consumer close deadline", .timeLimit(.minutes(2)))
struct CloseDeadlineTests {
    @Test("close ends by closeTimeout, its commits included, when the broker stops answering")
    func closeBounded() async throws {
        let topic = "close-deadline"
        let cluster = try makeCluster(brokers: 1, topics: [topic: 1])
        defer { cluster.shutdown() }
        let producer = try KafkaProducer(configuration: producerConfiguration(cluster.bootstrapServers))
        try await produce(producer, topic: topic, count: 3, partitions: 1)
        try await producer.close()
        var configuration = consumerConfiguration(cluster.bootstrapServers, group: uniqueName("g"))
        configuration.commitTimeout = .seconds(10)
        configuration.closeTimeout = .seconds(2)
        let member = try GroupMember("m", configuration: configuration, topics: [topic])  // stores each message's offset
        try await eventually(.seconds(20), "read 3") { member.messageCount >= 3 }

        try cluster.setBrokerLatency(-1, .seconds(30))
        let started = ContinuousClock.now
        do { try await member.close() } catch let error as KafkaError { #expect(error.code == .timedOut) }
        let took = ContinuousClock.now - started
        // 2 s plus slack for a loaded machine; before, the commit alone could take its 10 s.
        #expect(took < .seconds(8), "close took \(took) with a 2 s close timeout")
        // The close goes on in the background and completes once the broker answers again.
        #expect(!member.consumer.core.destroyed.isSet)
        try cluster.setBrokerLatency(-1, .zero)
        try await eventually(.seconds(60), "the abandoned close finished") { member.consumer.core.destroyed.isSet }
    }
}
