import Kafka
import Logging
import Synchronization
import Wire

/// Publishes one request's answer: its responses (to `reply-to` or the results topic, key and
/// trace headers echoed), its dead letter if the input was bad, and, when the answer cannot be
/// delivered where it should go, a dead letter plus an error response on the results topic.
///
/// Nothing a requester sends can make this fatal: a `reply-to` that fails is rerouted, a dead
/// letter too large for its topic is cut to fit (then reduced to the worker's headers), and the
/// last-resort messages (error responses on the results topic, dead letters) are retried until
/// delivered. Only ``Publisher/isFatal(_:)`` errors on the worker's own topics stop the worker.
struct AnswerRouter: Sendable {
    let configuration: WorkerConfiguration
    let publisher: Publisher
    let metrics: WorkerMetrics
    let logger: Logger
    let replyTopics: ReplyTopics
    let errorResponse: @Sendable (_ code: String, _ message: String, _ id: String?) -> [UInt8]

    /// Where a request's answer stands after some of its responses were published.
    enum Step: Sendable, Equatable {
        /// Every response so far was delivered; more may follow.
        case open
        /// Nothing more goes out for this request: `.delivered` when it is answered (rerouted,
        /// dead-lettered), otherwise why not.
        case closed(Publisher.Outcome)
    }

    /// Publishes `responses` in order, each acknowledged before the next is produced; then, if
    /// the input was bad, the dead letter. A request's publishes never overlap: its order is
    /// kept by ``PublishQueue``.
    func publish(_ answer: Answer, _ responses: [BackendResponse]) async -> Step {
        let source = answer.message
        let destination = answer.replyTo ?? configuration.resultsTopic
        let rejection = responses.last(where: { $0.rejection != nil })?.rejection
        if let replyTo = answer.replyTo, let error = await replyTopics.check(replyTo) {
            let task = responses.last?.task ?? "unknown", head = responses.last?.head ?? "none"
            return .closed(await reroute(answer, destination: replyTo, error: error, task: task, head: head))
        }
        for response in responses {
            let message = KafkaProducerMessage(
                topic: destination, key: source.key, value: response.value,
                headers: MessageRouting.responseHeaders(from: source.headers, final: response.isFinal))
            let started = ContinuousClock.now
            switch await publisher.deliver(message, to: answer.replyTo != nil ? .requester : .owned) {
            case .delivered:
                metrics.produceLatency.record(.now - started)
                if response.isFinal { metrics.request(task: response.task, head: response.head, outcome: response.outcome) }
            case .rejected(let error):
                if answer.replyTo != nil { replyTopics.failed(destination, error) }
                return .closed(await reroute(answer, destination: destination, error: error, task: response.task, head: response.head))
            case .fatal(let error):
                return .closed(.fatal(error))
            case .abandoned:
                return .closed(.abandoned)
            }
        }
        guard let rejection else { return .open }
        return .closed(await deadLetter(source, code: rejection.code, message: rejection.message))
    }

    /// The answer could not be delivered to `destination`: dead-letter the request and tell the
    /// requester on the results topic. The texts name the error's code and librdkafka's
    /// description of it, never anything taken from the undelivered answer.
    private func reroute(_ answer: Answer, destination: String, error: KafkaError, task: String, head: String) async -> Publisher.Outcome {
        let code = ErrorCode.undeliverableResponse.rawValue
        let text = "the answer could not be delivered to topic '\(destination)': \(error.code.name)"
        logger.warning(
            "answer undeliverable; dead-lettering the request",
            metadata: [
                "topic": "\(destination)", "error": "\(error.code.name)",
                "source": "\(answer.message.topicPartition)@\(answer.message.offset)",
            ])
        let source = answer.message
        let response = KafkaProducerMessage(
            topic: configuration.resultsTopic, key: source.key, value: errorResponse(code, text, answer.id),
            headers: MessageRouting.responseHeaders(from: source.headers, final: true))
        switch await publisher.deliver(response, to: .persistent) {
        case .delivered: metrics.request(task: task, head: head, outcome: code)
        case .rejected(let error), .fatal(let error): return .fatal(error)
        case .abandoned: return .abandoned
        }
        return await deadLetter(source, code: code, message: text)
    }

