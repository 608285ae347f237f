import ArgumentParser
import Dispatch
import Foundation
import Kafka
import Logging
import Pipelines
import ServiceLifecycle
import Synchronization
import Worker

/// `norbert-worker serve`: the Kafka worker.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve NorBERT heads from Kafka: request topics in, answers and dead letters out.",
        discussion: """
            Settings come from flags, then NORBERT_WORKER_<NAME> environment variables (e.g. \
            NORBERT_WORKER_MAX_BATCH_TOKENS; lists comma-separated; NORBERT_WORKER_KAFKA_SASL_PASSWORD \
            sets kafka property sasl.password), then the JSON --config file (same names without \
            "--"), then defaults. Without --bootstrap-servers an embedded dev broker is started and \
            its address printed. SIGTERM/SIGINT: stop fetching, drain, commit, leave, exit 0. \
            Formats: schemas/, docs/wire-protocol.md; operations: docs/worker.md.
            """,
        subcommands: [ServeBenchCommand.self])

    @Option(name: .customLong("head"), help: ArgumentHelp("A head NAME=DIR (checkpoint folder); repeatable.", valueName: "name=dir"))
    var heads: [String] = []
    @Option(help: ArgumentHelp("Tokenizer folder (default: the first head's folder).", valueName: "dir"))
    var tokenizer: String?
    @Option(help: ArgumentHelp("Kafka bootstrap servers; none: start an embedded dev broker.", valueName: "host:port[,...]"))
    var bootstrapServers: String?
    @Option(help: ArgumentHelp("Consumer group id (default norbert-worker).", valueName: "id"))
    var group: String?
    @Option(help: ArgumentHelp("Request topics, comma-separated (default norbert-requests).", valueName: "topic[,topic...]"))
    var requests: String?
    @Option(help: ArgumentHelp("Results topic (default norbert-results).", valueName: "topic"))
    var results: String?
    @Option(help: ArgumentHelp("Dead-letter topic (default norbert-dead-letters).", valueName: "topic"))
    var deadLetter: String?
    @Option(help: ArgumentHelp("HTTP port for /metrics, /livez, /readyz (default 9400; 0 picks one).", valueName: "n"))
    var metricsPort: Int?
    @Option(help: ArgumentHelp("Address the HTTP port binds (default 0.0.0.0, every interface, as Kubernetes probes need; 127.0.0.1 keeps it local).", valueName: "host"))
    var metricsHost: String?
    @Option(help: ArgumentHelp("Token budget of one encoder batch (default 8192).", valueName: "n"))
    var maxBatchTokens: Int?
    @Option(help: ArgumentHelp("Longest wait for a batch to fill, ms (default 5).", valueName: "n"))
    var maxWaitMs: Int?
    @Option(help: ArgumentHelp("Inference lanes, each a single-threaded encoder (default: one per core).", valueName: "n"))
    var lanes: Int?
    @Option(help: ArgumentHelp("Static group membership id (group.instance.id), e.g. the pod name.", valueName: "id"))
    var instanceId: String?
    @Option(name: .customLong("kafka"), help: ArgumentHelp("A librdkafka property for every client; repeatable.", valueName: "key=value"))
    var kafka: [String] = []
    @Option(help: ArgumentHelp("JSON config file (flag names as keys). Also NORBERT_WORKER_CONFIG.", valueName: "path"))
    var config: String?
    @Option(help: ArgumentHelp("Log format: text or json (default text).", valueName: "format"))
    var logFormat: String?
    @Option(help: ArgumentHelp("Log level: trace, debug, info, notice, warning, error, critical (default info).", valueName: "level"))
    var logLevel: String?
    @Option(help: ArgumentHelp("Deadline for finishing in-flight work on revoke and shutdown, ms (default 15000). Shutdown takes at most this + 10 s (25 s by default: inside Kubernetes' 30 s grace period); it plus 12 s must stay below max.poll.interval.ms.", valueName: "n"))
    var drainTimeoutMs: Int?
    @Option(help: ArgumentHelp("How often answered offsets are committed, ms (default 200): shorter means fewer repeated answers after a crash, more commit requests.", valueName: "n"))
    var commitIntervalMs: Int?
    @Option(help: ArgumentHelp("Pause fetching above this many queued tokens (default max(4 × max-batch-tokens, 32768)).", valueName: "n"))
    var maxQueuedTokens: Int?
    @Option(help: ArgumentHelp("Largest request message accepted, bytes (default 1048576); larger ones are dead-lettered.", valueName: "n"))
    var maxMessageBytes: Int?
    @Option(help: ArgumentHelp("Longest input in tokens (default: the tokenizer's model_max_length, else the model's).", valueName: "n"))
    var maxInputTokens: Int?
    @Option(name: .customLong("reply-to-allow"), help: ArgumentHelp("A reply-to topic pattern requesters may use (* and ? wildcards); repeatable. Default none: every answer goes to the results topic, other reply-to topics are refused (reply_to_not_allowed).", valueName: "pattern"))
    var replyToAllow: [String] = []
    @Option(help: ArgumentHelp("Pause fetching above this many messages received and not yet answered, answers waiting for the broker included (default 10000).", valueName: "n"))
    var maxInFlight: Int?
    @Option(help: ArgumentHelp("Pause fetching above this many bytes of such messages (default 134217728).", valueName: "n"))
    var maxInFlightBytes: Int?
    @Option(help: ArgumentHelp("/livez fails when a busy lane makes no progress (batch, encoder pass, decoding step) for this long, ms (default 600000).", valueName: "n"))
    var laneStallTimeoutMs: Int?
    @OptionGroup var costLimits: CostLimitOptions

    var flagValues: [String: [String]] {
        var out: [String: [String]] = [:]
        if !heads.isEmpty { out["head"] = heads }
        if !kafka.isEmpty { out["kafka"] = kafka }
        if !replyToAllow.isEmpty { out["reply-to-allow"] = replyToAllow }
        let scalars: [(String, String?)] = [
            ("tokenizer", tokenizer), ("bootstrap-servers", bootstrapServers), ("group", group), ("requests", requests),
            ("results", results), ("dead-letter", deadLetter), ("metrics-port", metricsPort.map(String.init)),
            ("metrics-host", metricsHost),
            ("max-batch-tokens", maxBatchTokens.map(String.init)), ("max-wait-ms", maxWaitMs.map(String.init)),
            ("lanes", lanes.map(String.init)), ("instance-id", instanceId), ("log-format", logFormat), ("log-level", logLevel),
            ("drain-timeout-ms", drainTimeoutMs.map(String.init)), ("commit-interval-ms", commitIntervalMs.map(String.init)),
            ("max-queued-tokens", maxQueuedTokens.map(String.init)),
            ("max-message-bytes", maxMessageBytes.map(String.init)), ("max-input-tokens", maxInputTokens.map(String.init)),
            ("max-in-flight", maxInFlight.map(String.init)), ("max-in-flight-bytes", maxInFlightBytes.map(String.init)),
            ("lane-stall-timeout-ms", laneStallTimeoutMs.map(String.init)),
        ]
        for (name, value) in scalars { if let value { out[name] = [value] } }
        for (name, value) in costLimits.values { out[name] = [String(value)] }
        return out
    }

    func resolveSettings() throws -> ServeSettings {
        let environment = ProcessInfo.processInfo.environment
        do {
            let path = config ?? environment[ServeSettings.environmentPrefix + "CONFIG"]
            let file = try path.map(ServeSettings.readConfigFile) ?? [:]
            let settings = try ServeSettings.resolve(
                flags: flagValues, environment: environment, file: file, defaultLanes: ProcessInfo.processInfo.activeProcessorCount)
            guard !settings.heads.isEmpty else { throw CLIError("serve: give at least one --head NAME=DIR (or 'head' in the config file)") }
            return settings
        } catch let failure as ServeSettings.Failure {
            throw CLIError("serve: \(failure.description)")
        }
    }

    func run() async throws {
        let settings = try resolveSettings()
        let logger = ServeLogging.bootstrap(format: settings.logFormat, level: settings.logLevel)
        try KernelStartup.check("serve") { logger.info("\($0)") }
        // SIGTERM/SIGINT while the heads load: nothing to drain yet, so exit 0 once loaded.
        let early = EarlySignals()
        defer { early.cancel() }
        let engine = try await ServeEngine.load(settings)
        if early.fired {
            logger.notice("stopped by a signal during start-up")
            return
        }
        logger.info("heads loaded", metadata: [
            "heads": "\(engine.heads.map { "\($0.name)(encoder \($0.encoderGroup))" }.joined(separator: " "))",
            "max_input_tokens": "\(engine.maxInputTokens)",
        ])
        var embedded: KafkaMockCluster?
        let servers: String
        if let given = settings.bootstrapServers {
            servers = given
        } else {
            let cluster = try KafkaMockCluster(brokers: 1)
            for topic in settings.requests { try cluster.createTopic(topic, partitions: 4) }
            try cluster.createTopic(settings.results, partitions: 1)
            try cluster.createTopic(settings.deadLetter, partitions: 1)
            servers = cluster.bootstrapServers
            embedded = cluster
            FileHandle.standardOutput.write(Data("bootstrap.servers=\(servers)\n".utf8))
            logger.notice("no --bootstrap-servers: embedded dev broker (memory only) started", metadata: ["bootstrap_servers": "\(servers)"])
        }
        defer { embedded?.shutdown() }
        try await ServeRunner.run(settings: settings, engine: engine, servers: servers, logger: logger, signals: early)
    }
}

