import Foundation
import Kafka
import Logging
import NorBERT
import Pipelines
import ServiceLifecycle
import Testing
import Tokenizers

@testable import Worker

/// `"stream": true` through the worker (in process, mock cluster): a streamed request's partial
/// responses (`"partial": true`, header `norbert-final: false`) come before its one final response
/// (`norbert-final: true`), and the offsets are committed only after the final one.
@Suite("Worker streaming", .serialized, .timeLimit(.minutes(2)))
struct WorkerStreamingTests {
    static let context = Array(repeating: "Kari Nordmann bor i Tromsø og jobber på UiT, men Per bor i Bergen.", count: 6).joined(
        separator: " ")

    @Test("partials precede exactly one final per streamed request")
    func partialsThenOneFinal() async throws {
        let cluster = try KafkaMockCluster(brokers: 1)
        defer { cluster.shutdown() }
        try cluster.createTopic("req", partitions: 2)
        try cluster.createTopic("res", partitions: 1)
        try cluster.createTopic("dlq", partitions: 1)
        let servers = cluster.bootstrapServers

        let engine = try #require(WorkerFixtures.engine)
        var bodies: [(id: String, line: String)] = []
        for k in 0..<6 {
            bodies.append(
                (
                    "qa-\(k)",
                    #"""
                    {"id": "qa-\#(k)", "task": "question-answering", "question": "Hvor bor Kari?", "context": "\#(Self.context)", \#
                    "options": {"max_seq_len": 48, "doc_stride": 16}, "stream": true}
                    """#
                ))
            bodies.append(
                (
                    "gen-\(k)",
                    #"""
                    {"id": "gen-\#(k)", "task": "text-generation", "head": "causal", "text": "Det var en gang \#(k)", "options": \#
                    {"max_new_tokens": 5}, "stream": true}
                    """#
                ))
            bodies.append(
                (
                    "two-\(k)",
                    #"""
                    {"id": "two-\#(k)", "heads": ["sentiment", "causal"], "text": "Hei \#(k)", "options": {"max_new_tokens": 3}, \#
                    "stream": true}
                    """#
                ))
            bodies.append(("plain-\(k)", #"{"id": "plain-\#(k)", "task": "text-classification", "text": "Hei \#(k)", "stream": true}"#))
        }
        // What the engine answers (the same code the worker runs): the expected message sequence per id.
        var expected: [String: [String]] = [:]
        for body in bodies {
            let result = engine.respond(toLines: [Array(body.line.utf8)], workspace: EncoderWorkspace())
            expected[body.id] = result.stream(0).map(\.jsonLine)
        }
        #expect(expected.values.reduce(0) { $0 + $1.count } > bodies.count * 2, "streamed requests have partials")
        try await WorkerFixtures.produce(
            bodies.map { KafkaProducerMessage(topic: "req", key: Array($0.id.utf8), value: Array($0.line.utf8)) }, servers: servers)

        let configuration = WorkerFixtures.configuration(servers, group: "stream")
        let running = RunningWorker(configuration, backend: PipelinesBackend(engine: engine, lanes: 2))

        let total = expected.values.reduce(0) { $0 + $1.count }
        let results = try await WorkerFixtures.consume("res", servers: servers, count: total)
        var seen: [String: [(line: String, final: Bool)]] = [:]
        for message in results {
            let key = String(decoding: message.key ?? [], as: UTF8.self)
            let final = message.headerValues("norbert-final").first == .some(Array("true".utf8))
            seen[key, default: []].append((String(decoding: message.value ?? [], as: UTF8.self), final))
        }
        for body in bodies {
            let got = seen[body.id] ?? []
            // Per head in order: the same lines infer writes (partials are published while the
            // batch runs, so another head's final may come between them); only the last message
            // is final (header).
            let want = expected[body.id] ?? []
            #expect(got.count == want.count, "messages of \(body.id)")
            for head in ["sentiment", "causal", "qa"] {
                let mine = got.map(\.line).filter { JSONCompare.head($0) == head }, wanted = want.filter { JSONCompare.head($0) == head }
                #expect(mine.count == wanted.count, "\(body.id) messages of head \(head)")
                for (line, wanted) in zip(mine, wanted) {
                    #expect(JSONCompare.difference(line, wanted) == nil, "\(body.id): \(JSONCompare.difference(line, wanted) ?? "")")
                }
            }
            #expect(got.filter(\.final).count == 1 && got.last?.final == true, "one final message, last, for \(body.id)")
            let nonPartial = got.filter { !JSONCompare.isPartial($0.line) }
            let heads = body.id.hasPrefix("two") ? 2 : 1
            #expect(nonPartial.count == heads, "one final response per head for \(body.id)")
            if body.id.hasPrefix("qa") || body.id.hasPrefix("gen") { #expect(got.count > 1, "\(body.id) streamed partials") }
        }
        let committed = try await WorkerFixtures.waitForCommitted(
            group: configuration.groupID, topic: "req", partitions: 2, servers: servers, total: bodies.count)
        #expect(committed == bodies.count)
        try await running.stop()
    }

    /// A backend whose batch emits a partial and then waits for the test: the partial must reach
    /// the results topic while the batch is still running (published live, not at batch end).
    final class GatedBackend: InferenceBackend {
        let lanes = 1
        let gate = DispatchSemaphore(value: 0)
        func prepare(_ value: [UInt8]) -> Result<PreparedJob<String>, RequestRejection> {
            .success(
                PreparedJob(job: String(decoding: value, as: UTF8.self), tokens: 1, encoderKey: 0, task: "text-generation", head: "gated"))
        }
        func run(_ batch: [String], lane: Int, emit: (Int, BackendResponse) -> Void, between: () -> Void) -> [[BackendResponse]] {
            for index in batch.indices {
                emit(
                    index, BackendResponse(value: Array(#"{"partial": true}"#.utf8), isFinal: false, task: "text-generation", head: "gated")
                )
            }
            let released = gate.wait(timeout: .now() + 30) == .success
            return batch.map { _ in
                [BackendResponse(value: Array(#"{"released": \#(released)}"#.utf8), task: "text-generation", head: "gated")]
            }
        }
        func warmUp(lane: Int) {}
        func errorResponse(code: String, message: String, id: String?) -> [UInt8] { Array(#"{"error": "\#(code)"}"#.utf8) }
    }

    @Test("a partial is published while its batch is still running")
    func partialsArePublishedLive() async throws {
        let cluster = try KafkaMockCluster(brokers: 1)
        defer { cluster.shutdown() }
        for topic in ["req", "res", "dlq"] { try cluster.createTopic(topic, partitions: 1) }
        let servers = cluster.bootstrapServers
        let configuration = WorkerFixtures.configuration(servers, group: "live")
        let backend = GatedBackend()
        let running = RunningWorker(configuration, backend: backend)
        try await WorkerFixtures.produce(
            [KafkaProducerMessage(topic: "req", key: Array("k".utf8), value: Array("one".utf8))], servers: servers)

        // The batch is blocked in the backend until the gate opens: only the partial can be there.
        let first = try await WorkerFixtures.consume("res", servers: servers, count: 1, timeout: .seconds(20))
        #expect(first.first?.value == Array(#"{"partial": true}"#.utf8))
        #expect(first.first?.headerValues("norbert-final").first == .some(Array("false".utf8)))
        backend.gate.signal()
        let both = try await WorkerFixtures.consume("res", servers: servers, count: 2)
        #expect(both.last?.value == Array(#"{"released": true}"#.utf8), "the final came after the gate opened, as the batch's result")
        #expect(both.last?.headerValues("norbert-final").first == .some(Array("true".utf8)))
        #expect(
            try await WorkerFixtures.waitForCommitted(group: configuration.groupID, topic: "req", partitions: 1, servers: servers, total: 1)
                == 1)
        try await running.stop()
    }
}
