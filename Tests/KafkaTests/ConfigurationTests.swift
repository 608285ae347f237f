import Foundation
import Testing

@testable import Kafka

@Suite("Configuration and errors")
struct ConfigurationTests {
    @Test("an unknown property is an error naming it")
    func unknownProperty() throws {
        var configuration = KafkaProducerConfiguration(bootstrapServers: "127.0.0.1:9")
        configuration.properties["no.such.property"] = "1"
        do {
            _ = try KafkaProducer(configuration: configuration)
            Issue.record("expected a configuration error")
        } catch let error as KafkaError {
            #expect(error.property == "no.such.property")
            #expect(error.message.contains("no.such.property"))
            #expect(error.code == .invalidArgument)
        }
    }

    @Test("an invalid value is an error naming the property")
    func invalidValue() throws {
        var configuration = KafkaConsumerConfiguration(bootstrapServers: "127.0.0.1:9", groupID: "g")
        configuration.properties["session.timeout.ms"] = "not-a-number"
        #expect { try KafkaConsumer(configuration: configuration) } throws: { error in
            (error as? KafkaError)?.property == "session.timeout.ms"
        }
    }

    @Test(
        "secrets never appear in descriptions, dumps or errors",
        arguments: [
            "sasl.password", "ssl.key.password", "ssl.keystore.password", "sasl.oauthbearer.client.secret", "my.custom.secret",
        ])
    func secretsRedacted(name: String) throws {
        let secret = "hunter2-\(UUID().uuidString)"
        var configuration = KafkaProducerConfiguration(bootstrapServers: "127.0.0.1:9")
        configuration.properties[name] = secret
        configuration.properties["ssl.endpoint.identification.algorithm"] = "bogus-\(secret)"  // rejected, message quotes values
        var dumped = ""
        dump(configuration, to: &dumped)
        #expect(!"\(configuration)".contains(secret))
        #expect(!String(reflecting: configuration.properties).contains(secret))
        #expect(!dumped.contains(secret))
        #expect(KafkaProperties.isSecret(name))
        do {
            _ = try KafkaProducer(configuration: configuration)
            Issue.record("expected an error")
        } catch {
            #expect(!"\(error)".contains(secret), "\(error)")
            #expect(!String(reflecting: error).contains(secret))
        }
    }

    @Test("an invalid value of a secret property is reported without the value")
    func invalidSecretValue() {
        var configuration = KafkaProducerConfiguration(bootstrapServers: "127.0.0.1:9")
        configuration.properties["sasl.password.nonexistent"] = "s3cr3t-value"
        #expect { try KafkaProducer(configuration: configuration) } throws: { error in
            let error = error as? KafkaError
            return error?.property == "sasl.password.nonexistent" && !(error?.message.contains("s3cr3t-value") ?? true)
        }
    }

    @Test("auto-commit cannot be turned on; group.id is required")
    func autoCommit() {
        var configuration = KafkaConsumerConfiguration(bootstrapServers: "127.0.0.1:9", groupID: "g")
        configuration.properties["enable.auto.commit"] = "true"
        #expect { try KafkaConsumer(configuration: configuration) } throws: { ($0 as? KafkaError)?.property == "enable.auto.commit" }
        let noGroup = KafkaConsumerConfiguration(bootstrapServers: "127.0.0.1:9", groupID: "")
        #expect { try KafkaConsumer(configuration: noGroup) } throws: { ($0 as? KafkaError)?.property == "group.id" }
    }

    @Test("typed fields write librdkafka properties; defaults are idempotent and cooperative-sticky")
    func typedFields() {
        var consumer = KafkaConsumerConfiguration(bootstrapServers: "b:1", groupID: "g")
        #expect(consumer.properties["partition.assignment.strategy"] == "cooperative-sticky")
        consumer.groupInstanceID = "worker-1"
        consumer.sessionTimeout = .seconds(6)
        #expect(consumer.properties["group.instance.id"] == "worker-1")
        #expect(consumer.properties["session.timeout.ms"] == "6000")
        var producer = KafkaProducerConfiguration(bootstrapServers: "b:1")
        #expect(producer.idempotent)
        #expect(producer.properties["enable.idempotence"] == "true")
        producer.compression = "zstd"
        producer.properties["security.protocol"] = "SASL_SSL"  // pass-through
        #expect(producer.properties["compression.type"] == "zstd")
    }

    @Test("error classification")
    func errors() {
        #expect(KafkaError(code: .requestTimedOut, message: "").isRetriable)
        #expect(KafkaError(code: .notEnoughReplicas, message: "").isRetriable)
        #expect(KafkaError(code: .transport, message: "").isRetriable)
        #expect(!KafkaError(code: .topicAuthorizationFailed, message: "").isRetriable)
        #expect(!KafkaError(code: .messageSizeTooLarge, message: "").isRetriable)
        #expect(KafkaError.Code.messageTimedOut.name == "_MSG_TIMED_OUT")
        #expect(KafkaError.Code.requestTimedOut.name == "REQUEST_TIMED_OUT")
        #expect("\(KafkaError(code: .fatal, message: "x", isFatal: true))".contains("fatal"))
    }
}
