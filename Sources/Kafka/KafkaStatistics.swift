import Foundation

/// librdkafka's statistics report (`statistics.interval.ms`), reduced to what the worker
/// exports: consumer lag per partition, produce round-trip time, queue sizes.
public struct KafkaStatistics: Sendable {
    public struct Broker: Sendable, Hashable {
        public var name: String
        public var nodeID: Int
        public var state: String
        /// Requests waiting to be sent / waiting for a response.
        public var outbufCount: Int
        public var waitingResponseCount: Int
        /// Broker round-trip time (microseconds): average and 99th percentile.
        public var rttAverageMicroseconds: Int64
        public var rttP99Microseconds: Int64
    }

    public struct Partition: Sendable, Hashable {
        public var topic: String
        public var partition: Int32
        /// Consumer: high watermark minus committed offset (`nil` when unknown).
        public var consumerLag: Int64?
        /// Consumer: high watermark minus stored offset (`nil` when unknown).
        public var consumerLagStored: Int64?
        public var committedOffset: Int64?
        public var highWatermark: Int64?
        /// Producer: messages waiting in the partition queue / in flight to the broker.
        public var queuedMessages: Int
        public var transmitQueuedMessages: Int
        /// Consumer: messages fetched and waiting in the local fetch queue.
        public var fetchQueuedMessages: Int
        /// Consumer: librdkafka's fetch state (`none`, `stopping`, `stopped`, `offset-query`,
        /// `offset-wait`, `validate-epoch-wait`, `active`); `nil` when the report has none.
        public var fetchState: String? = nil
        /// Consumer: the partition is being consumed by this client (a fetch state other than
        /// `none`, `stopping` and `stopped`; librdkafka keeps reporting a partition after it is
        /// revoked, with its last lag).
        public var isConsumed: Bool { !["none", "stopping", "stopped"].contains(fetchState ?? "active") }
    }

    /// Client instance name and type ("producer" or "consumer").
    public var name: String
    public var type: String
    /// librdkafka's clock (microseconds).
    public var timestampMicroseconds: Int64
    /// Ops (callbacks, events) waiting to be served by the application.
    public var replyQueueSize: Int
    /// Producer: messages and bytes in queues (local plus in flight).
    public var messageCount: Int
    public var messageBytes: Int
    public var brokers: [Broker]
    public var partitions: [Partition]

    /// Average produce round-trip time over brokers with traffic (microseconds), if any.
    public var averageRTTMicroseconds: Int64? {
        let active = brokers.filter { $0.rttAverageMicroseconds > 0 }
        guard !active.isEmpty else { return nil }
        return active.map(\.rttAverageMicroseconds).reduce(0, +) / Int64(active.count)
    }

    /// Total consumer lag over partitions where it is known.
    public var totalConsumerLag: Int64 { partitions.compactMap(\.consumerLag).reduce(0, +) }

    /// Parses a report; `nil` if it is not librdkafka statistics JSON.
    public init?(json: String) {
        guard let raw = try? JSONDecoder().decode(Raw.self, from: Data(json.utf8)) else { return nil }
        name = raw.name ?? ""
        type = raw.type ?? ""
        timestampMicroseconds = raw.ts ?? 0
        replyQueueSize = raw.replyq ?? 0
        messageCount = raw.msg_cnt ?? 0
        messageBytes = raw.msg_size ?? 0
        brokers = (raw.brokers ?? [:]).values.compactMap { broker in
            guard let nodeID = broker.nodeid, nodeID >= 0 else { return nil }  // skip bootstrap entries
            return Broker(
                name: broker.name ?? "", nodeID: nodeID, state: broker.state ?? "",
                outbufCount: broker.outbuf_cnt ?? 0, waitingResponseCount: broker.waitresp_cnt ?? 0,
                rttAverageMicroseconds: broker.rtt?.avg ?? 0, rttP99Microseconds: broker.rtt?.p99 ?? 0)
        }.sorted { $0.nodeID < $1.nodeID }
        var partitions: [Partition] = []
        for (topicName, topic) in raw.topics ?? [:] {
            for (_, p) in topic.partitions ?? [:] {
                guard let id = p.partition, id >= 0 else { continue }  // -1 is the unassigned queue
                func known(_ value: Int64?) -> Int64? { value.flatMap { $0 >= 0 ? $0 : nil } }
                partitions.append(
                    Partition(
                        topic: topicName, partition: id, consumerLag: known(p.consumer_lag),
                        consumerLagStored: known(p.consumer_lag_stored), committedOffset: known(p.committed_offset),
                        highWatermark: known(p.hi_offset), queuedMessages: p.msgq_cnt ?? 0,
                        transmitQueuedMessages: p.xmit_msgq_cnt ?? 0, fetchQueuedMessages: p.fetchq_cnt ?? 0,
                        fetchState: p.fetch_state))
            }
        }
        self.partitions = partitions.sorted { ($0.topic, $0.partition) < ($1.topic, $1.partition) }
    }

    private struct Raw: Decodable {
        var name: String?
        var type: String?
        var ts: Int64?
        var replyq: Int?
        var msg_cnt: Int?
        var msg_size: Int?
        var brokers: [String: RawBroker]?
        var topics: [String: RawTopic]?
    }
    private struct RawWindow: Decodable {
        var avg: Int64?
        var p99: Int64?
    }
    private struct RawBroker: Decodable {
        var name: String?
        var nodeid: Int?
        var state: String?
        var outbuf_cnt: Int?
        var waitresp_cnt: Int?
        var rtt: RawWindow?
    }
    private struct RawTopic: Decodable {
        var partitions: [String: RawPartition]?
    }
    private struct RawPartition: Decodable {
        var partition: Int32?
        var consumer_lag: Int64?
        var consumer_lag_stored: Int64?
        var committed_offset: Int64?
        var hi_offset: Int64?
        var msgq_cnt: Int?
        var xmit_msgq_cnt: Int?
        var fetchq_cnt: Int?
        var fetch_state: String?
    }
}
