import CRdKafka

/// The consumer-side librdkafka calls.
extension RDKafkaClient {
    func subscribe(_ topics: [String]) throws(KafkaError) {
        let list = RDKafkaTopicPartitionList.make(topics.map { KafkaTopicPartition(topic: $0, partition: RD_KAFKA_PARTITION_UA) })
        defer { rd_kafka_topic_partition_list_destroy(list) }
        try rdCheck(rd_kafka_subscribe(handle, list), handle: handle, "subscribe")
    }

    enum Polled {
        case message(KafkaConsumerMessage)
        case error(KafkaError)
    }

    /// Blocks up to `timeoutMs` for one message (serving rebalance callbacks meanwhile).
    func consumerPoll(timeoutMs: Int32) -> Polled? {
        guard let message = rd_kafka_consumer_poll(handle, timeoutMs) else { return nil }
        defer { rd_kafka_message_destroy(message) }
        if message.pointee.err == RD_KAFKA_RESP_ERR__PARTITION_EOF { return nil }
        switch RDKafkaMessage.consumed(message, handle: handle) {
        case .success(let value): return .message(value)
        case .failure(let error): return .error(error)
        }
    }

    // MARK: Rebalance

    var isCooperative: Bool {
        guard let name = rd_kafka_rebalance_protocol(handle) else { return false }
        return String(cString: name) == "COOPERATIVE"
    }
    var assignmentLost: Bool { rd_kafka_assignment_lost(handle) != 0 }

    func assign(_ partitions: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>, cooperative: Bool) -> KafkaError? {
        if cooperative {
            return rd_kafka_incremental_assign(handle, partitions).map { KafkaError(consuming: $0) }
        }
        let code = rd_kafka_assign(handle, partitions)
        return code == RD_KAFKA_RESP_ERR_NO_ERROR ? nil : KafkaError(rd: code)
    }

    func unassign(_ partitions: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?, cooperative: Bool) -> KafkaError? {
        if cooperative, let partitions {
            return rd_kafka_incremental_unassign(handle, partitions).map { KafkaError(consuming: $0) }
        }
        let code = rd_kafka_assign(handle, nil)
        return code == RD_KAFKA_RESP_ERR_NO_ERROR ? nil : KafkaError(rd: code)
    }

    static let rebalanceAssign = RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS
    static let rebalanceRevoke = RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS

    func assignment() throws(KafkaError) -> [KafkaTopicPartition] {
        var list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?
        try rdCheck(rd_kafka_assignment(handle, &list), handle: handle, "assignment")
        guard let list else { return [] }
        defer { rd_kafka_topic_partition_list_destroy(list) }
        return RDKafkaTopicPartitionList.partitions(from: list)
    }

    // MARK: Offsets

    /// Starts a commit whose result arrives on the main queue as an offset-commit event
    /// carrying `id`. `nil` offsets commit the stored offsets of the current assignment.
    func commit(_ offsets: [KafkaTopicPartitionOffset]?, id: UInt) throws(KafkaError) {
        let list = offsets.map(RDKafkaTopicPartitionList.make)
        defer { list.map(rd_kafka_topic_partition_list_destroy) }
        try rdCheck(rd_kafka_commit_queue(handle, list, mainQueue, nil, UnsafeMutableRawPointer(bitPattern: id)), handle: handle, "commit")
    }

    /// Commits and waits at most `timeoutMs` for the result (blocking: off the cooperative pool).
    func commitBlocking(_ offsets: [KafkaTopicPartitionOffset]?, timeoutMs: Int32) -> Result<[KafkaTopicPartitionOffset], KafkaError> {
        guard let queue = rd_kafka_queue_new(handle) else { return .failure(KafkaError(code: .fail, message: "no queue")) }
        defer { rd_kafka_queue_destroy(queue) }
        let list = offsets.map(RDKafkaTopicPartitionList.make)
        defer { list.map(rd_kafka_topic_partition_list_destroy) }
        let code = rd_kafka_commit_queue(handle, list, queue, nil, nil)
        guard code == RD_KAFKA_RESP_ERR_NO_ERROR else { return .failure(KafkaError(rd: code, handle: handle)) }
        guard let event = rd_kafka_queue_poll(queue, timeoutMs) else { return .failure(.timedOut("offset commit")) }
        defer { rd_kafka_event_destroy(event) }
        if case .offsetCommit(_, let result) = decode(event) { return result }
        return .failure(KafkaError(code: .fail, message: "unexpected event on commit queue"))
    }