    /// The dead letter, cut to what the producer accepts; if the topic refuses it anyway (a
    /// smaller `max.message.bytes` on the topic, a policy), the worker's headers alone, retried
    /// until delivered: moving on without it would lose the message.
    private func deadLetter(_ source: KafkaConsumerMessage, code: String, message: String) async -> Publisher.Outcome {
        let maxBytes = configuration.producerMaxMessageBytes
        let letter = MessageRouting.deadLetter(
            topic: configuration.deadLetterTopic, source: source, code: code, message: message, maxBytes: maxBytes)
        switch await publisher.deliver(letter, to: .owned) {
        case .delivered:
            metrics.deadLetter(code: code)
            return .delivered
        case .rejected(let error):
            metrics.deadLetterFallbacks.increment()
            logger.warning(
                "dead-letter topic refused the letter; sending the worker's headers only",
                metadata: [
                    "error": "\(error.code.name)", "source": "\(source.topicPartition)@\(source.offset)",
                ])
            let minimal = MessageRouting.deadLetter(
                topic: configuration.deadLetterTopic, source: source, code: code, message: message, maxBytes: maxBytes, minimal: true)
            switch await publisher.deliver(minimal, to: .persistent) {
            case .delivered:
                metrics.deadLetter(code: code)
                return .delivered
            case .rejected(let error), .fatal(let error): return .fatal(error)
            case .abandoned: return .abandoned
            }
        case .fatal(let error):
            return .fatal(error)
        case .abandoned:
            return .abandoned
        }
    }
}

/// What the worker knows of `reply-to` topics: a topic whose metadata does not resolve (unknown,
/// unauthorized) is refused at once for a while instead of holding the answer (and its
/// partition's commits) for librdkafka's message timeout. Bounded: at most `capacity` topics
/// are remembered.
final class ReplyTopics: Sendable {
    private struct Entry {
        var error: KafkaError?
        var until: ContinuousClock.Instant
    }
    private let producer: KafkaProducer
    private let known = Mutex<[String: Entry]>([:])
    let capacity = 1024
    let goodFor: Duration = .seconds(300)
    let badFor: Duration = .seconds(30)
    let metadataTimeout: Duration

    init(producer: KafkaProducer, metadataTimeout: Duration = .seconds(5)) {
        self.producer = producer
        self.metadataTimeout = metadataTimeout
    }

    /// nil when answers may go to `topic`, else the error that rules it out.
    func check(_ topic: String) async -> KafkaError? {
        let now = ContinuousClock.now
        if let entry = known.withLock({ $0[topic] }), entry.until > now { return entry.error }
        let result = await producer.loadMetadata(topics: [topic], timeout: metadataTimeout).first?.result
        switch result {
        case .success(let partitions) where partitions > 0:
            remember(topic, nil)
            return nil
        case .failure(let failure) where Publisher.topicLevelCodes.contains(failure.code.rawValue):
            remember(topic, failure)
            return failure
        case .failure:
            // Transient (timeout, no broker reachable): not remembered; the delivery's own
            // bounded attempts decide.
            return nil
        default:
            let error = KafkaError(code: .unknownTopic, message: "topic '\(topic)' has no partitions")
            remember(topic, error)
            return error
        }
    }

    /// A delivery to `topic` failed for a topic-level reason: refuse it for a while.
    func failed(_ topic: String, _ error: KafkaError) { remember(topic, error) }

    private func remember(_ topic: String, _ error: KafkaError?) {
        let now = ContinuousClock.now
        known.withLock { known in
            if known.count >= capacity {
                known = known.filter { $0.value.until > now }
                if known.count >= capacity { known.removeAll(keepingCapacity: true) }
            }
            known[topic] = Entry(error: error, until: now + (error == nil ? goodFor : badFor))
        }
    }
}
