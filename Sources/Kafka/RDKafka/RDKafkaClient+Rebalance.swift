import CRdKafka

extension RDKafkaClient {
    enum RebalanceEvent {
        case assign([KafkaTopicPartition])
        /// Called before the partitions are released; may block (the drain and commit).
        case revoke([KafkaTopicPartition], lost: Bool)
        case error(KafkaError)
    }

    /// Installs the rebalance callback: `handler` sees each change first, then the assignment
    /// is updated (incrementally under the cooperative protocol, wholesale under eager).
    func installRebalanceHandler(_ handler: @escaping @Sendable (RebalanceEvent) -> Void) {
        let client = self
        callbacks.rebalance.withLock { slot in
            slot = { code, list in
                let partitions = RDKafkaTopicPartitionList.partitions(from: list)
                let cooperative = client.isCooperative
                if code == RDKafkaClient.rebalanceAssign {
                    handler(.assign(partitions))
                    if let error = client.assign(list, cooperative: cooperative) { handler(.error(error)) }
                } else if code == RDKafkaClient.rebalanceRevoke {
                    handler(.revoke(partitions, lost: client.assignmentLost))
                    if let error = client.unassign(list, cooperative: cooperative) { handler(.error(error)) }
                } else {
                    handler(.error(KafkaError(rd: code)))
                    _ = client.unassign(nil, cooperative: false)
                }
            }
        }
    }
}
