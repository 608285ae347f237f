import Foundation
import Kafka
import Tensors
import Testing

/// End to end with separate processes: `norbert-worker broker` and `norbert-worker serve`
/// (tiny fixture heads). Sizes are scaled down from the 5,000 (scripts/bench-worker.sh
/// runs the full size).
@Suite("serve as a process", .serialized, .timeLimit(.minutes(5)))
struct ServeProcessTests {
    static let heads = ["sentiment=sequence-classification", "ner=token-classification", "qa=question-answering", "mlm=mlm",
                        "mc=multiple-choice", "causal=causal-lm", "base=base"]

    func serveArguments(_ servers: String, group: String, instance: String) -> [String] {
        var args = ["serve", "--bootstrap-servers", servers, "--group", group, "--requests", "req", "--results", "res",
                    "--dead-letter", "dlq", "--metrics-port", "0", "--instance-id", instance, "--lanes", "2",
                    "--tokenizer", WorkerFixtures.root.appendingPathComponent("Tests/Fixtures/tokenizer").path,
                    "--kafka", "session.timeout.ms=6000", "--kafka", "heartbeat.interval.ms=500", "--drain-timeout-ms", "10000"]
        for head in Self.heads {
            let parts = head.split(separator: "=")
            args += ["--head", "\(parts[0])=\(WorkerFixtures.tiny(String(parts[1])))"]
        }
        return args
    }

    struct Produced {
        var partitionOffset: [String: (Int32, Int64)] = [:]  // key → where it landed
        var good: Set<String> = []
        var bad: Set<String> = []
    }

