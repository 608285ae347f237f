import CRdKafka

/// The producer-side librdkafka calls.
extension RDKafkaClient {
    /// Enqueues a message; its delivery report carries `id`. Copies key, value and headers.
    ///
    /// The headers go in as one list the caller owns until the call succeeds
    /// (`RD_KAFKA_VTYPE_HEADERS`), not one by one (`RD_KAFKA_VTYPE_HEADER`): with the latter,
    /// librdkafka 2.0.2 frees its own list twice when the message fails after it was built
    /// (e.g. its topic is in an error state, such as unauthorized), crashing the process
    /// (librdkafka #4627).
    func produce(_ message: KafkaProducerMessage, id: UInt) throws(KafkaError) {
        var headers: OpaquePointer?
        if !message.headers.isEmpty {
            guard let list = rd_kafka_headers_new(message.headers.count) else {
                throw KafkaError(code: .fail, message: "produce: no header list")
            }
            for header in message.headers {
                let code = withOptionalBytes(Array(header.name.utf8)) { name in
                    withOptionalBytes(header.value) { value in
                        rd_kafka_header_add(
                            list, name?.baseAddress?.assumingMemoryBound(to: CChar.self), name?.count ?? 0,
                            value?.baseAddress, value?.count ?? 0)
                    }
                }
                guard code == RD_KAFKA_RESP_ERR_NO_ERROR else {
                    rd_kafka_headers_destroy(list)
                    throw KafkaError(rd: code, handle: handle)
                }
            }
            headers = list
        }
        let code: rd_kafka_resp_err_t = message.topic.withCString { topic in
            withOptionalBytes(message.key) { key in
                withOptionalBytes(message.value) { value in
                    var values: [rd_kafka_vu_t] = []
                    values.reserveCapacity(7)
                    var vu = rd_kafka_vu_t()
                    vu.vtype = RD_KAFKA_VTYPE_TOPIC
                    vu.u.cstr = topic
                    values.append(vu)
                    vu = rd_kafka_vu_t()
                    vu.vtype = RD_KAFKA_VTYPE_PARTITION
                    vu.u.i32 = message.partition ?? RD_KAFKA_PARTITION_UA
                    values.append(vu)
                    if let key {
                        vu = rd_kafka_vu_t()
                        vu.vtype = RD_KAFKA_VTYPE_KEY
                        vu.u.mem.ptr = UnsafeMutableRawPointer(mutating: key.baseAddress)
                        vu.u.mem.size = key.count
                        values.append(vu)
                    }
                    if let value {
                        vu = rd_kafka_vu_t()
                        vu.vtype = RD_KAFKA_VTYPE_VALUE
                        vu.u.mem.ptr = UnsafeMutableRawPointer(mutating: value.baseAddress)
                        vu.u.mem.size = value.count
                        values.append(vu)
                    }
                    if let headers {
                        vu = rd_kafka_vu_t()
                        vu.vtype = RD_KAFKA_VTYPE_HEADERS
                        vu.u.headers = headers
                        values.append(vu)
                    }
                    vu = rd_kafka_vu_t()
                    vu.vtype = RD_KAFKA_VTYPE_MSGFLAGS
                    vu.u.i = RD_KAFKA_MSG_F_COPY
                    values.append(vu)
                    vu = rd_kafka_vu_t()
                    vu.vtype = RD_KAFKA_VTYPE_OPAQUE
                    vu.u.ptr = UnsafeMutableRawPointer(bitPattern: id)
                    values.append(vu)
                    guard let error = rd_kafka_produceva(handle, values, values.count) else { return RD_KAFKA_RESP_ERR_NO_ERROR }
                    let code = rd_kafka_error_code(error)
                    rd_kafka_error_destroy(error)
                    return code
                }
            }
        }
        // On failure the header list is still ours; on success the message owns it.
        if code != RD_KAFKA_RESP_ERR_NO_ERROR, let headers { rd_kafka_headers_destroy(headers) }
        try rdCheck(code, handle: handle, "produce to \(message.topic)")
    }

