import ArgumentParser
import Dispatch
import Foundation
import Kafka
import Synchronization

/// `norbert-worker broker`: librdkafka's mock Kafka cluster, in process, for development and
/// end-to-end tests. Prints `bootstrap.servers` once it serves; runs until SIGINT/SIGTERM.
struct BrokerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "broker",
        abstract: "Run a development Kafka broker (librdkafka's in-process mock cluster).",
        discussion: """
            Starts the mock cluster, creates the --topic topics, then prints bootstrap.servers on \
            stdout (and writes it to --bootstrap-file). Runs until SIGINT or SIGTERM. Memory only: \
            about 5 MiB is kept per partition, there is no Admin API, transactional offsets are \
            not stored. See docs/kafka.md.
            """,
        subcommands: [Serve.self, Check.self],
        defaultSubcommand: Serve.self)

    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "serve", abstract: "Run the mock cluster (the default).")

        @Option(help: "Number of brokers (ids 1...N).")
        var brokers: Int = 3

        @Option(name: .customLong("topic"), help: "A topic to create, as NAME:PARTITIONS (repeatable).")
        var topics: [String] = []

        @Option(help: "Also write bootstrap.servers to this file (atomically) once ready.")
        var bootstrapFile: String?

        @Option(
            help: ArgumentHelp(
                """
                Inject a fault every few seconds, from this seed: a broker down for 1-3 s, retriable errors on \
                Produce/Fetch/OffsetCommit, latency on a broker, a partition leader moved. Logged on stderr; SIGUSR1 stops it.
                """,
                valueName: "seed"))
        var faults: UInt64?

        @Option(help: ArgumentHelp("Pause between two faults, ms.", valueName: "min-max"))
        var faultIntervalMs: String = "2000-5000"

        func validate() throws {
            guard (1...64).contains(brokers) else { throw ValidationError("--brokers must be 1...64") }
            for spec in topics { _ = try TopicSpec(spec) }
            _ = try Self.interval(faultIntervalMs)
        }

        static func interval(_ text: String) throws -> ClosedRange<Int> {
            let parts = text.split(separator: "-", omittingEmptySubsequences: false)
            guard parts.count == 2, let low = Int(parts[0]), let high = Int(parts[1]), low >= 10, low <= high, high <= 3_600_000 else {
                throw ValidationError("--fault-interval-ms expects MIN-MAX in ms (10...3600000), got \"\(text)\"")
            }
            return low...high
        }

        func run() async throws {
            let specs = try topics.map(TopicSpec.init)
            let signals = TerminationSignals()  // before anything can take long
            let cluster = try KafkaMockCluster(brokers: brokers)
            for spec in specs {
                try cluster.createTopic(spec.name, partitions: spec.partitions)
            }
            let bootstrap = cluster.bootstrapServers
            if let bootstrapFile {
                try writeAtomically(bootstrap + "\n", to: bootstrapFile)
            }
            // Unbuffered write straight to fd 1: the line is out before we wait.
            FileHandle.standardOutput.write(Data((bootstrap + "\n").utf8))
            let topicList = specs.map { "\($0.name):\($0.partitions)" }.joined(separator: " ")
            FileHandle.standardError.write(
                Data("broker: \(brokers) mock brokers at \(bootstrap)\(topicList.isEmpty ? "" : "; topics \(topicList)")\n".utf8))
            var faultTask: Task<Void, Never>?
            var stopSignal: (any DispatchSourceSignal)?
            if let faults {
                let injector = BrokerFaults(
                    cluster: cluster, topics: specs.map { .init(name: $0.name, partitions: $0.partitions) },
                    seed: faults, intervalMs: try Self.interval(faultIntervalMs))
                FileHandle.standardError.write(
                    Data("broker: injecting faults (seed \(faults), every \(faultIntervalMs) ms; SIGUSR1 stops)\n".utf8))
                let task = Task { await injector.run() }
                faultTask = task
                signal(SIGUSR1, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: SIGUSR1, queue: .global())
                source.setEventHandler {
                    FileHandle.standardError.write(Data("broker: SIGUSR1, no more faults\n".utf8))
                    task.cancel()
                }
                source.resume()
                stopSignal = source
            }
            let signal = await signals.wait()
            FileHandle.standardError.write(Data("broker: \(signal), shutting down\n".utf8))
            if let faultTask {
                faultTask.cancel()
                await faultTask.value  // an active fault undone before the cluster goes
            }
            stopSignal?.cancel()
            cluster.shutdown()
        }
    }

    /// Produces messages with keys and headers to a broker and reads them back in a fresh
    /// consumer group: a smoke test of a broker (used by the end-to-end tests).
    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "check", abstract: "Round-trip messages through a broker.", shouldDisplay: false)

        @Option(help: "bootstrap.servers of the broker.")
        var bootstrapServers: String

        @Option(help: "Topic to use (must exist).")
        var topic: String

        @Option(help: "Number of messages.")
        var messages: Int = 1000

        @Option(help: "Seconds the whole check may take.")
        var timeout: Int = 60

        func run() async throws {
            let deadline = ContinuousClock.now + .seconds(timeout)
            var producerConfiguration = KafkaProducerConfiguration(bootstrapServers: bootstrapServers)
            producerConfiguration.linger = .milliseconds(5)
            producerConfiguration.deliveryTimeout = .seconds(timeout)
            let producer = try KafkaProducer(configuration: producerConfiguration)
            var pending: [KafkaPendingDelivery] = []
            for index in 0..<messages {
                pending.append(try await producer.enqueue(Self.message(index, topic: topic)))
            }
            for delivery in pending { _ = try await delivery.get() }
            try await producer.close(timeout: .seconds(10))

            var consumerConfiguration = KafkaConsumerConfiguration(
                bootstrapServers: bootstrapServers, groupID: "norbert-broker-check-\(UInt32.random(in: 0...UInt32.max))")
            consumerConfiguration.autoOffsetReset = .earliest
            let consumer = try KafkaConsumer(configuration: consumerConfiguration)
            try consumer.subscribe(topics: [topic])
            var seen = Set<Int>()
            let checker = Task { () throws -> Set<Int> in
                var seen = Set<Int>()
                for try await message in consumer.messages {
                    guard let index = Self.verify(message) else {
                        throw ValidationError("message at \(message.topicPartition)@\(message.offset) is not intact")
                    }
                    seen.insert(index)
                    if seen.count == messages { break }
                }
                return seen
            }
            let watchdog = Task {
                try await Task.sleep(until: deadline)
                checker.cancel()
            }
            seen = try await checker.value
            watchdog.cancel()
            try await consumer.close()
            guard seen.count == messages else {
                throw ValidationError("check: read back \(seen.count) of \(messages) messages before the deadline")
            }
            print("ok: \(messages) messages produced and consumed intact")
        }

        static func message(_ index: Int, topic: String) -> KafkaProducerMessage {
            KafkaProducerMessage(
                topic: topic, key: Array("key-\(index)".utf8), value: Array("value-\(index)".utf8),
                headers: [
                    KafkaHeader(name: "index", string: String(index)),
                    KafkaHeader(name: "", value: []),
                    KafkaHeader(name: "dup", string: "a"),
                    KafkaHeader(name: "dup", string: "b"),
                ])
        }

        static func verify(_ message: KafkaConsumerMessage) -> Int? {
            guard let indexBytes = message.headerValues("index").first ?? nil,
                let index = Int(String(decoding: indexBytes, as: UTF8.self))
            else { return nil }
            let expected = Self.message(index, topic: message.topic)
            guard message.key == expected.key, message.value == expected.value, message.headers == expected.headers else { return nil }
            return index
        }
    }
}

