import Testing

@testable import Kafka
@testable import Worker

@Suite("Message routing")
struct MessageRoutingTests {
    @Test("reply-to: absent, valid, or rejected")
    func replyTo() {
        #expect(MessageRouting.replyTo([]) == .none)
        #expect(MessageRouting.replyTo([KafkaHeader(name: "reply-to", string: "answers.v1_x-y")]) == .topic("answers.v1_x-y"))
        for bad in ["", ".", "..", "a b", "æøå", String(repeating: "a", count: 250)] {
            guard case .invalid = MessageRouting.replyTo([KafkaHeader(name: "reply-to", string: bad)]) else {
                Issue.record("accepted \(bad)")
                continue
            }
        }
        guard case .invalid = MessageRouting.replyTo([KafkaHeader(name: "reply-to", value: nil)]) else {
            Issue.record("nil accepted")
            return
        }
        guard case .invalid = MessageRouting.replyTo([KafkaHeader(name: "reply-to", value: [0xFF])]) else {
            Issue.record("bad UTF-8 accepted")
            return
        }
        guard
            case .invalid = MessageRouting.replyTo([KafkaHeader(name: "reply-to", string: "a"), KafkaHeader(name: "reply-to", string: "b")])
        else {
            Issue.record("two accepted")
            return
        }
    }

