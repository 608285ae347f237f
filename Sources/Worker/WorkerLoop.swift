import Kafka
import Logging
import Synchronization

/// A request between receipt and its acknowledged answer.
struct PendingRequest<Job: Sendable>: Batchable {
    var message: KafkaConsumerMessage
    var generation: UInt64
    var replyTo: String?
    var received: ContinuousClock.Instant
    var job: Job
    var tokens: Int
    var encoderKey: Int
    var task: String
    var head: String
    var id: String?
    var partition: KafkaTopicPartition { message.topicPartition }
}

/// What the poll task made of a message before handing it to the loop.
enum Classified<Job: Sendable>: Sendable {
    case job(PreparedJob<Job>, replyTo: String?)
    case rejected(RequestRejection, replyTo: String?)
}

/// The worker's state: offsets in flight, the batcher, flow control, lanes. Messages, rebalance
/// events, finished batches and acknowledged answers all pass through here, one at a time.
actor WorkerLoop<Backend: InferenceBackend> {
    let configuration: WorkerConfiguration
    let consumer: KafkaConsumer
    let publisher: Publisher
    let lanes: LanePool<Backend>
    let metrics: WorkerMetrics
    let logger: Logger
    let status: WorkerStatus

    private var tracker = OffsetTracker()
    private var batcher: Batcher<PendingRequest<Backend.Job>>
    private var flow: FlowControl
    private var generations: [KafkaTopicPartition: UInt64] = [:]
    private var nextGeneration: UInt64 = 0
    /// Free batch slots, by lane: each lane takes a second batch while it runs one (queued on
    /// its thread), so it starts the next at once instead of idling while the loop catches up.
    private var idleLanes: [Int]
    private var wakeAt: ContinuousClock.Instant?
    private var wakeTask: Task<Void, Never>?
    private var draining = 0
    private(set) var stopping = false
    private(set) var failure: KafkaError?
    private var shutdownTask: Task<Void, Never>?
    /// Streamed requests whose partials are being published: the last publish of each.
    private var streams: [RequestKey: Task<AnswerRouter.Step, Never>] = [:]
    private let router: AnswerRouter
    /// Bytes of the in-flight messages, per partition (a dropped partition's go with it).
    private var inFlightBytes: [KafkaTopicPartition: Int] = [:]
    /// Requests whose answer (or dead letter) is being published, not yet acknowledged.
    private var pendingAnswers = 0

    init(configuration: WorkerConfiguration, consumer: KafkaConsumer, publisher: Publisher, replyTopics: ReplyTopics,
         lanes: LanePool<Backend>, metrics: WorkerMetrics, logger: Logger, status: WorkerStatus) {
        self.configuration = configuration
        self.consumer = consumer
        self.publisher = publisher
        self.lanes = lanes
        self.metrics = metrics
        self.logger = logger
        self.status = status
        batcher = Batcher(maxBatchTokens: configuration.maxBatchTokens, maxWait: configuration.maxWait)
        flow = FlowControl(maxQueuedTokens: configuration.maxQueuedTokens, maxInFlight: configuration.maxInFlight,
                           maxInFlightBytes: configuration.maxInFlightBytes)
        idleLanes = (0..<(lanes.count * Self.batchesPerLane)).map { $0 % lanes.count }.reversed()
        let backend = lanes.backend
        router = AnswerRouter(
            configuration: configuration, publisher: publisher, metrics: metrics, logger: logger, replyTopics: replyTopics,
            errorResponse: { backend.errorResponse(code: $0, message: $1, id: $2) })
    }

    static var batchesPerLane: Int { 2 }

    // MARK: Rebalances

    func assign(_ partitions: [KafkaTopicPartition]) {
        for partition in partitions {
            nextGeneration += 1
            generations[partition] = nextGeneration
        }
        tracker.assign(partitions)
        if flow.paused || stopping { pause(partitions) }
        logger.info("partitions assigned", metadata: ["partitions": "\(partitions.map(\.description).joined(separator: " "))"])
        publishAssignment()
    }

    /// Stops taking the partitions' messages, finishes their in-flight work within the drain
    /// deadline, commits, and forgets them (the revoke completes when this returns).
    func revoke(_ partitions: [KafkaTopicPartition]) async {
        let set = Set(partitions)
        draining += 1
        pump()
        let deadline = ContinuousClock.now + configuration.drainTimeout
        while tracker.inFlight(partitions) > 0, ContinuousClock.now < deadline, failure == nil {
            try? await Task.sleep(for: .milliseconds(2))
        }
        draining -= 1
        let left = tracker.inFlight(partitions)
        await commitNow(set)
        drop(partitions)
        logger.info("partitions revoked", metadata: [
            "partitions": "\(partitions.map(\.description).joined(separator: " "))", "unfinished": "\(left)",
        ])
    }

    /// Lost partitions: another member may own them already; drop their work, commit nothing.
    func lose(_ partitions: [KafkaTopicPartition]) {
        let left = tracker.inFlight(partitions)
        drop(partitions)
        logger.warning("partitions lost; in-flight work dropped without committing", metadata: [
            "partitions": "\(partitions.map(\.description).joined(separator: " "))", "dropped": "\(left)",
        ])
    }

    private func drop(_ partitions: [KafkaTopicPartition]) {
        let set = Set(partitions)
        for partition in partitions {
            generations[partition] = nil
            inFlightBytes[partition] = nil
        }
        streams = streams.filter { !set.contains($0.key.partition) }
        tracker.remove(partitions)
        _ = batcher.remove { set.contains($0.partition) }
        updateFlow()
        publishAssignment()
    }

    private func publishAssignment() {
        let count = generations.count
        metrics.assignedPartitions.set(Double(count))
        status.setAssigned(count)
        metrics.inFlight.set(Double(tracker.inFlight()))
    }

    // MARK: Messages

    func receive(_ message: KafkaConsumerMessage, _ classified: Classified<Backend.Job>) {
        let partition = message.topicPartition
        guard !stopping, let generation = generations[partition], tracker.receive(partition, offset: message.offset) else { return }
        inFlightBytes[partition, default: 0] += message.byteCount
        metrics.inFlight.set(Double(tracker.inFlight()))
        let now = ContinuousClock.now
        switch classified {
        case .job(let prepared, let replyTo):
            let request = PendingRequest(
                message: message, generation: generation, replyTo: replyTo, received: now, job: prepared.job,
                tokens: prepared.tokens, encoderKey: prepared.encoderKey, task: prepared.task, head: prepared.head, id: prepared.id)
            batcher.enqueue(request, now: now)
            pump()
        case .rejected(let rejection, let replyTo):
            let answer = Answer(message: message, generation: generation, replyTo: replyTo, received: now, id: rejection.id)
            let responses = [BackendResponse(value: rejection.response, rejection: rejection, outcome: rejection.code, task: rejection.task, head: rejection.head)]
            startPublishing(answer, responses)
            updateFlow()
        }
    }

    // MARK: Batches

    private func pump() {
        while let lane = idleLanes.popLast() {
            switch batcher.next(now: .now, flush: draining > 0 || stopping) {
            case .batch(let entries):
                dispatch(entries, lane: lane)
            case .wait(let until):
                idleLanes.append(lane)
                scheduleWake(at: until)
                updateFlow()
                return
            case .empty:
                idleLanes.append(lane)
                updateFlow()
                return
            }
        }
        updateFlow()
    }

    private func dispatch(_ entries: [Batcher<PendingRequest<Backend.Job>>.Entry], lane: Int) {
        let requests = entries.map(\.item)
        let tokens = requests.reduce(0) { $0 + $1.tokens }
        metrics.batchTokens.record(Double(tokens))
        metrics.batchRequests.record(Double(requests.count))
        let jobs = requests.map(\.job)
        let lanes = self.lanes
        Task {
            // Streamed partials go from the lane's thread into `partials` and are handed over
            // in order by a task started when the first arrives; what is left is handed over
            // here, before the batch's final responses. A batch without partials costs no hop.
            let partials = PartialBuffer()
            let (results, started) = await lanes.run(jobs, lane: lane) { index, response in
                if partials.append(index, response) { Task { await self.forward(partials, requests) } }
            }
            for entry in entries { self.metrics.queueLatency.record(started - entry.enqueued) }
            self.forward(partials, requests)
            self.finished(lane: lane, requests: requests, results: results, started: started, tokens: tokens)
        }
    }

    private func forward(_ partials: PartialBuffer, _ requests: [PendingRequest<Backend.Job>]) {
        for (index, response) in partials.take() where requests.indices.contains(index) { partial(requests[index], response) }
    }

    /// A streamed partial response: published at once, after the request's earlier ones.
    private func partial(_ request: PendingRequest<Backend.Job>, _ response: BackendResponse) {
        guard generations[request.partition] == request.generation else { return }
        let key = RequestKey(request.message)
        let answer = Answer(message: request.message, generation: request.generation, replyTo: request.replyTo, received: request.received, id: request.id)
        let router = self.router, previous = streams[key]
        streams[key] = Task { await router.publish(answer, [response], after: previous) }
    }

    private func finished(lane: Int, requests: [PendingRequest<Backend.Job>], results: [[BackendResponse]], started: ContinuousClock.Instant, tokens: Int) {
        metrics.inferenceLatency.record(.now - started)
        metrics.countTokens(tokens)
        idleLanes.append(lane)
        for (request, responses) in zip(requests, results) {
            guard generations[request.partition] == request.generation else {  // revoked or lost meanwhile
                streams[RequestKey(request.message)] = nil
                continue
            }
            let answer = Answer(message: request.message, generation: request.generation, replyTo: request.replyTo, received: request.received, id: request.id)
            startPublishing(answer, responses)
        }
        pump()
    }

    private func scheduleWake(at instant: ContinuousClock.Instant) {
        if let wakeAt, wakeAt <= instant { return }
        wakeTask?.cancel()
        wakeAt = instant
        wakeTask = Task {
            try? await Task.sleep(until: instant)
            guard !Task.isCancelled else { return }
            self.wake()
        }
    }

    private func wake() {
        wakeAt = nil
        wakeTask = nil
        pump()
    }

    private func updateFlow() {
        let load = FlowControl.Load(
            queuedTokens: batcher.queuedTokens, inFlight: tracker.inFlight(), inFlightBytes: inFlightBytes.values.reduce(0, +))
        metrics.queuedTokens.set(Double(load.queuedTokens))
        metrics.inFlightBytes.set(Double(load.inFlightBytes))
        metrics.pendingAnswers.set(Double(pendingAnswers))
        // Not ready while answers pile up unacknowledged: the broker, not the model, is the limit.
        let stalled = flow.paused && pendingAnswers > 0 && pendingAnswers * 2 >= max(1, load.inFlight)
        status.setAwaitingBroker(stalled ? pendingAnswers : 0)
        let metadata: Logger.Metadata = [
            "queued_tokens": "\(load.queuedTokens)", "in_flight": "\(load.inFlight)",
            "in_flight_bytes": "\(load.inFlightBytes)", "pending_answers": "\(pendingAnswers)",
        ]
        switch flow.update(load) {
        case .pause?:
            metrics.pauses.increment()
            metrics.paused.set(Double(1))
            pause(Array(generations.keys))
            logger.info("fetching paused", metadata: metadata)
            let stalledNow = pendingAnswers > 0 && pendingAnswers * 2 >= max(1, load.inFlight)
            status.setAwaitingBroker(stalledNow ? pendingAnswers : 0)
        case .resume?:
            metrics.paused.set(Double(0))
            status.setAwaitingBroker(0)
            guard !stopping else { return }
            do { try consumer.resume(Array(generations.keys)) } catch { logger.warning("resume failed", metadata: ["error": "\(error)"]) }
            logger.info("fetching resumed", metadata: metadata)
        case nil:
            break
        }
    }

    private func pause(_ partitions: [KafkaTopicPartition]) {
        guard !partitions.isEmpty else { return }
        do { try consumer.pause(partitions) } catch { logger.warning("pause failed", metadata: ["error": "\(error)"]) }
    }

    // MARK: Answers and offsets

    /// Publishes a request's final responses (after any streamed partials still on their way);
    /// the request counts as answered once they are acknowledged.
    private func startPublishing(_ answer: Answer, _ responses: [BackendResponse]) {
        let previous = streams.isEmpty ? nil : streams.removeValue(forKey: RequestKey(answer.message))
        let router = self.router
        pendingAnswers += 1
        Task {
            let step = await router.publish(answer, responses, after: previous)
            self.published(answer, step)
        }
    }

    private func published(_ answer: Answer, _ step: AnswerRouter.Step) {
        pendingAnswers -= 1
        switch step {
        case .open, .closed(.delivered): answered(answer)
        case .closed(.fatal(let error)): fail(error)
        case .closed(.abandoned), .closed(.rejected): break
        }
        updateFlow()
    }

    private func answered(_ answer: Answer) {
        let partition = answer.message.topicPartition
        guard generations[partition] == answer.generation else { return }
        tracker.complete(partition, offset: answer.message.offset)
        inFlightBytes[partition, default: 0] -= answer.message.byteCount
        metrics.endToEndLatency.record(.now - answer.received)
        metrics.inFlight.set(Double(tracker.inFlight()))
    }

    /// Starts an asynchronous commit of every position that moved (called periodically).
    func commitDue() {
        guard failure == nil else { return }
        let offsets = tracker.takeCommits()
        guard !offsets.isEmpty else { return }
        consumer.commitAsync(offsets) { result in
            Task { await self.commitFinished(offsets, result) }
        }
    }

    private func commitFinished(_ offsets: [KafkaTopicPartitionOffset], _ result: Result<[KafkaTopicPartitionOffset], KafkaError>) {
        switch result {
        case .success: metrics.commits.increment()
        case .failure(let error):
            metrics.commitFailures.increment()
            tracker.commitFailed(offsets)
            logger.debug("commit failed; retried next time", metadata: ["error": "\(error.code.name)"])
        }
    }

    /// Commits the answered positions of `partitions` (all when nil) and waits for the result.
    /// They are also stored, so the consumer's own revoke/close commit retries them.
    private func commitNow(_ partitions: Set<KafkaTopicPartition>?) async {
        guard failure == nil else { return }
        let offsets = tracker.partitions.compactMap { partition, state -> KafkaTopicPartitionOffset? in
            guard partitions?.contains(partition) ?? true, let position = state.commitPosition else { return nil }
            return KafkaTopicPartitionOffset(topic: partition.topic, partition: partition.partition, offset: position)
        }
        guard !offsets.isEmpty else { return }
        try? consumer.storeOffsets(offsets)
        do {
            try await consumer.commit(offsets)
            metrics.commits.increment()
        } catch {
            metrics.commitFailures.increment()
            logger.warning("commit failed (the consumer retries the stored offsets)", metadata: ["error": "\(error)"])
        }
    }

    // MARK: Shutdown and failure

    /// Stops fetching, finishes in-flight work within the drain deadline and commits.
    func shutdown() async {
        if let shutdownTask { return await shutdownTask.value }
        let task = Task { await self.drainAll() }
        shutdownTask = task
        await task.value
    }

    private func drainAll() async {
        stopping = true
        status.setStopping()
        pause(Array(generations.keys))
        pump()
        let deadline = ContinuousClock.now + configuration.drainTimeout
        while tracker.inFlight() > 0, ContinuousClock.now < deadline, failure == nil {
            try? await Task.sleep(for: .milliseconds(2))
        }
        let left = tracker.inFlight()
        await commitNow(nil)
        publisher.abandon()
        logger.info("drained", metadata: ["unfinished": "\(left)"])
    }

    /// A fatal error: stop without committing anything further.
    func fail(_ error: KafkaError) {
        guard failure == nil else { return }
        failure = error
        stopping = true
        status.setStopping()
        publisher.abandon()
        logger.critical("fatal error; stopping without committing further", metadata: ["error": "\(error)"])
        let consumer = self.consumer
        Task { try? await consumer.close() }
    }
}

