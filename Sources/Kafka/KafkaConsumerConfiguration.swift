/// Configuration of a ``KafkaConsumer``: typed fields for what the worker uses, over a
/// pass-through property set (``properties``) that accepts any librdkafka property.
///
/// Auto-commit is always off (`enable.auto.commit=false`, `enable.auto.offset.store=false`):
/// offsets are committed only by explicit calls (and by ``KafkaConsumer/close()`` and
/// completed revokes, for offsets stored with ``KafkaConsumer/storeOffset(_:)``).
public struct KafkaConsumerConfiguration: Sendable, CustomStringConvertible, CustomReflectable {
    public enum OffsetReset: String, Sendable { case earliest, latest, error }

    /// librdkafka properties, passed through. The typed fields below read and write this set.
    public var properties: KafkaProperties

    /// Upper bound on messages buffered between the poll thread and the caller; when full the
    /// poll thread stops fetching until the caller catches up (backpressure).
    public var bufferCapacity: Int = 1000
    /// How long a revoke waits for the caller to move past the `.revoked` event (drain and
    /// commit) before the partitions are given up anyway.
    public var rebalanceTimeout: Duration = .seconds(30)
    /// Default deadline of commits and committed-offset queries.
    public var commitTimeout: Duration = .seconds(10)
    /// Deadline of ``KafkaConsumer/close()`` (final commit plus leaving the group).
    public var closeTimeout: Duration = .seconds(15)
    /// Receives librdkafka's log lines (secret values are never logged by librdkafka).
    /// `nil` keeps librdkafka's default logger (stderr).
    public var logHandler: KafkaLogHandler?

    public init(bootstrapServers: String, groupID: String) {
        properties = [:]
        self.bootstrapServers = bootstrapServers
        self.groupID = groupID
        assignmentStrategy = "cooperative-sticky"
        autoOffsetReset = .earliest
    }

    public var bootstrapServers: String? {
        get { properties["bootstrap.servers"] }
        set { properties["bootstrap.servers"] = newValue }
    }
    public var groupID: String {
        get { properties["group.id"] ?? "" }
        set { properties["group.id"] = newValue }
    }
    /// Static membership (`group.instance.id`): a restarted member with the same id gets its
    /// partitions back without a rebalance, within the session timeout.
    public var groupInstanceID: String? {
        get { properties["group.instance.id"] }
        set { properties["group.instance.id"] = newValue }
    }
    public var clientID: String? {
        get { properties["client.id"] }
        set { properties["client.id"] = newValue }
    }
    /// `partition.assignment.strategy`; `cooperative-sticky` by default.
    public var assignmentStrategy: String {
        get { properties["partition.assignment.strategy"] ?? "cooperative-sticky" }
        set { properties["partition.assignment.strategy"] = newValue }
    }
    public var autoOffsetReset: OffsetReset {
        get { properties["auto.offset.reset"].flatMap(OffsetReset.init(rawValue:)) ?? .latest }
        set { properties["auto.offset.reset"] = newValue.rawValue }
    }
    public var sessionTimeout: Duration? {
        get { properties.duration("session.timeout.ms") }
        set { properties.setDuration("session.timeout.ms", newValue) }
    }
    public var heartbeatInterval: Duration? {
        get { properties.duration("heartbeat.interval.ms") }
        set { properties.setDuration("heartbeat.interval.ms", newValue) }
    }
    public var maxPollInterval: Duration? {
        get { properties.duration("max.poll.interval.ms") }
        set { properties.setDuration("max.poll.interval.ms", newValue) }
    }
    /// `statistics.interval.ms`; statistics arrive on ``KafkaConsumer/statistics``.
    public var statisticsInterval: Duration? {
        get { properties.duration("statistics.interval.ms") }
        set { properties.setDuration("statistics.interval.ms", newValue) }
    }

    public var description: String {
        "KafkaConsumerConfiguration(\(properties), bufferCapacity: \(bufferCapacity))"
    }
    public var customMirror: Mirror {
        Mirror(self, children: ["properties": properties, "bufferCapacity": bufferCapacity], displayStyle: .struct)
    }
}

/// Configuration of a ``KafkaProducer``: typed fields over pass-through librdkafka properties.
/// Idempotence is on by default (`enable.idempotence=true`).
public struct KafkaProducerConfiguration: Sendable, CustomStringConvertible, CustomReflectable {
    public var properties: KafkaProperties

    /// Upper bound on messages sent but not yet resolved; ``KafkaProducer/send(_:)`` waits
    /// for room when it is reached (backpressure).
    public var maxInFlightMessages: Int = 10_000
    public var logHandler: KafkaLogHandler?

    public init(bootstrapServers: String) {
        properties = [:]
        self.bootstrapServers = bootstrapServers
        idempotent = true
    }

    public var bootstrapServers: String? {
        get { properties["bootstrap.servers"] }
        set { properties["bootstrap.servers"] = newValue }
    }
    public var clientID: String? {
        get { properties["client.id"] }
        set { properties["client.id"] = newValue }
    }
    /// `enable.idempotence`, on by default.
    public var idempotent: Bool {
        get { properties["enable.idempotence"] == "true" }
        set { properties["enable.idempotence"] = newValue ? "true" : "false" }
    }
    /// `transactional.id`: set it to use the transaction calls.
    public var transactionalID: String? {
        get { properties["transactional.id"] }
        set { properties["transactional.id"] = newValue }
    }
    /// `message.timeout.ms`: how long a message may take, retries included, before its
    /// delivery fails with `_MSG_TIMED_OUT`.
    public var deliveryTimeout: Duration? {
        get { properties.duration("message.timeout.ms") }
        set { properties.setDuration("message.timeout.ms", newValue) }
    }
    public var linger: Duration? {
        get { properties.duration("linger.ms") }
        set { properties.setDuration("linger.ms", newValue) }
    }
    /// `message.max.bytes`.
    public var maxMessageBytes: Int? {
        get { properties["message.max.bytes"].flatMap { Int($0) } }
        set { properties["message.max.bytes"] = newValue.map { String($0) } }
    }
    /// `compression.type` (none, gzip, snappy, lz4, zstd).
    public var compression: String? {
        get { properties["compression.type"] }
        set { properties["compression.type"] = newValue }
    }
    public var statisticsInterval: Duration? {
        get { properties.duration("statistics.interval.ms") }
        set { properties.setDuration("statistics.interval.ms", newValue) }
    }

    public var description: String {
        "KafkaProducerConfiguration(\(properties), maxInFlightMessages: \(maxInFlightMessages))"
    }
    public var customMirror: Mirror {
        Mirror(self, children: ["properties": properties, "maxInFlightMessages": maxInFlightMessages], displayStyle: .struct)
    }
}

extension KafkaProperties {
    func duration(_ name: String) -> Duration? {
        self[name].flatMap { Int64($0) }.map { .milliseconds($0) }
    }
    mutating func setDuration(_ name: String, _ value: Duration?) {
        self[name] = value.map { String($0.milliseconds) }
    }
}
