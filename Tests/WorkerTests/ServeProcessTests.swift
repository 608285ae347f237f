import Foundation
import Kafka
import Synchronization
import Tensors
import TestSupport
import Testing

/// End to end with separate processes: `norbert-worker broker` and `norbert-worker serve`
/// (tiny fixture heads). The kill test runs the issue's 5,000 requests; the drain and group tests
/// fewer.
@Suite("serve as a process", .serialized, .timeLimit(.minutes(5)))
struct ServeProcessTests {
    static let heads = [
        "sentiment=sequence-classification", "ner=token-classification", "qa=question-answering", "mlm=mlm",
        "mc=multiple-choice", "causal=causal-lm", "base=base",
    ]

    func serveArguments(_ servers: String, group: String, instance: String) -> [String] {
        var args = [
            "serve", "--bootstrap-servers", servers, "--group", group, "--requests", "req", "--results", "res",
            "--dead-letter", "dlq", "--metrics-port", "0", "--instance-id", instance, "--lanes", "2",
            "--tokenizer", WorkerFixtures.root.appendingPathComponent("Tests/Fixtures/tokenizer").path,
            "--kafka", "session.timeout.ms=6000", "--kafka", "heartbeat.interval.ms=500", "--drain-timeout-ms", "10000",
            "--reply-to-allow", "mine",
        ]
        for head in Self.heads {
            let parts = head.split(separator: "=")
            args += ["--head", "\(parts[0])=\(WorkerFixtures.tiny(String(parts[1])))"]
        }
        return args
    }

    struct Produced {
        var partitionOffset: [String: (Int32, Int64)] = [:]  // key → where it landed
        var byOffset: [Int32: [Int64: String]] = [:]  // partition → offset → key
        var good: Set<String> = []
        var bad: Set<String> = []

        mutating func record(_ id: String, bad isBad: Bool, partition: Int32, offset: Int64) {
            partitionOffset[id] = (partition, offset)
            byOffset[partition, default: [:]][offset] = id
            if isBad { bad.insert(id) } else { good.insert(id) }
        }

        /// Whether every offset below `committed` of every partition is one of these messages.
        func covers(_ committed: [Int32: Int64]) -> Bool {
            committed.allSatisfy { partition, offset in
                let known = byOffset[partition] ?? [:]
                return (0..<offset).allSatisfy { known[$0] != nil }
            }
        }
    }

