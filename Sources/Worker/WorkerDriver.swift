import Kafka
import Logging

/// What reaches the driver: the state's events, plus those a sender waits on.
enum WorkerInput<Job: Sendable>: Sendable {
    case event(WorkerEvent<Job>)
    /// A message; the poll task waits until it is taken (so the consumer's own bounds hold).
    case message(KafkaConsumerMessage, Classified<Job>, taken: CheckedContinuation<Void, Never>)
    /// A revoke; the poll task waits until its drain is over (the revoke completes then).
    case revoke([KafkaTopicPartition], done: CheckedContinuation<Void, Never>)
    /// Graceful shutdown (the signal, or the poll ending).
    case shutdown
    /// The task running the worker was cancelled: stop at once, committing nothing further.
    case cancelled
    case pollEnded(KafkaError?)
    case consumerClosed
    case producerClosed
}

/// Runs the worker: one loop feeds ``WorkerState`` its inputs, one at a time, and carries out
/// the actions it returns; everything that takes time (polling, lane work, publishes, commits,
/// timers, closing) is a child task of one task group and reports back through the ``Inbox``.
/// Returns once the worker has drained, committed and closed its clients.
final class WorkerDriver<Backend: InferenceBackend>: Sendable {
    typealias Job = Backend.Job
    let configuration: WorkerConfiguration
    let consumer: KafkaConsumer
    let producer: KafkaProducer
    let publisher: Publisher
    let router: AnswerRouter
    let lanes: LanePool<Backend>
    let metrics: WorkerMetrics
    let logger: Logger
    let status: WorkerStatus
    let classify: @Sendable (KafkaConsumerMessage) -> Classified<Job>
    let inbox = Inbox<WorkerInput<Job>>()

    init(
        configuration: WorkerConfiguration, consumer: KafkaConsumer, producer: KafkaProducer, publisher: Publisher,
        lanes: LanePool<Backend>, metrics: WorkerMetrics, logger: Logger, status: WorkerStatus,
        classify: @escaping @Sendable (KafkaConsumerMessage) -> Classified<Job>
    ) {
        self.configuration = configuration
        self.consumer = consumer
        self.producer = producer
        self.publisher = publisher
        self.lanes = lanes
        self.metrics = metrics
        self.logger = logger
        self.status = status
        self.classify = classify
        let backend = lanes.backend
        router = AnswerRouter(
            configuration: configuration, publisher: publisher, metrics: metrics, logger: logger,
            replyTopics: ReplyTopics(producer: producer), errorResponse: { backend.errorResponse(code: $0, message: $1, id: $2) })
    }

    /// Starts the graceful shutdown (idempotent).
    func shutdown() { inbox.send(.shutdown) }
    func cancel() { inbox.send(.cancelled) }

    /// Runs until the worker stopped; returns the fatal error, if one stopped it.
    func run() async -> KafkaError? {
        await withDiscardingTaskGroup(returning: KafkaError?.self) { group in
            group.addTask { await self.poll() }
            group.addTask { await self.tickCommits() }
            group.addTask { [consumer, metrics] in
                for await report in consumer.statistics { metrics.record(report) }
            }
            var loop = Loop(state: WorkerState(configuration: configuration, lanes: lanes.count))
            while !loop.done {
                let input = await inbox.next()
                handle(input, &loop, &group)
            }
            group.cancelAll()
            for waiting in loop.waiting.values { waiting.resume() }
            return loop.state.failure
        }
    }

    /// The loop's own variables (the state, and what the driver waits for).
    struct Loop {
        var state: WorkerState<Job>
        /// Revokes waiting for their drain.
        var waiting: [DrainID: CheckedContinuation<Void, Never>] = [:]
        var nextDrain: DrainID = 0
        var shutdownDrain: DrainID?
        var gauges: WorkerGauges?
        var pollEnded = false
        var closingConsumer = false
        var consumerClosed = false
        var closingProducer = false
        var producerClosed = false
        var done: Bool { pollEnded && consumerClosed && producerClosed }
    }

