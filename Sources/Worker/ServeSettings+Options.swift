import Foundation
import Pipelines

extension ServeSettings {
    /// Every `serve` setting, in the order `serve --help` and docs/worker.md list them: the one
    /// declaration each setting has. Its default is the value the property of ``ServeSettings``
    /// (or ``CostLimits``) starts with; `{default}` in a help text is replaced by it. Adding a
    /// setting: a property, an entry here, a `@Option` of the same name in `ServeCommand` (a test
    /// fails without it), then `serve --help-markdown` into docs/worker.md (a test fails until then).
    public static let options: [ServeOption] =
        [
            ServeOption(
                "head", .repeated, valueName: "name=dir", help: "A head NAME=DIR (checkpoint folder); repeatable.",
                meaning: "a head (checkpoint folder); repeatable", defaultText: "(required)",
                apply: { (s, values, _) throws(Failure) in
                    s.heads = try values.map { (spec) throws(Failure) -> Head in
                        guard let eq = spec.firstIndex(of: "="), eq != spec.startIndex, spec.index(after: eq) != spec.endIndex else {
                            throw Failure("head '\(spec)' is not NAME=DIR")
                        }
                        return Head(name: String(spec[..<eq]), directory: String(spec[spec.index(after: eq)...]))
                    }
                },
                show: { $0.heads.isEmpty ? nil : $0.heads.map { "\($0.name)=\($0.directory)" }.joined(separator: ", ") }),
            .optionalText(
                "tokenizer", \.tokenizer, valueName: "dir", defaultText: "first head's folder",
                help: "Tokenizer folder (default: the first head's folder).", meaning: "tokenizer folder", emptyIsNone: false),
            .optionalText(
                "bootstrap-servers", \.bootstrapServers, valueName: "host:port[,...]", defaultText: "embedded dev broker",
                help: "Kafka bootstrap servers; none: start an embedded dev broker.", meaning: "Kafka cluster"),
            .text("group", \.group, valueName: "id", help: "Consumer group id (default {default}).", meaning: "consumer group"),
            ServeOption(
                "requests", .commaList, valueName: "topic[,topic...]", help: "Request topics, comma-separated (default {default}).",
                meaning: "request topics", defaultText: "`\(defaults.requests.joined(separator: ","))`",
                apply: { s, values, _ in
                    s.requests = values.flatMap { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }.filter {
                        !$0.isEmpty
                    }
                },
                show: { $0.requests.joined(separator: ",") }),
            .text("results", \.results, valueName: "topic", help: "Results topic (default {default}).", meaning: "results topic"),
            .text(
                "dead-letter", \.deadLetter, valueName: "topic", help: "Dead-letter topic (default {default}).",
                meaning: "dead-letter topic"),
            .whole(
                "metrics-port", \.metricsPort, 0...65535, help: "HTTP port for /metrics, /livez, /readyz (default {default}; 0 picks one).",
                meaning: "HTTP port (0: any; the log says which)"),
            .text(
                "metrics-host", \.metricsHost, valueName: "host",
                help:
                    """
                    Address the HTTP port binds (default {default}, every interface, as Kubernetes probes need; 127.0.0.1 keeps it \
                    local).
                    """,
                meaning:
                    """
                    address of the HTTP port: every interface, as Kubernetes probes and Prometheus reach the pod IP; `127.0.0.1` \
                    keeps it local
                    """,
                check: { (host, source) throws(Failure) in
                    guard !host.isEmpty, host.utf8.count <= 253, host.unicodeScalars.allSatisfy({ $0.value > 32 && $0.value < 127 }) else {
                        throw Failure("\(source): '\(host.prefix(100))' is not a host name or IP address")
                    }
                }),
            .whole(
                "max-batch-tokens", \.maxBatchTokens, 1...(1 << 24), help: "Token budget of one encoder batch (default {default}).",
                meaning: "token budget of one encoder batch"),
            .whole(
                "max-wait-ms", \.maxWaitMs, 0...60_000, help: "Longest wait for a batch to fill, ms (default {default}).",
                meaning: "longest wait for a batch to fill"),
            .whole(
                "lanes", \.lanes, 1...256, defaultText: "cores",
                help: "Inference lanes, each a single-threaded encoder (default: one per core).",
                meaning: "inference lanes"),
            .text(
                "precision", \.precision, valueName: "p",
                help: "Precision of the encoders' weight GEMMs: float32 (exact to the reference) or bf16 (our AVX512-BF16 GEMM; "
                    + "needs a CPU with AVX512-BF16; refused at start-up otherwise) (default {default}).",
                meaning: "`float32` (exact to the reference) or `bf16` (our AVX512-BF16 GEMM, needs a CPU with AVX512-BF16; "
                    + "refused at start-up otherwise; see docs/performance.md)",
                check: { (value, _) throws(Failure) in
                    guard ["float32", "bf16"].contains(value) else {
                        throw Failure("precision must be float32 or bf16, got '\(value.prefix(100))'")
                    }
                }),
            .optionalText(
                "instance-id", \.instanceID, valueName: "id", defaultText: "none",
                help: "Static group membership id (group.instance.id), e.g. the pod name.",
                meaning: "static membership (`group.instance.id`)"),
            ServeOption(
                "kafka", .kafka, valueName: "key=value", help: "A librdkafka property for every client; repeatable.",
                meaning: "any librdkafka property, for every client; repeatable", defaultText: "none",
                // Called once per source, lowest first: properties merge. A malformed entry is named by
                // its source and position, never shown: it may hold a password.
                apply: { (s, pairs, source) throws(Failure) in
                    for (index, pair) in pairs.enumerated() {
                        guard let (key, value) = kafkaProperty(pair) else { throw malformedKafka(source, index, of: pairs.count) }
                        s.kafka[key] = value
                    }
                },
                show: { _ in nil }),
            ServeOption(
                "config", .configPath, valueName: "path", help: "JSON config file (flag names as keys). Also NORBERT_WORKER_CONFIG.",
                meaning: "JSON config file", defaultText: "none",
                apply: { _, _, _ in }, show: { _ in nil }),
            .text(
                "log-format", \.logFormat, valueName: "format", help: "Log format: text or json (default {default}).",
                meaning: "swift-log output on stderr: `text` or `json`",
                check: { (value, _) throws(Failure) in
                    guard ["text", "json"].contains(value) else {
                        throw Failure("log-format must be text or json, got '\(value.prefix(100))'")
                    }
                }),
            .text(
                "log-level", \.logLevel, valueName: "level",
                help: "Log level: trace, debug, info, notice, warning, error, critical (default {default}).", meaning: "trace … critical",
                check: { (value, _) throws(Failure) in
                    guard logLevels.contains(value) else { throw Failure("log-level '\(value.prefix(100))' is not a swift-log level") }
                }),
            .whole(
                "drain-timeout-ms", \.drainTimeoutMs, 0...3_600_000,
                help: """
                    Deadline for finishing in-flight work on revoke and shutdown, ms (default {default}). Shutdown takes at most \
                    this + 10 s (25 s by default: inside Kubernetes' 30 s grace period); it plus 12 s must stay below max.poll.interval.ms.
                    """,
                meaning: """
                    drain deadline on revoke and shutdown; shutdown takes at most this + 10 s, and this + 12 s must stay below \
                    `max.poll.interval.ms` (see Guarantees)
                    """),
            .whole(
                "commit-interval-ms", \.commitIntervalMs, 10...600_000,
                help: """
                    How often answered offsets are committed, ms (default {default}): shorter means fewer repeated answers after a \
                    crash, more commit requests.
                    """,
                meaning: """
                    how often answered offsets are committed ({range}): shorter means fewer repeated answers after a crash, \
                    more commit requests
                    """),
            .optionalWhole(
                "max-queued-tokens", \.maxQueuedTokens, 1...Int(Int32.max),
                defaultText: "max(\(WorkerConfiguration.queuedBatches) × batch, \(WorkerConfiguration.minimumQueuedTokens))",
                help: """
                    Pause fetching above this many queued tokens (default max(\(WorkerConfiguration.queuedBatches) × \
                    max-batch-tokens, \(WorkerConfiguration.minimumQueuedTokens))).
                    """,
                meaning: "pause fetching above this"),
            .whole(
                "max-message-bytes", \.maxMessageBytes, 1...(1 << 30),
                help: "Largest request message accepted, bytes (default {default}); larger ones are dead-lettered.",
                meaning: "larger requests are dead-lettered"),
            .optionalWhole(
                "max-input-tokens", \.maxInputTokens, 2...(1 << 24), defaultText: "tokenizer / model maximum",
                help: "Longest input in tokens (default: the tokenizer's model_max_length, else the model's).", meaning: "longest input"),
            ServeOption(
                "reply-to-allow", .repeated, valueName: "pattern",
                help: """
                    A reply-to topic pattern requesters may use (* and ? wildcards); repeatable. Default none: every answer goes to \
                    the results topic, other reply-to topics are refused (reply_to_not_allowed).
                    """,
                meaning: """
                    `reply-to` topics requesters may name (`*`, `?` wildcards); repeatable. Without it, a `reply-to` other than the \
                    results topic is refused (`reply_to_not_allowed`)
                    """,
                defaultText: "none",
                apply: { (s, patterns, _) throws(Failure) in
                    s.replyToAllow = try patterns.map { (pattern) throws(Failure) -> String in
                        let trimmed = pattern.trimmingCharacters(in: .whitespaces)
                        guard !trimmed.isEmpty, trimmed.utf8.count <= 249,
                            trimmed.utf8.allSatisfy({
                                $0 == UInt8(ascii: "*") || $0 == UInt8(ascii: "?")
                                    || MessageRouting.isValidTopic(String(decoding: [$0], as: UTF8.self))
                            })
                        else {
                            throw Failure(
                                "reply-to-allow '\(pattern.prefix(100))' is not a topic pattern (a-z A-Z 0-9 . _ - and the wildcards * ?)")
                        }
                        return trimmed
                    }
                },
                show: { $0.replyToAllow.isEmpty ? nil : $0.replyToAllow.joined(separator: ", ") }),
            .whole(
                "max-in-flight", \.maxInFlight, 1...10_000_000,
                help:
                    """
                    Pause fetching above this many messages received and not yet answered, answers waiting for the broker included \
                    (default {default}).
                    """,
                meaning: "pause fetching above this many messages received and not yet answered (answers waiting for the broker included)"),
            .whole(
                "max-in-flight-bytes", \.maxInFlightBytes, (1 << 20)...(1 << 40),
                help: "Pause fetching above this many bytes of such messages (default {default}).",
                meaning: "the same bound on their bytes (key, value, headers)"),
            .whole(
                "lane-stall-timeout-ms", \.laneStallTimeoutMs, 1000...86_400_000,
                help:
                    """
                    /livez fails when a busy lane makes no progress (batch, encoder pass, decoding step) for this long, ms (default \
                    {default}).
                    """,
                meaning: "`/livez` fails when a busy lane makes no progress (batch, encoder pass, decoding step) for this long"),
        ] + CostLimits.settings.map(ServeOption.costLimit)

    /// The declaration of a setting, by name.
    public static func option(named name: String) -> ServeOption? { options.first { $0.name == name } }

    /// Every setting name a config file or `NORBERT_WORKER_<NAME>` may use (flag names without `--`).
    public static let names: [String] = options.filter(\.isFileKey).map(\.name)

    static let logLevels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]
}
