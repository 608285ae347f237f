import Kafka
import Logging

/// Publishes one request's answer: its responses (to `reply-to` or the results topic, key and
/// trace headers echoed), its dead letter if the input was bad, and, when the answer cannot be
/// delivered where it should go, a dead letter plus an error response on the results topic.
struct AnswerRouter: Sendable {
    let configuration: WorkerConfiguration
    let publisher: Publisher
    let metrics: WorkerMetrics
    let logger: Logger
    let errorResponse: @Sendable (_ code: String, _ message: String) -> [UInt8]

    /// Where a request's answer stands after some of its responses were published.
    enum Step: Sendable, Equatable {
        /// Every response so far was delivered; more may follow.
        case open
        /// Nothing more goes out for this request: `.delivered` when it is answered (rerouted,
        /// dead-lettered), otherwise why not.
        case closed(Publisher.Outcome)
    }

    /// Publishes `responses` once `previous` (the request's earlier responses, e.g. streamed
    /// partials) is done, so a request's messages go out in order; skipped when `previous`
    /// closed the answer.
    func publish(_ answer: Answer, _ responses: [BackendResponse], after previous: Task<Step, Never>?) async -> Step {
        if let previous, case .closed(let outcome) = await previous.value { return .closed(outcome) }
        return await publish(answer, responses)
    }

    /// Publishes `responses` in order, each acknowledged before the next is produced; then, if
    /// the input was bad, the dead letter.
    func publish(_ answer: Answer, _ responses: [BackendResponse]) async -> Step {
        let source = answer.message
        let destination = answer.replyTo ?? configuration.resultsTopic
        let rejection = responses.last(where: { $0.rejection != nil })?.rejection
        for response in responses {
            let message = KafkaProducerMessage(
                topic: destination, key: source.key, value: response.value,
                headers: MessageRouting.responseHeaders(from: source.headers, final: response.isFinal))
            let started = ContinuousClock.now
            switch await publisher.deliver(message, limitAttempts: answer.replyTo != nil) {
            case .delivered:
                metrics.produceLatency.record(.now - started)
                if response.isFinal { metrics.request(task: response.task, head: response.head, outcome: response.outcome) }
            case .rejected(let error):
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
    /// requester on the results topic.
    private func reroute(_ answer: Answer, destination: String, error: KafkaError, task: String, head: String) async -> Publisher.Outcome {
        let code = "undeliverable_response"
        let text = "the answer could not be delivered to topic '\(destination)': \(error.code.name): \(error.message)"
        logger.warning("answer undeliverable; dead-lettering the request", metadata: [
            "topic": "\(destination)", "error": "\(error.code.name)",
            "source": "\(answer.message.topicPartition)@\(answer.message.offset)",
        ])
        let source = answer.message
        let response = KafkaProducerMessage(
            topic: configuration.resultsTopic, key: source.key, value: errorResponse(code, text),
            headers: MessageRouting.responseHeaders(from: source.headers, final: true))
        switch await publisher.deliver(response) {
        case .delivered: metrics.request(task: task, head: head, outcome: code)
        case .rejected(let error), .fatal(let error): return .fatal(error)
        case .abandoned: return .abandoned
        }
        return await deadLetter(source, code: code, message: text)
    }

    private func deadLetter(_ source: KafkaConsumerMessage, code: String, message: String) async -> Publisher.Outcome {
        let letter = MessageRouting.deadLetter(topic: configuration.deadLetterTopic, source: source, code: code, message: message)
        switch await publisher.deliver(letter) {
        case .delivered:
            metrics.deadLetter(code: code)
            return .delivered
        case .rejected(let error), .fatal(let error):
            // The dead-letter topic refuses it: moving on would lose the message.
            return .fatal(error)
        case .abandoned:
            return .abandoned
        }
    }
}
