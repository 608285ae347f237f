import Foundation
import Synchronization
import TestSupport
import Testing

@testable import Kafka

/// Commit-path faults: OffsetCommit errors, a moved coordinator, and 1.5 s of latency.
@Suite("Commit faults", .timeLimit(.minutes(2)))
struct CommitFaultTests {
    /// A consumer that has read `count` messages of a 1-partition topic.
    static func readingConsumer(_ cluster: KafkaMockCluster, topic: String, group: String, count: Int) async throws -> (
        GroupMember, KafkaConsumerMessage
    ) {
        let producer = try KafkaProducer(configuration: producerConfiguration(cluster.bootstrapServers))
        try await produce(producer, topic: topic, count: count, partitions: 1)
        try await producer.close()
        let member = try GroupMember("m", configuration: consumerConfiguration(cluster.bootstrapServers, group: group), topics: [topic])
        try await eventually(.seconds(20), "read \(count)") { member.messageCount >= count }
        let last = try #require(member.snapshot.messages.last)
        return (member, last)
    }

    @Test("OffsetCommit errors: non-retriable ones are typed errors in the commit result, retriable ones are retried")
    func offsetCommitErrors() async throws {
        let topic = "commit-errors"
        let group = uniqueName("g")
        let cluster = try makeCluster(brokers: 1, topics: [topic: 1])
        let (member, last) = try await Self.readingConsumer(cluster, topic: topic, group: group, count: 10)
        let consumer = member.consumer

        cluster.pushRequestErrors(.offsetCommit, [.groupAuthorizationFailed])
        do {
            try await consumer.commit(last)
            Issue.record("commit should have failed")
        } catch let error as KafkaError {
            #expect(error.code == .groupAuthorizationFailed)
            #expect(!error.isRetriable && !error.isFatal)
        }

        // Async commit: the same kind of failure arrives in the completion.
        cluster.pushRequestErrors(.offsetCommit, [.groupAuthorizationFailed])
        let asyncResult = Mutex<Result<[KafkaTopicPartitionOffset], KafkaError>?>(nil)
        consumer.commitAsync([last.nextOffset]) { result in asyncResult.withLock { $0 = result } }
        try await eventually(.seconds(10), "async commit result") { asyncResult.withLock { $0 != nil } }
        let reported = try #require(asyncResult.withLock { $0 })
        #expect(throws: KafkaError.self) { try reported.get() }

        // Transient coordinator conditions are retried by librdkafka: the commit succeeds.
        cluster.pushRequestErrors(.offsetCommit, [.coordinatorLoadInProgress, .requestTimedOut])
        let committed = try await consumer.commit(last, timeout: .seconds(20))
        #expect(committed.first?.offset == 10)
        #expect(try await consumer.committed([last.topicPartition]).first?.offset == 10)
        try await member.close()
    }

    @Test("coordinator moved: commits and consumption go on")
    func coordinatorMoved() async throws {
        let topic = "coordinator"
        let group = uniqueName("g")
        let cluster = try makeCluster(brokers: 3, topics: [topic: 1])
        let (member, last) = try await Self.readingConsumer(cluster, topic: topic, group: group, count: 5)
        for broker: Int32 in [1, 2, 3, 1] {
            try cluster.setCoordinator(.group, key: group, broker: broker)
            cluster.pushRequestErrors(.offsetCommit, [.notCoordinator])
            let committed = try await member.consumer.commit(last, timeout: .seconds(20))
            #expect(committed.first?.offset == 5)
        }
        let producer = try KafkaProducer(configuration: producerConfiguration(cluster.bootstrapServers))
        try await produce(producer, topic: topic, count: 5, partitions: 1, prefix: "after")
        try await producer.close()
        try await eventually(.seconds(20), "reads after the moves") { member.messageCount >= 10 }
        #expect(try await member.consumer.committed([last.topicPartition], timeout: .seconds(10)).first?.offset == 5)
        try await member.close()
    }

    @Test("1.5 s latency: calls with a shorter deadline fail at the deadline, longer ones succeed")
    func latency() async throws {
        let topic = "latency"
        let group = uniqueName("g")
        let cluster = try makeCluster(brokers: 1, topics: [topic: 1])
        let (member, last) = try await Self.readingConsumer(cluster, topic: topic, group: group, count: 3)
        let consumer = member.consumer
        let producer = try KafkaProducer(configuration: producerConfiguration(cluster.bootstrapServers))
        _ = try await producer.send(KafkaProducerMessage(topic: topic, key: "warm", value: "up"))
        try cluster.setBrokerLatency(-1, .milliseconds(1500))

        var started = ContinuousClock.now
        do {
            try await consumer.commit(last, timeout: .milliseconds(500))
            Issue.record("commit should have timed out")
        } catch let error as KafkaError {
            #expect(error.code == .timedOut && error.isRetriable)
        }
        // The _TIMED_OUT error itself shows the call did not wait for the slow broker (that would
        // have succeeded). The bound only guards against waiting far past the deadline; it is
        // loose because the whole suite runs in parallel on 2 cores (1.43 s seen under CI load).
        let slack = Duration.milliseconds(2500)
        #expect(ContinuousClock.now - started < slack)

        started = ContinuousClock.now
        await #expect(throws: KafkaError.self) { try await consumer.committed([last.topicPartition], timeout: .milliseconds(500)) }
        #expect(ContinuousClock.now - started < slack)

        started = ContinuousClock.now
        try await consumer.commit(last, timeout: .seconds(15))
        #expect(ContinuousClock.now - started >= .milliseconds(1400))

        started = ContinuousClock.now
        let report = try await producer.send(KafkaProducerMessage(topic: topic, key: "slow", value: "send"))
        let sendTook = ContinuousClock.now - started
        #expect(report.offset != nil)
        #expect(sendTook >= .milliseconds(1400) && sendTook < .seconds(10), "send took \(sendTook)")

        try cluster.setBrokerLatency(-1, .zero)
        try await producer.close()
        try await member.close()
    }

    @Test("a commit's deadline holds while every thread of Swift's cooperative pool is blocked (it used to wait for one)")
    func deadlineHoldsWhenThePoolIsBusy() async throws {
        let topic = "busy-pool"
        let cluster = try makeCluster(brokers: 1, topics: [topic: 1])
        let (member, last) = try await Self.readingConsumer(cluster, topic: topic, group: uniqueName("g"), count: 2)
        try cluster.setBrokerLatency(-1, .milliseconds(1500))
        // Start the commit (500 ms deadline, the answer comes after 1.5 s), then block every
        // pool thread for 2.5 s: a deadline that needs a pool thread to fire would lose the
        // race to the broker's answer; the commit must still fail at its deadline.
        let commit = Task { try await member.consumer.commit(last, timeout: .milliseconds(500)) }
        let blockers = (0..<ProcessInfo.processInfo.activeProcessorCount).map { _ in
            Task.detached { usleep(2_500_000) }
        }
        let result = await commit.result
        for blocker in blockers { await blocker.value }
        switch result {
        case .success: Issue.record("the commit succeeded: its 500 ms deadline did not fire while the pool was busy")
        case .failure(let error as KafkaError): #expect(error.code == .timedOut, "\(error)")
        case .failure(let error): Issue.record("unexpected error \(error)")
        }
        try cluster.setBrokerLatency(-1, .zero)
        try await member.close()
    }
}
