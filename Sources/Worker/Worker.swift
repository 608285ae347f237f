import Kafka
import Logging
import ServiceLifecycle
import Synchronization
import Wire

/// The Kafka worker as a swift-service-lifecycle `Service`: consumes the request topics, runs
/// requests in batches on the backend's lanes, publishes answers and commits only answered,
/// acknowledged offsets. On graceful shutdown (SIGTERM/SIGINT through the `ServiceGroup`) it
/// stops fetching, drains within the deadline, commits, leaves the group and returns.
/// Throws on a fatal Kafka error (after stopping without committing further).
public final class Worker<Backend: InferenceBackend>: Service {
    public let configuration: WorkerConfiguration
    public let backend: Backend
    public let metrics: WorkerMetrics
    public let status: WorkerStatus
    let logger: Logger

    public init(configuration: WorkerConfiguration, backend: Backend, metrics: WorkerMetrics = WorkerMetrics(),
                status: WorkerStatus = WorkerStatus(), logger: Logger = Logger(label: "norbert-worker")) {
        self.configuration = configuration
        self.backend = backend
        self.metrics = metrics
        self.status = status
        self.logger = logger
    }

    public func run() async throws {
        let lanes = LanePool(backend: backend, lanes: backend.lanes)
        let producer = try KafkaProducer(configuration: configuration.producerConfiguration())
        // The results and dead-letter topics' metadata, fetched while the lanes warm up: the
        // first answer then goes out at once instead of waiting ~1 s for it.
        let topics = [configuration.resultsTopic, configuration.deadLetterTopic]
        let metadata = Task { await producer.loadMetadata(topics: topics) }
        await lanes.warmUp()
        status.watch(lanes.progress, stallTimeout: configuration.laneStallTimeout)
        status.setWarmed()
        for (topic, result) in await metadata.value {
            guard case .failure(let error) = result else { continue }
            logger.warning("no metadata for an output topic (answers to it wait until it exists)", metadata: ["topic": "\(topic)", "error": "\(error)"])
        }
        let consumer = try KafkaConsumer(configuration: configuration.consumerConfiguration())
        let publisher = Publisher(
            producer: producer, metrics: metrics, logger: logger,
            backoff: configuration.retryBackoff, maxBackoff: configuration.maxRetryBackoff)
        let loop = WorkerLoop(
            configuration: configuration, consumer: consumer, publisher: publisher, replyTopics: ReplyTopics(producer: producer),
            lanes: lanes, metrics: metrics, logger: logger, status: status)
        try consumer.subscribe(topics: configuration.requestTopics)
        logger.info("worker started", metadata: [
            "topics": "\(configuration.requestTopics.joined(separator: ","))", "group": "\(configuration.groupID)",
            "lanes": "\(lanes.count)", "max_batch_tokens": "\(configuration.maxBatchTokens)",
        ])

        let interval = configuration.commitInterval
        let ticker = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                await loop.commitDue()
            }
        }
        let metrics = self.metrics
        let statistics = Task {
            for await report in consumer.statistics { metrics.record(report) }
        }
        defer {
            ticker.cancel()
            statistics.cancel()
        }

        // Shutdown, started once (by the signal or when polling ends): drain and commit, then
        // leave the group (bounded by the consumer's close timeout). Closing the consumer ends
        // `events`, which ends `poll`.
        let log = logger
        let stop = OnceTask {
            await loop.shutdown()
            do { try await consumer.close() } catch { log.warning("closing the consumer", metadata: ["error": "\(error)"]) }
        }
        let pollError: KafkaError? = await withGracefulShutdownHandler {
            do {
                try await self.poll(consumer, loop)
                return nil
            } catch let error as KafkaError {
                return error
            } catch {
                return KafkaError(code: .fail, message: "\(error)", isRetriable: false)
            }
        } onGracefulShutdown: {
            stop.start()
        }
        if let pollError { await loop.fail(pollError) }
        stop.start()
        await loop.shutdown()
        // The consumer leaves the group while the producer's last answers are delivered (both
        // bounded: see `WorkerConfiguration.worstCaseShutdown`).
        publisher.abandon()
        do { try await producer.close(timeout: configuration.producerCloseTimeout) } catch {
            logger.warning("closing the producer", metadata: ["error": "\(error)"])
        }
        await stop.value
        if let failure = await loop.failure {
            throw failure
        }
        logger.info("worker stopped")
    }

    private func poll(_ consumer: KafkaConsumer, _ loop: WorkerLoop<Backend>) async throws {
        for try await event in consumer.events {
            switch event {
            case .message(let message):
                await loop.receive(message, classify(message))
            case .assigned(let partitions):
                await loop.assign(partitions)
            case .revoked(let partitions):
                await loop.revoke(partitions)
            case .lost(let partitions):
                await loop.lose(partitions)
            case .error(let error):
                if Publisher.isFatal(error) { throw error }
                logger.warning("kafka", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Decodes and validates a message (on the poll task; the backend's `prepare` is cheap).
    /// The request is decoded before its `reply-to` is judged, so error responses carry its id.
    func classify(_ message: KafkaConsumerMessage) -> Classified<Backend.Job> {
        func reject(_ code: ErrorCode, _ text: String, replyTo: String?, id: String? = nil, task: String = "unknown", head: String = "none") -> Classified<Backend.Job> {
            .rejected(RequestRejection(code: code.rawValue, message: text, response: backend.errorResponse(code: code.rawValue, message: text, id: id),
                                       task: task, head: head, id: id), replyTo: replyTo)
        }
        let replyTo = MessageRouting.replyTo(message.headers)
        let usable: String?
        switch replyTo {
        case .topic(let topic) where configuration.replyToPolicy.refusal(topic) == nil: usable = topic == configuration.resultsTopic ? nil : topic
        default: usable = nil
        }
        guard let value = message.value else {
            return reject(.emptyMessage, "the message has no value (a tombstone); expected a JSON request", replyTo: usable)
        }
        guard value.count <= configuration.maxMessageBytes else {
            return reject(.messageTooLarge, "the message value is \(value.count) bytes; at most \(configuration.maxMessageBytes) are accepted (serve --max-message-bytes)", replyTo: usable)
        }
        let prepared: PreparedJob<Backend.Job>
        switch backend.prepare(value) {
        case .success(let job): prepared = job
        case .failure(let rejection): return .rejected(rejection, replyTo: usable)
        }
        switch replyTo {
        case .none:
            return .job(prepared, replyTo: nil)
        case .invalid(let why):
            return reject(.invalidReplyTo, why, replyTo: nil, id: prepared.id, task: prepared.task, head: prepared.head)
        case .topic(let topic):
            if let why = configuration.replyToPolicy.refusal(topic) {
                return reject(.replyToNotAllowed, why, replyTo: nil, id: prepared.id, task: prepared.task, head: prepared.head)
            }
            return .job(prepared, replyTo: usable)
        }
    }
}

/// A task started at most once, by whichever caller comes first.
final class OnceTask: Sendable {
    private let body: @Sendable () async -> Void
    private let task = Mutex<Task<Void, Never>?>(nil)

    init(_ body: @escaping @Sendable () async -> Void) { self.body = body }

    func start() {
        task.withLock { task in
            if task == nil { task = Task(operation: body) }
        }
    }

    /// Waits for the task (starting it if nobody has).
    var value: Void {
        get async {
            start()
            let running = task.withLock { $0 }
            await running?.value
        }
    }
}