/// `NAME:PARTITIONS` (partitions default to 1).
struct TopicSpec {
    var name: String
    var partitions: Int

    init(_ spec: String) throws {
        let parts = spec.split(separator: ":", omittingEmptySubsequences: false)
        guard let first = parts.first, !first.isEmpty, parts.count <= 2 else {
            throw ValidationError("--topic expects NAME:PARTITIONS, got \"\(spec)\"")
        }
        name = String(first)
        if parts.count == 2 {
            guard let count = Int(parts[1]), (1...10_000).contains(count) else {
                throw ValidationError("--topic \(spec): PARTITIONS must be 1...10000")
            }
            partitions = count
        } else {
            partitions = 1
        }
    }
}

private func writeAtomically(_ text: String, to path: String) throws {
    let url = URL(fileURLWithPath: path)
    let temporary = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).\(getpid()).tmp")
    try Data(text.utf8).write(to: temporary)
    if rename(temporary.path, url.path) != 0 {
        try? FileManager.default.removeItem(at: temporary)
        throw ValidationError("cannot write \(path): \(String(cString: strerror(errno)))")
    }
}

/// SIGINT/SIGTERM as an awaitable event (the default handlers are disabled while it lives).
private final class TerminationSignals: @unchecked Sendable {
    private let sources: [any DispatchSourceSignal]
    private let state = Mutex<(fired: String?, waiter: CheckedContinuation<String, Never>?)>((nil, nil))

    private static let names: [(Int32, String)] = [(SIGINT, "SIGINT"), (SIGTERM, "SIGTERM")]

    init() {
        sources = Self.names.map { number, _ in
            signal(number, SIG_IGN)
            return DispatchSource.makeSignalSource(signal: number, queue: .global())
        }
        for (source, (_, name)) in zip(sources, Self.names) {
            source.setEventHandler { [weak self] in self?.fire(name) }
            source.resume()
        }
    }

    private func fire(_ name: String) {
        let waiter = state.withLock { state -> CheckedContinuation<String, Never>? in
            guard state.fired == nil else { return nil }
            state.fired = name
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(returning: name)
    }

    func wait() async -> String {
        await withCheckedContinuation { continuation in
            let fired = state.withLock { state -> String? in
                if let fired = state.fired { return fired }
                state.waiter = continuation
                return nil
            }
            if let fired { continuation.resume(returning: fired) }
        }
    }
}