    /// What a background producer has produced so far.
    final class ProducedLog: Sendable {
        let state = Mutex(Produced())
        var snapshot: Produced { state.withLock { $0 } }
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
            messages.append(
                (
                    id,
                    KafkaProducerMessage(
                        topic: "req", key: Array(id.utf8), value: Array(line.utf8),
                        headers: [KafkaHeader(name: "correlation-id", string: id)])
                ))
            produced.good.insert(id)
        }
        for index in 0..<bad {
            let id = "\(prefix)bad\(index)"
            messages.append(
                (id, KafkaProducerMessage(topic: "req", key: Array(id.utf8), value: Array(badLines[index % badLines.count].utf8))))
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

    /// Produces `count` valid requests (`q0`…, the example requests with varied texts) and `bad`
    /// bad ones spread among them, `batch` at a time every `every`, recording where each landed.
    func produceSteadily(_ count: Int, bad: Int, batch: Int, every: Duration, servers: String, into log: ProducedLog) async throws {
        let examples = try WorkerFixtures.exampleRequests()
        let badLines = try WorkerFixtures.badRequests()
        var messages: [(id: String, bad: Bool, message: KafkaProducerMessage)] = []
        let spacing = bad > 0 ? count / bad : count + 1
        for index in 0..<count {
            let id = "q\(index)"
            let line = ServeEqualityTests.varied(
                WorkerFixtures.replacingID(examples[index % examples.count], with: id), variant: index / examples.count)
            messages.append(
                (
                    id, false,
                    KafkaProducerMessage(
                        topic: "req", key: Array(id.utf8), value: Array(line.utf8),
                        headers: [KafkaHeader(name: "correlation-id", string: id)])
                ))
            if index % spacing == spacing / 2, index / spacing < bad {
                let id = "bad\(index / spacing)"
                messages.append(
                    (
                        id, true,
                        KafkaProducerMessage(
                            topic: "req", key: Array(id.utf8), value: Array(badLines[(index / spacing) % badLines.count].utf8))
                    ))
            }
        }
        let producer = try KafkaProducer(configuration: .init(bootstrapServers: servers))
        var next = ContinuousClock.now
        for start in stride(from: 0, to: messages.count, by: batch) {
            var pending: [(String, Bool, KafkaPendingDelivery)] = []
            for (id, isBad, message) in messages[start..<min(start + batch, messages.count)] {
                pending.append((id, isBad, try await producer.enqueue(message)))
            }
            for (id, isBad, delivery) in pending {
                let report = try await delivery.get()
                log.state.withLock { $0.record(id, bad: isBad, partition: report.partition, offset: report.offset ?? -1) }
            }
            next = next + every
            try await Task.sleep(until: next)
        }
        try await producer.close(timeout: .seconds(10))
    }

    static let killRunRequests = 5_000
    static let killRunBad = 25
    /// The dev broker (librdkafka's mock cluster) does not let a restarted static member take
    /// over at once: it rejoins when the killed one's session times out. A 3 s session keeps the
    /// 6 restarts of the kill test short.
    static let killSession = ["--kafka", "session.timeout.ms=3000", "--kafka", "heartbeat.interval.ms=300"]

    @Test(
        """
        SIGKILL at random points of a 5,000-request run, 5 times, and restart: every request answered, duplicates only of in-flight \
        ones, no committed offset passes an unanswered one
        """
    )
    func killAndRestart() async throws {
        try await LoadLock.exclusive { try await self.killAndRestartExclusive() }
    }

    private func killAndRestartExclusive() async throws {
        let started = ContinuousClock.now
        let (broker, servers) = try await startBroker()
        defer { broker.kill9() }
        let results = try TopicReader(topic: "res", servers: servers)
        let letters = try TopicReader(topic: "dlq", servers: servers)
        let group = "kill-\(UUID().uuidString.prefix(8))"
        // NORBERT_KILL_SEED=N replays the kill points of a printed seed (the timing varies).
        let seed =
            ProcessInfo.processInfo.environment["NORBERT_KILL_SEED"].flatMap(UInt64.init) ?? UInt64(UInt32.random(in: 1...UInt32.max))
        print("kill run: seed \(seed)")
        var random = SplitMix64(seed: seed)
        // Kill k when the run has answered a seeded random number of requests in its k-th fifth
        // (and the worker killed has answered something itself): a random point while answering.
        let total = Self.killRunRequests + Self.killRunBad
        let fifth = total / 5
        let targets = (0..<5).map { $0 * fifth + fifth / 20 + random.below(fifth * 9 / 10) }
        // One run: requests arrive steadily (about 250/s) while workers are killed and restarted.
        let log = ProducedLog()
        let producer = Task {
            try await produceSteadily(
                Self.killRunRequests, bad: Self.killRunBad, batch: 25, every: .milliseconds(100), servers: servers, into: log)
        }
        defer { producer.cancel() }
        var tally = FinalTally()
        var kills: [(committed: [Int32: Int64], answered: Set<String>)] = []
        var figures: [String] = []

        for cycle in 0..<5 {
            let worker = try ChildProcess(serveArguments(servers, group: group, instance: "w1") + Self.killSession)
            defer { worker.kill9() }
            tally.update(results)
            let before = tally.total, firstOfThisWorker = tally.scanned
            let startedFrom = kills.last?.committed ?? [:]
            let workerStarted = ContinuousClock.now
            var firstAnswer: Duration?
            let deadline = ContinuousClock.now + .seconds(120)
            while tally.total == before || tally.counts.count < targets[cycle] {
                if firstAnswer == nil, tally.total > before { firstAnswer = ContinuousClock.now - workerStarted }
                guard worker.isRunning else {
                    throw ChildError(
                        """
                        seed \(seed) cycle \(cycle): worker exited (\(try await worker.waitForExit(timeout: .seconds(1)))): \
                        \(worker.stderr.suffix(3000))
                        """
                    )
                }
                guard ContinuousClock.now < deadline else {
                    throw ChildError(
                        """
                        seed \(seed) cycle \(cycle): \(tally.counts.count) of \(targets[cycle]) answered after 120 s (this worker \
                        \(tally.total - before)); produced \(log.snapshot.partitionOffset.count): \(worker.stderr.suffix(3000))
                        """
                    )
                }
                try await Task.sleep(for: .milliseconds(10))
                tally.update(results)
            }
            let firstAnswerAfter = firstAnswer ?? (ContinuousClock.now - workerStarted)
            worker.kill9()
            let killedAt = ContinuousClock.now - started

            // The committed offsets, then every answer already written (all the committed ones
            // among them: the worker commits only after delivery), and every request below them.
            let committedAtKill = try await committed(group: group, servers: servers)
            try await results.catchUp(timeout: .seconds(30))
            let coverDeadline = ContinuousClock.now + .seconds(30)
            while !log.snapshot.covers(committedAtKill), ContinuousClock.now < coverDeadline {
                try await Task.sleep(for: .milliseconds(20))
            }
            let produced = log.snapshot
            #expect(
                produced.covers(committedAtKill), "seed \(seed) kill \(cycle): committed \(committedAtKill) passes offsets never produced")
            tally.update(results)
            let answered = tally.answered
            var unanswered: [String] = []
            for (id, (partition, offset)) in produced.partitionOffset
            where offset < (committedAtKill[partition] ?? 0) && !answered.contains(id) {
                unanswered.append("\(id) at req[\(partition)]@\(offset)")
            }
            #expect(
                unanswered.isEmpty,
                """
                seed \(seed) kill \(cycle): committed \(committedAtKill.sorted { $0.key < $1.key }) passes \(unanswered.count) \
                unanswered requests: \(unanswered.sorted().prefix(20))
                """
            )
            kills.append((committedAtKill, answered))
            // How far the commits trail what the killed worker itself had answered: from where
            // it started (the previous kill's committed offsets) to its first unanswered offset.
            // Not asserted: committing late only costs duplicates.
            var ownAnswers = Set<String>()
            for m in results.messages(from: firstOfThisWorker) where m.headerValues("norbert-final").first == .some(Array("true".utf8)) {
                ownAnswers.insert(String(decoding: m.key ?? [], as: UTF8.self))
            }
            var behind: Int64 = 0
            for (partition, offsets) in produced.byOffset {
                var next = startedFrom[partition] ?? 0
                while let id = offsets[next], ownAnswers.contains(id) { next += 1 }
                behind += max(0, next - (committedAtKill[partition] ?? 0))
            }
            figures.append(
                """
                kill \(cycle + 1) at \(killedAt.formatted(.units(allowed: [.seconds], fractionalPart: .show(length: 1)))): produced \
                \(produced.partitionOffset.count), answered \(answered.count) (this worker \(tally.total - before) finals, the first \
                \(firstAnswerAfter.formatted(.units(allowed: [.seconds], fractionalPart: .show(length: 1)))) after its start), \
                committed \(committedAtKill.values.reduce(0, +)) (\(behind) behind its own answers)
                """
            )
        }

