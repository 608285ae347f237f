import Foundation
import Kafka
import TestSupport
import Testing

@testable import Worker

/// Shutdown and cancellation while a lane is stuck in a batch that does not end: the worker
/// does not wait for the lane past its deadline, and commits only answered offsets.
@Suite("Worker shutdown", .serialized, .timeLimit(.minutes(3)))
struct WorkerShutdownTests {
    typealias Gated = SchedulingTests.GatedLongBackend

    /// One lane held by `long-1` (offset 1) between two answered short requests (offsets 0, 2;
    /// the second runs in the lane's side slot).
    private func start(
        _ prefix: String, drainTimeout: Duration
    ) async throws -> (KafkaMockCluster, WorkerConfiguration, Gated, RunningWorker) {
        let cluster = try KafkaMockCluster(brokers: 1)
        for topic in ["req", "res", "dlq"] { try cluster.createTopic(topic, partitions: 1) }
        var configuration = WorkerFixtures.configuration(cluster.bootstrapServers, group: prefix)
        configuration.drainTimeout = drainTimeout
        let backend = Gated(lanes: 1)
        let running = RunningWorker(configuration, backend: backend)
        let values = ["short-0", "long-1", "short-2"]
        try await WorkerFixtures.produce(
            values.map { KafkaProducerMessage(topic: "req", key: $0, value: $0) }, servers: cluster.bootstrapServers)
        let answers = try await WorkerFixtures.consume("res", servers: cluster.bootstrapServers, count: 2, timeout: .seconds(30))
        #expect(Set(answers.map { String(decoding: $0.key ?? [], as: UTF8.self) }) == ["short-0", "short-2"])
        return (cluster, configuration, backend, running)
    }

    @Test("graceful shutdown with a batch that does not end: returns after the drain deadline; commits below the unanswered request")
    func shutdownPastStuckLane() async throws {
        let (cluster, configuration, backend, running) = try await start("stuck", drainTimeout: .seconds(1))
        defer {
            backend.gate.signal()
            cluster.shutdown()
        }
        let started = ContinuousClock.now
        try await running.stop()
        let took = ContinuousClock.now - started
        #expect(took >= .milliseconds(900), "the drain waits for its deadline: \(took)")
        #expect(took < configuration.worstCaseShutdown, "within the documented budget: \(took)")
        let committed = try await WorkerFixtures.waitForCommitted(
            group: configuration.groupID, topic: "req", partitions: 1, servers: cluster.bootstrapServers, total: 1)
        #expect(committed == 1, "offset 1 is unanswered: nothing at or past it is committed")
    }

    @Test("cancelling the worker's task stops it at once, without waiting for the lane or committing past an answer")
    func cancellation() async throws {
        let (cluster, configuration, backend, running) = try await start("cancel", drainTimeout: .seconds(30))
        defer {
            backend.gate.signal()
            cluster.shutdown()
        }
        let started = ContinuousClock.now
        running.task.cancel()
        _ = try? await running.task.value
        let took = ContinuousClock.now - started
        #expect(took < .seconds(15), "not the 30 s drain: \(took)")
        let probe = try KafkaConsumer(
            configuration: KafkaConsumerConfiguration(
                bootstrapServers: cluster.bootstrapServers, groupID: configuration.groupID))
        let committed = try await probe.committed([KafkaTopicPartition(topic: "req", partition: 0)])
        try? await probe.close()
        #expect(committed.allSatisfy { ($0.offset ?? 0) <= 1 }, "\(committed)")
    }
}
