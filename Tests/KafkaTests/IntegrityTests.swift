import Foundation
import Testing

@testable import Kafka

/// 10,000 messages with keys and headers (empty and repeated header names, absent values, a
/// 1 MiB value) produced and consumed intact, against both kinds of broker.
@Suite("Integrity", .timeLimit(.minutes(2)))
struct IntegrityTests {
    static let count = 10_000
    static let bigIndex = 4_321

    static func message(_ index: Int, topic: String) -> KafkaProducerMessage {
        var headers = [
            KafkaHeader(name: "index", string: String(index)),
            KafkaHeader(name: "dup", string: "first-\(index)"),
            KafkaHeader(name: "dup", string: "second"),
        ]
        if index % 3 == 0 { headers.append(KafkaHeader(name: "", value: [])) }
        if index % 5 == 0 { headers.append(KafkaHeader(name: "absent", value: nil)) }
        if index % 7 == 0 { headers.append(KafkaHeader(name: "dup", value: [0, 255, 0])) }
        let key: [UInt8]? = index % 11 == 0 ? nil : (index % 13 == 0 ? [] : Array("key-\(index)".utf8))
        var value: [UInt8]? = Array("value-\(index)-".utf8) + [UInt8](repeating: UInt8(index % 251), count: index % 64)
        if index == bigIndex { value = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) } }
        if index % 17 == 0 { value = nil }  // tombstone
        if index % 19 == 0 { value = [] }
        return KafkaProducerMessage(topic: topic, key: key, value: value, headers: headers)
    }

    @Test("10,000 messages intact", arguments: BrokerKind.allCases)
    func tenThousand(kind: BrokerKind) async throws {
        let topic = "integrity"
        let broker = try TestBroker(kind, brokers: 3, topics: [topic: 4])
        var producerConfig = producerConfiguration(broker.bootstrapServers)
        producerConfig.maxMessageBytes = 4 << 20
        producerConfig.maxInFlightMessages = 2_000
        let producer = try KafkaProducer(configuration: producerConfig)
        var pending: [KafkaPendingDelivery] = []
        for index in 0..<Self.count {
            pending.append(try await producer.enqueue(Self.message(index, topic: topic)))
            #expect(producer.inFlightCount <= 2_000)
        }
        var delivered: [Int: KafkaDeliveryReport] = [:]
        for (index, delivery) in pending.enumerated() { delivered[index] = try await delivery.get() }
        try await producer.close()
        #expect(delivered.count == Self.count)

        var consumerConfig = consumerConfiguration(broker.bootstrapServers, group: uniqueName("integrity"))
        consumerConfig.properties["fetch.message.max.bytes"] = String(2 << 20)
        let consumer = try KafkaConsumer(configuration: consumerConfig)
        try consumer.subscribe(topics: [topic])
        let received = try await collect(consumer, count: Self.count, timeout: .seconds(60))
        try await consumer.close()

        var seen = Set<Int>()
        var lastOffset: [Int32: Int64] = [:]
        for message in received {
            let index = try #require(
                message.headerValues("index").first.flatMap { $0 }.flatMap { Int(String(decoding: $0, as: UTF8.self)) })
            let expected = Self.message(index, topic: topic)
            #expect(message.key == expected.key, "key of \(index)")
            #expect(message.value == expected.value, "value of \(index)")
            #expect(message.headers == expected.headers, "headers of \(index)")
            #expect(message.timestamp != nil)
            let report = try #require(delivered[index])
            #expect(report.partition == message.partition && report.offset == message.offset)
            #expect(lastOffset[message.partition].map { $0 < message.offset } ?? true, "order within partition")
            lastOffset[message.partition] = message.offset
            #expect(seen.insert(index).inserted, "duplicate \(index)")
        }
        #expect(seen.count == Self.count)
        #expect(received.contains { $0.value?.count == 1 << 20 })
        #expect(broker.stop() == 0)
    }
}
