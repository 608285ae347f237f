import Foundation

/// `serve`'s settings, resolved from (highest first) command-line flags, `NORBERT_WORKER_…`
/// environment variables, a JSON config file, and defaults. Every source uses the flag names:
/// `--max-batch-tokens` is `"max-batch-tokens"` in the file and `NORBERT_WORKER_MAX_BATCH_TOKENS`
/// in the environment. Lists (`head`, `requests`, `kafka`) come whole from the highest source
/// that sets them, except `kafka`, which merges per property (flags over environment over file).
/// In the environment, lists are comma-separated and librdkafka properties may also be given
/// one per variable: `NORBERT_WORKER_KAFKA_SASL_PASSWORD=…` is `sasl.password`.
public struct ServeSettings: Sendable, Equatable {
    public var heads: [(name: String, directory: String)] = []
    public var tokenizer: String?
    public var bootstrapServers: String?
    public var group = "norbert-worker"
    public var requests = ["norbert-requests"]
    public var results = "norbert-results"
    public var deadLetter = "norbert-dead-letters"
    public var metricsPort = 9400
    public var maxBatchTokens = 8192
    public var maxWaitMs = 5
    public var lanes: Int
    public var instanceID: String?
    public var kafka: [String: String] = [:]
    public var logFormat = "text"
    public var logLevel = "info"
    public var drainTimeoutMs = 20_000
    public var commitIntervalMs = 200
    public var maxQueuedTokens: Int?
    public var maxMessageBytes = 1 << 20
    public var maxInputTokens: Int?
    public var replyToAllow: [String] = []
    public var maxInFlight = 10_000
    public var maxInFlightBytes = 128 << 20

    public static func == (a: Self, b: Self) -> Bool {
        a.heads.map { "\($0.name)=\($0.directory)" } == b.heads.map { "\($0.name)=\($0.directory)" } && a.tokenizer == b.tokenizer
            && a.bootstrapServers == b.bootstrapServers && a.group == b.group && a.requests == b.requests && a.results == b.results
            && a.deadLetter == b.deadLetter && a.metricsPort == b.metricsPort && a.maxBatchTokens == b.maxBatchTokens
            && a.maxWaitMs == b.maxWaitMs && a.lanes == b.lanes && a.instanceID == b.instanceID && a.kafka == b.kafka
            && a.logFormat == b.logFormat && a.logLevel == b.logLevel && a.drainTimeoutMs == b.drainTimeoutMs
            && a.commitIntervalMs == b.commitIntervalMs
            && a.maxQueuedTokens == b.maxQueuedTokens && a.maxMessageBytes == b.maxMessageBytes && a.maxInputTokens == b.maxInputTokens
            && a.replyToAllow == b.replyToAllow && a.maxInFlight == b.maxInFlight && a.maxInFlightBytes == b.maxInFlightBytes
    }

    /// Every setting name (flags without `--`), for validation and `--help`.
    public static let names: [String] = [
        "head", "tokenizer", "bootstrap-servers", "group", "requests", "results", "dead-letter", "metrics-port",
        "max-batch-tokens", "max-wait-ms", "lanes", "instance-id", "kafka", "log-format", "log-level",
        "drain-timeout-ms", "commit-interval-ms", "max-queued-tokens", "max-message-bytes", "max-input-tokens",
        "reply-to-allow", "max-in-flight", "max-in-flight-bytes",
    ]
    static let lists: Set<String> = ["head", "requests", "kafka", "reply-to-allow"]
    public static let environmentPrefix = "NORBERT_WORKER_"

    public struct Failure: Error, CustomStringConvertible, Equatable {
        public let description: String
        init(_ message: String) { description = message }
    }

    public init(defaultLanes: Int) { lanes = max(1, defaultLanes) }

