import Kafka
import Logging
import ServiceLifecycle
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

    public init(
        configuration: WorkerConfiguration, backend: Backend, metrics: WorkerMetrics = WorkerMetrics(),
        status: WorkerStatus = WorkerStatus(), logger: Logger = Logger(label: "norbert-worker")
    ) {
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
        async let metadata = producer.loadMetadata(topics: [configuration.resultsTopic, configuration.deadLetterTopic])
        await lanes.warmUp()
        status.watch(lanes.progress, stallTimeout: configuration.laneStallTimeout)
        status.setWarmed()
        for (topic, result) in await metadata {
            guard case .failure(let error) = result else { continue }
            logger.warning(
                "no metadata for an output topic (answers to it wait until it exists)",
                metadata: ["topic": "\(topic)", "error": "\(error)"])
        }
        let consumer = try KafkaConsumer(configuration: configuration.consumerConfiguration())
        let publisher = Publisher(
            producer: producer, metrics: metrics, logger: logger,
            backoff: configuration.retryBackoff, maxBackoff: configuration.maxRetryBackoff)
        let driver = WorkerDriver(
            configuration: configuration, consumer: consumer, producer: producer, publisher: publisher, lanes: lanes,
            metrics: metrics, logger: logger, status: status, classify: { [self] in self.classify($0) })
        try consumer.subscribe(topics: configuration.requestTopics)
        logger.info(
            "worker started",
            metadata: [
                "topics": "\(configuration.requestTopics.joined(separator: ","))", "group": "\(configuration.groupID)",
                "lanes": "\(lanes.count)", "max_batch_tokens": "\(configuration.maxBatchTokens)",
            ])
        // Everything long-running is inside `driver.run()` (one task group). The graceful
        // shutdown (SIGTERM/SIGINT through the `ServiceGroup`) drains, commits, leaves the group
        // and closes the producer; cancellation stops at once without committing further.
        let failure = await withTaskCancellationHandler {
            await withGracefulShutdownHandler {
                await driver.run()
            } onGracefulShutdown: {
                driver.shutdown()
            }
        } onCancel: {
            driver.cancel()
        }
        if let failure { throw failure }
        logger.info("worker stopped")
    }

    /// Decodes and validates a message (on the poll task; the backend's `prepare` is cheap).
    /// The request is decoded before its `reply-to` is judged, so error responses carry its id.
    func classify(_ message: KafkaConsumerMessage) -> Classified<Backend.Job> {
        func reject(_ code: ErrorCode, _ text: String, replyTo: String?, id: String? = nil, task: String = "unknown", head: String = "none")
            -> Classified<Backend.Job>
        {
            .rejected(
                RequestRejection(
                    code: code.rawValue, message: text, response: backend.errorResponse(code: code.rawValue, message: text, id: id),
                    task: task, head: head, id: id), replyTo: replyTo)
        }
        let replyTo = MessageRouting.replyTo(message.headers)
        let usable: String?
        switch replyTo {
        case .topic(let topic) where configuration.replyToPolicy.refusal(topic) == nil:
            usable = topic == configuration.resultsTopic ? nil : topic
        default: usable = nil
        }
        guard let value = message.value else {
            return reject(.emptyMessage, "the message has no value (a tombstone); expected a JSON request", replyTo: usable)
        }
        guard value.count <= configuration.maxMessageBytes else {
            return reject(
                .messageTooLarge,
                """
                the message value is \(value.count) bytes; at most \(configuration.maxMessageBytes) are accepted (serve \
                --max-message-bytes)
                """,
                replyTo: usable)
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
