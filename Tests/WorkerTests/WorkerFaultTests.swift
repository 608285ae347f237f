import Foundation
import Kafka
import Logging
import Pipelines
import Synchronization
import TestSupport
import Testing
import Tokenizers
import Wire

@testable import Worker

/// The worker in process (default settings, the tiny fixture heads) against a 3-broker mock
/// cluster that misbehaves: brokers down, produce, fetch and commit errors, slow responses,
/// leaders and the coordinator moving, a `reply-to` the worker may not write. In every test each
/// request gets exactly one final answer on the results topic (bad ones also a dead letter), no
/// committed offset ever passes an unanswered message (sampled throughout the run), the commits
/// reach the end, the worker is still running afterwards and stops cleanly.
///
/// Requests are cheap: short text-classification texts and lines that are not JSON (rejected
/// without inference). None of the faults below makes the mock append a batch it answered with
/// an error, and every injected delay is far below librdkafka's request timeout (30 s), so the
/// producer never resends a batch the broker kept: exactly one final answer per request is what
/// at-least-once delivery gives here (duplicates would need a rebalance or an ambiguous timeout).
///
/// The time limit bounds a hang, not the expected run (about a minute each without a sanitizer):
/// under AddressSanitizer on the busy 2-core machine the worker takes in 35–110 messages a second
/// (600 without), so the backlog test alone needs 1.5–5 minutes to reach its pause.
@Suite("Worker under broker faults", .serialized, .timeLimit(.minutes(8)))
struct WorkerFaultTests {
    // MARK: 1. Results leader down with a backlog

    /// Messages the worker can hold beyond `maxInFlight` once it pauses: those already handed
    /// from librdkafka to the consumer's event buffer (`KafkaConsumerConfiguration.bufferCapacity`,
    /// 1,000; the worker does not change it), plus one the poll thread may have taken from
    /// librdkafka just before the pause and one more for the pause's own race. librdkafka's
    /// prefetched messages do not count: pausing a partition bumps its version barrier and the
    /// prefetched ones are dropped (fetching resumes from the last one handed out).
    static let inFlightSlack = 1_000 + 2

