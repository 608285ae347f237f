/// A record header. Names may repeat and may be empty; a value may be absent (`nil`).
public struct KafkaHeader: Sendable, Hashable {
    public var name: String
    public var value: [UInt8]?
    public init(name: String, value: [UInt8]?) {
        self.name = name
        self.value = value
    }
    public init(name: String, string: String) {
        self.init(name: name, value: Array(string.utf8))
    }
}

public struct KafkaTopicPartition: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var topic: String
    public var partition: Int32
    public init(topic: String, partition: Int32) {
        self.topic = topic
        self.partition = partition
    }
    public static func < (a: Self, b: Self) -> Bool { (a.topic, a.partition) < (b.topic, b.partition) }
    public var description: String { "\(topic)[\(partition)]" }
}

/// A partition with an offset. For commits the offset is the *next* offset to read
/// (last processed + 1), as in Kafka. `error` is set on per-partition failures.
public struct KafkaTopicPartitionOffset: Sendable, Hashable, CustomStringConvertible {
    public var topic: String
    public var partition: Int32
    /// `nil` when there is none (e.g. nothing committed yet).
    public var offset: Int64?
    public var error: KafkaError?

    public init(topic: String, partition: Int32, offset: Int64?, error: KafkaError? = nil) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.error = error
    }
    public var topicPartition: KafkaTopicPartition { KafkaTopicPartition(topic: topic, partition: partition) }
    public var description: String { "\(topic)[\(partition)]@\(offset.map(String.init) ?? "none")" }
}

public struct KafkaTimestamp: Sendable, Hashable {
    public enum Kind: Sendable, Hashable { case createTime, logAppendTime }
    public var kind: Kind
    public var millisecondsSinceEpoch: Int64
}

/// A message read by a ``KafkaConsumer``.
public struct KafkaConsumerMessage: Sendable, Hashable {
    public var topic: String
    public var partition: Int32
    public var offset: Int64
    /// `nil` for a message without key (distinct from an empty key).
    public var key: [UInt8]?
    /// `nil` for a tombstone (distinct from an empty value).
    public var value: [UInt8]?
    public var headers: [KafkaHeader]
    public var timestamp: KafkaTimestamp?

    public var topicPartition: KafkaTopicPartition { KafkaTopicPartition(topic: topic, partition: partition) }
    /// The offset to commit once this message is processed (`offset + 1`).
    public var nextOffset: KafkaTopicPartitionOffset {
        KafkaTopicPartitionOffset(topic: topic, partition: partition, offset: offset + 1)
    }
    /// Values of the headers named `name`, in order.
    public func headerValues(_ name: String) -> [[UInt8]?] { headers.filter { $0.name == name }.map(\.value) }
}

/// A message to send with a ``KafkaProducer``.
public struct KafkaProducerMessage: Sendable, Hashable {
    public var topic: String
    /// `nil` lets the partitioner choose (by key hash when there is a key).
    public var partition: Int32?
    public var key: [UInt8]?
    public var value: [UInt8]?
    public var headers: [KafkaHeader]

    public init(topic: String, partition: Int32? = nil, key: [UInt8]? = nil, value: [UInt8]?, headers: [KafkaHeader] = []) {
        self.topic = topic
        self.partition = partition
        self.key = key
        self.value = value
        self.headers = headers
    }
    public init(topic: String, partition: Int32? = nil, key: String?, value: String, headers: [KafkaHeader] = []) {
        self.init(topic: topic, partition: partition, key: key.map { Array($0.utf8) }, value: Array(value.utf8), headers: headers)
    }
}

/// A message the broker acknowledged.
public struct KafkaDeliveryReport: Sendable, Hashable {
    public var topic: String
    public var partition: Int32
    /// The offset assigned by the broker (`nil` in the rare case librdkafka does not know it).
    public var offset: Int64?
    public var timestamp: KafkaTimestamp?
}
