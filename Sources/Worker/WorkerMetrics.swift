import Kafka
import Pipelines
import Prometheus
import Synchronization
import Wire

/// The worker's Prometheus metrics (one registry per worker; `/metrics` renders it).
public final class WorkerMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    static let prefix = "norbert_worker"

    let batchTokens: ValueHistogram
    let batchRequests: ValueHistogram
    let queueLatency: DurationHistogram
    let inferenceLatency: DurationHistogram
    let produceLatency: DurationHistogram
    let endToEndLatency: DurationHistogram
    let tokens: Counter
    let tokensPerSecond: Gauge
    let pauses: Counter
    let paused: Gauge
    let queuedTokens: Gauge
    let inFlight: Gauge
    let inFlightBytes: Gauge
    let pendingAnswers: Gauge
    let deadLetterFallbacks: Counter
    let produceRetries: Counter
    let commits: Counter
    let commitFailures: Counter
    let assignedPartitions: Gauge
    /// 1 while `/readyz` answers 200 (set when /metrics is scraped).
    let ready: Gauge
    let probeConnectionsClosed: [ProbeServer.CloseReason: Counter]
    let labels: MetricLabels
    private let tokenWindow = Mutex<(start: ContinuousClock.Instant, tokens: Int)>((.now, 0))

    /// `heads`: the configured head names, the only values (and `+` combinations of them) the
    /// `head` label takes; nil (tests) accepts the first ``MetricLabels/maxHeadLabels`` values seen.
    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry(), heads: [String]? = nil) {
        self.registry = registry
        labels = MetricLabels(heads: heads)
        func name(_ base: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
            MetricNameDescriptor(namespace: Self.prefix, metricName: base, unitName: unit, helpText: help)
        }
        let seconds: [Duration] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30].map {
            .milliseconds(Int64($0 * 1000)) + .microseconds(Int64(($0 * 1_000_000).truncatingRemainder(dividingBy: 1000)))
        }
        batchTokens = registry.makeValueHistogram(
            descriptor: name("batch_tokens", "", "Encoder tokens per inference batch."),
            buckets: [16, 64, 256, 512, 1024, 2048, 4096, 8192, 16384, 65536])
        batchRequests = registry.makeValueHistogram(
            descriptor: name("batch_requests", "", "Requests per inference batch."), buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256])
        queueLatency = registry.makeDurationHistogram(
            descriptor: name("queue", "seconds", "Time from receipt to the start of inference."), buckets: seconds)
        inferenceLatency = registry.makeDurationHistogram(
            descriptor: name("inference", "seconds", "Time one batch spends on a lane."), buckets: seconds)
        produceLatency = registry.makeDurationHistogram(
            descriptor: name("produce", "seconds", "Time from publishing a request's answer to the broker's acknowledgement."),
            buckets: seconds)
        endToEndLatency = registry.makeDurationHistogram(
            descriptor: name("request", "seconds", "Time from receipt to the acknowledged answer."), buckets: seconds)
        tokens = registry.makeCounter(descriptor: name("tokens", "total", "Encoder tokens processed."))
        tokensPerSecond = registry.makeGauge(
            descriptor: name("tokens_per_second", "", "Encoder tokens per second over the last few seconds."))
        pauses = registry.makeCounter(descriptor: name("pauses", "total", "Times fetching was paused because too many tokens were queued."))
        paused = registry.makeGauge(descriptor: name("paused", "", "1 while fetching is paused."))
        queuedTokens = registry.makeGauge(descriptor: name("queued_tokens", "", "Tokens waiting for a lane."))
        inFlight = registry.makeGauge(descriptor: name("in_flight", "", "Messages received and not yet answered."))
        inFlightBytes = registry.makeGauge(
            descriptor: name("in_flight", "bytes", "Bytes (key, value, headers) of the messages received and not yet answered."))
        pendingAnswers = registry.makeGauge(
            descriptor: name("pending_answers", "", "Requests whose answer or dead letter waits for the broker's acknowledgement."))
        deadLetterFallbacks = registry.makeCounter(
            descriptor: name(
                "dead_letter_fallbacks", "total", "Dead letters the topic refused whole and that went out with the worker's headers only."))
        produceRetries = registry.makeCounter(
            descriptor: name("produce_retries", "total", "Produce attempts retried after a transient error."))
        commits = registry.makeCounter(descriptor: name("commits", "total", "Offset commits that succeeded."))
        commitFailures = registry.makeCounter(descriptor: name("commit_failures", "total", "Offset commits that failed (retried)."))
        assignedPartitions = registry.makeGauge(descriptor: name("assigned_partitions", "", "Partitions assigned to this worker."))
        ready = registry.makeGauge(descriptor: name("ready", "", "1 while the worker is ready (/readyz answers 200), else 0."))
        probeConnectionsClosed = Dictionary(
            uniqueKeysWithValues: ProbeServer.CloseReason.allCases.map { reason in
                (
                    reason,
                    registry.makeCounter(
                        descriptor: name("probe_connections_closed", "total", "Probe-port connections the server closed early, by reason."),
                        labels: [("reason", reason.rawValue)])
                )
            })
    }

    /// Counts a final answer by task, head and outcome (`ok` or an error code). The values come
    /// from requests, so each is mapped into a bounded set first (``MetricLabels``).
    func request(task: String, head: String, outcome: String) {
        registry.makeCounter(
            descriptor: MetricNameDescriptor(
                namespace: Self.prefix, metricName: "requests", unitName: "total", helpText: "Requests answered, by task, head and outcome."
            ),
            labels: [("task", labels.task(task)), ("head", labels.head(head)), ("outcome", labels.code(outcome))]
        ).increment()
    }

    func deadLetter(code: String) {
        registry.makeCounter(
            descriptor: MetricNameDescriptor(
                namespace: Self.prefix, metricName: "dead_letters", unitName: "total",
                helpText: "Messages sent to the dead-letter topic, by error code."),
            labels: [("code", labels.code(code))]
        ).increment()
    }

    func countTokens(_ count: Int, now: ContinuousClock.Instant = .now) {
        tokens.increment(by: Int64(count))
        let rate: Double? = tokenWindow.withLock { window in
            window.tokens += count
            let elapsed = now - window.start
            guard elapsed >= .seconds(2) else { return nil }
            let r = Double(window.tokens) / (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
            window = (now, 0)
            return r
        }
        if let rate { tokensPerSecond.set(rate) }
    }

    /// The consumer_lag series shown, by "topic/partition".
    private let lagSeries = Mutex<[String: Gauge]>([:])

    /// Consumer lag per partition this consumer is consuming, from librdkafka's statistics; the
    /// series of a partition no longer consumed (revoked, lost, or its lag unknown) is removed,
    /// so a revoked partition's last lag does not linger (and alert) on this worker.
    func record(_ statistics: KafkaStatistics) {
        var shown: [String: Gauge] = [:]
        for partition in statistics.partitions where partition.partition >= 0 && partition.isConsumed {
            guard let lag = partition.consumerLag, lag >= 0 else { continue }
            let gauge = registry.makeGauge(
                descriptor: MetricNameDescriptor(
                    namespace: Self.prefix, metricName: "consumer_lag", unitName: "",
                    helpText: "Messages behind the high watermark, per assigned partition."),
                labels: [("topic", partition.topic), ("partition", String(partition.partition))]
            )
            gauge.set(Double(lag))
            shown["\(partition.topic)/\(partition.partition)"] = gauge
        }
        let stale = lagSeries.withLock { series in
            defer { series = shown }
            return series.filter { shown[$0.key] == nil }.map(\.value)
        }
        for gauge in stale { registry.unregisterGauge(gauge) }
    }

    private let laneSteps = Mutex<[UInt64]>([])

    /// Each lane's progress: seconds busy without progress, and steps (passes, decoding steps,
    /// batches) since the last report.
    func record(_ lanes: [(stalled: Duration, steps: UInt64)]) {
        let previous = laneSteps.withLock { seen in
            let before = seen
            seen = lanes.map(\.steps)
            return before
        }
        for (lane, entry) in lanes.enumerated() {
            let label = [("lane", String(lane))]
            registry.makeGauge(
                descriptor: MetricNameDescriptor(
                    namespace: Self.prefix, metricName: "lane_stalled", unitName: "seconds",
                    helpText: "Seconds a busy lane has gone without progress (0 when idle or progressing)."),
                labels: label
            ).set(Double(entry.stalled.components.seconds) + Double(entry.stalled.components.attoseconds) / 1e18)
            let delta = entry.steps &- (lane < previous.count ? previous[lane] : 0)
            registry.makeCounter(
                descriptor: MetricNameDescriptor(
                    namespace: Self.prefix, metricName: "lane_steps", unitName: "total",
                    helpText: "Batches, encoder passes and decoding steps a lane has completed."),
                labels: label
            ).increment(by: Int64(truncatingIfNeeded: delta))
        }
    }

    public func render() -> [UInt8] { registry.emitToBuffer() }
}