    /// `flags`: name → values given on the command line (absent names not given).
    public static func resolve(
        flags: [String: [String]], environment: [String: String], file: [String: [String]], defaultLanes: Int
    ) throws(Failure) -> ServeSettings {
        let env = try fromEnvironment(environment)
        for name in file.keys where !names.contains(name) { throw Failure("config file: unknown setting '\(name)' (known: \(names.joined(separator: ", ")))") }
        func value(_ name: String) -> (source: String, values: [String])? {
            if let v = flags[name] { return ("--\(name)", v) }
            if let v = env[name] { return (environmentPrefix + name.uppercased().replacingOccurrences(of: "-", with: "_"), v) }
            if let v = file[name] { return ("config file '\(name)'", v) }
            return nil
        }
        func string(_ name: String) -> String? { value(name)?.values.last }
        func int(_ name: String, _ range: ClosedRange<Int>) throws(Failure) -> Int? {
            guard let (source, values) = value(name), let text = values.last else { return nil }
            guard let number = Int(text.trimmingCharacters(in: .whitespaces)), range.contains(number) else {
                throw Failure("\(source): '\(text)' is not a whole number in \(range.lowerBound)...\(range.upperBound)")
            }
            return number
        }
        var s = ServeSettings(defaultLanes: defaultLanes)
        for spec in value("head")?.values ?? [] {
            guard let eq = spec.firstIndex(of: "="), eq != spec.startIndex, spec.index(after: eq) != spec.endIndex else {
                throw Failure("head '\(spec)' is not NAME=DIR")
            }
            s.heads.append((String(spec[..<eq]), String(spec[spec.index(after: eq)...])))
        }
        s.tokenizer = string("tokenizer")
        s.bootstrapServers = string("bootstrap-servers").flatMap { $0.isEmpty ? nil : $0 }
        s.group = string("group") ?? s.group
        if let topics = value("requests")?.values {
            s.requests = topics.flatMap { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }.filter { !$0.isEmpty }
        }
        s.results = string("results") ?? s.results
        s.deadLetter = string("dead-letter") ?? s.deadLetter
        s.metricsPort = try int("metrics-port", 0...65535) ?? s.metricsPort
        s.maxBatchTokens = try int("max-batch-tokens", 1...1 << 24) ?? s.maxBatchTokens
        s.maxWaitMs = try int("max-wait-ms", 0...60_000) ?? s.maxWaitMs
        s.lanes = try int("lanes", 1...256) ?? s.lanes
        s.instanceID = string("instance-id").flatMap { $0.isEmpty ? nil : $0 }
        s.logFormat = string("log-format") ?? s.logFormat
        s.logLevel = string("log-level") ?? s.logLevel
        s.drainTimeoutMs = try int("drain-timeout-ms", 0...3_600_000) ?? s.drainTimeoutMs
        s.commitIntervalMs = try int("commit-interval-ms", 10...600_000) ?? s.commitIntervalMs
        s.maxQueuedTokens = try int("max-queued-tokens", 1...Int(Int32.max))
        s.maxMessageBytes = try int("max-message-bytes", 1...(1 << 30)) ?? s.maxMessageBytes
        s.maxInputTokens = try int("max-input-tokens", 2...(1 << 24))
        s.maxInFlight = try int("max-in-flight", 1...10_000_000) ?? s.maxInFlight
        s.maxInFlightBytes = try int("max-in-flight-bytes", 1 << 20...(1 << 40)) ?? s.maxInFlightBytes
        for pattern in value("reply-to-allow")?.values ?? [] {
            let trimmed = pattern.trimmingCharacters(in: .whitespaces)
            guard !trimmed.isEmpty, trimmed.utf8.count <= 249, trimmed.utf8.allSatisfy({ $0 == UInt8(ascii: "*") || $0 == UInt8(ascii: "?") || MessageRouting.isValidTopic(String(decoding: [$0], as: UTF8.self)) }) else {
                throw Failure("reply-to-allow '\(pattern.prefix(100))' is not a topic pattern (a-z A-Z 0-9 . _ - and the wildcards * ?)")
            }
            s.replyToAllow.append(trimmed)
        }
        // kafka: merged per property, lowest source first.
        for source in [file["kafka"], env["kafka"], flags["kafka"]] {
            for pair in source ?? [] {
                guard let eq = pair.firstIndex(of: "="), eq != pair.startIndex else { throw Failure("kafka property '\(pair.prefix(60))' is not KEY=VALUE") }
                s.kafka[String(pair[..<eq])] = String(pair[pair.index(after: eq)...])
            }
        }
        guard ["text", "json"].contains(s.logFormat) else { throw Failure("log-format must be text or json, got '\(s.logFormat)'") }
        guard ["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(s.logLevel) else { throw Failure("log-level '\(s.logLevel)' is not a swift-log level") }
        guard !s.requests.isEmpty, s.requests.allSatisfy(MessageRouting.isValidTopic) else { throw Failure("requests must name valid topics") }
        for topic in [s.results, s.deadLetter] where !MessageRouting.isValidTopic(topic) { throw Failure("'\(topic)' is not a valid topic name") }
        guard s.results != s.deadLetter, !s.requests.contains(s.results), !s.requests.contains(s.deadLetter) else {
            throw Failure("the request, results and dead-letter topics must differ")
        }
        return s
    }

    /// `NORBERT_WORKER_<NAME>` variables as setting values (lists comma-separated), plus
    /// `NORBERT_WORKER_KAFKA_<PROPERTY>` (underscores become dots, lower-cased).
    static func fromEnvironment(_ environment: [String: String]) throws(Failure) -> [String: [String]] {
        var out: [String: [String]] = [:]
        for (key, value) in environment where key.hasPrefix(environmentPrefix) {
            let rest = String(key.dropFirst(environmentPrefix.count))
            if rest == "CONFIG" { continue }
            if rest.hasPrefix("KAFKA_") {
                let property = rest.dropFirst("KAFKA_".count).lowercased().replacingOccurrences(of: "_", with: ".")
                out["kafka", default: []].append("\(property)=\(value)")
                continue
            }
            let name = rest.lowercased().replacingOccurrences(of: "_", with: "-")
            guard names.contains(name) else { throw Failure("unknown environment variable \(key)") }
            if name == "kafka" {
                out["kafka", default: []] += value.split(separator: ",").map(String.init)
            } else if lists.contains(name) {
                out[name] = value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            } else {
                out[name] = [value]
            }
        }
        return out
    }

    /// Reads a JSON config file: an object with setting names as keys; strings, numbers, lists
    /// of strings, and for `kafka` also an object of properties.
    public static func readConfigFile(_ path: String) throws(Failure) -> [String: [String]] {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch { throw Failure("cannot read config file \(path): \(error.localizedDescription)") }
        guard let object = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw Failure("config file \(path) must hold a JSON object")
        }
        var out: [String: [String]] = [:]
        for (key, raw) in object {
            func scalar(_ v: Any) -> String? {
                if let s = v as? String { return s }
                if let n = v as? NSNumber { return n.stringValue }
                return nil
            }
            if key == "kafka", let properties = raw as? [String: Any] {
                out[key] = try properties.sorted { $0.key < $1.key }.map { (name, value) throws(Failure) -> String in
                    guard let v = scalar(value) else { throw Failure("config file: kafka.\(name) must be a string or number") }
                    return "\(name)=\(v)"
                }
            } else if let list = raw as? [Any] {
                out[key] = try list.map { (item) throws(Failure) -> String in
                    guard let v = scalar(item) else { throw Failure("config file: '\(key)' must list strings") }
                    return v
                }
            } else if let v = scalar(raw) {
                out[key] = [v]
            } else {
                throw Failure("config file: '\(key)' has an unsupported value")
            }
        }
        return out
    }

    public func workerConfiguration(bootstrapServers servers: String) -> WorkerConfiguration {
        WorkerConfiguration(
            bootstrapServers: servers, groupID: group, requestTopics: requests, resultsTopic: results, deadLetterTopic: deadLetter,
            instanceID: instanceID, kafka: kafka, maxBatchTokens: maxBatchTokens, maxWait: .milliseconds(maxWaitMs),
            maxQueuedTokens: maxQueuedTokens, maxMessageBytes: maxMessageBytes, drainTimeout: .milliseconds(drainTimeoutMs),
            commitInterval: .milliseconds(commitIntervalMs), replyToAllow: replyToAllow, maxInFlight: maxInFlight,
            maxInFlightBytes: maxInFlightBytes)
    }
}
