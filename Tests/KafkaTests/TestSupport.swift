import Foundation
import Testing

@testable import Kafka

struct TimeoutError: Error, CustomStringConvertible {
    var what: String
    var description: String { "timed out: \(what)" }
}

/// Runs `body`, failing with `TimeoutError` (and cancelling it) after `timeout`.
func withTimeout<T: Sendable>(_ timeout: Duration, _ what: String, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: timeout)
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let value = first else { throw TimeoutError(what: what) }
        return value
    }
}

let quietLog: KafkaLogHandler = { _, _, _ in }

func uniqueName(_ prefix: String) -> String { "\(prefix)-\(UInt32.random(in: 0...UInt32.max))" }

func makeCluster(brokers: Int = 1, topics: [String: Int]) throws -> KafkaMockCluster {
    let cluster = try KafkaMockCluster(brokers: brokers)
    for (name, partitions) in topics { try cluster.createTopic(name, partitions: partitions) }
    return cluster
}

/// The mock group coordinator waits up to (session timeout - 1 s) for members to rejoin, so a
/// short session keeps rebalances quick; the kill test uses the realistic 6 s.
func consumerConfiguration(_ bootstrap: String, group: String, session: Duration = .seconds(3)) -> KafkaConsumerConfiguration {
    var configuration = KafkaConsumerConfiguration(bootstrapServers: bootstrap, groupID: group)
    configuration.logHandler = quietLog
    configuration.sessionTimeout = session
    configuration.heartbeatInterval = .milliseconds(500)
    configuration.properties["topic.metadata.refresh.interval.ms"] = "1000"
    configuration.properties["fetch.wait.max.ms"] = "50"
    configuration.commitTimeout = .seconds(10)
    configuration.closeTimeout = .seconds(10)
    configuration.rebalanceTimeout = .seconds(10)
    return configuration
}

func producerConfiguration(_ bootstrap: String) -> KafkaProducerConfiguration {
    var configuration = KafkaProducerConfiguration(bootstrapServers: bootstrap)
    configuration.logHandler = quietLog
    configuration.linger = .milliseconds(2)
    configuration.deliveryTimeout = .seconds(20)
    return configuration
}

/// Collects `count` messages from `consumer.messages`, at most `timeout`.
func collect(_ consumer: KafkaConsumer, count: Int, timeout: Duration, storing: Bool = false) async throws -> [KafkaConsumerMessage] {
    try await withTimeout(timeout, "collecting \(count) messages") {
        var received: [KafkaConsumerMessage] = []
        for try await message in consumer.messages {
            received.append(message)
            if storing { try consumer.storeOffset(message) }
            if received.count == count { break }
        }
        return received
    }
}

/// Produces `count` small keyed messages round-robin over explicit partitions; returns them.
@discardableResult
func produce(_ producer: KafkaProducer, topic: String, count: Int, partitions: Int32, prefix: String = "m") async throws
    -> [KafkaDeliveryReport]
{
    var pending: [KafkaPendingDelivery] = []
    for index in 0..<count {
        let message = KafkaProducerMessage(
            topic: topic, partition: Int32(index) % partitions, key: "\(prefix)-\(index)", value: "value-\(index)")
        pending.append(try await producer.enqueue(message))
    }
    var reports: [KafkaDeliveryReport] = []
    for delivery in pending { reports.append(try await delivery.get()) }
    return reports
}
