import Foundation
import Testing
@testable import Kafka

/// Faults injected with rdkafka_mock: each is either retried invisibly or surfaces as a typed
/// error in the delivery or commit result, and no call waits past its deadline.
@Suite("Faults", .timeLimit(.minutes(2)))
struct FaultTests {
    @Test("leader down then up: sends wait and then succeed, no error visible")
    func brokerDownThenUp() async throws {
        let topic = "down"
        let cluster = try makeCluster(brokers: 3, topics: [topic: 1])
        try cluster.setPartitionLeader(topic: topic, partition: 0, broker: 2)
        let producer = try KafkaProducer(configuration: producerConfiguration(cluster.bootstrapServers))
        _ = try await producer.send(KafkaProducerMessage(topic: topic, key: "warm", value: "up"))
        try cluster.setBrokerDown(2)
        var pending: [KafkaPendingDelivery] = []
        for index in 0..<50 { pending.append(try await producer.enqueue(KafkaProducerMessage(topic: topic, key: "k\(index)", value: "v\(index)"))) }
        try await Task.sleep(for: .milliseconds(800))
        try cluster.setBrokerUp(2)
        let deliveries = pending
        let reports = try await withTimeout(.seconds(30), "deliveries after broker up") {
            var reports: [KafkaDeliveryReport] = []
            for delivery in deliveries { reports.append(try await delivery.get()) }
            return reports
        }
        #expect(reports.map(\.offset) == (1...50).map { Int64($0) })
        try await producer.close()
    }

    @Test("retriable produce errors are retried invisibly, without duplicates")
    func retriableProduceErrors() async throws {
        let topic = "retriable"
        let cluster = try makeCluster(brokers: 1, topics: [topic: 1])
        let producer = try KafkaProducer(configuration: producerConfiguration(cluster.bootstrapServers))
        _ = try await producer.send(KafkaProducerMessage(topic: topic, key: "warm", value: "up"))
        cluster.pushRequestErrors(.produce, [.notEnoughReplicas, .requestTimedOut, .notEnoughReplicasAfterAppend])
        let reports = try await withTimeout(.seconds(30), "retried sends") {
            try await produce(producer, topic: topic, count: 20, partitions: 1)
        }
        #expect(reports.map(\.offset) == (1...20).map { Int64($0) })
        try await producer.close()

        let consumer = try KafkaConsumer(configuration: consumerConfiguration(cluster.bootstrapServers, group: uniqueName("g")))
        try consumer.subscribe(topics: [topic])
        let messages = try await collect(consumer, count: 21, timeout: .seconds(30))
        #expect(Set(messages.map(\.offset)).count == 21)
        try await consumer.close()
    }

    @Test("a non-retriable produce error is a typed error in that delivery; later sends work")
    func nonRetriableProduceError() async throws {
        let topic = "permanent"
        let cluster = try makeCluster(brokers: 1, topics: [topic: 1])
        let producer = try KafkaProducer(configuration: producerConfiguration(cluster.bootstrapServers))
        _ = try await producer.send(KafkaProducerMessage(topic: topic, key: "warm", value: "up"))
        cluster.pushRequestErrors(.produce, [.invalidRecord])
        let result = await withTimeoutResult(.seconds(20)) {
            await producer.enqueueResult(KafkaProducerMessage(topic: topic, key: "k", value: "v"))
        }
        guard case .failure(let error) = result else {
            Issue.record("expected a delivery error, got \(result)")
            return
        }
        #expect(error.code == .invalidRecord)
        #expect(!error.isRetriable)
        #expect(!error.isFatal)
        let next = try await producer.send(KafkaProducerMessage(topic: topic, key: "k2", value: "v2"))
        #expect(next.offset != nil)
        try await producer.close()
    }

    @Test("a failed delivery's error text is librdkafka's description, never the message's payload or key")
    func deliveryErrorTextHasNoPayload() async throws {
        let topic = "errtext"
        let cluster = try makeCluster(brokers: 1, topics: [topic: 1])
        let producer = try KafkaProducer(configuration: producerConfiguration(cluster.bootstrapServers))
        _ = try await producer.send(KafkaProducerMessage(topic: topic, key: "warm", value: "up"))
        cluster.pushRequestErrors(.produce, [.invalidRecord])
        // rd_kafka_message_errstr() returns the payload of a producer message (not NUL-terminated).
        let payload = "private answer for one requester only"
        let result = await withTimeoutResult(.seconds(20)) {
            await producer.enqueueResult(KafkaProducerMessage(topic: topic, key: "key-bytes-after", value: payload))
        }
        guard case .failure(let error) = result else {
            Issue.record("expected a delivery error, got \(result)")
            return
        }
        #expect(error.code == .invalidRecord)
        #expect(!error.message.contains("private"), "\(error.message)")
        #expect(!error.message.contains("key-bytes"), "\(error.message)")
        #expect(!error.message.isEmpty)
        try await producer.close()
    }

    @Test("a message whose delivery cannot finish fails with _MSG_TIMED_OUT within message.timeout.ms")
    func deliveryTimeout() async throws {
        let topic = "timeout"
        let cluster = try makeCluster(brokers: 1, topics: [topic: 1])
        var configuration = producerConfiguration(cluster.bootstrapServers)
        configuration.deliveryTimeout = .seconds(2)
        let producer = try KafkaProducer(configuration: configuration)
        _ = try await producer.send(KafkaProducerMessage(topic: topic, key: "warm", value: "up"))
        try cluster.setBrokerDown(-1)
        let started = ContinuousClock.now
        let result = await withTimeoutResult(.seconds(15)) {
            await producer.enqueueResult(KafkaProducerMessage(topic: topic, key: "k", value: "v"))
        }
        let took = ContinuousClock.now - started
        guard case .failure(let error) = result else {
            Issue.record("expected a timeout, got \(result)")
            return
        }
        #expect(error.code == .messageTimedOut)
        #expect(error.isRetriable)
        // librdkafka scans for expired messages about once a second, from broker threads that
        // may sit in reconnect backoff: measured 2.5-8 s for a 2 s timeout on 2 busy cores.
        #expect(took >= .milliseconds(1900) && took < .seconds(12), "took \(took)")

        // flush with a deadline returns at the deadline.
        _ = try await producer.enqueue(KafkaProducerMessage(topic: topic, key: "k", value: "v"))
        let flushStart = ContinuousClock.now
        await #expect(throws: KafkaError.self) { try await producer.flush(timeout: .milliseconds(300)) }
        #expect(ContinuousClock.now - flushStart < .seconds(3))   // loose: the suite runs in parallel on 2 cores
        try cluster.setBrokerUp(-1)
        try await producer.close()
    }
}

extension KafkaProducer {
    /// The delivery result of one message, enqueue errors included.
    func enqueueResult(_ message: KafkaProducerMessage) async -> Result<KafkaDeliveryReport, KafkaError> {
        do {
            return try await enqueue(message).result
        } catch {
            return .failure(error)
        }
    }
}

/// `body`'s result, or a `_TIMED_OUT` failure after `timeout`.
func withTimeoutResult<T: Sendable>(_ timeout: Duration, _ body: @escaping @Sendable () async -> Result<T, KafkaError>) async -> Result<T, KafkaError> {
    do {
        return try await withTimeout(timeout, "result") { await body() }
    } catch {
        return .failure(.timedOut("test wait"))
    }
}