    @Test(
        """
        results leader down with a backlog above max-in-flight: fetching pauses within the bound, /readyz says the broker holds the \
        answers; all answered once it is back
        """
    )
    func resultsLeaderDownWithBacklog() async throws {
        let rig = try FaultRig(group: "down")
        try rig.lead(request: 1, results: 3, deadLetters: 3, coordinator: 2)
        let running = try await rig.start()
        let watch = try CommitWatch(rig)
        let gauges = GaugeWatch(running)

        try rig.cluster.setBrokerDown(3)
        // One in four needs inference; the rest are rejected at once (and dead-lettered).
        let requests = FaultRig.mixed(12_000, goodEvery: 4, prefix: "d")
        let produced = try await FaultRig.produce(requests, servers: rig.servers)
        let bound = Double(rig.configuration.maxInFlight + Self.inFlightSlack)

        // Nothing can be acknowledged while broker 3 is down, so what the worker holds only
        // grows until flow control pauses fetching and the messages already handed over are
        // taken in; then every held request waits for the broker and nothing more comes in.
        // Settled: paused, and every request in flight is an answer waiting for the broker (so
        // none is queued for a lane, on a lane or being received) for a second. Until then the
        // worker is still taking in what it was handed before the pause — a good request (one in
        // four) on its way through the batcher and a lane shows as in flight and not pending —
        // which under a sanitizer on a busy machine takes minutes: no fixed deadline, only
        // `stuck` (nothing moving for 30 s without settling: a request lost from the bookkeeping)
        // and the suite's time limit end the wait.
        var settled: GaugeWatch.Snapshot?
        var last = GaugeWatch.Snapshot(inFlight: -1, pending: -1, paused: -1)
        var steadySince = ContinuousClock.now
        let stuck: Duration = .seconds(30)
        while ContinuousClock.now - steadySince < stuck {
            let now = gauges.snapshot()
            if now.inFlight != last.inFlight || now.pending != last.pending { steadySince = .now }
            last = now
            if now.paused == 1, now.inFlight > 0, now.pending == now.inFlight, ContinuousClock.now - steadySince >= .seconds(1) {
                settled = now
                break
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        let held = try #require(
            settled, "never settled with everything held waiting for the broker (nothing changed for \(stuck)): \(gauges.snapshot())")
        #expect(held.inFlight > Double(rig.configuration.maxInFlight), "paused before passing max-in-flight: \(held)")
        #expect(held.inFlight <= bound, "\(held)")
        #expect(held.inFlight < Double(requests.count), "fetched everything: \(held)")
        // It stays so while the broker is away: paused, not ready because of the broker.
        for _ in 0..<20 {
            let now = gauges.snapshot()
            #expect(now.paused == 1, "\(now)")
            #expect(now.inFlight == held.inFlight, "\(now)")
            #expect(now.notReady?.contains("answers waiting for the broker") == true, "\(now)")
            try await Task.sleep(for: .milliseconds(100))
        }

        try rig.cluster.setBrokerUp(3)
        try await rig.checkAnswers(produced, running: running, watch: watch, timeout: .seconds(150))
        #expect(gauges.maxInFlight <= bound, "in flight peaked at \(gauges.maxInFlight), bound \(bound)")
        #expect(gauges.snapshot().paused == 0)
        gauges.stop()
        try await running.stop()
    }

    // MARK: 2. Dead-letter topic refusing, then down

    @Test(
        """
        dead-letter topic refusing letters (non-retriable produce errors on its leader only), then its leader down: every letter \
        arrives, full or minimal
        """
    )
    func deadLetterTopicRefusing() async throws {
        let rig = try FaultRig(group: "dlq")
        try rig.lead(request: 1, results: 2, deadLetters: 3, coordinator: 1)
        let running = try await rig.start()
        let watch = try CommitWatch(rig)

        // Non-retriable errors on broker 3, which leads only the dead-letter topic: the letters
        // these hit are resent with the worker's headers only (retried until delivered).
        let refusals: [(KafkaError.Code, rtt: Duration)] = [
            (.invalidRecord, .zero), (.policyViolation, .zero), (.invalidRecord, .milliseconds(200)),
            (.policyViolation, .zero), (.invalidRecord, .zero), (.invalidRecord, .zero),
        ]
        try rig.cluster.pushBrokerRequestErrors(3, .produce, refusals)
        let first = FaultRig.mixed(300, badEvery: 2, prefix: "a")
        var produced = try await FaultRig.produce(first, servers: rig.servers)
        try await eventually(.seconds(120), "the refusals to be used") { try rig.cluster.brokerRequestErrorCount(3, .produce) == 0 }

        // The dead-letter topic's leader away for a few seconds: letters wait and go out after.
        try rig.cluster.setBrokerDown(3)
        let second = FaultRig.mixed(100, badEvery: 2, prefix: "b")
        produced.merge(try await FaultRig.produce(second, servers: rig.servers))
        try await Task.sleep(for: .seconds(4))
        #expect(!running.hasExited)
        try rig.cluster.setBrokerUp(3)

        let (_, letters) = try await rig.checkAnswers(produced, running: running, watch: watch)
        let minimal = letters.filter { $0.value == nil }
        #expect(!minimal.isEmpty, "no letter went out minimal: the refusals hit nothing")
        for letter in minimal {
            #expect(letter.headerValues(WorkerHeaders.truncated) == [Array("key,value".utf8)])
            #expect(letter.key == nil)
            #expect(letter.headerValues(WorkerHeaders.errorCode) == [Array("invalid_json".utf8)])
        }
        #expect(FaultRig.counter(running.metrics, "norbert_worker_dead_letter_fallbacks_total") == Double(minimal.count))
        try await running.stop()
    }

    // MARK: 3. Authorization error on a reply-to

    @Test(
        """
        reply-to topics the worker may not write (unauthorized in metadata, or in the produce response): an undeliverable_response \
        error with the request's id and a dead letter each; the worker keeps serving
        """
    )
    func replyToNotAuthorized() async throws {
        var rig = try FaultRig(group: "auth")
        rig.configuration.replyToAllow = ["mine", "mine-*"]
        try rig.lead(request: 1, results: 2, deadLetters: 2, coordinator: 1)
        // `mine`: its metadata says unauthorized (refused before producing). `mine-produce`: its
        // metadata is fine, its leader (broker 3, nothing else) refuses the writes. The second is
        // what made the worker exit before reply-to errors were kept from being fatal.
        rig.cluster.setTopicError("mine", .topicAuthorizationFailed)
        try rig.cluster.createTopic("mine-produce", partitions: 1)
        try rig.cluster.setPartitionLeader(topic: "mine-produce", partition: 0, broker: 3)
        try rig.cluster.pushBrokerRequestErrors(3, .produce, Array(repeating: (.topicAuthorizationFailed, rtt: .zero), count: 10))
        let running = try await rig.start()
        let watch = try CommitWatch(rig)

        var requests = FaultRig.mixed(300, badEvery: 5, prefix: "r")
        for index in requests.indices where !requests[index].bad {
            if index % 10 == 3 { requests[index].replyTo = "mine" }
            if index % 10 == 7 { requests[index].replyTo = "mine-produce" }
        }
        let rerouted = Set(requests.filter { $0.replyTo != nil }.map(\.id))
        #expect(rerouted.count >= 40)
        let produced = try await FaultRig.produce(requests, servers: rig.servers)
        let (results, letters) = try await rig.checkAnswers(produced, running: running, watch: watch, rerouted: rerouted)
        #expect(try rig.cluster.brokerRequestErrorCount(3, .produce) < 10, "no write to mine-produce was refused")

        for result in results where rerouted.contains(FaultRig.key(result)) {
            let json = try JSONValue.parse(result.value ?? [], context: "response")
            #expect(json["id"]?.stringValue == FaultRig.key(result))
            #expect(json["error"]?["code"]?.stringValue == "undeliverable_response")
            #expect(json["error"]?["message"]?.stringValue?.contains("TOPIC_AUTHORIZATION_FAILED") == true, "\(json)")
        }
        for letter in letters where rerouted.contains(FaultRig.key(letter)) {
            #expect(letter.headerValues(WorkerHeaders.errorCode) == [Array("undeliverable_response".utf8)])
        }
        // Nothing was written to either.
        rig.cluster.setTopicError("mine", .noError)
        let probe = try KafkaConsumer(
            configuration: KafkaConsumerConfiguration(bootstrapServers: rig.servers, groupID: "probe-\(UUID().uuidString)"))
        #expect(try await probe.watermarks(topic: "mine", partition: 0).high == 0)
        #expect(try await probe.watermarks(topic: "mine-produce", partition: 0).high == 0)
        try? await probe.close()
        try await running.stop()
    }

    // MARK: 4. Retriable produce errors and slow responses

    @Test(
        """
        retriable produce errors (REQUEST_TIMED_OUT, NOT_ENOUGH_REPLICAS, ...) and a slow results broker: everything delivered once, \
        no request rerouted
        """
    )
    func retriableProduceErrorsAndLatency() async throws {
        var setup = try FaultRig(group: "retry")
        // One produce request in flight per connection: with two, an injected error on the first
        // and the mock's success on the second (the mock checks sequences only for transactional
        // producers) make librdkafka report the first batch delivered though the mock never
        // stored it (IMPLICITACK; MockIdempotenceTests shows it without the worker). A Kafka
        // broker refuses the second with OUT_OF_ORDER_SEQUENCE_NUMBER instead.
        setup.configuration.kafka["max.in.flight.requests.per.connection"] = "1"
        let rig = setup
        try rig.lead(request: 1, results: 2, deadLetters: 2, coordinator: 1)
        let running = try await rig.start()
        let watch = try CommitWatch(rig)

        try rig.cluster.setBrokerLatency(2, .milliseconds(400))
        let slow: [(KafkaError.Code, rtt: Duration)] = [
            (.requestTimedOut, .seconds(2)), (.notEnoughReplicas, .zero), (.notEnoughReplicasAfterAppend, .milliseconds(500)),
            (.requestTimedOut, .zero), (.leaderNotAvailable, .zero), (.notEnoughReplicas, .seconds(1)), (.requestTimedOut, .zero),
        ]
        try rig.cluster.pushBrokerRequestErrors(2, .produce, slow)
        let requests = FaultRig.mixed(1_000, badEvery: 3, prefix: "t")
        let produced = try await FaultRig.produce(requests, servers: rig.servers)
        // Cluster-wide too, now that the requests are in (the test's producer is done).
        rig.cluster.pushRequestErrors(.produce, [.requestTimedOut, .notEnoughReplicas, .requestTimedOut, .notEnoughReplicasAfterAppend])
        try await eventually(.seconds(120), "broker 2's errors to be used") { try rig.cluster.brokerRequestErrorCount(2, .produce) == 0 }
        // Everything answered (and committed) on the slow broker; the test reads at full speed.
        _ = try await WorkerFixtures.waitForCommitted(
            group: rig.configuration.groupID, topic: "req", partitions: rig.requestPartitions,
            servers: rig.servers, total: produced.count)
        try rig.cluster.setBrokerLatency(2, .zero)
        try await rig.checkAnswers(produced, running: running, watch: watch)
        try await running.stop()
    }

    // MARK: 5. Commit failures, coordinator moving

    @Test(
        """
        offset commits failing (NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE, REQUEST_TIMED_OUT) while the coordinator moves: commits \
        reach the end, never past an unanswered message
        """
    )
    func commitFailuresCoordinatorMoving() async throws {
        let rig = try FaultRig(group: "commit")
        try rig.lead(request: 1, results: 2, deadLetters: 2, coordinator: 1)
        let recorder = LogRecorder()
        let running = try await rig.start(recorder: recorder)
        let watch = try CommitWatch(rig)

        // Requests keep coming (50 every 200 ms) until the faults are over, so there is always
        // something to commit.
        let faultsOver = RunningWorker.Flag()
        let producing = Task {
            try await FaultRig.produceSteadily(
                FaultRig.mixed(20_000, badEvery: 4, prefix: "c"), servers: rig.servers,
                batch: 50, every: .milliseconds(200), until: faultsOver)
        }
        // Commits fail (cluster-wide errors), then the coordinator moves, and the new one fails
        // its first commits too (errors on that broker only, so we can tell they were hit):
        // librdkafka holds and retries commits meanwhile, several at once.
        let errors: [KafkaError.Code] = [.notCoordinator, .coordinatorNotAvailable, .requestTimedOut]
        for (step, broker) in [Int32(3), 2, 1].enumerated() {
            rig.cluster.pushRequestErrors(.offsetCommit, errors + errors)
            try rig.cluster.pushBrokerRequestErrors(broker, .offsetCommit, errors.map { ($0, rtt: .milliseconds(50)) })
            try await Task.sleep(for: .milliseconds(800 + 200 * step))
            try rig.cluster.setCoordinator(.group, key: rig.configuration.groupID, broker: broker)
            try await eventually(.seconds(60), "broker \(broker)'s commit errors to be hit") {
                try rig.cluster.brokerRequestErrorCount(broker, .offsetCommit) == 0
            }
            try await Task.sleep(for: .milliseconds(800))
        }
        faultsOver.set()
        var produced = try await producing.value
        #expect(produced.count >= 500)
        let caughtUp = try await WorkerFixtures.waitForCommitted(
            group: rig.configuration.groupID, topic: "req", partitions: rig.requestPartitions,
            servers: rig.servers, total: produced.count)
        #expect(caughtUp == produced.count)

        // A commit answered late with REQUEST_TIMED_OUT is retried by librdkafka: a newer
        // position committed meanwhile must not be overwritten by it for good (the worker used
        // to have several commits in flight; the older one, applied last, stayed committed).
        try rig.cluster.pushBrokerRequestErrors(1, .offsetCommit, [(.requestTimedOut, rtt: .seconds(2))])
        produced.merge(try await FaultRig.produce(FaultRig.mixed(20, badEvery: 1, prefix: "x"), servers: rig.servers))
        try await eventually(.seconds(30), "the late commit to be sent") { try rig.cluster.brokerRequestErrorCount(1, .offsetCommit) == 0 }
        produced.merge(try await FaultRig.produce(FaultRig.mixed(20, badEvery: 1, prefix: "y"), servers: rig.servers))
        try await rig.checkAnswers(produced, running: running, watch: watch)
        try await running.stop()

        // The operator sees the failing commits (a warning at the start of each streak, not one
        // per attempt) and when they land again.
        let records = recorder.records
        let warnings = records.filter { $0.level == .warning && $0.message.hasPrefix("commit failed") }
        let recovered = records.filter { $0.level == .info && $0.message == "commits land again" }
        #expect(!warnings.isEmpty, "no warning about failing commits")
        #expect(!recovered.isEmpty, "no line saying commits land again")
        #expect(
            warnings.count <= recovered.count + 1,
            "a warning per failed attempt instead of per streak: \(warnings.count) warnings, \(recovered.count) recoveries")
    }