    func storeOffsets(_ offsets: [KafkaTopicPartitionOffset]) throws(KafkaError) {
        try RDKafkaTopicPartitionList.with(offsets) { list throws(KafkaError) in
            try rdCheck(rd_kafka_offsets_store(handle, list), handle: handle, "store offsets")
            if let failed = RDKafkaTopicPartitionList.offsets(from: list).first(where: { $0.error != nil }), var error = failed.error {
                error.message = "store offset for \(failed.topicPartition): \(error.message)"
                throw error
            }
        }
    }

    func pause(_ partitions: [KafkaTopicPartition]) throws(KafkaError) {
        let list = RDKafkaTopicPartitionList.make(partitions)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        try rdCheck(rd_kafka_pause_partitions(handle, list), handle: handle, "pause")
    }

    func resume(_ partitions: [KafkaTopicPartition]) throws(KafkaError) {
        let list = RDKafkaTopicPartitionList.make(partitions)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        try rdCheck(rd_kafka_resume_partitions(handle, list), handle: handle, "resume")
    }

    /// The next offset the consumer will read per partition (local, non-blocking).
    func position(_ partitions: [KafkaTopicPartition]) throws(KafkaError) -> [KafkaTopicPartitionOffset] {
        let list = RDKafkaTopicPartitionList.make(partitions)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        try rdCheck(rd_kafka_position(handle, list), handle: handle, "position")
        return RDKafkaTopicPartitionList.offsets(from: list)
    }

    /// Committed offsets from the group coordinator (blocking up to `timeoutMs`).
    func committed(_ partitions: [KafkaTopicPartition], timeoutMs: Int32) throws(KafkaError) -> [KafkaTopicPartitionOffset] {
        let list = RDKafkaTopicPartitionList.make(partitions)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        try rdCheck(rd_kafka_committed(handle, list, timeoutMs), handle: handle, "committed offsets")
        return RDKafkaTopicPartitionList.offsets(from: list)
    }

    /// Low and high watermarks: queried from the leader (blocking) or from the last fetch.
    func watermarks(topic: String, partition: Int32, query: Bool, timeoutMs: Int32) throws(KafkaError) -> (low: Int64, high: Int64) {
        var low: Int64 = -1
        var high: Int64 = -1
        if query {
            try rdCheck(
                rd_kafka_query_watermark_offsets(handle, topic, partition, &low, &high, timeoutMs), handle: handle,
                "watermarks of \(topic)[\(partition)]")
        } else {
            try rdCheck(
                rd_kafka_get_watermark_offsets(handle, topic, partition, &low, &high), handle: handle,
                "cached watermarks of \(topic)[\(partition)]")
        }
        return (low, high)
    }

    /// Starts leaving the group. The returned queue carries the final revoke: serve it with
    /// ``serveClose(_:until:)`` until the consumer is closed (librdkafka's teardown waits for
    /// that revoke), then destroy it. Nil when the close could not start.
    func startClosingConsumer() -> CloseQueue? {
        guard let queue = rd_kafka_queue_new(handle) else { return nil }
        if let error = rd_kafka_consumer_close_queue(handle, queue) {
            rd_kafka_error_destroy(error)
            rd_kafka_queue_destroy(queue)
            return nil
        }
        return CloseQueue(pointer: queue)
    }

    /// Serves the close queue until the consumer is closed or `deadline`. True when closed.
    ///
    /// The queue is served as events, not with rd_kafka_queue_poll_callback(): the consumer's
    /// queue is forwarded to it, and messages librdkafka fetched for the application and still
    /// holds (prefetched, or of paused partitions) cannot be served as callbacks: librdkafka
    /// asserts and aborts the process. They are dropped here, as rd_kafka_consumer_close()
    /// drops them; a rebalance (the final revoke) goes to the rebalance handler as its callback
    /// would.
    func serveClose(_ queue: CloseQueue, until deadline: ContinuousClock.Instant) -> Bool {
        while rd_kafka_consumer_closed(handle) == 0 {
            guard ContinuousClock.now < deadline else { return false }
            guard let event = rd_kafka_queue_poll(queue.pointer, 50) else { continue }
            if rd_kafka_event_type(event) == RD_KAFKA_EVENT_REBALANCE, let list = rd_kafka_event_topic_partition_list(event) {
                if let handler = callbacks.rebalance.withLock({ $0 }) {
                    handler(rd_kafka_event_error(event), list)
                } else {
                    _ = unassign(list, cooperative: isCooperative)
                }
            }
            rd_kafka_event_destroy(event)
        }
        return true
    }

    /// The consumer's group metadata for `sendOffsetsToTransaction` (caller destroys it).
    func groupMetadata() -> OpaquePointer? { rd_kafka_consumer_group_metadata(handle) }
}

/// The queue of a consumer close in progress (served by one thread at a time, then destroyed once).
struct CloseQueue: @unchecked Sendable {
    let pointer: OpaquePointer
    func destroy() { rd_kafka_queue_destroy(pointer) }
}
