import Foundation
import Synchronization
import Testing

@testable import Kafka

/// A consumer driven by a task that records what it sees: the current assignment, every
/// message (stored for commit as processed), and rebalance events.
final class GroupMember: Sendable {
    struct Snapshot: Sendable {
        var assignment: Set<KafkaTopicPartition> = []
        var messages: [KafkaConsumerMessage] = []
        var assignedEvents = 0
        var revokedEvents = 0
        var lostEvents = 0
        var errors: [KafkaError] = []
        var finished = false
        /// When each revoke was seen, and when it was let go (after `revokeDelay`).
        var revokes: [(seen: ContinuousClock.Instant, done: ContinuousClock.Instant, partitions: [KafkaTopicPartition])] = []
        var assignments: [(at: ContinuousClock.Instant, partitions: [KafkaTopicPartition])] = []
    }

    let name: String
    let consumer: KafkaConsumer
    private final class Box: Sendable { let state = Mutex(Snapshot()) }
    private let box = Box()
    private let loop = Mutex<Task<Void, Never>?>(nil)

    init(
        _ name: String, configuration: KafkaConsumerConfiguration, topics: [String], commitEachMessage: Bool = false,
        revokeDelay: Duration = .zero
    ) throws {
        self.name = name
        consumer = try KafkaConsumer(configuration: configuration)
        try consumer.subscribe(topics: topics)
        let task = Task { [consumer, box] in
            let state = box
            do {
                for try await event in consumer.events {
                    switch event {
                    case .message(let message):
                        state.state.withLock { $0.messages.append(message) }
                        try? consumer.storeOffset(message)
                        if commitEachMessage { _ = try? await consumer.commit(message) }
                    case .assigned(let partitions):
                        state.state.withLock {
                            $0.assignment.formUnion(partitions)
                            $0.assignedEvents += 1
                            $0.assignments.append((.now, partitions))
                        }
                    case .revoked(let partitions):
                        // Drain: the partitions stay ours until we ask for the next event.
                        let seen = ContinuousClock.now
                        if revokeDelay > .zero { try? await Task.sleep(for: revokeDelay) }
                        state.state.withLock {
                            $0.assignment.subtract(partitions)
                            $0.revokedEvents += 1
                            $0.revokes.append((seen, .now, partitions))
                        }
                    case .lost(let partitions):
                        state.state.withLock {
                            $0.assignment.subtract(partitions)
                            $0.lostEvents += 1
                        }
                    case .error(let error):
                        state.state.withLock { $0.errors.append(error) }
                    }
                }
            } catch {
                state.state.withLock { $0.errors.append(error as? KafkaError ?? KafkaError(code: .fail, message: "\(error)")) }
            }
            state.state.withLock { $0.finished = true }
        }
        loop.withLock { $0 = task }
    }

    var snapshot: Snapshot { box.state.withLock { $0 } }
    var assignment: Set<KafkaTopicPartition> { snapshot.assignment }
    var messageCount: Int { snapshot.messages.count }

    func close() async throws {
        try await consumer.close()
        await loop.withLock { $0 }?.value
    }

    /// Destroys the consumer without leaving the group (a crash, as the group sees it).
    func kill() async {
        await consumer.terminateWithoutLeaving()
        await loop.withLock { $0 }?.value
    }
}

func partitions(_ topic: String, _ count: Int32) -> Set<KafkaTopicPartition> {
    Set((0..<count).map { KafkaTopicPartition(topic: topic, partition: $0) })
}