    // MARK: 6. Fetch errors

    @Test("fetch errors on the request topic's leader (NOT_LEADER_FOR_PARTITION, UNKNOWN_TOPIC_OR_PARTITION, ...): all answered once")
    func fetchErrors() async throws {
        let rig = try FaultRig(group: "fetch")
        try rig.lead(request: 1, results: 2, deadLetters: 2, coordinator: 3)
        let running = try await rig.start()
        let watch = try CommitWatch(rig)

        let codes: [KafkaError.Code] = [
            .notLeaderForPartition, .unknownTopicOrPartition, .requestTimedOut, .leaderNotAvailable,
            .kafkaStorageError, .notLeaderForPartition, .unknownTopicOrPartition, .transport,
        ]
        try rig.cluster.pushBrokerRequestErrors(1, .fetch, codes.map { ($0, rtt: .milliseconds(100)) })
        let first = FaultRig.mixed(600, badEvery: 3, prefix: "f")
        var produced = try await FaultRig.produce(first, servers: rig.servers)
        try await eventually(.seconds(120), "the fetch errors to be used") { try rig.cluster.brokerRequestErrorCount(1, .fetch) == 0 }
        // And cluster-wide, while the worker fetches the rest.
        rig.cluster.pushRequestErrors(.fetch, codes)
        produced.merge(try await FaultRig.produce(FaultRig.mixed(600, badEvery: 3, prefix: "g"), servers: rig.servers))
        try await rig.checkAnswers(produced, running: running, watch: watch)
        try await running.stop()
    }

