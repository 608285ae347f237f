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

    /// Errors that mean the worker must stop: librdkafka's fatal errors, authorization and fencing.
    static func isFatal(_ error: KafkaError) -> Bool {
        if error.isFatal { return true }
        let codes: Set<Int32> = [
            KafkaError.Code.topicAuthorizationFailed.rawValue, KafkaError.Code.groupAuthorizationFailed.rawValue,
            31 /* CLUSTER_AUTHORIZATION_FAILED */, 53 /* TRANSACTIONAL_ID_AUTHORIZATION_FAILED */,
            KafkaError.Code.fencedInstanceID.rawValue, KafkaError.Code.invalidProducerEpoch.rawValue,
            90 /* PRODUCER_FENCED */, KafkaError.Code.fatal.rawValue, -169 /* _AUTHENTICATION */,
        ]
        return codes.contains(error.code.rawValue)
    }

    /// Delivers `message`; `limitAttempts` bounds attempts for destinations the requester chose.
    func deliver(_ message: KafkaProducerMessage, limitAttempts: Bool = false) async -> Outcome {
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
            if let outcome = await retryOrGiveUp(error, attempts: attempts, limit: limitAttempts, delay: &delay) { return outcome }
        }
    }

    /// nil: retry (after sleeping); otherwise the final outcome.
    private func retryOrGiveUp(_ error: KafkaError, attempts: Int, limit: Bool, delay: inout Duration) async -> Outcome? {
        if Self.isFatal(error) { return .fatal(error) }
        if isAbandoned || error.code == .destroyed { return .abandoned }
        let unknownTopic = error.code == .unknownTopic || error.code == .unknownTopicOrPartition || error.code == .invalidTopic
        if limit && (unknownTopic || attempts >= replyToAttempts) { return .rejected(error) }
        guard error.isRetriable || error.code == .messageTimedOut else { return .rejected(error) }
        metrics.produceRetries.increment()
        logger.warning("produce failed, retrying", metadata: ["error": "\(error.code.name)", "backoff_ms": "\(delay.components.seconds * 1000 + delay.components.attoseconds / 1_000_000_000_000_000)"])
        try? await Task.sleep(for: delay)
        delay = min(delay * 2, maxBackoff)
        return nil
    }
}
