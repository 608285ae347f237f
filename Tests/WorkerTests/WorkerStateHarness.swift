import Testing

@testable import Kafka
@testable import Worker

/// Drives a ``WorkerState`` by hand: injected events, an injected clock, and the actions it
/// returned, looked at by kind. No Kafka, no lanes, no tasks.
struct StateHarness {
    typealias State = WorkerState<String>
    var state: State
    var now = ContinuousClock.now
    /// Every action so far, in order.
    private(set) var log: [WorkerAction<String>] = []
    /// The last event's actions.
    private(set) var last: [WorkerAction<String>] = []

    static let p0 = KafkaTopicPartition(topic: "req", partition: 0)
    static let p1 = KafkaTopicPartition(topic: "req", partition: 1)

    init(
        maxWait: Duration = .milliseconds(5), maxBatchTokens: Int = 64, maxQueuedTokens: Int = 1 << 20, maxInFlight: Int = .max,
        drainTimeout: Duration = .seconds(15), lanes: Int = 2, commitStartPositions: Bool = false
    ) {
        state = State(
            settings: .init(
                maxBatchTokens: maxBatchTokens, maxWait: maxWait, maxQueuedTokens: maxQueuedTokens, maxInFlight: maxInFlight,
                drainTimeout: drainTimeout, lanes: lanes, commitStartPositions: commitStartPositions))
    }

    @discardableResult
    mutating func send(_ event: WorkerEvent<String>) -> [WorkerAction<String>] {
        last = state.handle(event, now: now)
        log += last
        return last
    }

    mutating func advance(_ duration: Duration) { now += duration }

    static func message(_ partition: KafkaTopicPartition, _ offset: Int64, _ text: String = "x") -> KafkaConsumerMessage {
        KafkaConsumerMessage(
            topic: partition.topic, partition: partition.partition, offset: offset, key: nil,
            value: Array(text.utf8), headers: [], timestamp: nil)
    }

    /// A request: short, or generating (`steps` > 0), with `tokens` tokens.
    static func job(_ text: String, tokens: Int = 8, steps: Int = 0) -> Classified<String> {
        var job = PreparedJob(job: text, tokens: tokens, encoderKey: 0, task: "text-classification", head: "h", id: text)
        job.steps = steps
        return .job(job, replyTo: nil)
    }

    static func rejected(_ text: String) -> Classified<String> {
        .rejected(RequestRejection(code: "invalid_json", message: "bad", response: Array("{}".utf8), id: text), replyTo: nil)
    }

    @discardableResult
    mutating func receive(
        _ partition: KafkaTopicPartition, _ offset: Int64, _ classified: Classified<String>? = nil
    ) -> [WorkerAction<String>] {
        send(.received(Self.message(partition, offset, "m\(offset)"), classified ?? Self.job("m\(offset)")))
    }

    // MARK: Actions by kind

    var dispatches: [(id: BatchID, slot: LaneSlots.Slot, jobs: [String])] {
        last.compactMap { if case .dispatch(let id, let slot, let jobs) = $0 { (id, slot, jobs) } else { nil } }
    }
    var publishes: [(key: RequestKey, responses: [BackendResponse])] {
        last.compactMap { if case .publish(let key, _, let responses) = $0 { (key, responses) } else { nil } }
    }
    var commits: [[KafkaTopicPartitionOffset]] {
        last.compactMap { if case .commit(let offsets) = $0 { offsets } else { nil } }
    }
    var drainCommits: [(DrainID, [KafkaTopicPartitionOffset])] {
        last.compactMap { if case .commitDrain(let id, let offsets) = $0 { (id, offsets) } else { nil } }
    }
    var finished: [DrainID] { last.compactMap { if case .finishDrain(let id) = $0 { id } else { nil } } }
    var pauses: [[KafkaTopicPartition]] { last.compactMap { if case .pause(let p) = $0 { p } else { nil } } }
    var resumes: [[KafkaTopicPartition]] { last.compactMap { if case .resume(let p) = $0 { p } else { nil } } }
    var wakes: [ContinuousClock.Instant] { last.compactMap { if case .wake(let at) = $0 { at } else { nil } } }
    var stops: [KafkaError] { last.compactMap { if case .stop(let error) = $0 { error } else { nil } } }
    var logs: [WorkerLogEntry] { last.compactMap { if case .log(let entry) = $0 { entry } else { nil } } }
    var metrics: [WorkerMetric] { last.compactMap { if case .metric(let metric) = $0 { metric } else { nil } } }
    var abandons: Int { last.filter { if case .abandonPublishing = $0 { true } else { false } }.count }

    static func offsets(_ pairs: (KafkaTopicPartition, Int64)...) -> [KafkaTopicPartitionOffset] {
        pairs.map { KafkaTopicPartitionOffset(topic: $0.0.topic, partition: $0.0.partition, offset: $0.1) }
    }

    /// A final response for `text`.
    static func answer(_ text: String) -> BackendResponse {
        BackendResponse(value: Array("{\"id\":\"\(text)\"}".utf8), task: "text-classification", head: "h")
    }
    static func partial(_ text: String) -> BackendResponse {
        BackendResponse(value: Array("{\"id\":\"\(text)\",\"partial\":true}".utf8), isFinal: false, task: "text-generation", head: "h")
    }

    /// Receives `offsets` on `partition`, lets the batch wait out, runs it and returns the
    /// publishes of its answers (not yet acknowledged).
    mutating func answerUnacknowledged(_ partition: KafkaTopicPartition, _ offsets: [Int64]) -> [RequestKey] {
        let start = log.count
        for offset in offsets { receive(partition, offset) }
        advance(.milliseconds(10))
        send(.tick)
        let batch = log[start...].compactMap { action -> (BatchID, [String])? in
            if case .dispatch(let id, _, let jobs) = action { (id, jobs) } else { nil }
        }
        #expect(batch.flatMap(\.1).count == offsets.count)
        var keys: [RequestKey] = []
        for (id, jobs) in batch {
            send(.batchFinished(id, results: jobs.map { [Self.answer($0)] }, started: now))
            keys += publishes.map(\.key)
        }
        return keys
    }

    /// The same, acknowledged.
    mutating func answer(_ partition: KafkaTopicPartition, _ offsets: [Int64]) {
        for key in answerUnacknowledged(partition, offsets) { send(.published(key, .open)) }
    }
}
