/// What a ``KafkaConsumer`` delivers, in order.
public enum KafkaConsumerEvent: Sendable {
    case message(KafkaConsumerMessage)
    /// Partitions added to this member's assignment (fetching starts after this event).
    case assigned([KafkaTopicPartition])
    /// Partitions about to be taken away. Everything read from them was delivered before this
    /// event; the revoke completes (and the partitions are released) only when the caller asks
    /// for the next event, so drain in-flight work and commit first. Offsets stored with
    /// ``KafkaConsumer/storeOffset(_:)`` are committed before the partitions are released.
    /// Bounded by ``KafkaConsumerConfiguration/rebalanceTimeout``.
    case revoked([KafkaTopicPartition])
    /// Partitions lost without a clean revoke (e.g. session timeout): another member may own
    /// them already, so commits for them will fail. Do not wait.
    case lost([KafkaTopicPartition])
    /// A non-fatal condition reported by librdkafka (it keeps retrying). Fatal errors end the
    /// sequence by being thrown.
    case error(KafkaError)
}

/// All events of a consumer. Single consumer: iterate from one task only.
public struct KafkaConsumerEvents: AsyncSequence, Sendable {
    public typealias Element = KafkaConsumerEvent
    public typealias Failure = KafkaError
    let buffer: ConsumerEventBuffer

    public struct AsyncIterator: AsyncIteratorProtocol {
        public typealias Element = KafkaConsumerEvent
        public typealias Failure = KafkaError
        let buffer: ConsumerEventBuffer
        public mutating func next() async throws(KafkaError) -> KafkaConsumerEvent? {
            try await buffer.next().get()
        }
    }
    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(buffer: buffer) }
}

/// Only the messages of a consumer (rebalances are acknowledged as they pass: a revoke completes
/// when the message after it is requested). Single consumer: iterate from one task only.
public struct KafkaConsumerMessages: AsyncSequence, Sendable {
    public typealias Element = KafkaConsumerMessage
    public typealias Failure = KafkaError
    let buffer: ConsumerEventBuffer

    public struct AsyncIterator: AsyncIteratorProtocol {
        public typealias Element = KafkaConsumerMessage
        public typealias Failure = KafkaError
        let buffer: ConsumerEventBuffer
        public mutating func next() async throws(KafkaError) -> KafkaConsumerMessage? {
            while let event = try await buffer.next().get() {
                if case .message(let message) = event { return message }
            }
            return nil
        }
    }
    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(buffer: buffer) }
}