    func startBroker() async throws -> (ChildProcess, String) {
        let broker = try ChildProcess(["broker", "--brokers", "1", "--topic", "req:4", "--topic", "res:1", "--topic", "dlq:1"])
        try await broker.waitFor("\n", timeout: .seconds(20))
        return (broker, broker.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    func produce(_ count: Int, bad: Int, servers: String, prefix: String = "") async throws -> Produced {
        let examples = try WorkerFixtures.exampleRequests()
        let badLines = try WorkerFixtures.badRequests()
        var messages: [(String, KafkaProducerMessage)] = []
        var produced = Produced()
        for index in 0..<count {
            let id = "\(prefix)q\(index)"
            let line = WorkerFixtures.replacingID(examples[index % examples.count], with: id)
            messages.append((id, KafkaProducerMessage(topic: "req", key: Array(id.utf8), value: Array(line.utf8), headers: [KafkaHeader(name: "correlation-id", string: id)])))
            produced.good.insert(id)
        }
        for index in 0..<bad {
            let id = "\(prefix)bad\(index)"
            messages.append((id, KafkaProducerMessage(topic: "req", key: Array(id.utf8), value: Array(badLines[index % badLines.count].utf8))))
            produced.bad.insert(id)
        }
        let producer = try KafkaProducer(configuration: .init(bootstrapServers: servers))
        var pending: [(String, KafkaPendingDelivery)] = []
        for (id, message) in messages { pending.append((id, try await producer.enqueue(message))) }
        for (id, delivery) in pending {
            let report = try await delivery.get()
            produced.partitionOffset[id] = (report.partition, report.offset ?? -1)
        }
        try await producer.close(timeout: .seconds(10))
        return produced
    }

    static func finals(_ messages: [KafkaConsumerMessage]) -> [String: Int] {
        var out: [String: Int] = [:]
        for m in messages where m.headerValues("norbert-final").first == .some(Array("true".utf8)) {
            out[String(decoding: m.key ?? [], as: UTF8.self), default: 0] += 1
        }
        return out
    }

    func committed(group: String, servers: String) async throws -> [Int32: Int64] {
        let probe = try KafkaConsumer(configuration: KafkaConsumerConfiguration(bootstrapServers: servers, groupID: group))
        let list = (0..<4).map { KafkaTopicPartition(topic: "req", partition: Int32($0)) }
        let result = try await probe.committed(list)
        try? await probe.close()
        var out: [Int32: Int64] = [:]
        for entry in result { out[entry.partition] = entry.offset ?? 0 }
        return out
    }

    @Test("SIGKILL at random points, 5 times, and restart: every request answered, duplicates only of in-flight ones, no committed offset passes an unanswered one")
    func killAndRestart() async throws {
        let (broker, servers) = try await startBroker()
        defer { broker.kill9() }
        let results = try TopicReader(topic: "res", servers: servers)
        let letters = try TopicReader(topic: "dlq", servers: servers)
        let group = "kill-\(UUID().uuidString.prefix(8))"
        let seed = UInt64(UInt32.random(in: 1...UInt32.max))
        var random = SplitMix64(seed: seed)
        var produced = Produced()
        var kills: [(committed: [Int32: Int64], answered: Set<String>)] = []

        for cycle in 0..<5 {
            // Each cycle: a restarted worker gets a new wave of requests (plus what earlier
            // kills left) and is killed at a random point: before, while or after it answers.
            let worker = try ChildProcess(serveArguments(servers, group: group, instance: "w1"))
            try await worker.waitFor("partitions assigned", inStderr: true, timeout: .seconds(60))
            let wave = try await produce(200, bad: 5, servers: servers, prefix: "c\(cycle)-")
            produced.partitionOffset.merge(wave.partitionOffset) { $1 }
            produced.good.formUnion(wave.good)
            produced.bad.formUnion(wave.bad)
            // A fresh process's first answers wait about a second for the results topic's
            // metadata; commits follow every 200 ms: 0.2-2.8 s covers before, during and after.
            try await Task.sleep(for: .milliseconds(200 + random.below(2600)))
            worker.kill9()
            try await Task.sleep(for: .milliseconds(600))  // responses already on their way land in the reader
            let committedAtKill = try await committed(group: group, servers: servers)
            let answered = Set(Self.finals(results.messages).keys)
            for (id, (partition, offset)) in produced.partitionOffset where offset < (committedAtKill[partition] ?? 0) {
                #expect(answered.contains(id), "seed \(seed) kill \(cycle): \(id) at req[\(partition)]@\(offset) is below the committed \(committedAtKill[partition] ?? 0) but unanswered")
            }
            kills.append((committedAtKill, answered))
        }
        let all = produced.good.union(produced.bad)

        let last = try ChildProcess(serveArguments(servers, group: group, instance: "w1"))
        defer { last.kill9() }
        try await results.waitUntil(timeout: .seconds(120)) { Set(Self.finals($0).keys).isSuperset(of: all) }
        try await letters.waitUntil(timeout: .seconds(30)) { Set($0.map { String(decoding: $0.key ?? [], as: UTF8.self) }).isSuperset(of: produced.bad) }
        // Duplicates only of messages in flight at a kill: answered n times means answered, yet
        // not below the committed offset, at n - 1 kills at least.
        var duplicates = 0
        for (id, count) in Self.finals(results.messages) where count > 1 {
            duplicates += count - 1
            guard let (partition, offset) = produced.partitionOffset[id] else { continue }
            let inFlight = kills.filter { $0.answered.contains(id) && offset >= ($0.committed[partition] ?? 0) }.count
            #expect(inFlight >= count - 1, "seed \(seed): \(id) answered \(count) times but in flight at only \(inFlight) kills")
        }
        for letter in letters.messages {
            let id = String(decoding: letter.key ?? [], as: UTF8.self)
            #expect(produced.bad.contains(id))
            #expect(letter.headerValues("norbert-source-topic") == [Array("req".utf8)])
            #expect(letter.headerValues("norbert-error-code").first.flatMap { $0 }.map { !$0.isEmpty } == true)
        }
        try await last.waitFor("partitions assigned", inStderr: true, timeout: .seconds(60))
        last.signal(SIGTERM)
        let status = try await last.waitForExit(timeout: .seconds(40))
        #expect(status == 0, "exit \(status): \(last.stderr.suffix(3000))")
        let end = try await committed(group: group, servers: servers)
        for (partition, offset) in end {
            let highest = produced.partitionOffset.values.filter { $0.0 == partition }.map(\.1).max() ?? -1
            #expect(offset == highest + 1, "req[\(partition)] committed \(offset), expected \(highest + 1)")
        }
        print("kill cycles (seed \(seed)): \(all.count) requests, \(duplicates) duplicate answers; at the kills: answered \(kills.map(\.answered.count)) of \((1...5).map { $0 * 205 }), committed \(kills.map { $0.committed.values.reduce(0, +) })")
        await results.close()
        await letters.close()
    }

    @Test("SIGTERM under load drains and commits: a restart answers the rest with no duplicates")
    func drainOnSigterm() async throws {
        let (broker, servers) = try await startBroker()
        defer { broker.kill9() }
        let produced = try await produce(500, bad: 0, servers: servers)
        let results = try TopicReader(topic: "res", servers: servers)
        let group = "term-\(UUID().uuidString.prefix(8))"

        let first = try ChildProcess(serveArguments(servers, group: group, instance: "t1"))
        defer { first.kill9() }
        try await results.waitUntil(timeout: .seconds(90)) { Self.finals($0).count >= 100 }
        first.signal(SIGTERM)
        #expect(try await first.waitForExit(timeout: .seconds(40)) == 0)
        #expect(first.stderr.contains("drained"))

        let second = try ChildProcess(serveArguments(servers, group: group, instance: "t1"))
        defer { second.kill9() }
        try await results.waitUntil(timeout: .seconds(120)) { Set(Self.finals($0).keys).isSuperset(of: produced.good) }
        try await second.waitFor("partitions assigned", inStderr: true, timeout: .seconds(60))
        try await Task.sleep(for: .seconds(1))
        let duplicates = Self.finals(results.messages).filter { $0.value > 1 }
        #expect(duplicates.isEmpty, "answered twice: \(duplicates.keys.sorted().prefix(20))")
        second.signal(SIGTERM)
        let status = try await second.waitForExit(timeout: .seconds(40))
        #expect(status == 0, "exit \(status): \(second.stderr.suffix(3000))")
        await results.close()
    }

    @Test("two, then three workers in one group; one leaves mid-run: no request lost")
    func group() async throws {
        let (broker, servers) = try await startBroker()
        defer { broker.kill9() }
        let produced = try await produce(800, bad: 0, servers: servers)
        let results = try TopicReader(topic: "res", servers: servers)
        let group = "group-\(UUID().uuidString.prefix(8))"
        let a = try ChildProcess(serveArguments(servers, group: group, instance: "a") + ["--max-batch-tokens", "256"])
        defer { a.kill9() }
        let b = try ChildProcess(serveArguments(servers, group: group, instance: "b") + ["--max-batch-tokens", "256"])
        defer { b.kill9() }
        try await results.waitUntil(timeout: .seconds(90)) { Self.finals($0).count >= 100 }
        let c = try ChildProcess(serveArguments(servers, group: group, instance: "c") + ["--max-batch-tokens", "256"])
        defer { c.kill9() }
        try await c.waitFor("partitions assigned", inStderr: true, timeout: .seconds(60))
        a.signal(SIGTERM)
        let status = try await a.waitForExit(timeout: .seconds(40))
        #expect(status == 0, "exit \(status): \(a.stderr.suffix(2000))")
        try await results.waitUntil(timeout: .seconds(120)) { Set(Self.finals($0).keys).isSuperset(of: produced.good) }
        let servedBy = [b, c].filter { $0.stderr.contains("partitions assigned") }.count
        #expect(servedBy == 2)
        for worker in [b, c] { worker.signal(SIGTERM) }
        for worker in [b, c] { #expect(try await worker.waitForExit(timeout: .seconds(40)) == 0) }
        await results.close()
    }
}
