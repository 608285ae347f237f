import Kafka
import Prometheus
import Synchronization

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
    private let tokenWindow = Mutex<(start: ContinuousClock.Instant, tokens: Int)>((.now, 0))

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        func name(_ base: String, _ unit: String, _ help: String) -> MetricNameDescriptor {
            MetricNameDescriptor(namespace: Self.prefix, metricName: base, unitName: unit, helpText: help)
        }
        let seconds: [Duration] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30].map { .milliseconds(Int64($0 * 1000)) + .microseconds(Int64(($0 * 1_000_000).truncatingRemainder(dividingBy: 1000))) }
        batchTokens = registry.makeValueHistogram(descriptor: name("batch_tokens", "", "Encoder tokens per inference batch."), buckets: [16, 64, 256, 512, 1024, 2048, 4096, 8192, 16384, 65536])
        batchRequests = registry.makeValueHistogram(descriptor: name("batch_requests", "", "Requests per inference batch."), buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256])
        queueLatency = registry.makeDurationHistogram(descriptor: name("queue", "seconds", "Time from receipt to the start of inference."), buckets: seconds)
        inferenceLatency = registry.makeDurationHistogram(descriptor: name("inference", "seconds", "Time one batch spends on a lane."), buckets: seconds)
        produceLatency = registry.makeDurationHistogram(descriptor: name("produce", "seconds", "Time from publishing a request's answer to the broker's acknowledgement."), buckets: seconds)
        endToEndLatency = registry.makeDurationHistogram(descriptor: name("request", "seconds", "Time from receipt to the acknowledged answer."), buckets: seconds)
        tokens = registry.makeCounter(descriptor: name("tokens", "total", "Encoder tokens processed."))
        tokensPerSecond = registry.makeGauge(descriptor: name("tokens_per_second", "", "Encoder tokens per second over the last few seconds."))
        pauses = registry.makeCounter(descriptor: name("pauses", "total", "Times fetching was paused because too many tokens were queued."))
        paused = registry.makeGauge(descriptor: name("paused", "", "1 while fetching is paused."))
        queuedTokens = registry.makeGauge(descriptor: name("queued_tokens", "", "Tokens waiting for a lane."))
        inFlight = registry.makeGauge(descriptor: name("in_flight", "", "Messages received and not yet answered."))
        inFlightBytes = registry.makeGauge(descriptor: name("in_flight", "bytes", "Bytes (key, value, headers) of the messages received and not yet answered."))
        pendingAnswers = registry.makeGauge(descriptor: name("pending_answers", "", "Requests whose answer or dead letter waits for the broker's acknowledgement."))
        deadLetterFallbacks = registry.makeCounter(descriptor: name("dead_letter_fallbacks", "total", "Dead letters the topic refused whole and that went out with the worker's headers only."))
        produceRetries = registry.makeCounter(descriptor: name("produce_retries", "total", "Produce attempts retried after a transient error."))
        commits = registry.makeCounter(descriptor: name("commits", "total", "Offset commits that succeeded."))
        commitFailures = registry.makeCounter(descriptor: name("commit_failures", "total", "Offset commits that failed (retried)."))
        assignedPartitions = registry.makeGauge(descriptor: name("assigned_partitions", "", "Partitions assigned to this worker."))
    }

    /// Counts a final answer by task, head and outcome (`ok` or an error code).
    func request(task: String, head: String, outcome: String) {
        registry.makeCounter(
            descriptor: MetricNameDescriptor(namespace: Self.prefix, metricName: "requests", unitName: "total", helpText: "Requests answered, by task, head and outcome."),
            labels: [("task", task), ("head", head), ("outcome", outcome)]
        ).increment()
    }

    func deadLetter(code: String) {
        registry.makeCounter(
            descriptor: MetricNameDescriptor(namespace: Self.prefix, metricName: "dead_letters", unitName: "total", helpText: "Messages sent to the dead-letter topic, by error code."),
            labels: [("code", code)]
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

    /// Consumer lag per partition from librdkafka's statistics.
    func record(_ statistics: KafkaStatistics) {
        for partition in statistics.partitions where partition.partition >= 0 {
            guard let lag = partition.consumerLag, lag >= 0 else { continue }
            registry.makeGauge(
                descriptor: MetricNameDescriptor(namespace: Self.prefix, metricName: "consumer_lag", unitName: "", helpText: "Messages behind the high watermark, per assigned partition."),
                labels: [("topic", partition.topic), ("partition", String(partition.partition))]
            ).set(Double(lag))
        }
    }

    public func render() -> [UInt8] { registry.emitToBuffer() }
}
