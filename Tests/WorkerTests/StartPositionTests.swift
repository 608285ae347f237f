import Kafka
import TestSupport
import Testing

@testable import Worker

/// A newly assigned partition the group has no offset for gets its start (low watermark)
/// committed, so lag-based autoscalers see an offset from the start — never past an unanswered
/// message, never for an assignment that changed meanwhile.
@Suite("Start positions")
struct StartPositionTests {
    typealias H = StateHarness
    let p0 = H.p0, p1 = H.p1

    func queries(_ h: H) -> [[KafkaTopicPartition: UInt64]] {
        h.last.compactMap { if case .queryStartPositions(let q) = $0 { q } else { nil } }
    }

    @Test("the worker's default (auto.offset.reset=earliest) commits start positions; another reset policy does not")
    func followsOffsetReset() {
        #expect(
            WorkerState<String>(
                configuration: WorkerConfiguration(
                    bootstrapServers: "b:1", groupID: "g", requestTopics: ["r"], resultsTopic: "res", deadLetterTopic: "dlq"), lanes: 1
            )
            .settings.commitStartPositions)
        var latest = WorkerConfiguration(
            bootstrapServers: "b:1", groupID: "g", requestTopics: ["r"], resultsTopic: "res", deadLetterTopic: "dlq")
        latest.kafka = ["auto.offset.reset": "latest"]
        #expect(!WorkerState<String>(configuration: latest, lanes: 1).settings.commitStartPositions)
    }

    @Test("assigned: the start positions are asked for, then committed with the next periodic commit")
    func committedOnAssign() {
        var h = H(commitStartPositions: true)
        h.send(.assigned([p0, p1]))
        let asked = queries(h)
        #expect(asked.count == 1)
        guard let query = asked.first, let g0 = query[p0], let g1 = query[p1] else { return }
        h.send(
            .startPositions([
                StartPosition(partition: p0, generation: g0, offset: 0), StartPosition(partition: p1, generation: g1, offset: 40),
            ]))
        h.send(.commitDue)
        #expect(h.commits == [H.offsets((p0, 0), (p1, 40))])
        h.send(.commitFinished(H.offsets((p0, 0), (p1, 40)), nil))
        // Answers move on from there.
        h.answer(p1, [40, 41])
        h.send(.commitDue)
        #expect(h.commits == [H.offsets((p1, 42))])
    }

    @Test("never past an unanswered message, never over an answer, never for an older assignment")
    func neverAhead() {
        var h = H(commitStartPositions: true)
        h.send(.assigned([p0, p1]))
        guard let query = queries(h).first, let g0 = query[p0], let g1 = query[p1] else {
            Issue.record("no query")
            return
        }
        // p1: answered already; its own position wins.
        h.answer(p1, [7])
        // p0: a message below the reported start is waiting (the log was truncated meanwhile):
        // committing the start would pass it.
        h.receive(p0, 5)
        h.send(
            .startPositions([
                StartPosition(partition: p0, generation: g0, offset: 9), StartPosition(partition: p1, generation: g1, offset: 3),
            ]))
        h.send(.commitDue)
        #expect(h.commits == [H.offsets((p1, 8))])
        h.send(.commitFinished(H.offsets((p1, 8)), nil))

        // Lost and assigned again before the answer of the first query came: it is stale.
        var again = H(commitStartPositions: true)
        again.send(.assigned([p0]))
        guard let old = queries(again).first?[p0] else {
            Issue.record("no query")
            return
        }
        again.send(.lost([p0]))
        again.send(.assigned([p0]))
        guard let new = queries(again).first?[p0] else {
            Issue.record("no second query")
            return
        }
        #expect(new != old)
        again.send(.startPositions([StartPosition(partition: p0, generation: old, offset: 0)]))
        again.send(.commitDue)
        #expect(again.commits.isEmpty, "a start position of an earlier assignment was committed")
        again.send(.startPositions([StartPosition(partition: p0, generation: new, offset: 12)]))
        again.send(.commitDue)
        #expect(again.commits == [H.offsets((p0, 12))])
    }

    @Test("PartitionOffsets.start(at:) sets the position only when nothing moved it and nothing unanswered is below")
    func partitionStart() {
        var fresh = PartitionOffsets()
        fresh.start(at: 10)
        #expect(fresh.commitPosition == 10)
        var waiting = PartitionOffsets()
        _ = waiting.receive(10)
        waiting.start(at: 10)
        #expect(waiting.commitPosition == 10, "the first unanswered offset itself is a safe position")
        var below = PartitionOffsets()
        _ = below.receive(4)
        below.start(at: 10)
        #expect(below.commitPosition == nil)
        var answered = PartitionOffsets()
        _ = answered.receive(10)
        _ = answered.complete(10)
        answered.start(at: 3)
        #expect(answered.commitPosition == 11)
    }
}

/// The same against the mock cluster: a group with no offsets gets them as soon as its worker
/// holds the partitions, before any request arrives (what KEDA's Kafka scaler reads).
@Suite("Start positions, in process", .serialized, .timeLimit(.minutes(2)))
struct StartPositionClusterTests {
    @Test("an idle worker commits every assigned partition's start (its low watermark) without any message")
    func idleWorkerCommits() async throws {
        let cluster = try KafkaMockCluster(brokers: 1)
        defer { cluster.shutdown() }
        try cluster.createTopic("req", partitions: 3)
        try cluster.createTopic("res", partitions: 1)
        try cluster.createTopic("dlq", partitions: 1)
        let engine = try #require(WorkerFixtures.engine)
        let configuration = WorkerFixtures.configuration(cluster.bootstrapServers, group: "start")
        let running = RunningWorker(configuration, backend: PipelinesBackend(engine: engine, lanes: 1))
        let status = running.status
        try await eventually(.seconds(90), "the worker to hold the partitions") { status.isReady }

        let probe = try KafkaConsumer(
            configuration: KafkaConsumerConfiguration(bootstrapServers: cluster.bootstrapServers, groupID: configuration.groupID))
        let partitions = (0..<3).map { KafkaTopicPartition(topic: "req", partition: Int32($0)) }
        var committed: [Int64?] = []
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            committed = try await probe.committed(partitions).map(\.offset)
            if committed.allSatisfy({ ($0 ?? -1) >= 0 }) { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        try? await probe.close()
        #expect(committed == [0, 0, 0], "committed offsets of an idle group: \(committed)")
        try await running.stop()
    }
}
