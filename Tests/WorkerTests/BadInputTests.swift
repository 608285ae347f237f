import Foundation
import Kafka
import Logging
import Pipelines
import ServiceLifecycle
import TestSupport
import Testing

@testable import Worker

/// 50 kinds of bad input: each gets a dead letter (original bytes, source coordinates, error
/// code) and an error response, and the worker keeps serving the good requests around them.
@Suite("Bad input", .serialized, .timeLimit(.minutes(3)))
struct BadInputTests {
    static let badValues: [[UInt8]] = {
        var values: [String] = [
            "", " ", "not json", "{", "}", "[]", "[1,2]", "null", "true", "42", "\"a string\"", "{\"id\": \"x\"", "{'id': 'x'}",
            "{\"id\": \"x\", \"task\": \"text-classification\", \"text\": \"a\",}",
            "{\"task\": \"text-classification\", \"text\": \"a\"}",
            "{\"id\": 5, \"task\": \"text-classification\", \"text\": \"a\"}",
            "{\"id\": \"x\", \"text\": \"a\"}",
            "{\"id\": \"x\", \"task\": \"summarization\", \"text\": \"a\"}",
            "{\"id\": \"x\", \"task\": 7, \"text\": \"a\"}",
            "{\"id\": \"x\", \"task\": \"text-classification\", \"text\": 42}",
            "{\"id\": \"x\", \"task\": \"text-classification\", \"text\": [\"a\"]}",
            "{\"id\": \"x\", \"task\": \"text-classification\", \"text\": \"\"}",
            "{\"id\": \"x\", \"task\": \"text-classification\", \"text\": \"a\", \"extra\": 1}",
            "{\"id\": \"x\", \"task\": \"text-classification\", \"text\": \"a\", \"options\": 3}",
            "{\"id\": \"x\", \"task\": \"text-classification\", \"text\": \"a\", \"options\": {\"nope\": 1}}",
            "{\"id\": \"x\", \"task\": \"text-classification\", \"text\": \"a\", \"options\": {\"top_k\": \"two\"}}",
            "{\"id\": \"x\", \"task\": \"text-classification\", \"text\": \"a\", \"options\": {\"top_k\": -1}}",
            "{\"id\": \"x\", \"task\": \"text-classification\", \"text\": \"a\", \"options\": {\"function_to_apply\": \"cube\"}}",
            "{\"id\": \"x\", \"task\": \"text-classification\", \"head\": \"nope\", \"text\": \"a\"}",
            "{\"id\": \"x\", \"task\": \"text-classification\", \"head\": \"ner\", \"text\": \"a\"}",
            "{\"id\": \"x\", \"heads\": [], \"text\": \"a\"}",
            "{\"id\": \"x\", \"heads\": [\"sentiment\", \"sentiment\"], \"text\": \"a\"}",
            "{\"id\": \"x\", \"heads\": [\"nope\"], \"text\": \"a\"}",
            "{\"id\": \"x\", \"heads\": \"sentiment\", \"text\": \"a\"}",
            "{\"id\": \"x\", \"head\": \"sentiment\", \"heads\": [\"ner\"], \"task\": \"text-classification\", \"text\": \"a\"}",
            "{\"id\": \"x\", \"task\": \"question-answering\", \"question\": \"Hvem?\"}",
            "{\"id\": \"x\", \"task\": \"question-answering\", \"context\": \"Per.\"}",
            "{\"id\": \"x\", \"task\": \"question-answering\", \"question\": \"\", \"context\": \"Per.\"}",
            "{\"id\": \"x\", \"task\": \"fill-mask\", \"text\": \"ingen maske\"}",
            "{\"id\": \"x\", \"task\": \"multiple-choice\", \"question\": \"Hva?\"}",
            "{\"id\": \"x\", \"task\": \"multiple-choice\", \"question\": \"Hva?\", \"choices\": [1, 2]}",
            """
            {\"id\": \"x\", \"task\": \"text-generation\", \"head\": \"causal\", \"text\": \"a\", \"options\": {\"max_new_tokens\": \
            \"many\"}}
            """,
            """
            {\"id\": \"x\", \"task\": \"text-generation\", \"head\": \"causal\", \"text\": \"a\", \"options\": {\"temperature\": \
            \"hot\"}}
            """,
            "{\"id\": \"x\", \"task\": \"feature-extraction\", \"text\": \"a\", \"options\": {\"pooling\": \"median\"}}",
            "{\"id\": \"x\", \"task\": \"token-classification\", \"text\": \"a\", \"options\": {\"aggregation_strategy\": \"all\"}}",
            "{\"id\": \"x\", \"task\": \"text-classification\", \"text\": \"a\", \"question\": \"b\"}",
            "{\"id\": \"x\", \"task\": \"text-classification\", \"text\": \"a\", \"options\": {\"overflow\": \"sideways\"}}",
            "{\"id\": \"x\", \"task\": \"text-classification\", \"text\": \"a\"} trailing",
            "{\"id\": [\"x\"], \"task\": \"text-classification\", \"text\": \"a\"}",
            "{\"id\": \"x\", \"task\": \"text-classification\", \"text\": \"a\", \"options\": {\"top_k\": 1.5}}",
            "{\"id\": \"x\", \"task\": \"text-classification\", \"text\": \"a\\q\"}",
            "{\"id\": null, \"task\": \"text-classification\", \"text\": \"a\"}",
            "{\"id\": \"x\", \"task\": null, \"text\": \"a\"}",
            "{\"id\": \"x\", \"task\": \"text-classification\", \"text\": null}",
        ]
        var out = values.map { Array($0.utf8) }
        out.append([0xFF, 0xFE, 0x00])  // not UTF-8
        out.append(Array("{\"id\": \"x\", \"task\": \"text-classification\", \"text\": \"".utf8) + [0xC3, 0x28] + Array("\"}".utf8))
        out.append(Array(repeating: UInt8(ascii: "{"), count: 100_000))  // deep nesting
        out.append(Array(repeating: UInt8(ascii: "a"), count: 70_000))  // long, not JSON
        // Above what the producer accepts (message.max.bytes 1000000) but within the default
        // --max-message-bytes: its dead letter must be cut to fit, not refused (a crash loop).
        out.append(Array(repeating: UInt8(ascii: "a"), count: 1_000_100))
        out.append(
            Array("{\"id\": \"big\", \"task\": \"text-classification\", \"text\": \"".utf8)
                + Array(repeating: UInt8(ascii: "a"), count: 1_040_000) + Array("\"".utf8))  // not closed
        // Above the default --max-message-bytes (1 MiB): message_too_large, dead letter cut.
        out.append(Array(repeating: UInt8(ascii: "["), count: 1_048_577))
        // Costly requests (every one is rejected before any work; see costlyRequestsWithDefaults).
        out += HostileRequests.cases.map { Array($0.line.utf8) }
        return out
    }()

