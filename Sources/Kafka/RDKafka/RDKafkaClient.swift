import CRdKafka
import Synchronization

typealias RDRebalanceHandler =
    @Sendable (_ code: rd_kafka_resp_err_t, _ partitions: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) -> Void

/// What librdkafka's C callbacks reach through the instance opaque.
final class RDKafkaCallbackContext: Sendable {
    let logHandler: KafkaLogHandler?
    let rebalance = Mutex<RDRebalanceHandler?>(nil)
    init(logHandler: KafkaLogHandler?) { self.logHandler = logHandler }
}

/// An event from an instance's main queue (served by the client's event thread).
enum RDKafkaEvent {
    case deliveries([(id: UInt, result: Result<KafkaDeliveryReport, KafkaError>)])
    case offsetCommit(id: UInt, result: Result<[KafkaTopicPartitionOffset], KafkaError>)
    case statistics(String)
    case error(KafkaError)
    case other
}

/// One `rd_kafka_t`: creation, the main-queue event poll, and destruction. librdkafka handles
/// are thread-safe; this class only adds a once-only destroy.
final class RDKafkaClient: @unchecked Sendable {
    enum Kind { case producer, consumer }

    let kind: Kind
    let handle: OpaquePointer
    let mainQueue: OpaquePointer
    let properties: KafkaProperties
    private let context: Unmanaged<RDKafkaCallbackContext>
    private let destroyed = Atomic<Bool>(false)

    var callbacks: RDKafkaCallbackContext { context.takeUnretainedValue() }

    /// `events` is the `RD_KAFKA_EVENT_*` mask delivered on the main queue.
    init(kind: Kind, properties: KafkaProperties, logHandler: KafkaLogHandler?, events: Int32, rebalance: Bool) throws(KafkaError) {
        let conf = try RDKafkaConfig.make(properties)
        let context = Unmanaged.passRetained(RDKafkaCallbackContext(logHandler: logHandler))
        rd_kafka_conf_set_opaque(conf, context.toOpaque())
        rd_kafka_conf_set_events(conf, events)
        if logHandler != nil {
            rd_kafka_conf_set_log_cb(conf) { rk, level, facility, message in
                guard let rk, let opaque = rd_kafka_opaque(rk) else { return }
                let context = Unmanaged<RDKafkaCallbackContext>.fromOpaque(opaque).takeUnretainedValue()
                context.logHandler?(Int(level), facility.map { String(cString: $0) } ?? "", message.map { String(cString: $0) } ?? "")
            }
        }
        if rebalance {
            rd_kafka_conf_set_rebalance_cb(conf) { _, code, partitions, opaque in
                guard let opaque, let partitions else { return }
                let context = Unmanaged<RDKafkaCallbackContext>.fromOpaque(opaque).takeUnretainedValue()
                let handler = context.rebalance.withLock { $0 }
                handler?(code, partitions)
            }
        }
        var errstr = [CChar](repeating: 0, count: 512)
        let type = kind == .producer ? RD_KAFKA_PRODUCER : RD_KAFKA_CONSUMER
        guard let handle = rd_kafka_new(type, conf, &errstr, errstr.count) else {
            rd_kafka_conf_destroy(conf)
            context.release()
            throw RDKafkaConfig.creationError(errstr, properties: properties)
        }
        guard let mainQueue = rd_kafka_queue_get_main(handle) else {
            rd_kafka_destroy(handle)
            context.release()
            throw KafkaError(code: .fail, message: "no main queue", isRetriable: false)
        }
        self.kind = kind
        self.handle = handle
        self.mainQueue = mainQueue
        self.properties = properties
        self.context = context
    }

    /// Waits up to `timeoutMs` for one main-queue event.
    func pollEvent(timeoutMs: Int32) -> RDKafkaEvent? {
        guard let event = rd_kafka_queue_poll(mainQueue, timeoutMs) else { return nil }
        defer { rd_kafka_event_destroy(event) }
        return decode(event)
    }

