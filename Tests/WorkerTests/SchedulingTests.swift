import Foundation
import Kafka
import Pipelines
import TestSupport
import Testing
import Tokenizers
import Wire

@testable import Worker

/// No head-of-line blocking: short requests are answered while a long generation runs, with one
/// lane or several, and the lanes' progress is visible (metrics, `/livez`).
@Suite("Scheduling", .serialized, .timeLimit(.minutes(3)))
struct SchedulingTests {
    @Test("lane slots: a generating lane takes no second batch but a short one in its side slot")
    func laneSlots() {
        var one = LaneSlots(lanes: 1, batchesPerLane: 2)
        let generation = one.take(generation: true)
        #expect(generation == .init(lane: 0, side: false))
        #expect(one.free() == .init(generation: false))
        #expect(one.take(generation: true) == nil)
        let side = one.take(generation: false)
        #expect(side == .init(lane: 0, side: true))
        #expect(one.free() == nil)
        #expect(one.take(generation: false) == nil)
        if let side { one.release(side) }
        #expect(one.free() == .init(generation: false))
        if let generation { one.release(generation) }
        #expect(one.free() == .init(generation: true))

        // Short batches: a second one queues behind the first (the lane starts it at once).
        var short = LaneSlots(lanes: 1, batchesPerLane: 2)
        #expect(short.take(generation: false) == .init(lane: 0, side: false))
        #expect(short.take(generation: false) == .init(lane: 0, side: false))
        #expect(short.take(generation: false) == nil)

        // Two lanes: a generation on one; short batches go to the other first, then behind it,
        // then into the generating lane's side slot; a second generation waits for a free lane.
        var two = LaneSlots(lanes: 2, batchesPerLane: 2)
        #expect(two.take(generation: true) == .init(lane: 0, side: false))
        #expect(two.take(generation: false) == .init(lane: 1, side: false))
        #expect(two.take(generation: false) == .init(lane: 1, side: false))
        #expect(two.take(generation: false) == .init(lane: 0, side: true))
        #expect(two.take(generation: true) == nil)
        two.release(.init(lane: 1, side: false))
        #expect(two.take(generation: true) == .init(lane: 1, side: false))
        #expect(two.queued == [[true], [false, true]])
    }