    // MARK: 7. Leaders moving

    @Test("the request and results partitions' leaders move between brokers while requests flow: all answered once, commits to the end")
    func leadersMoving() async throws {
        let rig = try FaultRig(group: "leaders")
        try rig.lead(request: 1, results: 2, deadLetters: 2, coordinator: 3)
        let running = try await rig.start()
        let watch = try CommitWatch(rig)

        let requests = FaultRig.mixed(2_400, badEvery: 4, prefix: "l")
        let producing = Task { try await FaultRig.produceSteadily(requests, servers: rig.servers, batch: 200, every: .milliseconds(250)) }
        let moves: [(request: Int32, results: Int32, deadLetters: Int32)] = [(2, 3, 1), (3, 1, 2), (1, 2, 3), (2, 1, 1)]
        for move in moves {
            try await Task.sleep(for: .milliseconds(700))
            for partition in 0..<rig.requestPartitions {
                try rig.cluster.setPartitionLeader(topic: "req", partition: partition, broker: move.request)
            }
            try rig.cluster.setPartitionLeader(topic: "res", partition: 0, broker: move.results)
            try rig.cluster.setPartitionLeader(topic: "dlq", partition: 0, broker: move.deadLetters)
        }
        let produced = try await producing.value
        try await rig.checkAnswers(produced, running: running, watch: watch)
        try await running.stop()
    }
}

