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

    @Test("loadMetadata: partition counts per topic, a typed error when the cluster cannot answer or the producer is closed")
    func loadMetadata() async throws {
        let three = uniqueName("three"), one = uniqueName("one"), other = uniqueName("other")
        let cluster = try makeCluster(topics: [three: 3, one: 1])
        let producer = try KafkaProducer(configuration: producerConfiguration(cluster.bootstrapServers))
        let results = await producer.loadMetadata(topics: [three, one, other], timeout: .seconds(10))
        #expect(results.map(\.topic) == [three, one, other])
        #expect(try results[0].result.get() == 3)
        #expect(try results[1].result.get() == 1)
        // The mock cluster creates unknown topics on a metadata request (4 partitions).
        #expect(try results[2].result.get() > 0)
        let report = try await producer.send(KafkaProducerMessage(topic: three, partition: 2, key: "k", value: "v"))
        #expect(report.partition == 2 && report.offset == 0)
        try await producer.close()
        // Once closed, it answers with an error instead of touching the destroyed client.
        guard case .failure(let closed)? = await producer.loadMetadata(topics: [three]).first?.result else {
            Issue.record("loadMetadata after close must fail")
            return
        }
        #expect(closed.code == KafkaError.closed("x").code)

        // Nobody listening: the request times out with an error, within the timeout.
        let nowhere = try KafkaProducer(configuration: producerConfiguration("127.0.0.1:1"))
        guard case .failure(let error)? = await nowhere.loadMetadata(topics: [three], timeout: .milliseconds(500)).first?.result else {
            Issue.record("loadMetadata without a broker must fail")
            return
        }
        #expect(error.code == .timedOut || error.code == .transport || error.code == .allBrokersDown, "\(error)")
        try? await nowhere.close(timeout: .seconds(1))
    }
}
