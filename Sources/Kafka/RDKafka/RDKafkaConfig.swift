import CRdKafka

/// Builds an `rd_kafka_conf_t` from properties; a rejected property is an error naming it
/// (without its value when it is a secret).
enum RDKafkaConfig {
    static func make(_ properties: KafkaProperties) throws(KafkaError) -> OpaquePointer {
        guard let conf = rd_kafka_conf_new() else {
            throw KafkaError(code: .fail, message: "rd_kafka_conf_new failed", isRetriable: false)
        }
        do {
            for (name, value) in properties.sortedPairs {
                try set(conf, name, value, properties: properties)
            }
        } catch {
            rd_kafka_conf_destroy(conf)
            throw error
        }
        return conf
    }

    static func set(_ conf: OpaquePointer, _ name: String, _ value: String, properties: KafkaProperties) throws(KafkaError) {
        var buffer = [CChar](repeating: 0, count: 512)
        let result = rd_kafka_conf_set(conf, name, value, &buffer, buffer.count)
        guard result != RD_KAFKA_CONF_OK else { return }
        let detail: String
        if KafkaProperties.isSecret(name) {
            detail = result == RD_KAFKA_CONF_UNKNOWN ? "no such configuration property" : "invalid value (redacted)"
        } else {
            let text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            detail = properties.redactingSecrets(in: text)
        }
        throw KafkaError.configuration(property: name, "configuration property \"\(name)\" rejected: \(detail)")
    }

    /// librdkafka's error text from `rd_kafka_new`, with secret values scrubbed.
    static func creationError(_ buffer: [CChar], properties: KafkaProperties) -> KafkaError {
        let text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let clean = properties.redactingSecrets(in: text)
        // librdkafka names the offending property in quotes when it can; surface it.
        let property = properties.names.first { clean.contains("\"\($0)\"") || clean.contains("`\($0)`") }
        return KafkaError(code: .invalidArgument, message: "client creation failed: \(clean)", isRetriable: false, property: property)
    }
}
