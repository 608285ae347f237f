import Kafka

/// In-flight offsets of one partition, in the order they were received.
///
/// Offsets arrive increasing (with possible gaps: compaction, transaction markers). Each is
/// answered at some later time, in any order. The commit position is `offset + 1` of the last
/// offset of the longest answered prefix: everything below it has been answered and acknowledged,
/// so committing it can never skip an unanswered message.
public struct PartitionOffsets: Sendable, Equatable {
    /// Received, not yet part of the answered prefix: (offset, answered).
    private var pending: [(offset: Int64, done: Bool)] = []
    private var head = 0
    /// Next offset to commit (nil: nothing answered yet on this assignment).
    public private(set) var commitPosition: Int64?
    /// Highest received offset.
    public private(set) var lastReceived: Int64?

    public init() {}

    public static func == (a: Self, b: Self) -> Bool {
        a.commitPosition == b.commitPosition && a.lastReceived == b.lastReceived
            && a.pending[a.head...].elementsEqual(b.pending[b.head...]) { $0.offset == $1.offset && $0.done == $1.done }
    }

    /// Offsets received and not yet answered.
    public var inFlight: Int { pending[head...].reduce(0) { $0 + ($1.done ? 0 : 1) } }
    /// Nothing received is waiting for an answer.
    public var isIdle: Bool { head == pending.count }

    public enum ReceiveOutcome: Sendable, Equatable {
        case accepted
        /// The offset last received, again: ignore it.
        case duplicate
        /// Below the last received offset: the fetch position went back (an offset reset onto a
        /// truncated and rewritten log, a seek). The earlier offsets no longer describe the log:
        /// tracking starts again from this one (accepted), forgetting what was pending.
        case reset
    }

    public mutating func receive(_ offset: Int64) -> ReceiveOutcome {
        var outcome = ReceiveOutcome.accepted
        if let lastReceived {
            if offset == lastReceived { return .duplicate }
            if offset < lastReceived {
                self = PartitionOffsets()
                outcome = .reset
            }
        }
        lastReceived = offset
        pending.append((offset, false))
        return outcome
    }

    /// Sets the commit position to `offset`, where consumption of this assignment starts, when
    /// nothing has moved it yet and it would not pass an unanswered offset.
    public mutating func start(at offset: Int64) {
        guard commitPosition == nil else { return }
        if let first = pending[head...].first, first.offset < offset { return }
        if pending[head...].isEmpty, let lastReceived, lastReceived >= offset { return }
        commitPosition = offset
    }

    /// Marks `offset` answered and acknowledged. Returns the new commit position when it moved.
    public mutating func complete(_ offset: Int64) -> Int64? {
        guard let index = indexOf(offset), !pending[index].done else { return nil }
        pending[index].done = true
        guard index == head else { return nil }
        var last = offset
        while head < pending.count, pending[head].done {
            last = pending[head].offset
            head += 1
        }
        if head > 64, head * 2 > pending.count {
            pending.removeFirst(head)
            head = 0
        }
        commitPosition = last + 1
        return last + 1
    }

    private func indexOf(_ offset: Int64) -> Int? {
        // pending[head...] is sorted by offset: binary search.
        var low = head, high = pending.count
        while low < high {
            let mid = (low + high) / 2
            if pending[mid].offset < offset { low = mid + 1 } else { high = mid }
        }
        return low < pending.count && pending[low].offset == offset ? low : nil
    }
}

/// Per-partition offset tracking for every assigned partition, plus what has been committed.
/// Pure logic: the worker feeds it events and carries out the commits it asks for.
public struct OffsetTracker: Sendable {
    public private(set) var partitions: [KafkaTopicPartition: PartitionOffsets] = [:]
    /// Last commit position handed out for committing, per partition.
    private var requested: [KafkaTopicPartition: Int64] = [:]

    public init() {}

    public mutating func assign(_ list: [KafkaTopicPartition]) {
        for partition in list where partitions[partition] == nil { partitions[partition] = PartitionOffsets() }
    }

    /// Forgets partitions (revoked after the final commit, or lost).
    public mutating func remove(_ list: [KafkaTopicPartition]) {
        for partition in list {
            partitions[partition] = nil
            requested[partition] = nil
        }
    }

    public func owns(_ partition: KafkaTopicPartition) -> Bool { partitions[partition] != nil }

    /// Registers a received message: nil when not ours (unassigned), else what it was (a
    /// `.duplicate` is skipped; after a `.reset` earlier offsets of the partition are forgotten).
    public mutating func receive(_ partition: KafkaTopicPartition, offset: Int64) -> PartitionOffsets.ReceiveOutcome? {
        guard partitions[partition] != nil else { return nil }
        let outcome = partitions[partition]?.receive(offset)
        if outcome == .reset { requested[partition] = nil }
        return outcome
    }

    /// The start position of a partition the group has no offset for (see ``PartitionOffsets/start(at:)``).
    public mutating func start(_ partition: KafkaTopicPartition, at offset: Int64) {
        partitions[partition]?.start(at: offset)
    }

    /// Marks an offset answered and acknowledged; returns the new commit position if it moved.
    @discardableResult
    public mutating func complete(_ partition: KafkaTopicPartition, offset: Int64) -> Int64? {
        partitions[partition]?.complete(offset)
    }

    /// Commit positions not yet handed out (each ≥ every earlier one), marking them handed out.
    public mutating func takeCommits(for only: Set<KafkaTopicPartition>? = nil) -> [KafkaTopicPartitionOffset] {
        var out: [KafkaTopicPartitionOffset] = []
        for (partition, state) in partitions {
            if let only, !only.contains(partition) { continue }
            guard let position = state.commitPosition else { continue }
            if let done = requested[partition], done >= position { continue }
            requested[partition] = position
            out.append(KafkaTopicPartitionOffset(topic: partition.topic, partition: partition.partition, offset: position))
        }
        return out.sorted { ($0.topic, $0.partition) < ($1.topic, $1.partition) }
    }

    /// A commit that failed: hand its position out again next time.
    public mutating func commitFailed(_ offsets: [KafkaTopicPartitionOffset]) {
        for entry in offsets {
            let partition = entry.topicPartition
            if let position = entry.offset, requested[partition] == position { requested[partition] = nil }
        }
    }

    /// Messages received but not answered, over `only` (default all).
    public func inFlight(_ only: [KafkaTopicPartition]? = nil) -> Int {
        (only ?? Array(partitions.keys)).reduce(0) { $0 + (partitions[$1]?.inFlight ?? 0) }
    }
}
