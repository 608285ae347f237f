import CRdKafka

extension KafkaProperties {
    /// What librdkafka refuses of these properties, one message per property (an unknown name,
    /// an invalid value), secret values never shown. Builds a configuration object only: no
    /// client is created and no broker contacted (`serve --check-config`).
    public func rejections() -> [String] {
        guard let conf = rd_kafka_conf_new() else { return ["librdkafka could not create a configuration object"] }
        defer { rd_kafka_conf_destroy(conf) }
        var out: [String] = []
        for (name, value) in sortedPairs {
            do { try RDKafkaConfig.set(conf, name, value, properties: self) } catch { out.append(error.message) }
        }
        return out
    }
}
