/// librdkafka's mock Kafka cluster, in process: for development and tests.
///
/// Memory only; keeps about 5 MiB (or 100,000 messages) per partition and drops older
/// batches; no Admin API (create topics with ``createTopic(_:partitions:replicationFactor:)``);
/// transactional offsets are accepted but not stored. Faults can be injected.
public final class KafkaMockCluster: Sendable {
    /// Kafka protocol request types (ApiKeys) for fault injection.
    public struct API: RawRepresentable, Hashable, Sendable {
        public var rawValue: Int16
        public init(rawValue: Int16) { self.rawValue = rawValue }
        public static let produce = API(rawValue: 0)
        public static let fetch = API(rawValue: 1)
        public static let listOffsets = API(rawValue: 2)
        public static let metadata = API(rawValue: 3)
        public static let offsetCommit = API(rawValue: 8)
        public static let offsetFetch = API(rawValue: 9)
        public static let findCoordinator = API(rawValue: 10)
        public static let joinGroup = API(rawValue: 11)
        public static let heartbeat = API(rawValue: 12)
        public static let leaveGroup = API(rawValue: 13)
        public static let syncGroup = API(rawValue: 14)
        public static let initProducerID = API(rawValue: 22)
        public static let addPartitionsToTxn = API(rawValue: 24)
        public static let addOffsetsToTxn = API(rawValue: 25)
        public static let endTxn = API(rawValue: 26)
        public static let txnOffsetCommit = API(rawValue: 28)
    }

    public enum CoordinatorType: String, Sendable { case group, transaction }

    private let cluster: RDKafkaMockCluster
    public let brokerCount: Int

    /// Starts `brokers` mock brokers (ids 1...brokers) on localhost ports.
    public init(brokers: Int = 3) throws {
        cluster = try RDKafkaMockCluster(brokers: brokers)
        brokerCount = brokers
    }

    /// The `bootstrap.servers` list of the cluster.
    public var bootstrapServers: String { cluster.bootstrapServers }

    public func createTopic(_ name: String, partitions: Int, replicationFactor: Int? = nil) throws {
        guard !name.isEmpty, partitions > 0 else {
            throw KafkaError(code: .invalidArgument, message: "topic needs a name and at least one partition", isRetriable: false)
        }
        try cluster.createTopic(
            name, partitions: Int32(clamping: partitions), replicationFactor: Int32(clamping: replicationFactor ?? min(3, brokerCount)))
    }

    /// The next `errors.count` requests of `api` fail with these codes, in order.
    public func pushRequestErrors(_ api: API, _ errors: [KafkaError.Code]) { cluster.pushRequestErrors(apiKey: api.rawValue, errors) }
    public func clearRequestErrors(_ api: API) { cluster.clearRequestErrors(apiKey: api.rawValue) }
    /// The next requests of `api` to broker `id` only fail with these codes, in order, each
    /// response delayed by its RTT (zero: none). They take precedence over the cluster-wide errors.
    public func pushBrokerRequestErrors(_ id: Int32, _ api: API, _ errors: [(KafkaError.Code, rtt: Duration)]) throws {
        try cluster.pushBrokerRequestErrors(id, apiKey: api.rawValue, errors.map { ($0.0, milliseconds: $0.rtt.milliseconds) })
    }
    /// Broker `id`'s pushed errors for `api` not yet returned.
    public func brokerRequestErrorCount(_ id: Int32, _ api: API) throws -> Int {
        try cluster.brokerRequestErrorCount(id, apiKey: api.rawValue)
    }
    /// Disconnects broker `id` (-1: all) and refuses connections; no leader change.
    public func setBrokerDown(_ id: Int32) throws { try cluster.setBrokerDown(id) }
    public func setBrokerUp(_ id: Int32) throws { try cluster.setBrokerUp(id) }
    /// Adds `latency` to every response of broker `id` (-1: all).
    public func setBrokerLatency(_ id: Int32, _ latency: Duration) throws {
        try cluster.setBrokerRTT(id, milliseconds: latency.milliseconds)
    }
    public func setCoordinator(_ type: CoordinatorType, key: String, broker: Int32) throws {
        try cluster.setCoordinator(keyType: type.rawValue, key: key, broker: broker)
    }
    public func setPartitionLeader(topic: String, partition: Int32, broker: Int32) throws {
        try cluster.setPartitionLeader(topic: topic, partition: partition, broker: broker)
    }
    /// Error returned for `topic` in Metadata and AddPartitionsToTxn responses.
    public func setTopicError(_ topic: String, _ code: KafkaError.Code) { cluster.setTopicError(topic: topic, code) }

    /// Stops the brokers (also done on deinit).
    public func shutdown() { cluster.destroy() }
}