enum ServeRunner {
    /// Runs the worker and the probe server until SIGTERM/SIGINT (or a fatal error, thrown).
    static func run(settings: ServeSettings, engine: PipelineEngine, servers: String, logger: Logger,
                    signals: EarlySignals? = nil, ready: (@Sendable (ProbeServer) -> Void)? = nil) async throws {
        let backend = PipelinesBackend(engine: engine, lanes: settings.lanes)
        let metrics = WorkerMetrics(heads: engine.heads.map(\.name))
        let status = WorkerStatus()
        let worker = Worker(configuration: settings.workerConfiguration(bootstrapServers: servers), backend: backend,
                            metrics: metrics, status: status, logger: logger)
        let probes = settings.probeServer(metrics: metrics, status: status, logger: logger)
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(
            services: [
                .init(service: probes),
                .init(service: worker, successTerminationBehavior: .gracefullyShutdownGroup),
            ],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        // A signal between start-up and the group installing its own handlers would be lost.
        signals?.forward { Task { await group.triggerGracefulShutdown() } }
        try await group.run()
    }
}

enum ServeEngine {
    /// Loads the heads off Swift's cooperative pool (file reads and weight conversion block).
    static func load(_ settings: ServeSettings) async throws -> PipelineEngine {
        let specs = settings.heads.map { HeadSpec(name: $0.name, directory: $0.directory) }
        let configuration = EngineConfiguration(maxInputTokens: settings.maxInputTokens, maxTokensPerPass: settings.maxBatchTokens, limits: settings.limits)
        let tokenizer = settings.tokenizer
        let result: Result<PipelineEngine, EngineError> = await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(returning: Result { () throws(EngineError) in
                    try PipelineEngine(heads: specs, tokenizerDirectory: tokenizer, configuration: configuration)
                })
            }
        }
        switch result {
        case .success(let engine): return engine
        case .failure(let error): throw CLIError("serve: \(error.description)")
        }
    }
}

