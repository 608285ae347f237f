import CRdKafka

enum RDKafkaMessage {
    static func timestamp(_ message: UnsafePointer<rd_kafka_message_t>) -> KafkaTimestamp? {
        var type = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
        let value = rd_kafka_message_timestamp(message, &type)
        switch type {
        case RD_KAFKA_TIMESTAMP_CREATE_TIME: return KafkaTimestamp(kind: .createTime, millisecondsSinceEpoch: value)
        case RD_KAFKA_TIMESTAMP_LOG_APPEND_TIME: return KafkaTimestamp(kind: .logAppendTime, millisecondsSinceEpoch: value)
        default: return nil
        }
    }

    static func bytes(_ pointer: UnsafeMutableRawPointer?, _ count: Int) -> [UInt8]? {
        guard let pointer else { return nil }
        return Array(UnsafeRawBufferPointer(start: pointer, count: count))
    }

    /// A consumer error's text: librdkafka puts it in the payload, `len` bytes without a NUL
    /// (`rd_kafka_message_errstr` would read past it). Bounded, invalid UTF-8 repaired.
    static func errorText(_ m: rd_kafka_message_t) -> String? {
        guard let payload = m.payload, m.len > 0 else { return nil }
        let bytes = UnsafeRawBufferPointer(start: payload, count: min(m.len, 1024))
        return String(decoding: bytes, as: UTF8.self)
    }

    /// A consumed message, or the error it signals.
    static func consumed(
        _ message: UnsafeMutablePointer<rd_kafka_message_t>, handle: OpaquePointer
    ) -> Result<KafkaConsumerMessage, KafkaError> {
        let m = message.pointee
        let topic = m.rkt.flatMap { rd_kafka_topic_name($0) }.map { String(cString: $0) } ?? ""
        guard m.err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            var error = KafkaError(rd: m.err, message: errorText(m), handle: handle)
            if !topic.isEmpty { error.message = "\(topic)[\(m.partition)]: \(error.message)" }
            return .failure(error)
        }
        var headers: [KafkaHeader] = []
        var list: OpaquePointer?
        if rd_kafka_message_headers(message, &list) == RD_KAFKA_RESP_ERR_NO_ERROR, let list {
            var index = 0
            while true {
                var name: UnsafePointer<CChar>?
                var value: UnsafeRawPointer?
                var size = 0
                guard rd_kafka_header_get_all(list, index, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR else { break }
                let bytes = value.map { Array(UnsafeRawBufferPointer(start: $0, count: size)) }
                headers.append(KafkaHeader(name: name.map { String(cString: $0) } ?? "", value: bytes))
                index += 1
            }
        }
        return .success(
            KafkaConsumerMessage(
                topic: topic, partition: m.partition, offset: m.offset,
                key: bytes(m.key, m.key_len), value: bytes(m.payload, m.len),
                headers: headers, timestamp: timestamp(message)))
    }
}
