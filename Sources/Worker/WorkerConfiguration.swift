import Kafka

/// Everything the worker loop needs (the `serve` command resolves it from flags, environment
/// and a config file; see ``ServeSettings``).
public struct WorkerConfiguration: Sendable {
    /// The default `--max-queued-tokens`: this many batches' worth of tokens, and at least
    /// `minimumQueuedTokens` (the help and the docs' option table print these constants).
    public static let queuedBatches = 4
    public static let minimumQueuedTokens = 32_768
    public static func defaultMaxQueuedTokens(maxBatchTokens: Int) -> Int {
        max(queuedBatches * maxBatchTokens, minimumQueuedTokens)
    }

    public var bootstrapServers: String
    public var groupID: String
    public var requestTopics: [String]
    public var resultsTopic: String
    public var deadLetterTopic: String
    /// Static membership (`group.instance.id`).
    public var instanceID: String?
    /// librdkafka properties applied to every client (consumer and producer).
    public var kafka: [String: String]
    public var maxBatchTokens: Int
    public var maxWait: Duration
    /// Fetching pauses when queued (not yet running) tokens pass this; resumes below half.
    public var maxQueuedTokens: Int
    /// Largest request message value accepted (bytes); larger ones are dead-lettered.
    public var maxMessageBytes: Int
    /// Deadline for finishing in-flight work on revoke and shutdown.
    public var drainTimeout: Duration
    /// Deadline of each offset commit at revoke and shutdown (and of the consumer's retries).
    public var commitTimeout: Duration = .seconds(5)
    /// Deadline of leaving the group at shutdown, its final commit included.
    public var consumerCloseTimeout: Duration = .seconds(5)
    /// How long the producer's last answers may take to be acknowledged at shutdown; what is
    /// left then is purged (which takes at most 1 s more).
    public var producerCloseTimeout: Duration = .seconds(4)
    /// How often answered offsets are committed.
    public var commitInterval: Duration
    /// Backoff of retried produce errors: first delay and cap.
    public var retryBackoff: Duration
    public var maxRetryBackoff: Duration
    /// `reply-to` topics requesters may name besides the results topic (glob patterns: `*`, `?`).
    public var replyToAllow: [String]
    /// Fetching pauses while more messages than this are received and not yet answered
    /// (answers waiting for the broker included); resumes below half.
    public var maxInFlight: Int
    /// The same bound on those messages' bytes (key, value, headers).
    public var maxInFlightBytes: Int
    /// `/livez` fails when a busy lane makes no progress (batch, encoder pass, decoding step)
    /// for this long.
    public var laneStallTimeout: Duration

    /// The defaults of the `serve` settings are ``ServeSettings/defaults``' (declared once, there).
    public init(
        bootstrapServers: String, groupID: String = ServeSettings.defaults.group, requestTopics: [String] = ServeSettings.defaults.requests,
        resultsTopic: String = ServeSettings.defaults.results, deadLetterTopic: String = ServeSettings.defaults.deadLetter,
        instanceID: String? = nil, kafka: [String: String] = [:], maxBatchTokens: Int = ServeSettings.defaults.maxBatchTokens,
        maxWait: Duration = .milliseconds(ServeSettings.defaults.maxWaitMs), maxQueuedTokens: Int? = nil,
        maxMessageBytes: Int = ServeSettings.defaults.maxMessageBytes,
        drainTimeout: Duration = .milliseconds(ServeSettings.defaults.drainTimeoutMs),
        commitInterval: Duration = .milliseconds(ServeSettings.defaults.commitIntervalMs),
        retryBackoff: Duration = .milliseconds(100), maxRetryBackoff: Duration = .seconds(10),
        replyToAllow: [String] = [], maxInFlight: Int = ServeSettings.defaults.maxInFlight,
        maxInFlightBytes: Int = ServeSettings.defaults.maxInFlightBytes,
        laneStallTimeout: Duration = .milliseconds(ServeSettings.defaults.laneStallTimeoutMs)
    ) {
        self.laneStallTimeout = laneStallTimeout
        self.replyToAllow = replyToAllow
        self.maxInFlight = maxInFlight
        self.maxInFlightBytes = maxInFlightBytes
        self.bootstrapServers = bootstrapServers
        self.groupID = groupID
        self.requestTopics = requestTopics
        self.resultsTopic = resultsTopic
        self.deadLetterTopic = deadLetterTopic
        self.instanceID = instanceID
        self.kafka = kafka
        self.maxBatchTokens = maxBatchTokens
        self.maxWait = maxWait
        self.maxQueuedTokens = maxQueuedTokens ?? Self.defaultMaxQueuedTokens(maxBatchTokens: maxBatchTokens)
        self.maxMessageBytes = maxMessageBytes
        self.drainTimeout = drainTimeout
        self.commitInterval = commitInterval
        self.retryBackoff = retryBackoff
        self.maxRetryBackoff = maxRetryBackoff
    }