enum ServeLogging {
    /// Bootstraps swift-log once (text or JSON lines on stderr) and returns the worker's logger.
    static func bootstrap(format: String, level: String) -> Logger {
        let logLevel = Logger.Level(rawValue: level) ?? .info
        LoggingSystem.bootstrap { label in
            var handler: any LogHandler = format == "json" ? JSONLogHandler(label: label) : StreamLogHandler.standardError(label: label)
            handler.logLevel = logLevel
            return handler
        }
        var logger = Logger(label: "norbert-worker")
        logger.logLevel = logLevel
        return logger
    }
}

/// Catches SIGTERM/SIGINT from the start (they are ignored otherwise: SIG_IGN) and, once the
/// service group exists, hands them to it, so that a signal between start-up and the group
/// installing its own handlers is not lost.
final class EarlySignals {
    private let sources: [any DispatchSourceSignal]
    private let state = SignalState()

    init() {
        let state = self.state
        sources = [SIGTERM, SIGINT].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { state.fire() }
            source.resume()
            return source
        }
    }

    /// True when a signal came.
    var fired: Bool { state.fired }

    /// From now on a signal runs `action` (at once if one came already).
    func forward(_ action: @escaping @Sendable () -> Void) { state.forward(action) }

    func cancel() {
        for source in sources { source.cancel() }
    }
}

final class SignalState: Sendable {
    private let value = Mutex<(fired: Bool, action: (@Sendable () -> Void)?)>((false, nil))

    var fired: Bool { value.withLock { $0.fired } }

    func fire() {
        let action = value.withLock { state in
            state.fired = true
            return state.action
        }
        action?()
    }

    func forward(_ action: @escaping @Sendable () -> Void) {
        let fired = value.withLock { state in
            state.action = action
            return state.fired
        }
        if fired { action() }
    }
}