/// Maps label values taken from requests into bounded sets, so a stream of undecodable or
/// hostile requests cannot grow `/metrics` (every distinct label value is a series kept forever).
final class MetricLabels: Sendable {
    /// The task names a request may carry, plus `unknown` (absent or unrecognized) and `heads`
    /// (a `heads` request without a task). Anything else counts as `unknown`.
    static let tasks: Set<String> = Set(PipelineTask.allCases.map(\.rawValue)).union(["unknown", "heads"])
    /// `ok` and every error code (``ErrorCode``); anything else counts as `other`.
    static let codes: Set<String> = Set(ErrorCode.allCases.map(\.rawValue)).union(["ok"])
    /// Distinct `head` values beyond the configured single names (multi-head combinations; or,
    /// with no configured names, any): later ones count as `other`.
    static let maxHeadLabels = 32
    static let maxLabelLength = 200

    /// Configured head names and their order (combinations are labelled in this order).
    let configured: [String: Int]?
    private let seen = Mutex<Set<String>>([])

    init(heads: [String]?) {
        configured = heads.map { names in
            var order: [String: Int] = [:]
            for (index, name) in names.enumerated() where order[name] == nil { order[name] = index }
            return order
        }
    }

    func task(_ value: String) -> String { Self.tasks.contains(value) ? value : "unknown" }

    func code(_ value: String) -> String { Self.codes.contains(value) ? value : "other" }

    /// A configured head, or a combination of configured heads (`a+b`, deduplicated, in the
    /// configured order; at most ``maxHeadLabels`` distinct ones), or `none`; else `other`.
    func head(_ value: String) -> String {
        if value == "none" { return value }
        guard !value.isEmpty, value.utf8.count <= Self.maxLabelLength else { return "other" }
        let label: String
        if let configured {
            if configured[value] != nil { return value }
            let parts = value.split(separator: "+", omittingEmptySubsequences: false).map(String.init)
            guard parts.allSatisfy({ configured[$0] != nil }) else { return "other" }
            let unique = Set(parts).sorted { (configured[$0] ?? 0) < (configured[$1] ?? 0) }
            if unique.count == 1, let only = unique.first { return only }
            label = unique.joined(separator: "+")
        } else {
            label = value
        }
        return seen.withLock { seen in
            if seen.contains(label) { return label }
            guard seen.count < Self.maxHeadLabels else { return "other" }
            seen.insert(label)
            return label
        }
    }
}
