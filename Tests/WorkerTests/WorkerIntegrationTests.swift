import Foundation
import Kafka
import Logging
import Pipelines
import ServiceLifecycle
import TestSupport
import Testing
import Tokenizers
import Wire

@testable import Worker

/// The worker in process against an in-process mock cluster, with the real Pipelines backend
/// over the tiny fixture heads: every request gets exactly one final answer, bad ones are
/// dead-lettered with an error answer, offsets are committed to the end, and a graceful
/// shutdown returns.
@Suite("Worker in process", .serialized, .timeLimit(.minutes(3)))
struct WorkerIntegrationTests {
    @Test("mixed requests, bad inputs, reply-to and headers; commits everything; drains on shutdown")
    func endToEnd() async throws {
        let cluster = try KafkaMockCluster(brokers: 1)
        defer { cluster.shutdown() }
        try cluster.createTopic("req", partitions: 3)
        try cluster.createTopic("res", partitions: 1)
        try cluster.createTopic("dlq", partitions: 1)
        try cluster.createTopic("mine", partitions: 1)
        let servers = cluster.bootstrapServers

        let good = try WorkerFixtures.exampleRequests()
        let bad = try WorkerFixtures.badRequests()
        var messages: [KafkaProducerMessage] = []
        var expectedIDs: [String: Int] = [:]
        for round in 0..<6 {
            for (index, line) in good.enumerated() {
                let id = "r\(round)-\(index)"
                let body = WorkerFixtures.replacingID(line, with: id)
                expectedIDs[id, default: 0] += WorkerFixtures.responseCount(line)
                var headers = [
                    KafkaHeader(name: "correlation-id", string: "c-\(id)"), KafkaHeader(name: "traceparent", string: "00-\(id)-01"),
                ]
                if round == 5 { headers.append(KafkaHeader(name: "reply-to", string: "mine")) }
                messages.append(KafkaProducerMessage(topic: "req", key: Array(id.utf8), value: Array(body.utf8), headers: headers))
            }
        }
        for (index, line) in bad.enumerated() {
            messages.append(KafkaProducerMessage(topic: "req", key: Array("bad-\(index)".utf8), value: Array(line.utf8)))
        }
        messages.append(KafkaProducerMessage(topic: "req", key: Array("tombstone".utf8), value: nil))
        messages.append(
            KafkaProducerMessage(
                topic: "req", key: Array("bad-reply".utf8), value: Array(good[0].utf8),
                headers: [KafkaHeader(name: "reply-to", string: "no such topic")]))
        messages.append(
            KafkaProducerMessage(
                topic: "req", key: Array("not-allowed-reply".utf8), value: Array(good[0].utf8),
                headers: [KafkaHeader(name: "reply-to", string: "req")]))
        let badCount = bad.count + 3
        try await WorkerFixtures.produce(messages, servers: servers)

        let engine = try #require(WorkerFixtures.engine)
        let configuration = WorkerFixtures.configuration(servers, group: "it")
        let running = RunningWorker(configuration, backend: PipelinesBackend(engine: engine, lanes: 2))

        let expectedResults = expectedIDs.filter { !$0.key.hasPrefix("r5-") }.values.reduce(0, +) + badCount
        let results = try await WorkerFixtures.consume("res", servers: servers, count: expectedResults)
        let mine = try await WorkerFixtures.consume(
            "mine", servers: servers, count: expectedIDs.filter { $0.key.hasPrefix("r5-") }.values.reduce(0, +))
        let letters = try await WorkerFixtures.consume("dlq", servers: servers, count: badCount)

        // Exactly the expected responses per id, one final per request.
        var perID: [String: Int] = [:]
        var finals: [String: Int] = [:]
        for message in results + mine {
            let key = String(decoding: message.key ?? [], as: UTF8.self)
            perID[key, default: 0] += 1
            if message.headerValues("norbert-final").first == .some(Array("true".utf8)) { finals[key, default: 0] += 1 }
            if key.hasPrefix("r") {
                #expect(message.headerValues("correlation-id") == [Array("c-\(key)".utf8)])
                #expect(message.headerValues("traceparent") == [Array("00-\(key)-01".utf8)])
                #expect(message.headerValues("reply-to").isEmpty)
            }
        }
        for (id, count) in expectedIDs {
            #expect(perID[id] == count, "responses for \(id)")
            #expect(finals[id] == 1, "final responses for \(id)")
        }
        #expect(mine.allSatisfy { String(decoding: $0.key ?? [], as: UTF8.self).hasPrefix("r5-") })
        // Dead letters: original bytes, source coordinates and an error code.
        #expect(letters.count == badCount)
        for letter in letters {
            #expect(letter.headerValues("norbert-source-topic") == [Array("req".utf8)])
            #expect(letter.headerValues("norbert-error-code").first??.isEmpty == false)
            let offset = Int64(String(decoding: (letter.headerValues("norbert-source-offset").first ?? nil) ?? [], as: UTF8.self))
            let original = messages.first { $0.key == letter.key }
            #expect(offset != nil)
            #expect(letter.value == original?.value)
        }
        let codes = Set(
            letters.compactMap { $0.headerValues("norbert-error-code").first ?? nil }.map { String(decoding: $0, as: UTF8.self) })
        #expect(codes.contains("invalid_json"))
        #expect(codes.contains("empty_message"))
        #expect(codes.contains("invalid_reply_to"))
        #expect(codes.contains("reply_to_not_allowed"))
        // Error responses the worker makes itself carry the request's id when it could be read.
        let notAllowed = try #require(results.first { $0.key == Array("not-allowed-reply".utf8) })
        let requestID = try JSONValue.parse(Array(good[0].utf8), context: "t")["id"]?.stringValue
        #expect(try JSONValue.parse(notAllowed.value ?? [], context: "t")["id"]?.stringValue == requestID)

        // Everything published validates against schemas/.
        let responseFailures = SchemaCheck.failures("response", (results + mine).map { String(decoding: $0.value ?? [], as: UTF8.self) })
        #expect(responseFailures.isEmpty, "\(responseFailures.prefix(5))")
        let letterFailures = SchemaCheck.failures(
            "dead-letter", letters.map { SchemaCheck.headerObject($0.headers.map { ($0.name, $0.value) }) })
        #expect(letterFailures.isEmpty, "\(letterFailures.prefix(5))")

        // Everything answered is committed (within a few commit intervals).
        let total = messages.count
        let committed = try await WorkerFixtures.waitForCommitted(
            group: configuration.groupID, topic: "req", partitions: 3, servers: servers, total: total)
        #expect(committed == total)

        try await running.stop()
        let text = String(decoding: running.metrics.render(), as: UTF8.self)
        #expect(text.contains("norbert_worker_requests_total"))
        #expect(text.contains("norbert_worker_dead_letters_total"))
    }
}
