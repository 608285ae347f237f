import Foundation
import Synchronization
import TestSupport
import Testing

@testable import Kafka

@Suite("Statistics and backpressure", .timeLimit(.minutes(1)))
struct StatisticsTests {
    static let sample = """
        {"name":"rdkafka#consumer-1","client_id":"rdkafka","type":"consumer","ts":123456789,"time":1,"replyq":3,
         "msg_cnt":7,"msg_size":700,
         "brokers":{"127.0.0.1:1/1":{"name":"127.0.0.1:1/1","nodeid":1,"state":"UP","outbuf_cnt":2,"waitresp_cnt":1,
                    "rtt":{"min":100,"max":900,"avg":400,"p99":850}},
                    "GroupCoordinator":{"name":"GroupCoordinator","nodeid":-1,"state":"UP","rtt":{"avg":0}}},
         "topics":{"t":{"topic":"t","partitions":{
             "0":{"partition":0,"consumer_lag":5,"consumer_lag_stored":4,"committed_offset":10,"hi_offset":15,
                  "msgq_cnt":0,"xmit_msgq_cnt":0,"fetchq_cnt":2},
             "1":{"partition":1,"consumer_lag":-1,"committed_offset":-1001,"hi_offset":-1},
             "-1":{"partition":-1,"msgq_cnt":0}}}}}
        """

    @Test("statistics JSON is parsed into lag, rtt and queue sizes")
    func parse() throws {
        let statistics = try #require(KafkaStatistics(json: Self.sample))
        #expect(statistics.type == "consumer")
        #expect(statistics.replyQueueSize == 3)
        #expect(statistics.messageCount == 7)
        #expect(statistics.brokers.count == 1)
        #expect(statistics.brokers.first?.rttAverageMicroseconds == 400)
        #expect(statistics.averageRTTMicroseconds == 400)
        #expect(statistics.partitions.count == 2)
        #expect(statistics.partitions[0].consumerLag == 5)
        #expect(statistics.partitions[0].committedOffset == 10)
        #expect(statistics.partitions[1].consumerLag == nil)
        #expect(statistics.totalConsumerLag == 5)
        #expect(KafkaStatistics(json: "not json") == nil)
    }

    @Test("live statistics from producer and consumer")
    func live() async throws {
        let topic = "stats"
        let cluster = try makeCluster(brokers: 1, topics: [topic: 2])
        var producerConfig = producerConfiguration(cluster.bootstrapServers)
        producerConfig.statisticsInterval = .milliseconds(200)
        let producer = try KafkaProducer(configuration: producerConfig)
        try await produce(producer, topic: topic, count: 50, partitions: 2)
        // RTT is windowed per report: keep traffic going while waiting for one that shows it.
        let traffic = Task {
            while !Task.isCancelled {
                _ = try? await producer.send(KafkaProducerMessage(topic: topic, partition: 0, key: "t", value: "t"))
                try? await Task.sleep(for: .milliseconds(20))
            }
        }
        let producerStats = try await withTimeout(.seconds(15), "producer statistics") { () -> KafkaStatistics? in
            for await statistics in producer.statistics where statistics.averageRTTMicroseconds != nil { return statistics }
            return nil
        }
        traffic.cancel()
        await traffic.value
        #expect(producerStats?.type == "producer")

        var consumerConfig = consumerConfiguration(cluster.bootstrapServers, group: uniqueName("g"))
        consumerConfig.statisticsInterval = .milliseconds(200)
        let member = try GroupMember("s", configuration: consumerConfig, topics: [topic])
        try await eventually(.seconds(20), "read 50") { member.messageCount >= 50 }
        // Nothing committed yet: lag is the whole partition once librdkafka knows the committed offset.
        let lagged = try await withTimeout(.seconds(10), "consumer statistics with lag") { () -> KafkaStatistics? in
            for await statistics in member.consumer.statistics
            where statistics.partitions.count == 2 && statistics.partitions.allSatisfy({ ($0.highWatermark ?? 0) >= 25 }) {
                return statistics
            }
            return nil
        }
        #expect(lagged?.type == "consumer")
        try await producer.close()
        try await member.close()
    }

    @Test("the in-flight window applies backpressure")
    func backpressure() async throws {
        let topic = "window"
        let cluster = try makeCluster(brokers: 1, topics: [topic: 1])
        var configuration = producerConfiguration(cluster.bootstrapServers)
        configuration.maxInFlightMessages = 8
        let producer = try KafkaProducer(configuration: configuration)
        try cluster.setBrokerLatency(-1, .milliseconds(200))
        let maxSeen = Mutex(0)
        let started = ContinuousClock.now
        var pending: [KafkaPendingDelivery] = []
        for index in 0..<40 {
            pending.append(try await producer.enqueue(KafkaProducerMessage(topic: topic, key: "k\(index)", value: "v")))
            let inFlight = producer.inFlightCount
            maxSeen.withLock { $0 = max($0, inFlight) }
        }
        for delivery in pending { _ = try await delivery.get() }
        #expect(maxSeen.withLock { $0 } <= 8)
        // 40 messages through a window of 8 at 200 ms per round trip take several round trips.
        #expect(ContinuousClock.now - started >= .milliseconds(600))
        try await producer.close()
    }

    @Test("a consumer's buffer is bounded: the poll thread waits for the caller")
    func consumerBuffer() async throws {
        let topic = "buffer"
        let cluster = try makeCluster(brokers: 1, topics: [topic: 1])
        let producer = try KafkaProducer(configuration: producerConfiguration(cluster.bootstrapServers))
        try await produce(producer, topic: topic, count: 200, partitions: 1)
        try await producer.close()
        var configuration = consumerConfiguration(cluster.bootstrapServers, group: uniqueName("g"))
        configuration.bufferCapacity = 10
        let consumer = try KafkaConsumer(configuration: configuration)
        try consumer.subscribe(topics: [topic])
        let first = try await collect(consumer, count: 1, timeout: .seconds(20))
        #expect(first.count == 1)
        try await Task.sleep(for: .milliseconds(500))
        let position = try consumer.position([KafkaTopicPartition(topic: topic, partition: 0)]).first?.offset ?? 0
        #expect(position <= 12, "the poll thread ran ahead to \(position)")
        let rest = try await collect(consumer, count: 199, timeout: .seconds(20))
        #expect(rest.map(\.offset) == (1..<200).map { Int64($0) })
        try await consumer.close()
    }
}