    /// Every bad value between good requests, plus a tombstone and an unusable `reply-to`.
    static func messages() -> (messages: [KafkaProducerMessage], badKeys: Set<String>) {
        var messages: [KafkaProducerMessage] = []
        var badKeys = Set<String>()
        for (index, value) in badValues.enumerated() {
            badKeys.insert("bad-\(index)")
            messages.append(KafkaProducerMessage(topic: "req", partition: Int32(index % 2), key: Array("bad-\(index)".utf8), value: value))
            messages.append(
                KafkaProducerMessage(
                    topic: "req", partition: Int32(index % 2), key: Array("good-\(index)".utf8),
                    value: Array("{\"id\": \"g\(index)\", \"task\": \"text-classification\", \"text\": \"Hei \(index)\"}".utf8)))
        }
        badKeys.insert("tombstone")
        messages.append(KafkaProducerMessage(topic: "req", partition: 0, key: Array("tombstone".utf8), value: nil))
        badKeys.insert("bad-reply-to")
        messages.append(
            KafkaProducerMessage(
                topic: "req", partition: 1, key: Array("bad-reply-to".utf8),
                value: Array("{\"id\": \"r\", \"task\": \"text-classification\", \"text\": \"a\"}".utf8),
                headers: [KafkaHeader(name: "reply-to", string: "a/b")]))
        return (messages, badKeys)
    }

