import ArgumentParser
import Foundation
import Kafka
import Logging
import Pipelines
import ServiceLifecycle
import Worker

/// `norbert-worker demo`: the whole loop in one process — dev broker, the tiny bundled test
/// heads, sample requests of every task, printed answers.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run the whole Kafka loop once with the tiny test model (answers are meaningless).",
        discussion: """
            Starts the embedded dev broker, loads the tiny random-weight NorBERT heads of \
            Tests/Fixtures (found from the current folder or the binary's), sends one request of \
            every task plus a bad one, and prints each answer and dead letter. The tiny model has \
            random weights: its answers show the formats, not real predictions.
            """)

    @Option(help: ArgumentHelp("The repository's Tests/Fixtures folder (default: found automatically).", valueName: "dir"))
    var fixtures: String?

    static let samples: [String] = [
        #"{"id": "tc-1", "task": "text-classification", "text": "Dette var den beste konserten jeg har vært på i år!"}"#,
        #"""
        {"id": "ner-1", "task": "token-classification", "text": "Kari Nordmann bor i Tromsø.", "options": {"aggregation_strategy": \#
        "first"}}
        """#,
        #"{"id": "qa-1", "task": "question-answering", "question": "Hvem kom?", "context": "Per kom i går."}"#,
        #"{"id": "fm-1", "task": "fill-mask", "text": "Jeg bor i <mask>.", "options": {"top_k": 3}}"#,
        #"""
        {"id": "mc-1", "task": "multiple-choice", "question": "Hva er hovedstaden i Norge?", "choices": ["Oslo", "Bergen", \#
        "Trondheim"]}
        """#,
        #"{"id": "gen-1", "task": "text-generation", "head": "causal", "text": "Det var en gang", "options": {"max_new_tokens": 8}}"#,
        #"{"id": "fe-1", "task": "feature-extraction", "text": "Hei", "options": {"pooling": "mean", "normalize": true}}"#,
        #"{"id": "multi-1", "heads": ["sentiment", "ner"], "text": "Kari bor i Tromsø og trives."}"#,
        #"{"id": "bad-1", "task": "summarization", "text": "x"}"#,
    ]

    func locateFixtures() throws -> URL {
        var candidates: [URL] = []
        if let fixtures { candidates.append(URL(fileURLWithPath: fixtures)) }
        candidates.append(URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent("Tests/Fixtures"))
        var dir = URL(
            fileURLWithPath: (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0])
        for _ in 0..<6 {
            dir = dir.deletingLastPathComponent()
            candidates.append(dir.appendingPathComponent("Tests/Fixtures"))
        }
        for candidate in candidates
        where FileManager.default.fileExists(atPath: candidate.appendingPathComponent("norbert4-tiny/mlm/config.json").path) {
            return candidate
        }
        throw CLIError("demo: Tests/Fixtures not found; run from the repository or pass --fixtures DIR")
    }

    func run() async throws {
        let root = try locateFixtures()
        func tiny(_ name: String) -> String { root.appendingPathComponent("norbert4-tiny/\(name)").path }
        print("norbert-worker demo — tiny random-weight test heads: the answers below are MEANINGLESS (they show the formats).\n")
        var settings = ServeSettings(defaultLanes: 1)
        settings.heads = [
            ("sentiment", tiny("sequence-classification")), ("ner", tiny("token-classification")),
            ("qa", tiny("question-answering")), ("mlm", tiny("mlm")), ("mc", tiny("multiple-choice")),
            ("causal", tiny("causal-lm")), ("base", tiny("base")),
        ].map { ServeSettings.Head(name: $0, directory: $1) }
        settings.tokenizer = root.appendingPathComponent("tokenizer").path
        settings.group = "norbert-demo"
        let engine = try await ServeEngine.load(settings)

        let cluster = try KafkaMockCluster(brokers: 1)
        defer { cluster.shutdown() }
        for topic in settings.requests + [settings.results, settings.deadLetter] { try cluster.createTopic(topic, partitions: 1) }
        let servers = cluster.bootstrapServers
        print(
            """
            dev broker: \(servers)   requests → \(settings.requests[0]), answers ← \(settings.results), dead letters ← \
            \(settings.deadLetter)\n
            """
        )

        var logger = Logger(label: "norbert-demo")
        logger.logLevel = .warning
        let worker = Worker(
            configuration: settings.workerConfiguration(bootstrapServers: servers),
            backend: PipelinesBackend(engine: engine, lanes: 1), logger: logger)
        let group = ServiceGroup(
            configuration: .init(services: [.init(service: worker, successTerminationBehavior: .gracefullyShutdownGroup)], logger: logger))
        let running = Task { try await group.run() }

        let producer = try KafkaProducer(configuration: .init(bootstrapServers: servers))
        for (index, line) in Self.samples.enumerated() {
            print("→ \(line)")
            _ = try await producer.send(
                KafkaProducerMessage(
                    topic: settings.requests[0], key: "k\(index)", value: line,
                    headers: [KafkaHeader(name: "correlation-id", string: "demo-\(index)")]))
        }
        try await producer.close(timeout: .seconds(5))
        print("")
        let answers = try await Self.read(settings.results, servers: servers, count: Self.samples.count + 1)
        for message in answers {
            let text = String(decoding: message.value ?? [], as: UTF8.self)
            print("← \(text.count > 400 ? String(text.prefix(400)) + " …" : text)")
        }
        for letter in try await Self.read(settings.deadLetter, servers: servers, count: 1) {
            let code = (letter.headerValues("norbert-error-code").first ?? nil).map { String(decoding: $0, as: UTF8.self) } ?? "?"
            print("✗ dead letter (\(code)): \(String(decoding: letter.value ?? [], as: UTF8.self))")
        }
        await group.triggerGracefulShutdown()
        try await running.value
        print("\ndone. Point `norbert-worker serve` at real checkpoints: see docs/worker.md.")
    }

    static func read(_ topic: String, servers: String, count: Int) async throws -> [KafkaConsumerMessage] {
        var configuration = KafkaConsumerConfiguration(bootstrapServers: servers, groupID: "demo-reader-\(topic)")
        configuration.autoOffsetReset = .earliest
        let consumer = try KafkaConsumer(configuration: configuration)
        try consumer.subscribe(topics: [topic])
        let reader = Task { () throws -> [KafkaConsumerMessage] in
            var out: [KafkaConsumerMessage] = []
            for try await message in consumer.messages {
                out.append(message)
                if out.count >= count { break }
            }
            return out
        }
        let watchdog = Task {
            try await Task.sleep(for: .seconds(60))
            reader.cancel()
            try? await consumer.close()
        }
        defer { watchdog.cancel() }
        let out = try await reader.value
        try? await consumer.close()
        guard out.count >= count else { throw CLIError("demo: only \(out.count) of \(count) messages arrived on \(topic)") }
        return out
    }
}
