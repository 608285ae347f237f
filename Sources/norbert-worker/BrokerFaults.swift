import Dispatch
import Foundation
import Kafka
import Tensors

/// `norbert-worker broker --faults SEED`: every 2–5 s (`--fault-interval-ms`) one fault of a
/// realistic mix, the kind a client must ride out by retrying:
///
/// - a broker down for 1–3 s, then up again (connections dropped and refused; no leader change);
/// - 1–3 retriable errors pushed on the next Produce, Fetch or OffsetCommit requests;
/// - 100–800 ms of latency on one broker's responses for 1–3 s;
/// - one partition's leader moved to another broker (for good).
///
/// At most one transient fault is active at a time (it is undone before the next pause). Each
/// fault and each undo is logged on stderr as `broker: fault N: …`. SIGUSR1 stops injecting
/// (whatever is active is undone first), so a test can check its results on a quiet cluster.
/// The same seed gives the same sequence of faults (not the same timing against clients).
final class BrokerFaults: Sendable {
    struct Topic: Sendable {
        let name: String
        let partitions: Int
    }

    private let cluster: KafkaMockCluster
    private let topics: [Topic]
    private let seed: UInt64
    private let interval: ClosedRange<Int>

    init(cluster: KafkaMockCluster, topics: [Topic], seed: UInt64, intervalMs: ClosedRange<Int>) {
        self.cluster = cluster
        self.topics = topics
        self.seed = seed
        self.interval = intervalMs
    }

    /// Retriable error codes per request type (librdkafka retries these, or refreshes metadata
    /// or the coordinator and retries).
    static let retriable: [(name: String, api: KafkaMockCluster.API, codes: [KafkaError.Code])] = [
        ("Produce", .produce, [.notLeaderForPartition, .leaderNotAvailable, .requestTimedOut, .notEnoughReplicas]),
        ("Fetch", .fetch, [.notLeaderForPartition, .leaderNotAvailable, .unknownTopicOrPartition]),
        ("OffsetCommit", .offsetCommit, [.coordinatorNotAvailable, .notCoordinator, .coordinatorLoadInProgress, .requestTimedOut]),
    ]

    /// Injects faults until the task is cancelled; undoes an active fault before returning.
    func run() async {
        var random = SplitMix64(seed: seed)
        let brokers = cluster.brokerCount
        var number = 0
        func log(_ text: String) { FileHandle.standardError.write(Data("broker: fault \(number): \(text)\n".utf8)) }
        func range(_ r: ClosedRange<Int>) -> Int { r.lowerBound + random.below(r.count) }
        /// Sleeps; false when cancelled.
        func pause(_ ms: Int) async -> Bool {
            do {
                try await Task.sleep(for: .milliseconds(ms))
                return true
            } catch { return false }
        }
        defer {
            // Errors pushed and not yet consumed by requests are dropped too.
            for entry in Self.retriable { cluster.clearRequestErrors(entry.api) }
            FileHandle.standardError.write(Data("broker: faults stopped after \(number)\n".utf8))
        }
        while await pause(range(interval)) {
            number += 1
            let broker = Int32(1 + random.below(brokers))
            let kind = random.below(4)
            do {
                switch kind {
                case 0:
                    let ms = range(1000...3000)
                    try cluster.setBrokerDown(broker)
                    log("broker \(broker) down for \(ms) ms")
                    let completed = await pause(ms)
                    try cluster.setBrokerUp(broker)
                    log("broker \(broker) up")
                    if !completed { return }
                case 1:
                    let entry = Self.retriable[random.below(Self.retriable.count)]
                    let codes = (0..<range(1...3)).map { _ in entry.codes[random.below(entry.codes.count)] }
                    cluster.pushRequestErrors(entry.api, codes)
                    log("next \(codes.count) \(entry.name) request(s) fail with \(codes.map { "\($0.rawValue)" }.joined(separator: ", "))")
                case 2:
                    let latency = range(100...800), ms = range(1000...3000)
                    try cluster.setBrokerLatency(broker, .milliseconds(latency))
                    log("broker \(broker) latency \(latency) ms for \(ms) ms")
                    let completed = await pause(ms)
                    try cluster.setBrokerLatency(broker, .zero)
                    log("broker \(broker) latency 0")
                    if !completed { return }
                default:
                    guard !topics.isEmpty else { continue }
                    let topic = topics[random.below(topics.count)]
                    let partition = Int32(random.below(topic.partitions))
                    try cluster.setPartitionLeader(topic: topic.name, partition: partition, broker: broker)
                    log("leader of \(topic.name)[\(partition)] moved to broker \(broker)")
                }
            } catch {
                log("injection failed: \(error)")
            }
        }
    }
}