    /// Reads every answer and dead letter: one dead letter per bad input with its original bytes
    /// and source headers, an error response for each bad input, a result for each good one.
    static func checkAnswers(servers: String, messages: [KafkaProducerMessage], badKeys: Set<String>) async throws {
        let results = try await WorkerFixtures.consume("res", servers: servers, count: messages.count)
        let letters = try await WorkerFixtures.consume("dlq", servers: servers, count: badKeys.count)
        let key = { (m: KafkaConsumerMessage) in String(decoding: m.key ?? [], as: UTF8.self) }
        #expect(Set(letters.map(key)) == badKeys)
        for letter in letters {
            let original = messages.first { $0.key == letter.key }
            if let cut = letter.headerValues("norbert-truncated").first ?? nil {
                // Cut to fit the producer's limit: a prefix of the original, its size in a header.
                #expect(String(decoding: cut, as: UTF8.self) == "value")
                #expect(original.map { ($0.value ?? []).count > 990_000 } == true, "only values over the limit are cut")
                #expect(letter.value.map { ($0.count > 900_000) && (original?.value ?? []).starts(with: $0) } == true)
                #expect(letter.headerValues("norbert-value-bytes") == [Array(String(original?.value?.count ?? -1).utf8)])
            } else {
                #expect(letter.value == original?.value, "dead letter \(key(letter)) changed the value")
            }
            #expect(letter.headerValues("norbert-source-topic") == [Array("req".utf8)])
            #expect((letter.headerValues("norbert-error-code").first ?? nil)?.isEmpty == false)
            #expect((letter.headerValues("norbert-error-message").first ?? nil)?.isEmpty == false)
            let partition = String(decoding: (letter.headerValues("norbert-source-partition").first ?? nil) ?? [], as: UTF8.self)
            #expect(partition == String(original?.partition ?? -1))
        }
        for result in results {
            let text = String(decoding: result.value ?? [], as: UTF8.self)
            if badKeys.contains(key(result)) {
                #expect(text.contains("\"error\""), "\(key(result)): \(text.prefix(200))")
            } else {
                #expect(text.contains("\"result\""), "\(key(result)): \(text.prefix(200))")
            }
        }
        #expect(Set(results.map(key)).count == messages.count)
        // Everything published validates against schemas/: responses and dead-letter headers.
        let responseFailures = SchemaCheck.failures("response", results.map { String(decoding: $0.value ?? [], as: UTF8.self) })
        #expect(responseFailures.isEmpty, "\(responseFailures.prefix(5))")
        let letterFailures = SchemaCheck.failures(
            "dead-letter", letters.map { SchemaCheck.headerObject($0.headers.map { ($0.name, $0.value) }) })
        #expect(letterFailures.isEmpty, "\(letterFailures.prefix(5))")
    }

    @Test("50 kinds of bad input each give a dead letter and an error response; good requests keep flowing")
    func fiftyKinds() async throws {
        let cluster = try KafkaMockCluster(brokers: 1)
        defer { cluster.shutdown() }
        for (topic, partitions) in [("req", 2), ("res", 1), ("dlq", 1)] { try cluster.createTopic(topic, partitions: partitions) }
        let servers = cluster.bootstrapServers
        let (messages, badKeys) = Self.messages()
        #expect(badKeys.count >= 50)
        try await WorkerFixtures.produce(messages, servers: servers)

        let engine = try #require(WorkerFixtures.engine)
        // Default limits: a limit lowered here would hide what users hit.
        var configuration = WorkerFixtures.configuration(servers, group: "bad")
        configuration.kafka = [:]
        let running = RunningWorker(configuration, backend: PipelinesBackend(engine: engine, lanes: 1))
        try await Self.checkAnswers(servers: servers, messages: messages, badKeys: badKeys)
        try await running.stop()
    }