/// Partial responses on their way from a lane to the loop, in order.
final class PartialBuffer: Sendable {
    private let state = Mutex<(items: [(Int, BackendResponse)], handing: Bool)>(([], false))

    /// Adds a partial; true when nothing is on its way to hand it over (start a `take`).
    func append(_ index: Int, _ response: BackendResponse) -> Bool {
        state.withLock { state in
            state.items.append((index, response))
            guard !state.handing else { return false }
            state.handing = true
            return true
        }
    }

    /// Everything added so far, in order; later additions start a new hand-over.
    func take() -> [(Int, BackendResponse)] {
        state.withLock { state in
            let items = state.items
            state.items = []
            state.handing = false
            return items
        }
    }
}

/// A request's place in its partition.
struct RequestKey: Hashable, Sendable {
    var partition: KafkaTopicPartition
    var offset: Int64
    init(_ message: KafkaConsumerMessage) {
        partition = message.topicPartition
        offset = message.offset
    }
}

/// Identifies the request an answer belongs to.
struct Answer: Sendable {
    var message: KafkaConsumerMessage
    var generation: UInt64
    var replyTo: String?
    var received: ContinuousClock.Instant
    /// The request's id, when it could be read.
    var id: String?
}

extension KafkaConsumerMessage {
    /// What the message holds in memory: key, value and headers.
    var byteCount: Int {
        (key?.count ?? 0) + (value?.count ?? 0) + headers.reduce(0) { $0 + $1.name.utf8.count + ($1.value?.count ?? 0) } + 64
    }
}
