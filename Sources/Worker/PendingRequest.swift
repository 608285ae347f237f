import Kafka

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
    var key: RequestKey { RequestKey(message, generation: generation) }
    var answer: Answer { Answer(message: message, generation: generation, replyTo: replyTo, received: received, id: id) }
}

/// What the poll task made of a message before handing it to the loop.
enum Classified<Job: Sendable>: Sendable {
    case job(PreparedJob<Job>, replyTo: String?)
    case rejected(RequestRejection, replyTo: String?)
}

/// A request's place in its partition, on one assignment of it (its generation).
struct RequestKey: Hashable, Sendable {
    var partition: KafkaTopicPartition
    var offset: Int64
    var generation: UInt64
    init(_ message: KafkaConsumerMessage, generation: UInt64) {
        partition = message.topicPartition
        offset = message.offset
        self.generation = generation
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
    var key: RequestKey { RequestKey(message, generation: generation) }
}

extension KafkaConsumerMessage {
    /// What the message holds in memory: key, value and headers.
    var byteCount: Int {
        (key?.count ?? 0) + (value?.count ?? 0) + headers.reduce(0) { $0 + $1.name.utf8.count + ($1.value?.count ?? 0) } + 64
    }
}
