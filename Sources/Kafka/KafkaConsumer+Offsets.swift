/// Commits, stored offsets and lag queries.
extension KafkaConsumer {
    /// Commits `offsets` (each the next offset to read) and waits for the coordinator's answer,
    /// at most `timeout` (default ``KafkaConsumerConfiguration/commitTimeout``). Throws the
    /// commit error (request-level, or the first partition-level one).
    @discardableResult
    public func commit(_ offsets: [KafkaTopicPartitionOffset], timeout: Duration? = nil) async throws -> [KafkaTopicPartitionOffset] {
        let promise = try core.startCommit(offsets)
        promise.expire(after: timeout ?? core.configuration.commitTimeout, what: "offset commit")
        return try await promise.result.get()
    }

    /// Commits the position after `message`.
    @discardableResult
    public func commit(_ message: KafkaConsumerMessage, timeout: Duration? = nil) async throws -> [KafkaTopicPartitionOffset] {
        try await commit([message.nextOffset], timeout: timeout)
    }

    /// Commits the offsets stored with ``storeOffset(_:)`` (for the current assignment).
    /// Returns an empty list when nothing was stored since the last commit.
    @discardableResult
    public func commitStored(timeout: Duration? = nil) async throws -> [KafkaTopicPartitionOffset] {
        let promise = try core.startCommit(nil)
        promise.expire(after: timeout ?? core.configuration.commitTimeout, what: "offset commit")
        switch await promise.result {
        case .success(let offsets): return offsets
        case .failure(let error) where error.code == .noOffset: return []
        case .failure(let error): throw error
        }
    }

    /// Starts a commit without waiting; `completion` (if any) receives the result, or a
    /// `_TIMED_OUT` error after `timeout`.
    public func commitAsync(
        _ offsets: [KafkaTopicPartitionOffset], timeout: Duration? = nil,
        completion: (@Sendable (Result<[KafkaTopicPartitionOffset], KafkaError>) -> Void)? = nil
    ) {
        do {
            let promise = try core.startCommit(offsets)
            promise.expire(after: timeout ?? core.configuration.commitTimeout, what: "offset commit")
            if let completion { promise.onComplete(completion) }
        } catch {
            completion?(.failure(error))
        }
    }

    /// Marks `message` processed: its next offset is committed by ``commitStored(timeout:)``,
    /// before a revoke completes, and by ``close()``. Nothing is committed before this call.
    public func storeOffset(_ message: KafkaConsumerMessage) throws {
        try core.withOpenClient("store offset") { (client) throws(KafkaError) in try client.storeOffsets([message.nextOffset]) }
    }

    public func storeOffsets(_ offsets: [KafkaTopicPartitionOffset]) throws {
        try core.withOpenClient("store offsets") { (client) throws(KafkaError) in try client.storeOffsets(offsets) }
    }

    /// The next offset this consumer will read per partition (`nil` offset: not known yet).
    public func position(_ partitions: [KafkaTopicPartition]) throws -> [KafkaTopicPartitionOffset] {
        try core.withOpenClient("position") { (client) throws(KafkaError) in try client.position(partitions) }
    }

    /// The group's committed offsets for `partitions`, from the coordinator.
    public func committed(_ partitions: [KafkaTopicPartition], timeout: Duration? = nil) async throws -> [KafkaTopicPartitionOffset] {
        let client = core.client
        let ms = (timeout ?? core.configuration.commitTimeout).milliseconds
        return try await runOffPool("kafka-committed") { () -> Result<[KafkaTopicPartitionOffset], KafkaError> in
            Result { () throws(KafkaError) in try client.committed(partitions, timeoutMs: ms) }
        }.get()
    }

    /// Low and high watermarks of a partition, asked of its leader.
    public func watermarks(topic: String, partition: Int32, timeout: Duration = .seconds(10)) async throws -> (low: Int64, high: Int64) {
        let client = core.client
        let ms = timeout.milliseconds
        return try await runOffPool("kafka-watermarks") { () -> Result<(low: Int64, high: Int64), KafkaError> in
            Result { () throws(KafkaError) in try client.watermarks(topic: topic, partition: partition, query: true, timeoutMs: ms) }
        }.get()
    }

    /// Lag per partition: high watermark minus committed offset (minus low watermark when
    /// nothing is committed).
    public func lag(_ partitions: [KafkaTopicPartition], timeout: Duration = .seconds(10)) async throws -> [KafkaTopicPartition: Int64] {
        let committed = try await committed(partitions, timeout: timeout)
        var lag: [KafkaTopicPartition: Int64] = [:]
        for entry in committed {
            let marks = try await watermarks(topic: entry.topic, partition: entry.partition, timeout: timeout)
            lag[entry.topicPartition] = max(0, marks.high - (entry.offset ?? marks.low))
        }
        return lag
    }
}

extension ConsumerCore {
    func startCommit(_ offsets: [KafkaTopicPartitionOffset]?) throws(KafkaError) -> Promise<[KafkaTopicPartitionOffset]> {
        let promise = Promise<[KafkaTopicPartitionOffset]>()
        let id = commits.register(promise)
        do {
            // Under the phase lock, like ``withOpenClient(_:_:)``: never on a handle being destroyed.
            try phase.withLock { phase throws(KafkaError) in
                guard phase == .running else { throw KafkaError.closed("commit") }
                try client.commit(offsets, id: id)
            }
        } catch {
            _ = commits.take(id)
            throw error
        }
        return promise
    }
}