    func decode(_ event: OpaquePointer) -> RDKafkaEvent {
        switch rd_kafka_event_type(event) {
        case RD_KAFKA_EVENT_DR:
            var reports: [(id: UInt, result: Result<KafkaDeliveryReport, KafkaError>)] = []
            while let message = rd_kafka_event_message_next(event) {
                let id = UInt(bitPattern: message.pointee._private)
                reports.append((id, deliveryResult(message)))
            }
            return .deliveries(reports)
        case RD_KAFKA_EVENT_OFFSET_COMMIT:
            let id = UInt(bitPattern: rd_kafka_event_opaque(event))
            let code = rd_kafka_event_error(event)
            let list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>? = rd_kafka_event_topic_partition_list(event)
            let partitions = list.map { RDKafkaTopicPartitionList.offsets(from: $0) } ?? []
            if code != RD_KAFKA_RESP_ERR_NO_ERROR {
                let message = rd_kafka_event_error_string(event).map { String(cString: $0) }
                return .offsetCommit(
                    id: id, result: .failure(KafkaError(rd: code, message: message.map { "offset commit failed: \($0)" }, handle: handle)))
            }
            if let failed = partitions.first(where: { $0.error != nil }), var error = failed.error {
                error.message = "offset commit failed for \(failed.topicPartition): \(error.message)"
                return .offsetCommit(id: id, result: .failure(error))
            }
            return .offsetCommit(id: id, result: .success(partitions))
        case RD_KAFKA_EVENT_STATS:
            return .statistics(rd_kafka_event_stats(event).map { String(cString: $0) } ?? "{}")
        case RD_KAFKA_EVENT_ERROR:
            let code = rd_kafka_event_error(event)
            let message = rd_kafka_event_error_string(event).map { String(cString: $0) }
            var error = KafkaError(rd: code, message: message.map { properties.redactingSecrets(in: $0) }, handle: handle)
            if rd_kafka_event_error_is_fatal(event) != 0 {
                error.isFatal = true
                error.isRetriable = false
            }
            return .error(error)
        default:
            return .other
        }
    }

    private func deliveryResult(_ message: UnsafePointer<rd_kafka_message_t>) -> Result<KafkaDeliveryReport, KafkaError> {
        let m = message.pointee
        guard m.err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            // Not rd_kafka_message_errstr(): for a producer message it returns the payload (not
            // NUL-terminated), which would leak one requester's answer into error texts and logs.
            var error = KafkaError(rd: m.err, message: nil, handle: handle)
            if m.err == RD_KAFKA_RESP_ERR__FATAL {
                error.isFatal = true
                error.isRetriable = false
            }
            return .failure(error)
        }
        let topic = m.rkt.flatMap { rd_kafka_topic_name($0) }.map { String(cString: $0) } ?? ""
        return .success(
            KafkaDeliveryReport(
                topic: topic, partition: m.partition, offset: m.offset >= 0 ? m.offset : nil,
                timestamp: RDKafkaMessage.timestamp(message)))
    }

    /// `rd_kafka_outq_len`: messages and requests not yet resolved.
    var outQueueLength: Int32 { rd_kafka_outq_len(handle) }

    /// Destroys the instance (once). `leaveGroup: false` skips the consumer close, as a
    /// crashed process would. Blocking: call off the cooperative pool.
    func destroy(leaveGroup: Bool = true) {
        guard !destroyed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        callbacks.rebalance.withLock { $0 = nil }
        rd_kafka_queue_destroy(mainQueue)
        if leaveGroup {
            rd_kafka_destroy(handle)
        } else {
            rd_kafka_destroy_flags(handle, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE)
        }
        context.release()
    }

    var isDestroyed: Bool { destroyed.load(ordering: .acquiring) }

    /// librdkafka before 2.3.0 asserts in `rd_kafka_destroy` on a cooperative-sticky consumer
    /// that never got an assignment (confluentinc/librdkafka#4312).
    static var destroyAbortsBeforeFirstAssignment: Bool { rd_kafka_version() < 0x0203_0000 }
}

enum RDKafkaEventMask {
    static let deliveryReport = Int32(RD_KAFKA_EVENT_DR)
    static let error = Int32(RD_KAFKA_EVENT_ERROR)
    static let stats = Int32(RD_KAFKA_EVENT_STATS)
    static let offsetCommit = Int32(RD_KAFKA_EVENT_OFFSET_COMMIT)
}
