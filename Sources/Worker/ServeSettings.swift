import Foundation
import Logging
import Pipelines

/// `serve`'s settings, resolved from (highest first) command-line flags, `NORBERT_WORKER_…`
/// environment variables, a JSON config file, and defaults (``ServeSettings/resolution(flags:environment:file:configFile:defaultLanes:)``).
/// Every setting is declared once, in ``ServeSettings/options``; the defaults are the values the
/// properties start with. Every source uses the flag names: `--max-batch-tokens` is
/// `"max-batch-tokens"` in the file and `NORBERT_WORKER_MAX_BATCH_TOKENS` in the environment.
/// Lists (`head`, `requests`, `kafka`) come whole from the highest source that sets them, except
/// `kafka`, which merges per property (flags over environment over file). In the environment,
/// lists are comma-separated and librdkafka properties may also be given one per variable:
/// `NORBERT_WORKER_KAFKA_SASL_PASSWORD=…` is `sasl.password`.
public struct ServeSettings: Sendable, Equatable {
    /// A configured head: the name requests use and its checkpoint folder.
    public struct Head: Sendable, Equatable {
        public var name: String
        public var directory: String
        public init(name: String, directory: String) {
            self.name = name
            self.directory = directory
        }
    }

    public var heads: [Head] = []
    public var tokenizer: String?
    public var bootstrapServers: String?
    public var group = "norbert-worker"
    public var requests = ["norbert-requests"]
    public var results = "norbert-results"
    public var deadLetter = "norbert-dead-letters"
    public var metricsPort = 9400
    /// The probe port's address: all interfaces by default, as the kubelet's probes and
    /// Prometheus reach a pod on its pod IP; `127.0.0.1` keeps it local.
    public var metricsHost = "0.0.0.0"
    public var maxBatchTokens = 8192
    public var maxWaitMs = 5
    public var lanes: Int
    /// float32 or bf16 (the encoders' weight GEMMs).
    public var precision = "float32"
    public var instanceID: String?
    public var kafka: [String: String] = [:]
    public var logFormat = "text"
    public var logLevel = "info"
    public var drainTimeoutMs = 15_000
    public var commitIntervalMs = 200
    public var maxQueuedTokens: Int?
    public var maxMessageBytes = 1 << 20
    public var maxInputTokens: Int?
    public var replyToAllow: [String] = []
    public var maxInFlight = 10_000
    public var maxInFlightBytes = 128 << 20
    public var laneStallTimeoutMs = 600_000
    /// Per-request cost limits (`max-request-tokens`, `max-windows`, …: ``CostLimits/settings``).
    public var limits = CostLimits()

    /// The defaults (one lane): what `--help`, docs/worker.md and ``WorkerConfiguration`` show and use.
    public static let defaults = ServeSettings(defaultLanes: 1)

    public static let environmentPrefix = "NORBERT_WORKER_"

    /// `NORBERT_WORKER_<NAME>` of a setting.
    public static func environmentName(_ name: String) -> String {
        environmentPrefix + name.uppercased().replacingOccurrences(of: "-", with: "_")
    }

    public struct Failure: Error, CustomStringConvertible, Equatable, Sendable {
        public let description: String
        public init(_ message: String) { description = message }
    }

    public init(defaultLanes: Int) { lanes = max(1, defaultLanes) }

    /// `KEY=VALUE` split at the first `=`; nil without a key.
    static func kafkaProperty(_ pair: String) -> (key: String, value: String)? {
        guard let eq = pair.firstIndex(of: "="), eq != pair.startIndex else { return nil }
        return (String(pair[..<eq]), String(pair[pair.index(after: eq)...]))
    }

    /// A malformed kafka entry, named by source and position but never shown: it may be a
    /// password (e.g. a `sasl.password` value cut at a comma).
    static func malformedKafka(_ source: String, _ index: Int, of count: Int) -> Failure {
        Failure("\(source): kafka entry \(index + 1) of \(count) is not KEY=VALUE (its text is not shown, as it may hold a secret)")
    }

    /// librdkafka's `max.poll.interval.ms` default.
    static let defaultMaxPollIntervalMs = 300_000

    /// A revoke holds the group for the drain deadline plus the commits around it; longer than
    /// `max.poll.interval.ms` and the broker removes the worker from the group mid-revoke.
    func checkDrainTimeout() throws(Failure) {
        var maxPoll = Self.defaultMaxPollIntervalMs
        if let text = kafka["max.poll.interval.ms"] {
            guard let value = Int(text.trimmingCharacters(in: .whitespaces)), value > 0 else {
                throw Failure("kafka property max.poll.interval.ms must be a whole number of milliseconds")
            }
            maxPoll = value
        }
        let configuration = workerConfiguration(bootstrapServers: "")
        let overhead = configuration.revokeOverhead.components
        let overheadMs = Int(overhead.seconds * 1000 + overhead.attoseconds / 1_000_000_000_000_000)
        guard drainTimeoutMs + overheadMs < maxPoll else {
            throw Failure(
                """
                drain-timeout-ms (\(drainTimeoutMs)) plus \(overheadMs) ms of revoke commits must stay below librdkafka's \
                max.poll.interval.ms (\(maxPoll)\(kafka["max.poll.interval.ms"] == nil ? ", its default" : "")): a longer revoke \
                gets the worker removed from the group; lower drain-timeout-ms or raise it with --kafka max.poll.interval.ms=N
                """)
        }
    }

    /// The probe port's server (`/metrics`, `/livez`, `/readyz`) on `metrics-host`:`metrics-port`.
    public func probeServer(metrics: WorkerMetrics, status: WorkerStatus, logger: Logger) -> ProbeServer {
        ProbeServer(host: metricsHost, port: metricsPort, metrics: metrics, status: status, logger: logger)
    }

    public func workerConfiguration(bootstrapServers servers: String) -> WorkerConfiguration {
        WorkerConfiguration(
            bootstrapServers: servers, groupID: group, requestTopics: requests, resultsTopic: results, deadLetterTopic: deadLetter,
            instanceID: instanceID, kafka: kafka, maxBatchTokens: maxBatchTokens, maxWait: .milliseconds(maxWaitMs),
            maxQueuedTokens: maxQueuedTokens, maxMessageBytes: maxMessageBytes, drainTimeout: .milliseconds(drainTimeoutMs),
            commitInterval: .milliseconds(commitIntervalMs), replyToAllow: replyToAllow, maxInFlight: maxInFlight,
            maxInFlightBytes: maxInFlightBytes, laneStallTimeout: .milliseconds(laneStallTimeoutMs))
    }
}
