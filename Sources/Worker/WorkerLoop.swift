import Kafka
import Logging
import Synchronization

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
    /// What each lane holds: its queued regular batches (each: does it generate?) and whether
    /// its side slot is taken. See ``LaneSlots``.
    private var slots: LaneSlots
    private var wakeAt: ContinuousClock.Instant?
    private var wakeTask: Task<Void, Never>?
    private var draining = 0
    private(set) var stopping = false
    private(set) var failure: KafkaError?
    private var shutdownTask: Task<Void, Never>?
    /// The shutdown drain's deadline, once it started.
    private var shutdownDeadline: ContinuousClock.Instant?
    /// Streamed requests whose partials are being published: the last publish of each.
    private var streams: [RequestKey: Task<AnswerRouter.Step, Never>] = [:]
    private let router: AnswerRouter
    /// Bytes of the in-flight messages, per partition (a dropped partition's go with it).
    private var inFlightBytes: [KafkaTopicPartition: Int] = [:]
    /// Requests whose answer (or dead letter) is being published, not yet acknowledged.
    private var pendingAnswers = 0
    /// A periodic commit is in flight (its result, or its timeout, clears it).
    private var committing = false
    /// Periodic commits failing since (first failure of the current streak) and how many: the
    /// first failure of a streak is a warning, the streak's end an info line with its length.
    private var commitFailureStreak: (since: ContinuousClock.Instant, count: Int)?

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
        slots = LaneSlots(lanes: lanes.count, batchesPerLane: Self.batchesPerLane)
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
        // During a shutdown the drain has one deadline: a revoke (the consumer leaving the group)
        // does not start a second one.
        let deadline = min(ContinuousClock.now + configuration.drainTimeout, shutdownDeadline ?? .now + configuration.drainTimeout)
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
        guard !stopping, var generation = generations[partition] else { return }
        switch tracker.receive(partition, offset: message.offset) {
        case nil, .duplicate?:
            return
        case .reset?:
            // The log was truncated and rewritten (or the position reset): answers still on
            // their way belong to the old offsets and must not complete the new ones.
            nextGeneration += 1
            generation = nextGeneration
            generations[partition] = generation
            inFlightBytes[partition] = 0
            logger.warning("offsets went back (offset reset onto a rewritten log?); tracking restarts", metadata: [
                "partition": "\(partition)", "offset": "\(message.offset)",
            ])
        case .accepted?:
            break
        }
        inFlightBytes[partition, default: 0] += message.byteCount
        metrics.inFlight.set(Double(tracker.inFlight()))
        let now = ContinuousClock.now
        switch classified {
        case .job(let prepared, let replyTo):
            let request = PendingRequest(
                message: message, generation: generation, replyTo: replyTo, received: now, job: prepared.job,
                tokens: prepared.tokens, encoderKey: Self.batcherKey(encoderKey: prepared.encoderKey, steps: prepared.steps),
                task: prepared.task, head: prepared.head, id: prepared.id)
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
        while let free = slots.free() {
            let next = batcher.next(now: .now, flush: draining > 0 || stopping) { key in free.generation || !Self.generates(key) }
            switch next {
            case .batch(let entries):
                let generation = entries.first.map { Self.generates($0.item.encoderKey) } ?? false
                guard let slot = slots.take(generation: generation) else { break }
                dispatch(entries, slot: slot)
            case .wait(let until):
                scheduleWake(at: until)
                updateFlow()
                return
            case .empty:
                updateFlow()
                return
            }
        }
        updateFlow()
    }

    /// Batcher keys: the encoder group, doubled, plus one for requests that generate, so
    /// generations batch only with each other and short requests never wait in their batches.
    static func batcherKey(encoderKey: Int, steps: Int) -> Int { encoderKey * 2 + (steps > 0 ? 1 : 0) }
    static func generates(_ key: Int) -> Bool { key & 1 == 1 }

    private func dispatch(_ entries: [Batcher<PendingRequest<Backend.Job>>.Entry], slot: LaneSlots.Slot) {
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
            let emit: @Sendable (Int, BackendResponse) -> Void = { index, response in
                if partials.append(index, response) { Task { await self.forward(partials, requests) } }
            }
            let (results, started) = slot.side
                ? await lanes.runBetweenSteps(jobs, lane: slot.lane, emit: emit)
                : await lanes.run(jobs, lane: slot.lane, emit: emit)
            for entry in entries { self.metrics.queueLatency.record(started - entry.enqueued) }
            self.forward(partials, requests)
            self.finished(slot, requests: requests, results: results, started: started, tokens: tokens)
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

    private func finished(_ slot: LaneSlots.Slot, requests: [PendingRequest<Backend.Job>], results: [[BackendResponse]], started: ContinuousClock.Instant, tokens: Int) {
        metrics.inferenceLatency.record(.now - started)
        metrics.countTokens(tokens)
        slots.release(slot)
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

    /// Starts an asynchronous commit of every position that moved (called periodically), one at
    /// a time: librdkafka holds and retries a commit while the coordinator moves, so with several
    /// in flight an older position could be applied after a newer one and stay committed.
    func commitDue() {
        guard failure == nil, !committing else { return }
        let offsets = tracker.takeCommits()
        guard !offsets.isEmpty else { return }
        committing = true
        consumer.commitAsync(offsets) { result in
            Task { await self.commitFinished(offsets, result) }
        }
    }

    private func commitFinished(_ offsets: [KafkaTopicPartitionOffset], _ result: Result<[KafkaTopicPartitionOffset], KafkaError>) {
        committing = false
        switch result {
        case .success:
            metrics.commits.increment()
            if let streak = commitFailureStreak {
                commitFailureStreak = nil
                let seconds = (ContinuousClock.now - streak.since).components.seconds
                logger.info("commits land again", metadata: ["failed_commits": "\(streak.count)", "seconds": "\(seconds)"])
            }
        case .failure(let error):
            metrics.commitFailures.increment()
            tracker.commitFailed(offsets)
            if let streak = commitFailureStreak {
                commitFailureStreak = (streak.since, streak.count + 1)
                logger.debug("commit failed; retried next time", metadata: ["error": "\(error.code.name)"])
            } else {
                commitFailureStreak = (ContinuousClock.now, 1)
                logger.warning("commit failed; retried at every commit interval until one lands (answers above the committed offsets are answered again if the partition moves meanwhile)",
                               metadata: ["error": "\(error.code.name)"])
            }
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
        shutdownDeadline = deadline
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
