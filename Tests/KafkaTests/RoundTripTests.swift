import Foundation
import Testing
@testable import Kafka

@Suite("Round trip", .timeLimit(.minutes(2)))
struct RoundTripTests {
    @Test("small round trip")
    func smallRoundTrip() async throws {
        let topic = uniqueName("small")
        let cluster = try makeCluster(topics: [topic: 2])
        let producer = try KafkaProducer(configuration: producerConfiguration(cluster.bootstrapServers))
        let report = try await producer.send(KafkaProducerMessage(topic: topic, partition: 1, key: "k", value: "v"))
        #expect(report.partition == 1)
        #expect(report.offset == 0)
        try await produce(producer, topic: topic, count: 9, partitions: 2)
        try await producer.close()

        let consumer = try KafkaConsumer(configuration: consumerConfiguration(cluster.bootstrapServers, group: uniqueName("g")))
        try consumer.subscribe(topics: [topic])
        let messages = try await collect(consumer, count: 10, timeout: .seconds(30))
        #expect(messages.count == 10)
        try await consumer.close()
    }
}
