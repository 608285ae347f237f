import Foundation
import Kafka
import Testing
import Tokenizers

/// `serve` (a separate process against `norbert-worker broker`) answers exactly what `infer`
/// answers: mixed requests (every task, two heads, `heads` naming both, `reply-to`) get exactly
/// one final response per (request, head), equal to `infer`'s line for the same request.
@Suite("serve equals infer", .serialized, .timeLimit(.minutes(2)))
struct ServeEqualityTests {
    static let rounds = 30

    /// Every example request (all tasks, a two-head request) plus two-head and streamed variants.
    static func requestLines() throws -> [(id: String, line: String, replyTo: Bool)] {
        let examples = try WorkerFixtures.exampleRequests() + [
            #"{"id": "x", "heads": ["mlm", "causal"], "text": "Jeg bor i <mask>.", "options": {"max_new_tokens": 3, "top_k": 2}}"#,
            #"{"id": "x", "heads": ["causal", "base"], "text": "Det var en gang", "options": {"max_new_tokens": 4}}"#,
            #"{"id": "x", "heads": ["sentiment", "ner"], "text": "Ola bor i Bergen.", "options": {"top_k": null, "aggregation_strategy": "max"}}"#,
        ]
        var out: [(String, String, Bool)] = []
        for round in 0..<rounds {
            for (index, line) in examples.enumerated() {
                let id = "e\(round)-\(index)"
                out.append((id, WorkerFixtures.replacingID(line, with: id), (round + index) % 4 == 0))
            }
        }
        return out
    }

    @Test("every final response equals infer's line for the same request")
    func serveEqualsInfer() async throws {
        let requests = try Self.requestLines()
        let support = ServeProcessTests()
        // infer on the same lines: one line per request and head, grouped by id in head order.
        var inferArguments = ["infer", "--tokenizer", WorkerFixtures.root.appendingPathComponent("Tests/Fixtures/tokenizer").path]
        for head in ServeProcessTests.heads {
            let parts = head.split(separator: "=")
            inferArguments += ["--head", "\(parts[0])=\(WorkerFixtures.tiny(String(parts[1])))"]
        }
        let input = requests.map(\.line).joined(separator: "\n") + "\n"
        let infer = try CLIRun.run(inferArguments, stdin: Data(input.utf8))
        try #require(infer.status == 0, "infer failed: \(infer.err.suffix(2000))")
        var expected: [String: [JSONValue]] = [:]
        for line in infer.out.split(separator: "\n") {
            let json = try JSONValue.parse(Array(line.utf8), context: "infer")
            let id = try #require(json["id"]?.stringValue, "infer line without id: \(line.prefix(200))")
            expected[id, default: []].append(json)
        }
        #expect(expected.count == requests.count)
        let errors = expected.values.flatMap { $0 }.filter { $0["error"] != nil }
        #expect(errors.isEmpty, "the requests are all valid: \(errors.first?.jsonText.prefix(300) ?? "")")

        let broker = try ChildProcess(["broker", "--brokers", "1", "--topic", "req:4", "--topic", "res:1", "--topic", "dlq:1", "--topic", "mine:2"])
        defer { broker.kill9() }
        try await broker.waitFor("\n", timeout: .seconds(20))
        let servers = broker.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let results = try TopicReader(topic: "res", servers: servers)
        let mine = try TopicReader(topic: "mine", servers: servers)
        let serve = try ChildProcess(support.serveArguments(servers, group: "eq-\(UUID().uuidString.prefix(8))", instance: "eq"))
        defer { serve.kill9() }
        try await WorkerFixtures.produce(requests.map { request in
            let headers = request.replyTo ? [KafkaHeader(name: "reply-to", string: "mine")] : []
            return KafkaProducerMessage(topic: "req", key: Array(request.id.utf8), value: Array(request.line.utf8), headers: headers)
        }, servers: servers)

        let total = expected.values.reduce(0) { $0 + $1.count }
        let deadline = ContinuousClock.now + .seconds(60)
        while results.messages.count + mine.messages.count < total, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
        }
        try await Task.sleep(for: .milliseconds(500))  // anything extra (a duplicate) arrives too
        var got: [String: [JSONValue]] = [:]
        var finalHeaders: [String: Int] = [:]
        let replyToIDs = Set(requests.filter(\.replyTo).map(\.id))
        for (topic, messages) in [("res", results.messages), ("mine", mine.messages)] {
            for message in messages {
                let id = String(decoding: message.key ?? [], as: UTF8.self)
                #expect((topic == "mine") == replyToIDs.contains(id), "\(id) answered on \(topic)")
                got[id, default: []].append(try JSONValue.parse(message.value ?? [], context: "serve"))
                if message.headerValues("norbert-final").first == .some(Array("true".utf8)) { finals(&finalHeaders, id) }
            }
        }
        var exact = 0, withinTolerance = 0
        for request in requests {
            let want = expected[request.id] ?? []
            let have = got[request.id] ?? []
            #expect(finalHeaders[request.id] == 1, "one norbert-final: true message for \(request.id)")
            // Exactly one final response per (request, head), in head order.
            #expect(have.map { $0["head"]?.stringValue ?? "" } == want.map { $0["head"]?.stringValue ?? "" }, "heads answered for \(request.id)")
            for (a, b) in zip(have, want) {
                if a.jsonText == b.jsonText { exact += 1; continue }
                let difference = JSONCompare.difference(a, b)
                #expect(difference == nil, "\(request.id): \(difference ?? "")")
                if difference == nil { withinTolerance += 1 }
            }
        }
        print("serve equals infer: \(total) responses, \(exact) byte-identical, \(withinTolerance) equal with scores within 1e-5")
        serve.signal(SIGTERM)
        #expect(try await serve.waitForExit(timeout: .seconds(40)) == 0)
        await results.close()
        await mine.close()
    }

    private func finals(_ counts: inout [String: Int], _ id: String) { counts[id, default: 0] += 1 }
}