    /// A backend with a "long" job (steps > 0) that runs until the test opens its gate, calling
    /// `between` as a generation does between its decoding steps; every other job is short.
    final class GatedLongBackend: InferenceBackend {
        let lanes: Int
        let gate = DispatchSemaphore(value: 0)
        init(lanes: Int) { self.lanes = lanes }
        func prepare(_ value: [UInt8]) -> Result<PreparedJob<String>, RequestRejection> {
            let text = String(decoding: value, as: UTF8.self)
            var job = PreparedJob(job: text, tokens: 8, encoderKey: 0, task: "text-classification", head: "gated", id: text)
            if text.hasPrefix("long") { job.steps = 1000 }
            return .success(job)
        }
        func run(_ batch: [String], lane: Int, emit: (Int, BackendResponse) -> Void, between: () -> Void) -> [[BackendResponse]] {
            if batch.contains(where: { $0.hasPrefix("long") }) {
                let deadline = DispatchTime.now() + 60
                while gate.wait(timeout: .now() + .milliseconds(5)) == .timedOut, DispatchTime.now() < deadline { between() }
            }
            return batch.map { [BackendResponse(value: Array(#"{"id": "\#($0)"}"#.utf8), task: "text-classification", head: "gated")] }
        }
        func warmUp(lane: Int) {}
        func errorResponse(code: String, message: String, id: String?) -> [UInt8] { Array(#"{"error": "\#(code)"}"#.utf8) }
    }

    @Test("short requests are answered while a long one runs, with one lane or two", arguments: [1, 2])
    func shortRequestsPassALongOne(lanes: Int) async throws {
        let cluster = try KafkaMockCluster(brokers: 1)
        defer { cluster.shutdown() }
        for topic in ["req", "res", "dlq"] { try cluster.createTopic(topic, partitions: 1) }
        let servers = cluster.bootstrapServers
        let backend = GatedLongBackend(lanes: lanes)
        let running = RunningWorker(WorkerFixtures.configuration(servers, group: "gated"), backend: backend)
        // Two long ones (the second waits for a lane without a generation), then short ones.
        let values = ["long-1", "long-2"] + (0..<6).map { "short-\($0)" }
        try await WorkerFixtures.produce(values.map { KafkaProducerMessage(topic: "req", key: $0, value: $0) }, servers: servers)
        // The long ones cannot finish before the gate opens: the short ones must come first.
        let shorts = try await WorkerFixtures.consume("res", servers: servers, count: 6, timeout: .seconds(30))
        #expect(Set(shorts.map { String(decoding: $0.key ?? [], as: UTF8.self) }) == Set((0..<6).map { "short-\($0)" }))
        #expect(running.status.livenessFailure == nil)
        backend.gate.signal()
        backend.gate.signal()
        let all = try await WorkerFixtures.consume("res", servers: servers, count: 8, timeout: .seconds(30))
        #expect(Set(all.map { String(decoding: $0.key ?? [], as: UTF8.self) }) == Set(values))
        try await running.stop()
    }

    @Test("with the real engine: short requests are answered before a long generation ends", arguments: [1, 2])
    func shortRequestsPassALongGeneration(lanes: Int) async throws {
        let cluster = try KafkaMockCluster(brokers: 1)
        defer { cluster.shutdown() }
        for topic in ["req", "res", "dlq"] { try cluster.createTopic(topic, partitions: 1) }
        let servers = cluster.bootstrapServers
        let reader = try TopicReader(topic: "res", servers: servers)
        // A generation of 5,000 tokens (a few seconds on the tiny model), over the default 1,024 limit.
        var configuration = EngineConfiguration()
        configuration.limits.maxNewTokens = 5000
        let engine = try PipelineEngine(
            heads: WorkerFixtures.heads, tokenizerDirectory: WorkerFixtures.root.appendingPathComponent("Tests/Fixtures/tokenizer").path,
            configuration: configuration)
        // The dev broker holds a fetch for fetch.wait.max.ms (500 ms) even when messages arrive:
        // polled briefly, the short requests reach the worker while the generation runs.
        var workerConfiguration = WorkerFixtures.configuration(servers, group: "hol")
        workerConfiguration.kafka["fetch.wait.max.ms"] = "10"
        let running = RunningWorker(workerConfiguration, backend: PipelinesBackend(engine: engine, lanes: lanes))
        let long =
            #"{"id": "long", "task": "text-generation", "head": "causal", "text": "Hei på deg", "options": {"max_new_tokens": 5000}}"#
        let shorts = (0..<4).map { k in
            KafkaProducerMessage(
                topic: "req", key: "short-\(k)",
                value: #"{"id": "short-\#(k)", "task": "text-classification", "text": "Dette er kort \#(k)."}"#)
        }
        // The generation first; once a lane runs it, the short ones, one batch each (from a
        // producer that knows the topic already, so they follow at once).
        let producer = try KafkaProducer(configuration: KafkaProducerConfiguration(bootstrapServers: servers))
        _ = try await producer.send(KafkaProducerMessage(topic: "req", key: "long", value: long))
        let deadline = ContinuousClock.now + .seconds(120)
        while running.status.laneProgress?.snapshot().contains(where: { $0.steps > 20 }) != true, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(5))
        }
        for short in shorts { _ = try await producer.send(short) }
        try await producer.close()
        var order: [String] = []
        while !order.contains("long"), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
            order = reader.messages.compactMap { try? JSONValue.parse($0.value ?? [], context: "t")["id"]?.stringValue }
        }
        let before = order.prefix { $0 != "long" }
        #expect(
            Set(before) == Set((0..<4).map { "short-\($0)" }),
            """
            final answers in arrival order: \(order); \
            \(reader.messages.first.map { String(decoding: $0.value ?? [], as: UTF8.self).prefix(300) } ?? "")
            """
        )
        let text = String(decoding: running.metrics.render(), as: UTF8.self)
        #expect(text.contains("norbert_worker_pending_answers"))
        try await running.stop()
    }

    @Test("a lane that makes no progress fails /livez; one that progresses does not")
    func stalledLane() {
        let progress = LaneProgress(lanes: 2)
        let status = WorkerStatus()
        status.watch(progress, stallTimeout: .seconds(600))
        progress.started(1)
        #expect(status.livenessFailure == nil)
        let later = ContinuousClock.now + .seconds(601)
        let snapshot = progress.snapshot(now: later)
        #expect(snapshot[1].stalled > .seconds(600))
        #expect(snapshot[0].stalled == .zero, "an idle lane is never stalled")
        progress.stepped(1)
        #expect(progress.snapshot()[1].steps == 1)
        let stalled = WorkerStatus()
        stalled.watch(progress, stallTimeout: .milliseconds(1))
        Thread.sleep(forTimeInterval: 0.01)
        #expect(stalled.livenessFailure?.contains("lane 1") == true)
        progress.finished(1)
        #expect(stalled.livenessFailure == nil)
    }
}
