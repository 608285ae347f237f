import Kafka

/// Header names the worker reads and writes.
public enum WorkerHeaders {
    public static let replyTo = "reply-to"
    public static let correlationID = "correlation-id"
    public static let traceparent = "traceparent"
    public static let tracestate = "tracestate"
    /// On responses: `true` on the final response of a request, `false` on streamed partials.
    public static let final = "norbert-final"
    // On dead letters:
    public static let sourceTopic = "norbert-source-topic"
    public static let sourcePartition = "norbert-source-partition"
    public static let sourceOffset = "norbert-source-offset"
    public static let errorCode = "norbert-error-code"
    public static let errorMessage = "norbert-error-message"
    /// On a dead letter cut to fit the dead-letter topic: which parts were cut or left out
    /// (`value`, `key`, `headers`, comma-separated); the original is at the source coordinates.
    public static let truncated = "norbert-truncated"
    /// On a dead letter: the original value's size in bytes (absent for a tombstone).
    public static let valueBytes = "norbert-value-bytes"
    /// Header names starting with this are the worker's: a requester's own are not copied into
    /// dead letters (they would pass for the worker's provenance).
    public static let reservedPrefix = "norbert-"

    /// Headers copied from a request onto each of its responses.
    static let echoed: Set<String> = [correlationID, traceparent, tracestate]
}

enum MessageRouting {
    /// A Kafka topic name: 1...249 of `[a-zA-Z0-9._-]`, not `.` or `..`.
    static func isValidTopic(_ name: String) -> Bool {
        guard (1...249).contains(name.utf8.count), name != ".", name != ".." else { return false }
        return name.utf8.allSatisfy { b in
            (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || b == 0x2E || b == 0x5F || b == 0x2D
        }
    }

    enum ReplyTo: Equatable {
        case none
        case topic(String)
        case invalid(String)
    }

    /// The `reply-to` header: absent, a valid topic, or unusable (several, empty, not a topic name).
    static func replyTo(_ headers: [KafkaHeader]) -> ReplyTo {
        let values = headers.filter { $0.name == WorkerHeaders.replyTo }.map(\.value)
        guard let first = values.first else { return .none }
        guard values.count == 1, let bytes = first, let name = String(validating: bytes, as: UTF8.self) else {
            return .invalid("the reply-to header must appear once and hold a UTF-8 topic name")
        }
        guard isValidTopic(name) else {
            return .invalid("reply-to '\(name.prefix(100))' is not a valid topic name (1-249 of a-z A-Z 0-9 . _ -)")
        }
        return .topic(name)
    }

    static func responseHeaders(from request: [KafkaHeader], final: Bool) -> [KafkaHeader] {
        request.filter { WorkerHeaders.echoed.contains($0.name) } + [
            KafkaHeader(name: WorkerHeaders.final, string: final ? "true" : "false")
        ]
    }

    /// A dead letter: the original key, value and headers (but none named `norbert-…`), after
    /// the worker's own headers saying where it came from and why. It must fit in `maxBytes`
    /// (what the producer accepts, `message.max.bytes`): when the original does not, the value
    /// is cut to a prefix, then requester headers and finally the key are left out, and
    /// `norbert-truncated` says which (the original stays at its source coordinates).
    /// `minimal`: only the worker's headers (the fallback when the topic refused the full letter).
    static func deadLetter(
        topic: String, source: KafkaConsumerMessage, code: String, message: String,
        maxBytes: Int, minimal: Bool = false
    ) -> KafkaProducerMessage {
        var text = message
        if text.utf8.count > 2000 { text = String(decoding: text.utf8.prefix(2000), as: UTF8.self) }
        var own = [
            KafkaHeader(name: WorkerHeaders.sourceTopic, string: source.topic),
            KafkaHeader(name: WorkerHeaders.sourcePartition, string: String(source.partition)),
            KafkaHeader(name: WorkerHeaders.sourceOffset, string: String(source.offset)),
            KafkaHeader(name: WorkerHeaders.errorCode, string: code),
            KafkaHeader(name: WorkerHeaders.errorMessage, string: text),
        ]
        if let value = source.value { own.append(KafkaHeader(name: WorkerHeaders.valueBytes, string: String(value.count))) }
        func size(_ header: KafkaHeader) -> Int { header.name.utf8.count + (header.value?.count ?? 0) + 16 }
        // Record overhead (lengths, attributes, the batch header): generous, so the producer's
        // own check (key + value + headers + overhead) never refuses what fits here.
        var room = maxBytes - 512 - own.reduce(0) { $0 + size($1) } - 64
        var cut: [String] = []
        var key = source.key
        var headers: [KafkaHeader] = []
        var value = source.value
        if minimal {
            if key != nil { cut.append("key") }
            if source.headers.contains(where: { !$0.name.hasPrefix(WorkerHeaders.reservedPrefix) }) { cut.append("headers") }
            if value != nil { cut.append("value") }
            key = nil
            value = nil
        } else {
            if let k = key, k.count > room / 2 {
                key = nil
                cut.append("key")
            }
            room -= key?.count ?? 0
            var headersCut = false
            for header in source.headers where !header.name.hasPrefix(WorkerHeaders.reservedPrefix) {
                if size(header) <= room / 2 {
                    headers.append(header)
                    room -= size(header)
                } else {
                    headersCut = true
                }
            }
            if headersCut { cut.append("headers") }
            if let v = value, v.count > max(0, room) {
                value = Array(v.prefix(max(0, room)))
                cut.append("value")
            }
        }
        if !cut.isEmpty { own.append(KafkaHeader(name: WorkerHeaders.truncated, string: cut.joined(separator: ","))) }
        return KafkaProducerMessage(topic: topic, key: key, value: value, headers: own + headers)
    }
}

/// Which `reply-to` topics requesters may name: the results topic always; others only when they
/// match an allowed pattern (`*` any run of characters, `?` one; whole name) and are none of the
/// worker's own topics nor internal ones (`__…`). Without patterns no other topic is allowed, so
/// a requester cannot make the worker write to a topic it chooses.
public struct ReplyToPolicy: Sendable, Equatable {
    public var patterns: [String]
    public var resultsTopic: String
    public var forbidden: Set<String>