        let last = try ChildProcess(serveArguments(servers, group: group, instance: "w1") + Self.killSession)
        defer { last.kill9() }
        try await producer.value
        let produced = log.snapshot
        let all = produced.good.union(produced.bad)
        #expect(produced.good.count == Self.killRunRequests && produced.bad.count == Self.killRunBad)
        do {
            try await results.waitUntil(timeout: .seconds(180)) { _ in
                tally.update(results)
                return all.allSatisfy { tally.counts[$0] != nil }
            }
        } catch {
            Issue.record(
                """
                seed \(seed): unanswered \(all.subtracting(tally.answered).sorted().prefix(20)) after the last restart: \
                \(last.stderr.suffix(3000))
                """
            )
        }
        try await letters.waitUntil(timeout: .seconds(30)) {
            Set($0.map { String(decoding: $0.key ?? [], as: UTF8.self) }).isSuperset(of: produced.bad)
        }
        // Every request is answered, yet the last worker may still be answering again what the
        // last kill left uncommitted: wait until it has committed the end of every partition.
        var ends: [Int32: Int64] = [:]
        for (partition, offsets) in produced.byOffset { ends[partition] = (offsets.keys.max() ?? -1) + 1 }
        var committedAtEnd = try await committed(group: group, servers: servers)
        let endDeadline = ContinuousClock.now + .seconds(120)
        while ends.contains(where: { committedAtEnd[$0.key] != $0.value }), ContinuousClock.now < endDeadline {
            try await Task.sleep(for: .milliseconds(200))
            committedAtEnd = try await committed(group: group, servers: servers)
        }
        #expect(
            committedAtEnd == ends,
            """
            seed \(seed): committed \(committedAtEnd.sorted { $0.key < $1.key }), expected the ends \
            \(ends.sorted { $0.key < $1.key }): \(last.stderr.suffix(3000))
            """
        )
        // When the killed workers had answered and committed everything, all of the above holds
        // at once: let the last one get past its process start (a signal before `main` runs kills
        // any process) before stopping it.
        try await last.waitFor("heads loaded", inStderr: true, timeout: .seconds(60))
        last.signal(SIGTERM)
        let status = try await last.waitForExit(timeout: .seconds(60))
        #expect(status == 0, "seed \(seed): exit \(status) after SIGTERM: \(last.stderr.suffix(4000))")
        try await results.catchUp(timeout: .seconds(30))
        tally.update(results)
        // Duplicates only of messages in flight at a kill: answered n times means answered, yet
        // not below the committed offset, at n - 1 kills at least.
        var duplicates = 0
        for (id, count) in tally.counts where count > 1 {
            duplicates += count - 1
            let (partition, offset) = try #require(produced.partitionOffset[id], "answered \(id), never produced")
            let inFlight = kills.filter { $0.answered.contains(id) && offset >= ($0.committed[partition] ?? 0) }.count
            #expect(inFlight >= count - 1, "seed \(seed): \(id) answered \(count) times but in flight at only \(inFlight) kills")
        }
        for letter in letters.messages {
            let id = String(decoding: letter.key ?? [], as: UTF8.self)
            #expect(produced.bad.contains(id))
            #expect(letter.headerValues("norbert-source-topic") == [Array("req".utf8)])
            #expect(letter.headerValues("norbert-error-code").first.flatMap { $0 }.map { !$0.isEmpty } == true)
        }
        // The drain's commit after SIGTERM leaves the ends committed.
        let end = try await committed(group: group, servers: servers)
        #expect(
            end == ends,
            "seed \(seed): after SIGTERM committed \(end.sorted { $0.key < $1.key }), expected \(ends.sorted { $0.key < $1.key })")
        print(
            """
            kill run (seed \(seed)): \(all.count) requests (\(produced.bad.count) bad), \(tally.total) final answers, \(duplicates) \
            duplicates; kill targets \(targets); \(figures.joined(separator: "; ")); \(ContinuousClock.now - started) in all
            """
        )
        await results.close()
        await letters.close()
    }

    @Test("SIGTERM under load drains and commits: a restart answers the rest with no duplicates")
    func drainOnSigterm() async throws {
        try await LoadLock.exclusive { try await self.drainOnSigtermExclusive() }
    }

    private func drainOnSigtermExclusive() async throws {
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

    @Test(
        """
        SIGTERM at any point of a restart after a SIGKILL (same instance id, rejoining the group): exit 0, nothing committed past an \
        answer
        """
    )
    func sigtermWhileRejoining() async throws {
        try await LoadLock.exclusive { try await self.sigtermWhileRejoiningExclusive() }
    }

    private func sigtermWhileRejoiningExclusive() async throws {
        let (broker, servers) = try await startBroker()
        defer { broker.kill9() }
        let produced = try await produce(200, bad: 0, servers: servers)
        let results = try TopicReader(topic: "res", servers: servers)
        let group = "rejoin-\(UUID().uuidString.prefix(8))"
        // Right after the heads are loaded, right after the worker starts, while it waits for the
        // killed member's session, and around the assignment. (Before the process reaches `main`
        // a SIGTERM just kills it: nothing has started.)
        for (round, delay) in [0.0, 0.5, 2.0, 3.5].enumerated() {
            let killed = try ChildProcess(serveArguments(servers, group: group, instance: "r") + Self.killSession)
            defer { killed.kill9() }
            try await killed.waitFor("partitions assigned", inStderr: true, timeout: .seconds(60))
            killed.kill9()
            _ = try await killed.waitForExit(timeout: .seconds(20))
            let restarted = try ChildProcess(serveArguments(servers, group: group, instance: "r") + Self.killSession)
            defer { restarted.kill9() }
            try await restarted.waitFor(round == 0 ? "heads loaded" : "worker started", inStderr: true, timeout: .seconds(60))
            try await Task.sleep(for: .seconds(delay))
            restarted.signal(SIGTERM)
            let status = try await restarted.waitForExit(timeout: .seconds(40))
            #expect(status == 0, "round \(round) (SIGTERM \(delay) s after start): exit \(status): \(restarted.stderr.suffix(3000))")
            let commits = try await committed(group: group, servers: servers)
            try await results.catchUp(timeout: .seconds(30))
            let answered = Set(Self.finals(results.messages).keys)
            for (partition, offset) in commits {
                let below = (produced.byOffset[partition] ?? [:]).filter { $0.key < offset }.map(\.value)
                #expect(
                    below.allSatisfy(answered.contains),
                    "round \(round): committed \(offset) on req[\(partition)] passes an unanswered request")
            }
        }
        await results.close()
    }

    @Test("two, then three workers in one group; one leaves mid-run: no request lost")
    func group() async throws {
        try await LoadLock.exclusive { try await self.groupExclusive() }
    }

    private func groupExclusive() async throws {
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
