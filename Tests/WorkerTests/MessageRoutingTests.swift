@testable import Kafka
import Testing
@testable import Worker

@Suite("Message routing")
struct MessageRoutingTests {
    @Test("reply-to: absent, valid, or rejected")
    func replyTo() {
        #expect(MessageRouting.replyTo([]) == .none)
        #expect(MessageRouting.replyTo([KafkaHeader(name: "reply-to", string: "answers.v1_x-y")]) == .topic("answers.v1_x-y"))
        for bad in ["", ".", "..", "a b", "æøå", String(repeating: "a", count: 250)] {
            guard case .invalid = MessageRouting.replyTo([KafkaHeader(name: "reply-to", string: bad)]) else {
                Issue.record("accepted \(bad)"); continue
            }
        }
        guard case .invalid = MessageRouting.replyTo([KafkaHeader(name: "reply-to", value: nil)]) else { Issue.record("nil accepted"); return }
        guard case .invalid = MessageRouting.replyTo([KafkaHeader(name: "reply-to", value: [0xFF])]) else { Issue.record("bad UTF-8 accepted"); return }
        guard case .invalid = MessageRouting.replyTo([KafkaHeader(name: "reply-to", string: "a"), KafkaHeader(name: "reply-to", string: "b")]) else {
            Issue.record("two accepted"); return
        }
    }

    @Test("responses echo correlation-id and trace headers only, and say whether they are final")
    func responseHeaders() {
        let request = [
            KafkaHeader(name: "correlation-id", string: "c1"), KafkaHeader(name: "traceparent", string: "00-abc-def-01"),
            KafkaHeader(name: "reply-to", string: "x"), KafkaHeader(name: "other", string: "y"),
        ]
        let headers = MessageRouting.responseHeaders(from: request, final: true)
        #expect(headers == [
            KafkaHeader(name: "correlation-id", string: "c1"), KafkaHeader(name: "traceparent", string: "00-abc-def-01"),
            KafkaHeader(name: "norbert-final", string: "true"),
        ])
    }

    @Test("dead letters keep the key, value and headers and name where they came from and why")
    func deadLetter() {
        let source = KafkaConsumerMessage(
            topic: "req", partition: 3, offset: 77, key: [0, 1, 2], value: [0xFF, 0xFE],
            headers: [KafkaHeader(name: "h", value: nil)], timestamp: nil)
        let letter = MessageRouting.deadLetter(topic: "dlq", source: source, code: "invalid_json", message: "bad")
        #expect(letter.topic == "dlq")
        #expect(letter.key == [0, 1, 2])
        #expect(letter.value == [0xFF, 0xFE])
        #expect(letter.headers.first == KafkaHeader(name: "h", value: nil))
        var named: [String: String] = [:]
        for header in letter.headers.dropFirst() { named[header.name] = String(decoding: header.value ?? [], as: UTF8.self) }
        #expect(named == [
            "norbert-source-topic": "req", "norbert-source-partition": "3", "norbert-source-offset": "77",
            "norbert-error-code": "invalid_json", "norbert-error-message": "bad",
        ])
    }
}
