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

    // One @Option per setting of ServeSettings.options, named as the setting (the property's
    // name is the flag's) and typed String? or [String] (repeatable); the declaration gives the
    // help, the parsing and the checks. WorkerTests fail when one is missing, extra or different.
    @Option(help: .serve("head")) var head: [String] = []
    @Option(help: .serve("tokenizer")) var tokenizer: String?
    @Option(help: .serve("bootstrap-servers")) var bootstrapServers: String?
    @Option(help: .serve("group")) var group: String?
    @Option(help: .serve("requests")) var requests: String?
    @Option(help: .serve("results")) var results: String?
    @Option(help: .serve("dead-letter")) var deadLetter: String?
    @Option(help: .serve("metrics-port")) var metricsPort: String?
    @Option(help: .serve("metrics-host")) var metricsHost: String?
    @Option(help: .serve("max-batch-tokens")) var maxBatchTokens: String?
    @Option(help: .serve("max-wait-ms")) var maxWaitMs: String?
    @Option(help: .serve("lanes")) var lanes: String?
    @Option(help: .serve("precision")) var precision: String?
    @Option(help: .serve("instance-id")) var instanceId: String?
    @Option(help: .serve("kafka")) var kafka: [String] = []
    @Option(help: .serve("config")) var config: String?
    @Option(help: .serve("log-format")) var logFormat: String?
    @Option(help: .serve("log-level")) var logLevel: String?
    @Option(help: .serve("drain-timeout-ms")) var drainTimeoutMs: String?
    @Option(help: .serve("commit-interval-ms")) var commitIntervalMs: String?
    @Option(help: .serve("max-queued-tokens")) var maxQueuedTokens: String?
    @Option(help: .serve("max-message-bytes")) var maxMessageBytes: String?
    @Option(help: .serve("max-input-tokens")) var maxInputTokens: String?
    @Option(help: .serve("reply-to-allow")) var replyToAllow: [String] = []
    @Option(help: .serve("max-in-flight")) var maxInFlight: String?
    @Option(help: .serve("max-in-flight-bytes")) var maxInFlightBytes: String?
    @Option(help: .serve("lane-stall-timeout-ms")) var laneStallTimeoutMs: String?
    @OptionGroup var costLimits: CostLimitOptions

    @Flag(
        help: """
            Check the configuration and exit: every setting from flags, NORBERT_WORKER_* and the config file (all problems, \
            not just the first), the kafka properties (by librdkafka, without a client), and each head's config.json, \
            weights header and tokenizer (no weights loaded). Prints the effective settings with where each came from \
            (secrets redacted) and exits 0, or names every problem on stderr and exits 1. No broker is contacted.
            """)
    var checkConfig = false
    @Flag(help: "With --check-config: leave the head and tokenizer folders alone (e.g. in CI, without the models).")
    var skipModelFiles = false
    @Flag(help: .hidden) var helpMarkdown = false

    /// The settings given as flags, by name.
    var flagValues: [String: [String]] { GivenOptions.values(of: self) }

    func validate() throws {
        if skipModelFiles, !checkConfig { throw ValidationError("--skip-model-files only goes with --check-config") }
    }

    func resolveSettings() throws -> ServeSettings {
        let resolution = ServeSettings.load(
            flags: flagValues, environment: ProcessInfo.processInfo.environment, defaultLanes: ProcessInfo.processInfo.activeProcessorCount)
        if let first = resolution.problems.first { throw CLIError("serve: \(first.description)") }
        guard !resolution.settings.heads.isEmpty else {
            throw CLIError("serve: give at least one --head NAME=DIR (or 'head' in the config file)")
        }
        return resolution.settings
    }

    /// `--check-config`: the report on stdout, the problems on stderr; exit 1 when there are any.
    func runCheck() throws {
        let check = ServeConfigCheck.run(
            flags: flagValues, environment: ProcessInfo.processInfo.environment,
            defaultLanes: ProcessInfo.processInfo.activeProcessorCount, modelFiles: !skipModelFiles)
        guard check.passed else {
            let lines =
                ["serve --check-config: \(check.problems.count) problem\(check.problems.count == 1 ? "" : "s")"]
                + check.problems.map { "  - " + $0 }
            FileHandle.standardError.write(Data((lines.joined(separator: "\n") + "\n").utf8))
            throw ExitCode(1)
        }
        FileHandle.standardOutput.write(Data(("serve --check-config: OK (no broker contacted, no weights loaded)\n" + check.report).utf8))
    }

    func run() async throws {
        if helpMarkdown {
            FileHandle.standardOutput.write(Data(ServeOption.markdownTable().utf8))
            return
        }
        if checkConfig { return try runCheck() }
        // SIGTERM/SIGINT from here on (settings, loading the heads): nothing to drain yet, so exit
        // 0 once loaded. Caught before anything else: a signal's default action would kill the
        // process with nothing logged.
        let early = EarlySignals.atLaunch
        defer { early.cancel() }
        let settings = try resolveSettings()
        let logger = ServeLogging.bootstrap(format: settings.logFormat, level: settings.logLevel)
        try KernelStartup.check("serve") { logger.info("\($0)") }
        let engine = try await ServeEngine.load(settings)
        if early.fired {
            logger.notice("stopped by a signal during start-up")
            return
        }
        logger.info(
            "heads loaded",
            metadata: [
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
            logger.notice(
                "no --bootstrap-servers: embedded dev broker (memory only) started", metadata: ["bootstrap_servers": "\(servers)"])
        }
        defer { embedded?.shutdown() }
        try await ServeRunner.run(settings: settings, engine: engine, servers: servers, logger: logger, signals: early)
    }
}

enum ServeRunner {
    /// Runs the worker and the probe server until SIGTERM/SIGINT (or a fatal error, thrown).
    static func run(
        settings: ServeSettings, engine: PipelineEngine, servers: String, logger: Logger,
        signals: EarlySignals? = nil, ready: (@Sendable (ProbeServer) -> Void)? = nil
    ) async throws {
        let backend = PipelinesBackend(engine: engine, lanes: settings.lanes)
        let metrics = WorkerMetrics(heads: engine.heads.map(\.name))
        let status = WorkerStatus()
        let worker = Worker(
            configuration: settings.workerConfiguration(bootstrapServers: servers), backend: backend,
            metrics: metrics, status: status, logger: logger)
        let probes = settings.probeServer(metrics: metrics, status: status, logger: logger)
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
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
        let configuration = EngineConfiguration(
            maxInputTokens: settings.maxInputTokens, maxTokensPerPass: settings.maxBatchTokens, limits: settings.limits,
            bf16: try KernelStartup.bf16GEMM("serve", precision: settings.precision))
        let tokenizer = settings.tokenizer
        let result: Result<PipelineEngine, EngineError> = await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(
                    returning: Result { () throws(EngineError) in
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
/// `@unchecked Sendable`: the sources are set once in `init` and only cancelled afterwards
/// (DispatchSource's cancel is thread-safe); the state is a Mutex.
final class EarlySignals: @unchecked Sendable {
    private let sources: [any DispatchSourceSignal]
    private let state = SignalState()

    /// The process's one instance, created on first use: `Launch.main` touches it first thing
    /// for `serve`; `ServeCommand.run` (also when called in-process) gets the same one.
    static let atLaunch = EarlySignals()

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
