import Kafka
import Logging
import Synchronization

/// Publishes answers and dead letters, retrying transient failures with exponential backoff.
final class Publisher: Sendable {
    enum Outcome: Sendable, Equatable {
        case delivered
        /// Not deliverable to that topic (bad topic, too large, ...): the caller reroutes.
        case rejected(KafkaError)
        /// The producer (or our authorization) is broken: stop without committing further.
        case fatal(KafkaError)
        /// Given up because the worker is stopping.
        case abandoned
    }

    let producer: KafkaProducer
    let metrics: WorkerMetrics
    let logger: Logger
    let backoff: Duration
    let maxBackoff: Duration
    /// Attempts on a `reply-to` topic before the answer is rerouted (unknown topics otherwise retry forever).
    let replyToAttempts = 3
    private let abandoned = Mutex(false)

    init(producer: KafkaProducer, metrics: WorkerMetrics, logger: Logger, backoff: Duration, maxBackoff: Duration) {
        self.producer = producer
        self.metrics = metrics
        self.logger = logger
        self.backoff = backoff
        self.maxBackoff = maxBackoff
    }

    /// Stops retrying: pending and future publishes end with `.abandoned`.
    func abandon() { abandoned.withLock { $0 = true } }
    var isAbandoned: Bool { abandoned.withLock { $0 } }

    /// Where a message goes decides how its failures are handled.
    enum Destination: Sendable {
        /// The worker's own topics (results, dead letters): retriable errors are retried until
        /// delivered; other errors are returned as `.rejected` for the caller to reroute.
        case owned
        /// Like `.owned`, but every non-fatal error is retried (with the capped backoff) until
        /// delivered: the last resort of an answer, moving on would lose the message.
        case persistent
        /// A topic the requester chose (`reply-to`): a few attempts, and no topic-level error
        /// (unknown, unauthorized, too large, ...) is fatal or retried for long: it is `.rejected`.
        case requester
    }

    /// Errors that mean the worker must stop: librdkafka's fatal errors, and authorization or
    /// fencing on the worker's own topics and group (a configuration or credentials problem that
    /// retrying cannot mend; a restart with the problem fixed resumes from the last commit).
    /// Authentication failures are not among them: librdkafka reports them per connection and
    /// keeps retrying (a broker restarting or a credential rotation mid-way passes); they are
    /// logged and retried.
    static func isFatal(_ error: KafkaError) -> Bool {
        if error.isFatal { return true }
        return fatalCodes.contains(error.code.rawValue)
    }

    static let fatalCodes: Set<Int32> = [
        KafkaError.Code.topicAuthorizationFailed.rawValue, KafkaError.Code.groupAuthorizationFailed.rawValue,
        KafkaError.Code.clusterAuthorizationFailed.rawValue, KafkaError.Code.transactionalIDAuthorizationFailed.rawValue,
        KafkaError.Code.fencedInstanceID.rawValue, KafkaError.Code.invalidProducerEpoch.rawValue,
        KafkaError.Code.producerFenced.rawValue, KafkaError.Code.fatal.rawValue,
    ]

    /// Errors of one topic that a requester's choice can cause: never fatal on a `reply-to`.
    static let topicLevelCodes: Set<Int32> = [
        KafkaError.Code.topicAuthorizationFailed.rawValue, KafkaError.Code.unknownTopic.rawValue,
        KafkaError.Code.unknownTopicOrPartition.rawValue, KafkaError.Code.invalidTopic.rawValue,
        KafkaError.Code.messageSizeTooLarge.rawValue, KafkaError.Code.recordListTooLarge.rawValue,
        KafkaError.Code.invalidRecord.rawValue, KafkaError.Code.policyViolation.rawValue,
        KafkaError.Code.unknownPartition.rawValue,
    ]

    /// Delivers `message` to a destination of the given kind (see ``Destination``).
    func deliver(_ message: KafkaProducerMessage, to destination: Destination = .owned) async -> Outcome {
        var delay = backoff
        var attempts = 0
        while true {
            if isAbandoned { return .abandoned }
            attempts += 1
            let error: KafkaError
            do throws(KafkaError) {
                let pending = try await producer.enqueue(message)
                switch await pending.result {
                case .success: return .delivered
                case .failure(let failure): error = failure
                }
            } catch let failure {
                error = failure
            }
            if let outcome = await retryOrGiveUp(error, attempts: attempts, destination: destination, delay: &delay) { return outcome }
        }
    }

    /// nil: retry (after sleeping); otherwise the final outcome.
    private func retryOrGiveUp(_ error: KafkaError, attempts: Int, destination: Destination, delay: inout Duration) async -> Outcome? {
        if destination == .requester, !error.isFatal, Self.topicLevelCodes.contains(error.code.rawValue) { return .rejected(error) }
        if Self.isFatal(error) { return .fatal(error) }
        if isAbandoned || error.code == .destroyed { return .abandoned }
        let transient = error.isRetriable || error.code == .messageTimedOut || error.code == .authentication
        switch destination {
        case .requester where attempts >= replyToAttempts || error.code == .messageTimedOut, .requester where !transient,
            .owned where !transient:
            return .rejected(error)
        default:
            break
        }
        metrics.produceRetries.increment()
        logger.warning(
            "produce failed, retrying",
            metadata: [
                "error": "\(error.code.name)", "topic": "\(destination == .requester ? "reply-to" : "owned")",
                "backoff_ms": "\(delay.components.seconds * 1000 + delay.components.attoseconds / 1_000_000_000_000_000)",
            ])
        try? await Task.sleep(for: delay)
        delay = min(delay * 2, maxBackoff)
        return nil
    }
}