extension WorkerFaultTests {
    // MARK: 8. Authorization on the worker's own results topic: fatal

    @Test(
        """
        the results topic refusing the worker's writes (TOPIC_AUTHORIZATION_FAILED) is fatal: the worker exits with the error and \
        commits nothing further
        """
    )
    func resultsTopicUnauthorizedIsFatal() async throws {
        let rig = try FaultRig(group: "fatal")
        try rig.lead(request: 1, results: 2, deadLetters: 3, coordinator: 1)
        let running = try await rig.start()

        var produced = try await FaultRig.produce(FaultRig.mixed(200, badEvery: 4, prefix: "a"), servers: rig.servers)
        let before = try await WorkerFixtures.waitForCommitted(
            group: rig.configuration.groupID, topic: "req", partitions: rig.requestPartitions,
            servers: rig.servers, total: produced.count)
        #expect(before == produced.count)

        // Broker 2 leads only the results topic: every write to it is refused from now on.
        try rig.cluster.pushBrokerRequestErrors(2, .produce, Array(repeating: (.topicAuthorizationFailed, rtt: .zero), count: 50))
        produced.merge(try await FaultRig.produce(FaultRig.mixed(100, badEvery: 4, prefix: "b"), servers: rig.servers))
        try await eventually(.seconds(60), "the worker to exit") { running.hasExited }
        await #expect {
            try await running.task.value
        } throws: { error in
            (error as? KafkaError)?.code == .topicAuthorizationFailed
        }
        #expect(running.status.notReadyReason == "stopping")
        // Nothing was answered after the refusal, so nothing more was committed.
        try await Task.sleep(for: .seconds(1))
        let probe = try KafkaConsumer(
            configuration: KafkaConsumerConfiguration(bootstrapServers: rig.servers, groupID: rig.configuration.groupID))
        let committed = try await probe.committed((0..<rig.requestPartitions).map { KafkaTopicPartition(topic: "req", partition: $0) })
        try? await probe.close()
        #expect(committed.reduce(0) { $0 + Int($1.offset ?? 0) } == before)
    }
}

// MARK: - Support

/// A 3-broker mock cluster with the tests' topics (`req` with two partitions, `res`, `dlq`,
/// `mine`, one partition each) and a worker configuration with the defaults.
struct FaultRig {
    let cluster: KafkaMockCluster
    let servers: String
    var configuration: WorkerConfiguration
    let requestPartitions: Int32 = 2

    init(group: String) throws {
        cluster = try KafkaMockCluster(brokers: 3)
        for (topic, partitions) in [("req", Int(requestPartitions)), ("res", 1), ("dlq", 1), ("mine", 1)] {
            try cluster.createTopic(topic, partitions: partitions)
        }
        servers = cluster.bootstrapServers
        configuration = WorkerFixtures.configuration(servers, group: group)
        if let debug = ProcessInfo.processInfo.environment["FAULT_DEBUG"] { configuration.kafka["debug"] = debug }
    }

    /// Who leads what: the request partitions, the results and dead-letter topics, the group.
    func lead(request: Int32, results: Int32, deadLetters: Int32, coordinator: Int32) throws {
        for partition in 0..<requestPartitions { try cluster.setPartitionLeader(topic: "req", partition: partition, broker: request) }
        try cluster.setPartitionLeader(topic: "res", partition: 0, broker: results)
        try cluster.setPartitionLeader(topic: "dlq", partition: 0, broker: deadLetters)
        try cluster.setPartitionLeader(topic: "mine", partition: 0, broker: results)
        try cluster.setCoordinator(.group, key: configuration.groupID, broker: coordinator)
    }

    /// Starts the worker and waits until it is ready (warmed, partitions assigned).
    func start(recorder: LogRecorder? = nil) async throws -> RunningWorker {
        let engine = try #require(WorkerFixtures.engine)
        let running = RunningWorker(configuration, backend: PipelinesBackend(engine: engine, lanes: 2), recorder: recorder)
        let status = running.status
        try await eventually(.seconds(90), "the worker to be ready") { status.isReady }
        return running
    }

    struct Request: Sendable {
        var id: String
        var bad: Bool
        var replyTo: String?

        var message: KafkaProducerMessage {
            let value = bad ? "not json \(id)" : "{\"id\": \"\(id)\", \"task\": \"text-classification\", \"text\": \"Hei \(id)\"}"
            return KafkaProducerMessage(
                topic: "req", key: Array(id.utf8), value: Array(value.utf8),
                headers: replyTo.map { [KafkaHeader(name: WorkerHeaders.replyTo, string: $0)] } ?? [])
        }
    }