    /// What the producer accepts per message (`message.max.bytes`, librdkafka's default 1000000
    /// unless `--kafka` sets it): dead letters are cut to fit it.
    public var producerMaxMessageBytes: Int {
        kafka["message.max.bytes"].flatMap { Int($0.trimmingCharacters(in: .whitespaces)) }.map { max(4096, $0) } ?? 1_000_000
    }

    /// Which `reply-to` topics are allowed.
    public var replyToPolicy: ReplyToPolicy {
        ReplyToPolicy(patterns: replyToAllow, resultsTopic: resultsTopic, forbidden: Set(requestTopics + [deadLetterTopic]))
    }

    /// How long a revoke waits for the worker to drain and commit before the consumer releases
    /// the partitions anyway: the drain, its commit, and a margin.
    public var rebalanceTimeout: Duration { drainTimeout + commitTimeout + .seconds(2) }

    /// How long a revoke may hold up the group beyond the drain deadline: the worker's commit,
    /// the margin, then the consumer's commit of the stored offsets. A revoke longer than
    /// librdkafka's `max.poll.interval.ms` gets the member removed from the group.
    public var revokeOverhead: Duration { rebalanceTimeout - drainTimeout + commitTimeout }

    /// The longest a graceful shutdown takes (the `serve` process exits right after): the drain,
    /// its commit, then leaving the group and delivering the producer's last answers side by
    /// side. With the defaults 15 + 5 + max(5, 4 + 1) = 25 s, inside Kubernetes' default 30 s
    /// termination grace period.
    public var worstCaseShutdown: Duration {
        drainTimeout + commitTimeout + max(consumerCloseTimeout, producerCloseTimeout + .seconds(1))
    }

    func consumerConfiguration() -> KafkaConsumerConfiguration {
        var config = KafkaConsumerConfiguration(bootstrapServers: bootstrapServers, groupID: groupID)
        config.autoOffsetReset = .earliest
        config.statisticsInterval = .seconds(5)
        config.rebalanceTimeout = rebalanceTimeout
        config.commitTimeout = commitTimeout
        config.closeTimeout = consumerCloseTimeout
        config.clientID = "norbert-worker"
        // Every --kafka property goes to every client; librdkafka ignores what does not apply.
        config.properties.merge(KafkaProperties(kafka))
        // Set after the pass-through: these are the worker's own choices.
        config.properties["bootstrap.servers"] = bootstrapServers
        config.groupID = groupID
        if let instanceID { config.groupInstanceID = instanceID }
        return config
    }

    func producerConfiguration() -> KafkaProducerConfiguration {
        var config = KafkaProducerConfiguration(bootstrapServers: bootstrapServers)
        config.linger = .milliseconds(2)
        config.clientID = "norbert-worker"
        // A delivery attempt ends after a minute (librdkafka: 5): answers to the worker's own
        // topics are retried anyway, and a `reply-to` whose leader is gone is given up sooner.
        config.deliveryTimeout = .seconds(60)
        config.properties.merge(KafkaProperties(kafka))
        config.properties["bootstrap.servers"] = bootstrapServers
        return config
    }
}
