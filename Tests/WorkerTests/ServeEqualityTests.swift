import Foundation
import Kafka
import TestSupport
import Testing
import Tokenizers
import Wire

/// `serve` (a separate process against `norbert-worker broker`) answers exactly what `infer`
/// answers: 5,000 mixed requests (every task, two heads, `heads` naming both, `reply-to`) get
/// exactly one final response per (request, head), equal to `infer`'s line for the same request.
@Suite("serve equals infer", .serialized, .timeLimit(.minutes(6)))
struct ServeEqualityTests {
    static let requestCount = 5_000

    /// Sentences appended to the texts and contexts so the requests are not identical copies
    /// (other lengths, other tokens, other batch packings); "" keeps the example as it is.
    static let suffixes = [
        "", " Det regner i Bergen i dag.", " Hun smilte.", " Vi tok toget fra Oslo til Trondheim om morgenen.",
        " Katten sov på sofaen hele dagen, mens hunden lekte ute i hagen.", " Ja!", " Per og Kari kjøpte is.",
    ]

    /// Every example request (all tasks, a two-head request) plus two-head variants, cycled to
    /// `requestCount` requests with unique ids, varied texts, contexts, choice orders and seeds,
    /// and `reply-to` on a quarter of them.
    static func requestLines() throws -> [(id: String, line: String, replyTo: Bool)] {
        let examples =
            try WorkerFixtures.exampleRequests() + [
                #"{"id": "x", "heads": ["mlm", "causal"], "text": "Jeg bor i <mask>.", "options": {"max_new_tokens": 3, "top_k": 2}}"#,
                #"{"id": "x", "heads": ["causal", "base"], "text": "Det var en gang", "options": {"max_new_tokens": 4}}"#,
                #"""
                {"id": "x", "heads": ["sentiment", "ner"], "text": "Ola bor i Bergen.", "options": {"top_k": null, \#
                "aggregation_strategy": "max"}}
                """#,
            ]
        var out: [(String, String, Bool)] = []
        for n in 0..<requestCount {
            let round = n / examples.count, index = n % examples.count
            let id = "e\(round)-\(index)"
            let line = varied(WorkerFixtures.replacingID(examples[index], with: id), variant: round)
            out.append((id, line, (round + index) % 4 == 0))
        }
        return out
    }

    /// `line` with suffix `variant % suffixes.count` on its text and context, its choices rotated
    /// and a sampling seed shifted by `variant`.
    static func varied(_ line: String, variant: Int) -> String {
        guard case .object(let pairs)? = try? JSONValue.parse(Array(line.utf8), context: "t") else { return line }
        let suffix = suffixes[variant % suffixes.count]
        let out: [(String, JSONValue)] = pairs.map { key, value in
            switch (key, value) {
            case ("text", .string(let s)), ("context", .string(let s)): return (key, .string(s + suffix))
            case ("choices", .array(let choices)) where !choices.isEmpty:
                let shift = variant % choices.count
                return (key, .array(Array(choices[shift...] + choices[..<shift])))
            case ("options", .object(let options)):
                return (key, .object(options.map { $0.0 == "seed" ? ("seed", .int(variant)) : $0 }))
            default: return (key, value)
            }
        }
        return JSONValue.object(out).jsonText
    }

    @Test("every final response equals infer's line for the same request")
    func serveEqualsInfer() async throws {
        try await LoadLock.exclusive { try await self.serveEqualsInferExclusive() }
    }

    private func serveEqualsInferExclusive() async throws {
        let started = ContinuousClock.now
        let requests = try Self.requestLines()
        #expect(Set(requests.map(\.id)).count == Self.requestCount)
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
        let inferTime = ContinuousClock.now - started
        var expected: [String: [JSONValue]] = [:]
        for line in infer.out.split(separator: "\n") {
            let json = try JSONValue.parse(Array(line.utf8), context: "infer")
            let id = try #require(json["id"]?.stringValue, "infer line without id: \(line.prefix(200))")
            expected[id, default: []].append(json)
        }
        #expect(expected.count == requests.count)
        let errors = expected.values.flatMap { $0 }.filter { $0["error"] != nil }
        #expect(errors.isEmpty, "the requests are all valid: \(errors.first?.jsonText.prefix(300) ?? "")")
        let tasks = Set(expected.values.flatMap { $0 }.compactMap { $0["task"]?.stringValue })
        #expect(tasks.count >= 7, "every task: \(tasks.sorted())")

        let broker = try ChildProcess([
            "broker", "--brokers", "1", "--topic", "req:4", "--topic", "res:1", "--topic", "dlq:1", "--topic", "mine:2",
        ])
        defer { broker.kill9() }
        try await broker.waitFor("\n", timeout: .seconds(20))
        let servers = broker.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let results = try TopicReader(topic: "res", servers: servers)
        let mine = try TopicReader(topic: "mine", servers: servers)
        let serveStarted = ContinuousClock.now
        let serve = try ChildProcess(support.serveArguments(servers, group: "eq-\(UUID().uuidString.prefix(8))", instance: "eq"))
        defer { serve.kill9() }
        try await WorkerFixtures.produce(
            requests.map { request in
                let headers = request.replyTo ? [KafkaHeader(name: "reply-to", string: "mine")] : []
                return KafkaProducerMessage(topic: "req", key: Array(request.id.utf8), value: Array(request.line.utf8), headers: headers)
            }, servers: servers)

        let total = expected.values.reduce(0) { $0 + $1.count }
        // Generous: a loaded CI machine may be several times slower than a quiet one.
        let deadline = ContinuousClock.now + .seconds(240)
        while results.messages.count + mine.messages.count < total, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(100))
        }
        let serveTime = ContinuousClock.now - serveStarted
        try await Task.sleep(for: .milliseconds(1000))  // anything extra (a duplicate) arrives too
        var got: [String: [JSONValue]] = [:]
        var finalHeaders: [String: Int] = [:]
        let replyToIDs = Set(requests.filter(\.replyTo).map(\.id))
        var misrouted: [String] = []
        for (topic, messages) in [("res", results.messages), ("mine", mine.messages)] {
            for message in messages {
                let id = String(decoding: message.key ?? [], as: UTF8.self)
                if (topic == "mine") != replyToIDs.contains(id) { misrouted.append("\(id) on \(topic)") }
                got[id, default: []].append(try JSONValue.parse(message.value ?? [], context: "serve"))
                if message.headerValues("norbert-final").first == .some(Array("true".utf8)) { finalHeaders[id, default: 0] += 1 }
            }
        }
        #expect(misrouted.isEmpty, "answered on the wrong topic: \(misrouted.prefix(20))")
        #expect(
            results.messages.count + mine.messages.count == total,
            "\(results.messages.count) + \(mine.messages.count) responses, expected \(total)")
        var exact = 0, withinTolerance = 0, failures: [String] = []
        for request in requests {
            let want = expected[request.id] ?? []
            let have = got[request.id] ?? []
            if finalHeaders[request.id] != 1 {
                failures.append("\(request.id): \(finalHeaders[request.id] ?? 0) norbert-final: true messages")
            }
            // Exactly one final response per (request, head), in head order.
            let heads = have.map { $0["head"]?.stringValue ?? "" }, wantHeads = want.map { $0["head"]?.stringValue ?? "" }
            if heads != wantHeads {
                failures.append("\(request.id): heads \(heads), infer \(wantHeads)")
                continue
            }
            for (a, b) in zip(have, want) {
                if a.jsonText == b.jsonText {
                    exact += 1
                    continue
                }
                if let difference = JSONCompare.difference(a, b) {
                    failures.append("\(request.id): \(difference)")
                } else {
                    withinTolerance += 1
                }
            }
        }
        #expect(failures.isEmpty, "\(failures.count) differences from infer: \(failures.prefix(20).joined(separator: "; "))")
        #expect(exact + withinTolerance == total)
        print(
            """
            serve equals infer: \(requests.count) requests (\(replyToIDs.count) with reply-to), \(total) responses, \(exact) \
            byte-identical, \(withinTolerance) equal with scores within 1e-5; infer \(inferTime), serve \(serveTime)
            """
        )
        serve.signal(SIGTERM)
        let status = try await serve.waitForExit(timeout: .seconds(60))
        #expect(status == 0, "exit \(status): \(serve.stderr.suffix(3000))")
        await results.close()
        await mine.close()
    }
}