    /// `count` requests, every `badEvery`-th a line that is not JSON.
    static func mixed(_ count: Int, badEvery: Int, prefix: String) -> [Request] {
        (0..<count).map { Request(id: "\(prefix)\($0)", bad: $0 % badEvery == badEvery - 1) }
    }

    /// `count` requests, only every `goodEvery`-th a valid one.
    static func mixed(_ count: Int, goodEvery: Int, prefix: String) -> [Request] {
        (0..<count).map { Request(id: "\(prefix)\($0)", bad: $0 % goodEvery != 0) }
    }

    /// Where each request landed.
    struct Produced: Sendable {
        var at: [String: (partition: Int32, offset: Int64)] = [:]
        var byOffset: [Int32: [Int64: String]] = [:]
        var bad: Set<String> = []
        var values: [String: [UInt8]] = [:]
        var count: Int { at.count }

        mutating func record(_ request: Request, partition: Int32, offset: Int64) {
            at[request.id] = (partition, offset)
            values[request.id] = request.message.value
            byOffset[partition, default: [:]][offset] = request.id
            if request.bad { bad.insert(request.id) }
        }

        mutating func merge(_ other: Produced) {
            for (id, place) in other.at {
                at[id] = place
                byOffset[place.partition, default: [:]][place.offset] = id
            }
            bad.formUnion(other.bad)
            values.merge(other.values) { $1 }
        }
    }

    static func produce(_ requests: [Request], servers: String) async throws -> Produced {
        try await produceSteadily(requests, servers: servers, batch: requests.count, every: .zero)
    }

    /// Produces `batch` requests at a time, one batch every `every`, recording where each landed;
    /// stops early (after a batch) once `until` is set.
    static func produceSteadily(
        _ requests: [Request], servers: String, batch: Int, every: Duration,
        until: RunningWorker.Flag? = nil
    ) async throws -> Produced {
        let producer = try KafkaProducer(configuration: .init(bootstrapServers: servers))
        var produced = Produced()
        for start in stride(from: 0, to: requests.count, by: max(1, batch)) {
            if until?.isSet == true { break }
            let slice = requests[start..<min(start + max(1, batch), requests.count)]
            var pending: [(Request, KafkaPendingDelivery)] = []
            for request in slice { pending.append((request, try await producer.enqueue(request.message))) }
            for (request, delivery) in pending {
                let report = try await delivery.get()
                produced.record(request, partition: report.partition, offset: try #require(report.offset))
            }
            if every > .zero { try await Task.sleep(for: every) }
        }
        try await producer.close(timeout: .seconds(10))
        return produced
    }

    static func key(_ message: KafkaConsumerMessage) -> String { String(decoding: message.key ?? [], as: UTF8.self) }
    static func isFinal(_ message: KafkaConsumerMessage) -> Bool { message.headerValues(WorkerHeaders.final) == [Array("true".utf8)] }

    /// A metric's value from the worker's `/metrics` text (unlabelled metrics only).
    static func counter(_ metrics: WorkerMetrics, _ name: String) -> Double? {
        counter(String(decoding: metrics.render(), as: UTF8.self), name)
    }

    /// A metric's value from a rendering of `/metrics` (unlabelled metrics only).
    static func counter(_ text: String, _ name: String) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(name + " ") {
            return Double(line.dropFirst(name.count + 1).trimmingCharacters(in: .whitespaces))
        }
        return nil
    }