    @Test(
        """
        the issue's costly requests with the default settings: rejected when prepared, dead-lettered with their code; good requests \
        keep flowing
        """
    )
    func costlyRequestsWithDefaults() async throws {
        let engine = try #require(WorkerFixtures.engine)
        #expect(engine.configuration.limits == CostLimits() && engine.maxInputTokens == 16384)
        let backend = PipelinesBackend(engine: engine, lanes: 1)
        // Rejected in `prepare`, before queueing: nothing runs (the one whose bytes look harmless is
        // refused by its plan in the lane, before any window is built).
        for c in HostileRequests.cases where c.rejectedWhenPriced {
            switch backend.prepare(Array(c.line.utf8)) {
            case .success: Issue.record("\(c.name): accepted by prepare")
            case .failure(let rejection): #expect(rejection.code == c.code, "\(c.name): \(rejection.message)")
            }
        }
        // The batch cost of a generation counts its new tokens.
        let generation = #"{"id": "g", "task": "text-generation", "head": "causal", "text": "Hei", "options": {"max_new_tokens": 500}}"#
        guard case .success(let prepared) = backend.prepare(Array(generation.utf8)) else {
            Issue.record("generation")
            return
        }
        #expect(prepared.tokens >= 500)

        let cluster = try KafkaMockCluster(brokers: 1)
        defer { cluster.shutdown() }
        for (topic, partitions) in [("req", 2), ("res", 1), ("dlq", 1)] { try cluster.createTopic(topic, partitions: partitions) }
        let servers = cluster.bootstrapServers
        var messages: [KafkaProducerMessage] = []
        var expected: [String: String] = [:]
        for (index, c) in HostileRequests.cases.enumerated() {
            expected["costly-\(index)"] = c.code
            messages.append(
                KafkaProducerMessage(
                    topic: "req", partition: Int32(index % 2), key: Array("costly-\(index)".utf8), value: Array(c.line.utf8)))
            messages.append(
                KafkaProducerMessage(
                    topic: "req", partition: Int32(index % 2), key: Array("good-\(index)".utf8),
                    value: Array("{\"id\": \"g\(index)\", \"task\": \"text-classification\", \"text\": \"Hei \(index)\"}".utf8)))
        }
        for (index, line) in HostileRequests.nowCheap.enumerated() {
            messages.append(KafkaProducerMessage(topic: "req", partition: 0, key: Array("cheap-\(index)".utf8), value: Array(line.utf8)))
        }
        try await WorkerFixtures.produce(messages, servers: servers)
        // Default worker settings (1 MiB messages, 8192-token batches) and engine limits.
        let running = RunningWorker(WorkerFixtures.configuration(servers, group: "costly"), backend: backend)
        let badKeys = Set(expected.keys)
        try await Self.checkAnswers(servers: servers, messages: messages, badKeys: badKeys)
        let letters = try await WorkerFixtures.consume("dlq", servers: servers, count: badKeys.count)
        for letter in letters {
            let key = String(decoding: letter.key ?? [], as: UTF8.self)
            let code = String(decoding: (letter.headerValues("norbert-error-code").first ?? nil) ?? [], as: UTF8.self)
            #expect(code == expected[key], "\(key)")
        }
        let results = try await WorkerFixtures.consume("res", servers: servers, count: messages.count)
        for result in results where badKeys.contains(String(decoding: result.key ?? [], as: UTF8.self)) {
            let key = String(decoding: result.key ?? [], as: UTF8.self)
            #expect(String(decoding: result.value ?? [], as: UTF8.self).contains("\"code\": \"\(expected[key] ?? "?")\""), "\(key)")
        }
        try await running.stop()
    }

    @Test("the same 50 kinds through `serve` as a process against `norbert-worker broker`; it keeps serving and exits 0")
    func fiftyKindsThroughServe() async throws {
        let support = ServeProcessTests()
        let (broker, servers) = try await support.startBroker()
        defer { broker.kill9() }
        let (messages, badKeys) = Self.messages()
        try await WorkerFixtures.produce(messages, servers: servers)
        let serve = try ChildProcess(support.serveArguments(servers, group: "bad-\(UUID().uuidString.prefix(8))", instance: "bad"))
        defer { serve.kill9() }
        try await Self.checkAnswers(servers: servers, messages: messages, badKeys: badKeys)
        #expect(serve.isRunning, "serve stopped: \(serve.stderr.suffix(2000))")
        serve.signal(SIGTERM)
        let status = try await serve.waitForExit(timeout: .seconds(40))
        #expect(status == 0, "exit \(status): \(serve.stderr.suffix(3000))")
    }
}
