import CRdKafka
import Synchronization

/// librdkafka's in-process mock cluster and its own (otherwise idle) `rd_kafka_t` handle.
final class RDKafkaMockCluster: @unchecked Sendable {
    private let handle: OpaquePointer
    private let cluster: OpaquePointer
    private let destroyed = Atomic<Bool>(false)
    let bootstrapServers: String

    init(brokers: Int) throws(KafkaError) {
        guard (1...64).contains(brokers) else {
            throw KafkaError(
                code: .invalidArgument, message: "mock cluster: broker count must be 1...64, got \(brokers)", isRetriable: false)
        }
        guard let conf = rd_kafka_conf_new() else { throw KafkaError(code: .fail, message: "rd_kafka_conf_new failed") }
        var errstr = [CChar](repeating: 0, count: 512)
        // The handle only does the mock's bookkeeping; keep it quiet.
        _ = rd_kafka_conf_set(conf, "log_level", "3", &errstr, errstr.count)
        _ = rd_kafka_conf_set(conf, "client.id", "norbert-mock-cluster", &errstr, errstr.count)
        guard let handle = rd_kafka_new(RD_KAFKA_PRODUCER, conf, &errstr, errstr.count) else {
            rd_kafka_conf_destroy(conf)
            throw RDKafkaConfig.creationError(errstr, properties: [:])
        }
        guard let cluster = rd_kafka_mock_cluster_new(handle, Int32(brokers)) else {
            rd_kafka_destroy(handle)
            throw KafkaError(code: .fail, message: "rd_kafka_mock_cluster_new failed", isRetriable: false)
        }
        self.handle = handle
        self.cluster = cluster
        bootstrapServers = rd_kafka_mock_cluster_bootstraps(cluster).map { String(cString: $0) } ?? ""
    }

    deinit { destroy() }

    func destroy() {
        guard !destroyed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        rd_kafka_mock_cluster_destroy(cluster)
        rd_kafka_destroy(handle)
    }

    func createTopic(_ name: String, partitions: Int32, replicationFactor: Int32) throws(KafkaError) {
        try rdCheck(rd_kafka_mock_topic_create(cluster, name, partitions, replicationFactor), "create topic \(name)")
    }

    /// The next `errors.count` requests of `apiKey` (cluster-wide) fail with these codes in order.
    func pushRequestErrors(apiKey: Int16, _ errors: [KafkaError.Code]) {
        let codes = errors.map { rd_kafka_resp_err_t(rawValue: $0.rawValue) }
        codes.withUnsafeBufferPointer { buffer in
            rd_kafka_mock_push_request_errors_array(cluster, apiKey, buffer.count, buffer.baseAddress)
        }
    }

    func clearRequestErrors(apiKey: Int16) { rd_kafka_mock_clear_request_errors(cluster, apiKey) }

    /// The next requests of `apiKey` to broker `id` fail with these codes in order, each response
    /// delayed by its RTT (these take precedence over the cluster-wide errors).
    func pushBrokerRequestErrors(_ id: Int32, apiKey: Int16, _ errors: [(KafkaError.Code, milliseconds: Int32)]) throws(KafkaError) {
        for (code, rtt) in errors {
            try rdCheck(
                norbert_mock_broker_push_request_error_rtt(cluster, id, apiKey, rd_kafka_resp_err_t(rawValue: code.rawValue), rtt),
                "push request error on broker \(id)")
        }
    }

    /// How many of broker `id`'s pushed errors for `apiKey` are still waiting for a request.
    func brokerRequestErrorCount(_ id: Int32, apiKey: Int16) throws(KafkaError) -> Int {
        var count = 0
        try rdCheck(rd_kafka_mock_broker_error_stack_cnt(cluster, id, apiKey, &count), "error stack of broker \(id)")
        return count
    }

    func setBrokerDown(_ id: Int32) throws(KafkaError) { try rdCheck(rd_kafka_mock_broker_set_down(cluster, id), "broker \(id) down") }
    func setBrokerUp(_ id: Int32) throws(KafkaError) { try rdCheck(rd_kafka_mock_broker_set_up(cluster, id), "broker \(id) up") }
    func setBrokerRTT(_ id: Int32, milliseconds: Int32) throws(KafkaError) {
        try rdCheck(rd_kafka_mock_broker_set_rtt(cluster, id, milliseconds), "broker \(id) rtt")
    }
    func setCoordinator(keyType: String, key: String, broker: Int32) throws(KafkaError) {
        try rdCheck(rd_kafka_mock_coordinator_set(cluster, keyType, key, broker), "set \(keyType) coordinator")
    }
    func setPartitionLeader(topic: String, partition: Int32, broker: Int32) throws(KafkaError) {
        try rdCheck(rd_kafka_mock_partition_set_leader(cluster, topic, partition, broker), "set leader of \(topic)[\(partition)]")
    }
    func setTopicError(topic: String, _ code: KafkaError.Code) {
        rd_kafka_mock_topic_set_error(cluster, topic, rd_kafka_resp_err_t(rawValue: code.rawValue))
    }
}