    /// Every request answered exactly once on the results topic (`rerouted` ones with an error,
    /// like the bad ones; good ones with a result), every bad or rerouted one dead-lettered exactly
    /// once (a letter's source coordinates are the request's), no commit ever past an unanswered
    /// message, commits at the end of every partition; the worker still running and ready.
    /// Returns the results and the letters.
    @discardableResult
    func checkAnswers(
        _ produced: Produced, running: RunningWorker, watch: CommitWatch, rerouted: Set<String> = [],
        timeout: Duration = .seconds(120)
    ) async throws -> (results: [KafkaConsumerMessage], letters: [KafkaConsumerMessage]) {
        let lettered = produced.bad.union(rerouted)
        let (results, letters) = try await Self.read(results: produced.count, letters: lettered.count, servers: servers, timeout: timeout)

        var finals: [String: Int] = [:]
        for result in results {
            let id = Self.key(result)
            #expect(Self.isFinal(result), "\(id): not final")
            finals[id, default: 0] += 1
            let text = String(decoding: result.value ?? [], as: UTF8.self)
            if lettered.contains(id) {
                #expect(text.contains("\"error\""), "\(id): \(text.prefix(300))")
            } else {
                #expect(text.contains("\"result\""), "\(id): \(text.prefix(300))")
            }
        }
        let missing = produced.at.keys.filter { finals[$0] == nil }
        let repeated = finals.filter { $0.value > 1 }
        #expect(missing.isEmpty, "\(missing.count) requests without an answer: \(missing.sorted().prefix(20))")
        #expect(repeated.isEmpty, "answered more than once: \(repeated.sorted { $0.key < $1.key }.prefix(20))")
        #expect(Set(finals.keys) == Set(produced.at.keys))

        var letterCount: [String: Int] = [:]
        for letter in letters {
            let source = Self.source(letter)
            let id = source.flatMap { produced.byOffset[$0.partition]?[$0.offset] } ?? "?"
            letterCount[id, default: 0] += 1
            if letter.key != nil { #expect(Self.key(letter) == id) }
            if letter.value != nil { #expect(letter.value == produced.values[id], "letter for \(id) changed the value") }
        }
        #expect(Set(letterCount.keys) == lettered, "letters for \(Set(letterCount.keys).symmetricDifference(lettered).sorted().prefix(20))")
        #expect(letterCount.values.allSatisfy { $0 == 1 }, "\(letterCount.filter { $0.value > 1 }.sorted { $0.key < $1.key }.prefix(20))")

        let committed = try await WorkerFixtures.waitForCommitted(
            group: configuration.groupID, topic: "req", partitions: requestPartitions,
            servers: servers, total: produced.count)
        #expect(committed == produced.count, "committed \(committed) of \(produced.count)")
        #expect(!running.hasExited, "the worker exited")
        let status = running.status
        try await eventually(.seconds(60), "the worker to be ready again") { status.isReady }

        let violations = watch.stop(checking: produced, results: results, letters: letters, lettered: lettered)
        #expect(watch.sampleCount > 0, "no committed offsets were sampled")
        #expect(violations.isEmpty, "committed past unanswered requests: \(violations.prefix(10))")

        // Nothing more on the output topics than what was read: no second copies.
        let probe = try KafkaConsumer(
            configuration: KafkaConsumerConfiguration(bootstrapServers: servers, groupID: "probe-\(UUID().uuidString)"))
        #expect(try await probe.watermarks(topic: "res", partition: 0).high == Int64(results.count))
        #expect(try await probe.watermarks(topic: "dlq", partition: 0).high == Int64(letters.count))
        try? await probe.close()
        return (results, letters)
    }

    /// Reads `results` messages of `res` and `letters` of `dlq` from the beginning, with one
    /// consumer (one group join); fails after `timeout`.
    static func read(results: Int, letters: Int, servers: String, timeout: Duration) async throws -> (
        results: [KafkaConsumerMessage], letters: [KafkaConsumerMessage]
    ) {
        var configuration = KafkaConsumerConfiguration(bootstrapServers: servers, groupID: "reader-\(UUID().uuidString)")
        configuration.autoOffsetReset = .earliest
        let consumer = try KafkaConsumer(configuration: configuration)
        try consumer.subscribe(topics: ["res", "dlq"])
        let reader = Task { () throws -> ([KafkaConsumerMessage], [KafkaConsumerMessage]) in
            var res: [KafkaConsumerMessage] = [], dlq: [KafkaConsumerMessage] = []
            guard results + letters > 0 else { return (res, dlq) }
            for try await message in consumer.messages {
                if message.topic == "res" { res.append(message) } else { dlq.append(message) }
                if res.count >= results, dlq.count >= letters { break }
            }
            return (res, dlq)
        }
        let watchdog = Task {
            try await Task.sleep(for: timeout)
            reader.cancel()
            try? await consumer.close()
        }
        defer { watchdog.cancel() }
        let (res, dlq) = try await reader.value
        try? await consumer.close()
        try #require(
            res.count >= results && dlq.count >= letters,
            "read \(res.count) of \(results) answers and \(dlq.count) of \(letters) dead letters")
        return (res, dlq)
    }

    /// A dead letter's source partition and offset.
    static func source(_ letter: KafkaConsumerMessage) -> (partition: Int32, offset: Int64)? {
        func header(_ name: String) -> String? { (letter.headerValues(name).first ?? nil).map { String(decoding: $0, as: UTF8.self) } }
        guard let partition = header(WorkerHeaders.sourcePartition).flatMap(Int32.init),
            let offset = header(WorkerHeaders.sourceOffset).flatMap(Int64.init)
        else { return nil }
        return (partition, offset)
    }
}

/// Samples the group's committed offsets through the run, each with the ends of the results and
/// dead-letter topics read right after it. A commit is made only after the answers it covers
/// were acknowledged, so they lie below those ends: checked at the end against what the topics
/// hold, no sample may pass a request without its final answer (and bad ones their letter).
final class CommitWatch: Sendable {
    struct Sample: Sendable {
        var committed: [Int32: Int64]
        var resultsEnd: Int64
        var lettersEnd: Int64
    }
    private let samples = Mutex<[Sample]>([])
    private let task = Mutex<Task<Void, Never>?>(nil)

