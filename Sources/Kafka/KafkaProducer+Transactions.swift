/// Transactions (set ``KafkaProducerConfiguration/transactionalID``). Each call blocks inside
/// librdkafka, so it runs on its own thread, never on the cooperative pool.
extension KafkaProducer {
    /// Registers the transactional id with the coordinator (fencing older instances). Once.
    public func initTransactions(timeout: Duration = .seconds(30)) async throws(KafkaError) {
        try await transactionCall("kafka-txn-init") { client throws(KafkaError) in
            try client.initTransactions(timeoutMs: timeout.milliseconds)
        }
    }

    public func beginTransaction() async throws(KafkaError) {
        try await transactionCall("kafka-txn-begin") { client throws(KafkaError) in try client.beginTransaction() }
    }

    /// Adds the consumer's progress to the transaction: committed with it, or not at all.
    public func sendOffsetsToTransaction(
        _ offsets: [KafkaTopicPartitionOffset], consumer: KafkaConsumer, timeout: Duration = .seconds(30)
    ) async throws(KafkaError) {
        let consumerClient = consumer.core.client
        try await transactionCall("kafka-txn-offsets") { client throws(KafkaError) in
            try client.sendOffsetsToTransaction(offsets, consumer: consumerClient, timeoutMs: timeout.milliseconds)
        }
    }

    /// Flushes and commits. On an error with `transactionRequiresAbort`, call
    /// ``abortTransaction(timeout:)``; on `isRetriable`, call commit again.
    public func commitTransaction(timeout: Duration = .seconds(30)) async throws(KafkaError) {
        try await transactionCall("kafka-txn-commit") { client throws(KafkaError) in
            try client.commitTransaction(timeoutMs: timeout.milliseconds)
        }
    }

    public func abortTransaction(timeout: Duration = .seconds(30)) async throws(KafkaError) {
        try await transactionCall("kafka-txn-abort") { client throws(KafkaError) in
            try client.abortTransaction(timeoutMs: timeout.milliseconds)
        }
    }

    private func transactionCall(_ name: String, _ body: @escaping @Sendable (RDKafkaClient) throws(KafkaError) -> Void)
        async throws(KafkaError)
    {
        let client = core.client
        guard core.phase.withLock({ $0 == .open }) else { throw KafkaError.closed("transaction") }
        let result: Result<Void, KafkaError> = await runOffPool(name) {
            Result { () throws(KafkaError) in try body(client) }
        }
        try result.get()
    }
}
