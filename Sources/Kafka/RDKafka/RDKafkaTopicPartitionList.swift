import CRdKafka

enum RDKafkaTopicPartitionList {
    typealias List = UnsafeMutablePointer<rd_kafka_topic_partition_list_t>

    /// A new list (caller destroys it with `rd_kafka_topic_partition_list_destroy`).
    static func make(_ entries: [KafkaTopicPartitionOffset]) -> List {
        // librdkafka's allocator aborts instead of returning NULL, so this never fails; the
        // size is clamped and nothing from a message or configuration reaches it.
        let list = rd_kafka_topic_partition_list_new(Int32(clamping: max(1, entries.count)))!
        for entry in entries {
            if let element = rd_kafka_topic_partition_list_add(list, entry.topic, entry.partition) {
                element.pointee.offset = entry.offset ?? Int64(RD_KAFKA_OFFSET_INVALID)
            }
        }
        return list
    }

    static func make(_ partitions: [KafkaTopicPartition]) -> List {
        make(partitions.map { KafkaTopicPartitionOffset(topic: $0.topic, partition: $0.partition, offset: nil) })
    }

    static func offsets(from list: UnsafePointer<rd_kafka_topic_partition_list_t>) -> [KafkaTopicPartitionOffset] {
        let count = Int(list.pointee.cnt)
        guard count > 0, let elements = list.pointee.elems else { return [] }
        return (0..<count).map { index in
            let element = elements[index]
            let topic = element.topic.map { String(cString: $0) } ?? ""
            let error = element.err == RD_KAFKA_RESP_ERR_NO_ERROR ? nil : KafkaError(rd: element.err)
            return KafkaTopicPartitionOffset(
                topic: topic, partition: element.partition, offset: element.offset >= 0 ? element.offset : nil, error: error)
        }
    }

    static func partitions(from list: UnsafePointer<rd_kafka_topic_partition_list_t>) -> [KafkaTopicPartition] {
        offsets(from: list).map(\.topicPartition)
    }

    /// Runs `body` with a temporary list.
    static func with<T>(_ entries: [KafkaTopicPartitionOffset], _ body: (List) throws(KafkaError) -> T) throws(KafkaError) -> T {
        let list = make(entries)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        return try body(list)
    }
}