    private func handle(_ input: WorkerInput<Job>, _ loop: inout Loop, _ group: inout DiscardingTaskGroup) {
        let event: WorkerEvent<Job>
        switch input {
        case .event(let next):
            event = next
        case .message(let message, let classified, let taken):
            taken.resume()
            event = .received(message, classified)
        case .revoke(let partitions, let done):
            loop.nextDrain += 1
            loop.waiting[loop.nextDrain] = done
            event = .revoked(partitions, drain: loop.nextDrain)
        case .shutdown:
            guard loop.shutdownDrain == nil else { return }
            loop.nextDrain += 1
            loop.shutdownDrain = loop.nextDrain
            event = .shutdown(drain: loop.nextDrain)
        case .cancelled:
            let cancelled = KafkaError(code: .fail, message: "the worker's task was cancelled", isRetriable: false)
            execute(loop.state.handle(.failed(cancelled), now: .now), &loop, &group)
            return handle(.shutdown, &loop, &group)
        case .pollEnded(let error):
            loop.pollEnded = true
            if let error { execute(loop.state.handle(.failed(error), now: .now), &loop, &group) }
            return handle(.shutdown, &loop, &group)
        case .consumerClosed:
            loop.consumerClosed = true
            return
        case .producerClosed:
            loop.producerClosed = true
            return
        }
        execute(loop.state.handle(event, now: .now), &loop, &group)
    }

    private func execute(_ actions: [WorkerAction<Job>], _ loop: inout Loop, _ group: inout DiscardingTaskGroup) {
        let inbox = self.inbox
        for action in actions {
            switch action {
            case .dispatch(let batch, let slot, let jobs):
                group.addTask { [lanes] in
                    let emit: @Sendable (Int, BackendResponse) -> Void = { inbox.send(.event(.partial(batch, index: $0, $1))) }
                    guard let (results, started) = await lanes.run(jobs, slot: slot, emit: emit) else { return }
                    inbox.send(.event(.batchFinished(batch, results: results, started: started)))
                }
            case .publish(let key, let answer, let responses):
                group.addTask { [router] in
                    inbox.send(.event(.published(key, await router.publish(answer, responses))))
                }
            case .queryStartPositions(let query):
                group.addTask { [configuration, logger] in
                    let positions = await Self.startPositions(query, configuration: configuration, logger: logger)
                    if !positions.isEmpty { inbox.send(.event(.startPositions(positions))) }
                }
            case .commit(let offsets):
                consumer.commitAsync(offsets) { result in
                    var failure: KafkaError?
                    if case .failure(let error) = result { failure = error }
                    inbox.send(.event(.commitFinished(offsets, failure)))
                }
            case .commitDrain(let drain, let offsets):
                group.addTask { [consumer] in
                    try? consumer.storeOffsets(offsets)
                    var failure: KafkaError?
                    do { _ = try await consumer.commit(offsets) } catch let error as KafkaError { failure = error } catch {
                        failure = KafkaError(code: .fail, message: "\(error)", isRetriable: false)
                    }
                    inbox.send(.event(.drainCommitted(drain, failure)))
                }
            case .pause(let partitions):
                do { try consumer.pause(partitions) } catch { logger.warning("pause failed", metadata: ["error": "\(error)"]) }
            case .resume(let partitions):
                guard !partitions.isEmpty else { break }
                do { try consumer.resume(partitions) } catch { logger.warning("resume failed", metadata: ["error": "\(error)"]) }
            case .wake(let instant):
                group.addTask {
                    try? await Task.sleep(until: instant, clock: .continuous)
                    inbox.send(.event(.tick))
                }
            case .finishDrain(let drain):
                if drain == loop.shutdownDrain {
                    closeClients(&loop, &group)
                } else {
                    loop.waiting.removeValue(forKey: drain)?.resume()
                }
            case .abandonPublishing:
                publisher.abandon()
            case .stop:
                publisher.abandon()
                closeConsumer(&loop, &group)
            case .log(let entry):
                logger.log(level: entry.level, "\(entry.message)", metadata: entry.metadata.mapValues { .string($0) })
            case .metric(let metric):
                record(metric)
            }
        }
        let gauges = loop.state.gauges
        if gauges != loop.gauges {
            show(gauges, before: loop.gauges)
            loop.gauges = gauges
        }
    }

    /// After the shutdown drain: the consumer leaves the group (its close commits what was
    /// stored) while the producer's last answers are delivered; both bounded (see
    /// `WorkerConfiguration.worstCaseShutdown`).
    private func closeClients(_ loop: inout Loop, _ group: inout DiscardingTaskGroup) {
        closeConsumer(&loop, &group)
        guard !loop.closingProducer else { return }
        loop.closingProducer = true
        publisher.abandon()
        group.addTask { [producer, configuration, logger, inbox] in
            do { try await producer.close(timeout: configuration.producerCloseTimeout) } catch {
                logger.warning("closing the producer", metadata: ["error": "\(error)"])
            }
            inbox.send(.producerClosed)
        }
    }