    @Test("responses echo correlation-id and trace headers only, and say whether they are final")
    func responseHeaders() {
        let request = [
            KafkaHeader(name: "correlation-id", string: "c1"), KafkaHeader(name: "traceparent", string: "00-abc-def-01"),
            KafkaHeader(name: "reply-to", string: "x"), KafkaHeader(name: "other", string: "y"),
        ]
        let headers = MessageRouting.responseHeaders(from: request, final: true)
        #expect(
            headers == [
                KafkaHeader(name: "correlation-id", string: "c1"), KafkaHeader(name: "traceparent", string: "00-abc-def-01"),
                KafkaHeader(name: "norbert-final", string: "true"),
            ])
    }

    @Test("dead letters keep the key, value and headers and name where they came from and why")
    func deadLetter() {
        let source = KafkaConsumerMessage(
            topic: "req", partition: 3, offset: 77, key: [0, 1, 2], value: [0xFF, 0xFE],
            headers: [KafkaHeader(name: "h", value: nil)], timestamp: nil)
        let letter = MessageRouting.deadLetter(topic: "dlq", source: source, code: "invalid_json", message: "bad", maxBytes: 1_000_000)
        #expect(letter.topic == "dlq")
        #expect(letter.key == [0, 1, 2])
        #expect(letter.value == [0xFF, 0xFE])
        #expect(letter.headers.last == KafkaHeader(name: "h", value: nil))
        #expect(
            Self.named(letter) == [
                "norbert-source-topic": "req", "norbert-source-partition": "3", "norbert-source-offset": "77",
                "norbert-error-code": "invalid_json", "norbert-error-message": "bad", "norbert-value-bytes": "2", "h": "",
            ])
    }

    static func named(_ letter: KafkaProducerMessage) -> [String: String] {
        var named: [String: String] = [:]
        for header in letter.headers { named[header.name] = String(decoding: header.value ?? [], as: UTF8.self) }
        return named
    }

    static func size(_ letter: KafkaProducerMessage) -> Int {
        (letter.key?.count ?? 0) + (letter.value?.count ?? 0)
            + letter.headers.reduce(0) { $0 + $1.name.utf8.count + ($1.value?.count ?? 0) }
    }

    @Test("a requester's own norbert-* headers are not copied into a dead letter (they would forge its provenance)")
    func reservedHeaders() {
        let source = KafkaConsumerMessage(
            topic: "req", partition: 0, offset: 5, key: nil, value: Array("x".utf8),
            headers: [
                KafkaHeader(name: "norbert-error-code", string: "all_fine"), KafkaHeader(name: "norbert-source-offset", string: "0"),
                KafkaHeader(name: "trace", string: "t"),
            ], timestamp: nil)
        let letter = MessageRouting.deadLetter(topic: "dlq", source: source, code: "invalid_json", message: "bad", maxBytes: 1_000_000)
        #expect(
            letter.headers.filter { $0.name == "norbert-error-code" } == [KafkaHeader(name: "norbert-error-code", string: "invalid_json")])
        #expect(letter.headers.filter { $0.name == "norbert-source-offset" } == [KafkaHeader(name: "norbert-source-offset", string: "5")])
        #expect(letter.headers.contains(KafkaHeader(name: "trace", string: "t")))
    }

    @Test("a dead letter of a message larger than the producer accepts is cut to fit, and says what was cut")
    func oversizeDeadLetter() {
        let limit = 1_000_000  // librdkafka's default message.max.bytes
        let value = [UInt8](repeating: 0x7B, count: 1_048_576)
        let key = [UInt8](repeating: 0x6B, count: 600_000)
        let headers = [KafkaHeader(name: "big", value: [UInt8](repeating: 1, count: 700_000)), KafkaHeader(name: "small", string: "s")]
        for (k, h) in [(nil, [KafkaHeader]()), (key, [KafkaHeader]()), (nil, headers), (key, headers)] as [([UInt8]?, [KafkaHeader])] {
            let source = KafkaConsumerMessage(topic: "req", partition: 0, offset: 9, key: k, value: value, headers: h, timestamp: nil)
            let letter = MessageRouting.deadLetter(
                topic: "dlq", source: source, code: "message_too_large", message: "too large", maxBytes: limit)
            #expect(Self.size(letter) + 512 <= limit, "\(Self.size(letter))")
            let named = Self.named(letter)
            #expect(named["norbert-value-bytes"] == "1048576")
            #expect(named["norbert-truncated"]?.split(separator: ",").contains("value") == true)
            #expect(named["norbert-source-offset"] == "9")
            #expect(letter.value.map { value.starts(with: $0) } == true)
            #expect((letter.value?.count ?? 0) > 100_000, "the prefix kept is useful")
            if !h.isEmpty { #expect(named["small"] == "s") }
        }
        let fits = KafkaConsumerMessage(
            topic: "req", partition: 0, offset: 1, key: nil, value: [UInt8](repeating: 1, count: 990_000), headers: [], timestamp: nil)
        let whole = MessageRouting.deadLetter(topic: "dlq", source: fits, code: "invalid_json", message: "bad", maxBytes: limit)
        #expect(whole.value?.count == 990_000)
        #expect(Self.named(whole)["norbert-truncated"] == nil)
        let minimal = MessageRouting.deadLetter(
            topic: "dlq", source: fits, code: "invalid_json", message: "bad", maxBytes: limit, minimal: true)
        #expect(minimal.value == nil)
        #expect(Self.named(minimal)["norbert-truncated"] == "value")
    }

    @Test("reply-to policy: results topic always, others only by an allowed pattern, never the worker's own or internal topics")
    func replyToPolicy() {
        let none = ReplyToPolicy(patterns: [], resultsTopic: "res", forbidden: ["req", "dlq"])
        #expect(none.refusal("res") == nil)
        #expect(none.refusal("answers") != nil)
        let some = ReplyToPolicy(patterns: ["replies.*", "client-?"], resultsTopic: "res", forbidden: ["req", "dlq", "replies.req"])
        #expect(some.refusal("replies.a") == nil)
        #expect(some.refusal("replies.") == nil)
        #expect(some.refusal("client-7") == nil)
        #expect(some.refusal("client-77") != nil)
        #expect(some.refusal("xreplies.a") != nil)
        #expect(some.refusal("replies.req") != nil)
        #expect(some.refusal("req") != nil)
        let all = ReplyToPolicy(patterns: ["*"], resultsTopic: "res", forbidden: ["req", "dlq"])
        #expect(all.refusal("anything") == nil)
        #expect(all.refusal("dlq") != nil)
        #expect(all.refusal("__consumer_offsets") != nil)
        // Glob matching stays linear-ish on hostile patterns and names.
        let hostile = String(repeating: "*a", count: 100)
        #expect(!ReplyToPolicy.matches(Array(hostile.utf8), Array((String(repeating: "a", count: 240) + "b").utf8)))
    }
}
