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
        for index in 0..<50 {
            pending.append(try await producer.enqueue(KafkaProducerMessage(topic: topic, key: "k\(index)", value: "v\(index)")))
        }
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

    @Test("errors pushed on one broker fail only that broker's requests, in order")
    func perBrokerRequestErrors() async throws {
        let cluster = try makeCluster(brokers: 2, topics: ["on1": 1, "on2": 1])
        try cluster.setPartitionLeader(topic: "on1", partition: 0, broker: 1)
        try cluster.setPartitionLeader(topic: "on2", partition: 0, broker: 2)
        let producer = try KafkaProducer(configuration: producerConfiguration(cluster.bootstrapServers))
        _ = try await producer.send(KafkaProducerMessage(topic: "on1", key: "warm", value: "up"))
        _ = try await producer.send(KafkaProducerMessage(topic: "on2", key: "warm", value: "up"))
        try cluster.pushBrokerRequestErrors(2, .produce, [(.invalidRecord, rtt: .milliseconds(300)), (.policyViolation, rtt: .zero)])
        #expect(try cluster.brokerRequestErrorCount(2, .produce) == 2)
        #expect(try cluster.brokerRequestErrorCount(1, .produce) == 0)

        // Broker 1 is untouched.
        let other = try await withTimeout(.seconds(20), "send to broker 1") {
            try await producer.send(KafkaProducerMessage(topic: "on1", key: "k", value: "v"))
        }
        #expect(other.offset == 1)
        #expect(try cluster.brokerRequestErrorCount(2, .produce) == 2)
        // Broker 2 returns the two errors in order, then accepts.
        var codes: [KafkaError.Code] = []
        for index in 0..<2 {
            let result = await withTimeoutResult(.seconds(20)) {
                await producer.enqueueResult(KafkaProducerMessage(topic: "on2", key: "k\(index)", value: "v"))
            }
            if case .failure(let error) = result { codes.append(error.code) }
        }
        #expect(codes == [.invalidRecord, .policyViolation])
        #expect(try cluster.brokerRequestErrorCount(2, .produce) == 0)
        let next = try await producer.send(KafkaProducerMessage(topic: "on2", key: "k", value: "v"))
        #expect(next.offset == 1)
        #expect(throws: KafkaError.self) { try cluster.pushBrokerRequestErrors(9, .produce, [(.invalidRecord, rtt: .zero)]) }
        try await producer.close()
    }

    @Test(
        """
        closing a consumer while librdkafka still holds fetched messages for it: the close drops them and returns (it used to abort \
        the process)
        """
    )
    func closeWithMessagesQueued() async throws {
        let topic = "queued"
        let cluster = try makeCluster(brokers: 1, topics: [topic: 2])
        let producer = try KafkaProducer(configuration: producerConfiguration(cluster.bootstrapServers))
        try await produce(producer, topic: topic, count: 6_000, partitions: 2)
        try await producer.close()
        for round in 0..<2 {
            var configuration = consumerConfiguration(cluster.bootstrapServers, group: uniqueName("g"))
            configuration.bufferCapacity = 10
            let consumer = try KafkaConsumer(configuration: configuration)
            try consumer.subscribe(topics: [topic])
            let first = try await collect(consumer, count: 1, timeout: .seconds(30))
            #expect(first.count == 1)
            // Let the fetcher queue far more than the buffer takes (librdkafka prefetches).
            try await Task.sleep(for: .milliseconds(300 * (round + 1)))
            try await withTimeout(.seconds(30), "close") { try await consumer.close() }
        }
    }

    @Test(
        """
        a message with headers that fails when enqueued (a partition the topic does not have) is a typed error, not a crash \
        (librdkafka #4627)
        """
    )
    func enqueueFailureWithHeaders() async throws {
        let topic = "onepart"
        let cluster = try makeCluster(brokers: 1, topics: [topic: 1])
        let producer = try KafkaProducer(configuration: producerConfiguration(cluster.bootstrapServers))
        _ = try await producer.send(KafkaProducerMessage(topic: topic, key: "warm", value: "up"))
        for index in 0..<200 {
            let message = KafkaProducerMessage(
                topic: topic, partition: 7, key: Array("k\(index)".utf8), value: Array("v".utf8),
                headers: [
                    KafkaHeader(name: "a", string: "1"), KafkaHeader(name: "b", value: nil),
                    KafkaHeader(name: "c", value: []),
                ])
            await #expect(throws: KafkaError.self) { _ = try await producer.enqueue(message) }
        }
        // Headers still arrive intact on a message that is accepted.
        let headers = [
            KafkaHeader(name: "a", string: "1"), KafkaHeader(name: "b", value: nil), KafkaHeader(name: "c", value: []),
            KafkaHeader(name: "", string: "empty name"),
        ]
        _ = try await producer.send(KafkaProducerMessage(topic: topic, key: "k", value: "v", headers: headers))
        try await producer.close()
        let consumer = try KafkaConsumer(configuration: consumerConfiguration(cluster.bootstrapServers, group: uniqueName("g")))
        try consumer.subscribe(topics: [topic])
        let messages = try await collect(consumer, count: 2, timeout: .seconds(30))
        #expect(messages.last?.headers == headers)
        try await consumer.close()
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
        // The timeout error shows it returned before the queue drained (the message times out
        // only after 2 s); the bound only guards against waiting far past the deadline (3.2 s
        // seen with the whole suite running in parallel on 2 cores).
        #expect(ContinuousClock.now - flushStart < .seconds(6))
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
func withTimeoutResult<T: Sendable>(
    _ timeout: Duration, _ body: @escaping @Sendable () async -> Result<T, KafkaError>
) async -> Result<T, KafkaError> {
    do {
        return try await withTimeout(timeout, "result") { await body() }
    } catch {
        return .failure(.timedOut("test wait"))
    }
}