    /// Closing the consumer ends its events, which ends the poll task.
    private func closeConsumer(_ loop: inout Loop, _ group: inout DiscardingTaskGroup) {
        guard !loop.closingConsumer else { return }
        loop.closingConsumer = true
        group.addTask { [consumer, logger, inbox] in
            do { try await consumer.close() } catch { logger.warning("closing the consumer", metadata: ["error": "\(error)"]) }
            inbox.send(.consumerClosed)
        }
    }

    private func record(_ metric: WorkerMetric) {
        switch metric {
        case .batch(let tokens, let requests):
            metrics.batchTokens.record(Double(tokens))
            metrics.batchRequests.record(Double(requests))
        case .queued(let duration): metrics.queueLatency.record(duration)
        case .inference(let duration, let tokens):
            metrics.inferenceLatency.record(duration)
            metrics.countTokens(tokens)
        case .answered(let duration): metrics.endToEndLatency.record(duration)
        case .paused: metrics.pauses.increment()
        case .committed: metrics.commits.increment()
        case .commitFailed: metrics.commitFailures.increment()
        }
    }

    private func show(_ gauges: WorkerGauges, before: WorkerGauges?) {
        metrics.assignedPartitions.set(Double(gauges.assigned))
        metrics.inFlight.set(Double(gauges.inFlight))
        metrics.inFlightBytes.set(Double(gauges.inFlightBytes))
        metrics.queuedTokens.set(Double(gauges.queuedTokens))
        metrics.pendingAnswers.set(Double(gauges.pendingAnswers))
        metrics.paused.set(Double(gauges.paused ? 1 : 0))
        if gauges.assigned != before?.assigned { status.setAssigned(gauges.assigned) }
        status.setAwaitingBroker(gauges.awaitingBroker)
        if gauges.stopping { status.setStopping() }
    }

    // MARK: Child tasks

    /// Reads the consumer's events until it is closed (or fails).
    private func poll() async {
        var failure: KafkaError?
        do {
            for try await event in consumer.events {
                switch event {
                case .message(let message):
                    let classified = classify(message)
                    await withCheckedContinuation { inbox.send(.message(message, classified, taken: $0)) }
                case .assigned(let partitions):
                    inbox.send(.event(.assigned(partitions)))
                case .revoked(let partitions):
                    await withCheckedContinuation { inbox.send(.revoke(partitions, done: $0)) }
                case .lost(let partitions):
                    inbox.send(.event(.lost(partitions)))
                case .error(let error):
                    if Publisher.isFatal(error) { throw error }
                    logger.warning("kafka", metadata: ["error": "\(error)"])
                }
            }
        } catch let error as KafkaError {
            failure = error
        } catch {
            failure = KafkaError(code: .fail, message: "\(error)", isRetriable: false)
        }
        inbox.send(.pollEnded(failure))
    }

    /// The low watermarks of the partitions in `query` that the group has no committed offset
    /// for. Asked through a client of its own that never joins the group (so the worker's
    /// consumer can close at any time), within 5 s in all. Best effort: on an error or past the
    /// deadline nothing more is reported (the partition's first answer commits instead).
    static func startPositions(
        _ query: [KafkaTopicPartition: UInt64], configuration: WorkerConfiguration,
        logger: Logger
    ) async -> [StartPosition] {
        let deadline = ContinuousClock.now + .seconds(5)
        var settings = configuration.consumerConfiguration()
        settings.groupInstanceID = nil
        settings.assignmentStrategy = "range"
        settings.statisticsInterval = nil
        var positions: [StartPosition] = []
        do {
            let client = try KafkaConsumer(configuration: settings)
            do {
                let committed = try await client.committed(Array(query.keys).sorted(), timeout: .seconds(4))
                for entry in committed where (entry.offset ?? -1) < 0 {
                    let left = deadline - .now
                    guard let generation = query[entry.topicPartition], left > .milliseconds(10), !Task.isCancelled else { break }
                    let (low, _) = try await client.watermarks(topic: entry.topic, partition: entry.partition, timeout: left)
                    positions.append(StartPosition(partition: entry.topicPartition, generation: generation, offset: low))
                }
            } catch {
                logger.debug("start positions: not all known (the first answer commits instead)", metadata: ["error": "\(error)"])
            }
            try? await client.close()
        } catch {
            logger.debug("start positions not asked (the first answer commits instead)", metadata: ["error": "\(error)"])
        }
        return positions
    }

    /// Asks for a periodic commit every commit interval, until cancelled.
    private func tickCommits() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: configuration.commitInterval)
            inbox.send(.event(.commitDue))
        }
    }
}
