import Foundation
import TestSupport
import Testing

@testable import Kafka

/// The mock accepts the transactional protocol; it does not store transactional offsets nor
/// hide aborted records from read_committed consumers (see README), so only the calls and
/// their error paths are checked here.
@Suite("Transactions", .timeLimit(.minutes(1)))
struct TransactionTests {
    @Test("init, begin, send, send offsets, commit; begin, send, abort")
    func transactionalCalls() async throws {
        let cluster = try makeCluster(brokers: 3, topics: ["in": 1, "out": 1])
        var configuration = producerConfiguration(cluster.bootstrapServers)
        configuration.transactionalID = uniqueName("txn")
        let producer = try KafkaProducer(configuration: configuration)
        try await producer.initTransactions(timeout: .seconds(20))

        let source = try KafkaProducer(configuration: producerConfiguration(cluster.bootstrapServers))
        try await produce(source, topic: "in", count: 3, partitions: 1)
        try await source.close()
        let member = try GroupMember(
            "txn", configuration: consumerConfiguration(cluster.bootstrapServers, group: uniqueName("g")), topics: ["in"])
        try await eventually(.seconds(20), "read input") { member.messageCount >= 3 }
        let last = try #require(member.snapshot.messages.last)

        try await producer.beginTransaction()
        let report = try await producer.send(KafkaProducerMessage(topic: "out", key: "k", value: "committed"))
        #expect(report.offset != nil)
        try await producer.sendOffsetsToTransaction([last.nextOffset], consumer: member.consumer, timeout: .seconds(20))
        try await producer.commitTransaction(timeout: .seconds(20))

        try await producer.beginTransaction()
        _ = try await producer.enqueue(KafkaProducerMessage(topic: "out", key: "k", value: "aborted"))
        try await producer.abortTransaction(timeout: .seconds(20))

        // Misuse is a typed state error, not a crash.
        do {
            try await producer.commitTransaction(timeout: .seconds(5))
            Issue.record("commit without begin should fail")
        } catch {
            #expect(error.code == .state)
        }
        try await producer.close()
        try await member.close()
    }

    @Test("transaction calls without transactional.id fail with a typed error")
    func notTransactional() async throws {
        let cluster = try makeCluster(brokers: 1, topics: ["t": 1])
        let producer = try KafkaProducer(configuration: producerConfiguration(cluster.bootstrapServers))
        await #expect(throws: KafkaError.self) { try await producer.beginTransaction() }
        try await producer.close()
    }
}