    public init(patterns: [String], resultsTopic: String, forbidden: Set<String>) {
        self.patterns = patterns
        self.resultsTopic = resultsTopic
        self.forbidden = forbidden
    }

    /// nil when allowed, else why not.
    public func refusal(_ topic: String) -> String? {
        if topic == resultsTopic { return nil }
        if forbidden.contains(topic) || topic.hasPrefix("__") {
            return "reply-to '\(topic)' is one of the worker's own or an internal topic"
        }
        if patterns.contains(where: { Self.matches(Array($0.utf8), Array(topic.utf8)) }) { return nil }
        if patterns.isEmpty {
            return "reply-to topics are not enabled on this worker (serve --reply-to-allow PATTERN); answers go to '\(resultsTopic)'"
        }
        return "reply-to '\(topic)' matches no allowed pattern (\(patterns.joined(separator: ", ")))"
    }

    /// Glob match, `*` and `?`, in O(pattern × name) at worst (no backtracking blow-up).
    static func matches(_ pattern: [UInt8], _ name: [UInt8]) -> Bool {
        var p = 0, n = 0
        var star = -1, mark = 0
        while n < name.count {
            if p < pattern.count, pattern[p] == UInt8(ascii: "?") || pattern[p] == name[n] {
                p += 1
                n += 1
            } else if p < pattern.count, pattern[p] == UInt8(ascii: "*") {
                star = p
                mark = n
                p += 1
            } else if star >= 0 {
                p = star + 1
                mark += 1
                n = mark
            } else {
                return false
            }
        }
        while p < pattern.count, pattern[p] == UInt8(ascii: "*") { p += 1 }
        return p == pattern.count
    }
}