    init(_ rig: FaultRig, every: Duration = .milliseconds(200)) throws {
        let probe = try KafkaConsumer(
            configuration: KafkaConsumerConfiguration(bootstrapServers: rig.servers, groupID: rig.configuration.groupID))
        let list = (0..<rig.requestPartitions).map { KafkaTopicPartition(topic: "req", partition: $0) }
        task.withLock {
            // Ends when stopped or when the watch is gone (a test that failed early).
            $0 = Task { [weak self] in
                while !Task.isCancelled, self != nil {
                    if let committed = try? await probe.committed(list, timeout: .seconds(5)) {
                        var ends: (Int64, Int64)?
                        while ends == nil, !Task.isCancelled, self != nil {
                            if let results = try? await probe.watermarks(topic: "res", partition: 0, timeout: .seconds(2)),
                                let letters = try? await probe.watermarks(topic: "dlq", partition: 0, timeout: .seconds(2))
                            {
                                ends = (results.high, letters.high)
                            } else {
                                try? await Task.sleep(for: .milliseconds(100))
                            }
                        }
                        if let ends {
                            var offsets: [Int32: Int64] = [:]
                            for entry in committed { offsets[entry.partition] = entry.offset ?? 0 }
                            self?.samples.withLock { $0.append(Sample(committed: offsets, resultsEnd: ends.0, lettersEnd: ends.1)) }
                        }
                    }
                    try? await Task.sleep(for: every)
                }
                try? await probe.close()
            }
        }
    }

    var sampleCount: Int { samples.withLock { $0.count } }

    /// Stops sampling; the samples that passed an unanswered request (described).
    func stop(
        checking produced: FaultRig.Produced, results: [KafkaConsumerMessage], letters: [KafkaConsumerMessage],
        lettered: Set<String>
    ) -> [String] {
        task.withLock { $0?.cancel() }
        // Where each request's final answer and letter landed (the first, if several).
        var answeredAt: [String: Int64] = [:]
        for result in results where FaultRig.isFinal(result) {
            let id = FaultRig.key(result)
            answeredAt[id] = min(answeredAt[id] ?? .max, result.offset)
        }
        var letteredAt: [String: Int64] = [:]
        for letter in letters {
            guard let source = FaultRig.source(letter), let id = produced.byOffset[source.partition]?[source.offset] else { continue }
            letteredAt[id] = min(letteredAt[id] ?? .max, letter.offset)
        }
        var violations: [String] = []
        for sample in samples.withLock({ $0 }) {
            for (partition, committed) in sample.committed {
                for offset in 0..<max(0, committed) {
                    guard let id = produced.byOffset[partition]?[offset] else {
                        violations.append("req[\(partition)] committed \(committed): offset \(offset) was never produced")
                        break
                    }
                    if (answeredAt[id] ?? .max) >= sample.resultsEnd {
                        violations.append(
                            "req[\(partition)] committed \(committed): \(id) at \(offset) had no answer (results end \(sample.resultsEnd))")
                        break
                    }
                    if lettered.contains(id), (letteredAt[id] ?? .max) >= sample.lettersEnd {
                        violations.append(
                            """
                            req[\(partition)] committed \(committed): \(id) at \(offset) had no dead letter (letters end \
                            \(sample.lettersEnd))
                            """
                        )
                        break
                    }
                }
            }
        }
        return violations
    }
}

/// Samples the worker's flow-control gauges and readiness every few milliseconds, keeping the
/// highest in-flight count seen.
final class GaugeWatch: Sendable {
    struct Snapshot: Sendable, CustomStringConvertible {
        var inFlight: Double
        var pending: Double
        var paused: Double
        var notReady: String?
        var queuedTokens: Double = -1
        var description: String {
            "in flight \(inFlight), pending answers \(pending), queued tokens \(queuedTokens), paused \(paused), "
                + "not ready: \(notReady ?? "no")"
        }
    }
    private let metrics: WorkerMetrics
    private let status: WorkerStatus
    private let peak = Mutex(0.0)
    private let task = Mutex<Task<Void, Never>?>(nil)

    init(_ running: RunningWorker) {
        metrics = running.metrics
        status = running.status
        task.withLock {
            $0 = Task { [weak self] in
                while !Task.isCancelled, let self {
                    _ = self.snapshot()
                    try? await Task.sleep(for: .milliseconds(10))
                }
            }
        }
    }

    /// One rendering of `/metrics` per sample: it competes with the worker for the CPU (about
    /// 3 ms each under AddressSanitizer; three per sample, every 10 ms, took most of a core).
    func snapshot() -> Snapshot {
        let text = String(decoding: metrics.render(), as: UTF8.self)
        let now = Snapshot(
            inFlight: FaultRig.counter(text, "norbert_worker_in_flight") ?? -1,
            pending: FaultRig.counter(text, "norbert_worker_pending_answers") ?? -1,
            paused: FaultRig.counter(text, "norbert_worker_paused") ?? -1,
            notReady: status.notReadyReason, queuedTokens: FaultRig.counter(text, "norbert_worker_queued_tokens") ?? -1)
        peak.withLock { $0 = max($0, now.inFlight) }
        return now
    }

    var maxInFlight: Double { peak.withLock { $0 } }
    func stop() { task.withLock { $0?.cancel() } }
}