    /// Blocks up to `timeoutMs` until every message is resolved (the event thread serves the
    /// delivery reports meanwhile).
    func flush(timeoutMs: Int32) -> rd_kafka_resp_err_t { rd_kafka_flush(handle, timeoutMs) }

    /// Fails queued and in-flight messages (their delivery reports say `_PURGE_*`).
    func purge() {
        _ = rd_kafka_purge(handle, Int32(RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT))
    }

    // MARK: Transactions (blocking: call off the cooperative pool)

    func initTransactions(timeoutMs: Int32) throws(KafkaError) {
        try rdCheck(rd_kafka_init_transactions(handle, timeoutMs), "init transactions")
    }
    func beginTransaction() throws(KafkaError) {
        try rdCheck(rd_kafka_begin_transaction(handle), "begin transaction")
    }
    func commitTransaction(timeoutMs: Int32) throws(KafkaError) {
        try rdCheck(rd_kafka_commit_transaction(handle, timeoutMs), "commit transaction")
    }
    func abortTransaction(timeoutMs: Int32) throws(KafkaError) {
        try rdCheck(rd_kafka_abort_transaction(handle, timeoutMs), "abort transaction")
    }
    func sendOffsetsToTransaction(_ offsets: [KafkaTopicPartitionOffset], consumer: RDKafkaClient, timeoutMs: Int32) throws(KafkaError) {
        guard let metadata = consumer.groupMetadata() else {
            throw KafkaError.state("send offsets to transaction: the consumer has no group metadata")
        }
        defer { rd_kafka_consumer_group_metadata_destroy(metadata) }
        try RDKafkaTopicPartitionList.with(offsets) { list throws(KafkaError) in
            try rdCheck(rd_kafka_send_offsets_to_transaction(handle, list, metadata, timeoutMs), "send offsets to transaction")
        }
    }

    /// Fetches the metadata of `topic` (blocking, at most `timeoutMs`) into the client's cache,
    /// so the first message produced to it does not wait for a metadata round trip. Returns the
    /// topic's partition count; throws the request's or the topic's error (e.g. unknown topic).
    func loadTopicMetadata(_ topic: String, timeoutMs: Int32) throws(KafkaError) -> Int {
        guard let rkt = rd_kafka_topic_new(handle, topic, nil) else {
            throw KafkaError(rd: rd_kafka_last_error(), handle: handle)
        }
        defer { rd_kafka_topic_destroy(rkt) }
        var metadata: UnsafePointer<rd_kafka_metadata>? = nil
        let code = rd_kafka_metadata(handle, 0, rkt, &metadata, timeoutMs)
        defer { if let metadata { rd_kafka_metadata_destroy(metadata) } }
        try rdCheck(code, handle: handle, "metadata of \(topic)")
        guard let metadata, metadata.pointee.topic_cnt > 0, let entry = metadata.pointee.topics?.pointee else {
            throw KafkaError(
                code: .unknownTopicOrPartition, message: "metadata of \(topic): the broker returned no such topic", isRetriable: true)
        }
        try rdCheck(entry.err, "metadata of \(topic)")
        return Int(entry.partition_cnt)
    }
}

private func withOptionalBytes<R>(_ bytes: [UInt8]?, _ body: (UnsafeRawBufferPointer?) -> R) -> R {
    guard let bytes else { return body(nil) }
    return bytes.withUnsafeBytes { buffer in
        // An empty array may have no base address; librdkafka needs a non-null pointer for an
        // empty (not absent) key or value.
        if buffer.baseAddress == nil {
            return withUnsafeBytes(of: UInt8(0)) { one in body(UnsafeRawBufferPointer(rebasing: one[0..<0])) }
        }
        return body(buffer)
    }
}
