import Kafka

/// The order of each request's outgoing messages, kept in one place: a request has at most one
/// publish in flight; its later responses (streamed partials, then the final answer) wait behind
/// it in order; once a publish closes the answer (rerouted, dead-lettered, fatal, abandoned),
/// what follows is not sent and the final answer ends with that outcome.
///
/// Pure bookkeeping: ``WorkerState`` asks it what to publish next and starts those publishes.
struct PublishQueue: Sendable {
    /// What to do with responses handed to ``enqueue(_:_:final:)``.
    enum Enqueued: Sendable, Equatable {
        /// Publish these now.
        case start([BackendResponse])
        /// Queued behind the request's publish in flight (or dropped: a partial after the answer closed).
        case waiting
        /// The final answer of a request whose earlier publish closed it: it ends with this step.
        case ended(AnswerRouter.Step)
    }

    /// What follows a finished publish.
    struct Next: Sendable {
        /// The request's final answer ended with this step (it was the final, or it was skipped).
        var ended: AnswerRouter.Step?
        /// The request's next responses to publish.
        var start: [BackendResponse]?
        /// The request (nil when it was not known).
        var answer: Answer?
    }

    private struct Send: Sendable {
        var responses: [BackendResponse]
        var final: Bool
    }

    private struct Entry: Sendable {
        var answer: Answer
        var busy: Send?
        var queue: [Send] = []
        var closed: Publisher.Outcome?
        /// Its partition was dropped: nothing more starts; the entry goes once `busy` ends.
        var dropped = false
    }

    private var entries: [RequestKey: Entry] = [:]

    /// Requests with a publish in flight or responses waiting.
    var count: Int { entries.count }

    /// Hands over a request's next responses (`final`: its last ones).
    mutating func enqueue(_ answer: Answer, _ responses: [BackendResponse], final: Bool) -> Enqueued {
        let send = Send(responses: responses, final: final), key = answer.key
        guard var entry = entries[key] else {
            entries[key] = Entry(answer: answer, busy: send)
            return .start(responses)
        }
        if let closed = entry.closed {
            guard final else { return .waiting }
            entries[key] = nil
            return .ended(.closed(closed))
        }
        guard entry.busy != nil else {
            entry.busy = send
            entries[key] = entry
            return .start(responses)
        }
        entry.queue.append(send)
        entries[key] = entry
        return .waiting
    }

    /// The request's publish in flight ended with `step`.
    mutating func finished(_ key: RequestKey, _ step: AnswerRouter.Step) -> Next {
        guard var entry = entries[key], let send = entry.busy else { return Next() }
        let answer = entry.answer
        entry.busy = nil
        if send.final {
            entries[key] = nil
            return Next(ended: step, answer: answer)
        }
        if case .closed(let outcome) = step { entry.closed = outcome }
        if entry.dropped {
            entries[key] = nil
            return Next(answer: answer)
        }
        if let closed = entry.closed {
            // Nothing more goes out; a final answer already waiting ends now, a later one when it comes.
            if entry.queue.contains(where: \.final) {
                entries[key] = nil
                return Next(ended: .closed(closed), answer: answer)
            }
            entry.queue = []
            entries[key] = entry
            return Next(answer: answer)
        }
        guard !entry.queue.isEmpty else {
            entries[key] = nil
            return Next(answer: answer)
        }
        let next = entry.queue.removeFirst()
        entry.busy = next
        entries[key] = entry
        return Next(start: next.responses, answer: answer)
    }

    /// Forgets the requests of partitions that are gone: their waiting responses are not sent.
    /// Returns how many final answers were waiting (they will never end).
    mutating func drop(where gone: (KafkaTopicPartition) -> Bool) -> Int {
        var finals = 0
        for (key, var entry) in entries where gone(key.partition) {
            finals += entry.queue.filter(\.final).count
            guard entry.busy != nil else {
                entries[key] = nil
                continue
            }
            entry.queue = []
            entry.dropped = true
            entries[key] = entry
        }
        return finals
    }
}
