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
        request.filter { WorkerHeaders.echoed.contains($0.name) } + [KafkaHeader(name: WorkerHeaders.final, string: final ? "true" : "false")]
    }

    /// A dead letter: the original key, value and headers unchanged, plus where it came from and why.
    static func deadLetter(topic: String, source: KafkaConsumerMessage, code: String, message: String) -> KafkaProducerMessage {
        KafkaProducerMessage(
            topic: topic, key: source.key, value: source.value,
            headers: source.headers + [
                KafkaHeader(name: WorkerHeaders.sourceTopic, string: source.topic),
                KafkaHeader(name: WorkerHeaders.sourcePartition, string: String(source.partition)),
                KafkaHeader(name: WorkerHeaders.sourceOffset, string: String(source.offset)),
                KafkaHeader(name: WorkerHeaders.errorCode, string: code),
                KafkaHeader(name: WorkerHeaders.errorMessage, string: String(message.prefix(4000))),
            ])
    }
}
