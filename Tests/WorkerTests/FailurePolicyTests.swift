import Foundation
import Kafka
import TestSupport
import Testing

@testable import Worker

/// Which failures stop the worker, and that a request the backend fails on is dead-lettered.
@Suite("Failure policy", .serialized, .timeLimit(.minutes(2)))
struct FailurePolicyTests {
    @Test("fatal: librdkafka fatal errors, authorization and fencing; not authentication or a requester's topic errors")
    func fatalCodes() {
        for code in [
            KafkaError.Code.topicAuthorizationFailed, .groupAuthorizationFailed, .clusterAuthorizationFailed, .fencedInstanceID,
            .producerFenced, .fatal,
        ] {
            #expect(Publisher.isFatal(KafkaError(code: code, message: "x")), "\(code.name)")
        }
        #expect(Publisher.isFatal(KafkaError(code: .invalidRecord, message: "x", isFatal: true)))
        // Reported per connection and retried by librdkafka: a broker restart or a credential
        // rotation must not stop the worker.
        #expect(!Publisher.isFatal(KafkaError(code: .authentication, message: "SASL authentication failed")))
        for code in [KafkaError.Code.messageTimedOut, .unknownTopic, .messageSizeTooLarge, .requestTimedOut, .allBrokersDown] {
            #expect(!Publisher.isFatal(KafkaError(code: code, message: "x")), "\(code.name)")
        }
        // On a reply-to these are the requester's problem: rerouted, never fatal.
        #expect(Publisher.topicLevelCodes.contains(KafkaError.Code.topicAuthorizationFailed.rawValue))
        #expect(Publisher.topicLevelCodes.contains(KafkaError.Code.unknownTopicOrPartition.rawValue))
    }

    /// A backend that returns nothing for batches holding "fail": the worker answers
    /// `internal_error` for them.
    final class FailingBackend: InferenceBackend {
        let lanes = 1
        func prepare(_ value: [UInt8]) -> Result<PreparedJob<String>, RequestRejection> {
            let text = String(decoding: value, as: UTF8.self)
            return .success(PreparedJob(job: text, tokens: 1, encoderKey: 0, task: "text-classification", head: "h", id: text))
        }
        func run(_ batch: [String], lane: Int, emit: (Int, BackendResponse) -> Void, between: () -> Void) -> [[BackendResponse]] {
            if batch.contains("fail") { return [] }
            return batch.map {
                [BackendResponse(value: Array(#"{"id": "\#($0)", "result": 1}"#.utf8), task: "text-classification", head: "h")]
            }
        }
        func warmUp(lane: Int) {}
        func errorResponse(code: String, message: String, id: String?) -> [UInt8] {
            Array(#"{"id": \#(id.map { "\"\($0)\"" } ?? "null"), "error": {"code": "\#(code)", "message": "m"}}"#.utf8)
        }
    }

    @Test("a request the backend fails on (internal_error) is dead-lettered as well as answered, so it can be replayed")
    func internalErrorsAreDeadLettered() async throws {
        let cluster = try KafkaMockCluster(brokers: 1)
        defer { cluster.shutdown() }
        for topic in ["req", "res", "dlq"] { try cluster.createTopic(topic, partitions: 1) }
        let servers = cluster.bootstrapServers
        let configuration = WorkerFixtures.configuration(servers, group: "internal")
        let running = RunningWorker(configuration, backend: FailingBackend())
        try await WorkerFixtures.produce([KafkaProducerMessage(topic: "req", key: "k", value: "fail")], servers: servers)
        let answers = try await WorkerFixtures.consume("res", servers: servers, count: 1)
        let answer = String(decoding: (answers.first?.value ?? nil) ?? [], as: UTF8.self)
        #expect(answer.contains("internal_error"), "\(answer)")
        let letters = try await WorkerFixtures.consume("dlq", servers: servers, count: 1)
        #expect(letters.first?.value == Array("fail".utf8))
        #expect(letters.first?.headerValues("norbert-error-code") == [Array("internal_error".utf8)])
        #expect(
            try await WorkerFixtures.waitForCommitted(group: configuration.groupID, topic: "req", partitions: 1, servers: servers, total: 1)
                == 1)
        try await running.stop()
    }
}
