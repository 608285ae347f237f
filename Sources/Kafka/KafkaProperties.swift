import Foundation

/// A set of librdkafka configuration properties (`name = value`), passed through unchanged.
///
/// Any property librdkafka knows can be set (SASL/SCRAM, SSL/mTLS, compression, ...); a property
/// librdkafka rejects makes client creation throw a `KafkaError` naming it. Values of secret
/// properties (see ``isSecret(_:)``) never appear in descriptions, dumps, logs or errors.
public struct KafkaProperties: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible,
    CustomReflectable, ExpressibleByDictionaryLiteral
{
    private var storage: [String: String]

    public init() { storage = [:] }
    public init(_ values: [String: String]) { storage = values }
    public init(dictionaryLiteral elements: (String, String)...) {
        storage = [:]
        for (key, value) in elements { storage[key] = value }
    }

    public subscript(key: String) -> String? {
        get { storage[key] }
        set { storage[key] = newValue }
    }

    /// Property names, sorted.
    public var names: [String] { storage.keys.sorted() }

    /// Sets every property of `other`, overriding.
    public mutating func merge(_ other: KafkaProperties) {
        storage.merge(other.storage) { _, new in new }
    }

    /// Pairs sorted by name (for handing to librdkafka in a stable order).
    var sortedPairs: [(String, String)] { storage.sorted { $0.key < $1.key }.map { ($0.key, $0.value) } }

    /// Whether a property holds a secret: `sasl.password`, `ssl.key.password`,
    /// `ssl.keystore.password`, any name containing `secret`, `password` or `passphrase`, and
    /// private keys (`ssl.key.pem`, `….private.key.pem`) or JAAS/OAuth configuration that may
    /// embed credentials.
    public static func isSecret(_ name: String) -> Bool {
        let lower = name.lowercased()
        if lower.contains("password") || lower.contains("secret") || lower.contains("passphrase") { return true }
        if lower.hasSuffix("private.key.pem") { return true }
        return ["ssl.key.pem", "ssl_key", "sasl.oauthbearer.config", "sasl.jaas.config"].contains(lower)
    }

    /// `value` for display: the value itself, or `[redacted]` for secret properties.
    public static func displayValue(name: String, value: String) -> String {
        isSecret(name) ? "[redacted]" : value
    }

    /// Replaces every occurrence of a secret value in `text` (defence in depth for messages
    /// that librdkafka builds from configuration).
    func redactingSecrets(in text: String) -> String {
        var out = text
        for (name, value) in storage where KafkaProperties.isSecret(name) && !value.isEmpty {
            out = out.replacingAll(value, with: "[redacted]")
        }
        return out
    }

    /// Display value of a property: secrets as `[redacted]`, and any secret value that was
    /// copied into another property's value scrubbed too.
    private func shown(_ name: String, _ value: String) -> String {
        KafkaProperties.isSecret(name) ? "[redacted]" : redactingSecrets(in: value)
    }

    public var description: String {
        "[" + sortedPairs.map { "\($0.0)=\(shown($0.0, $0.1))" }.joined(separator: ", ") + "]"
    }
    public var debugDescription: String { description }
    public var customMirror: Mirror {
        Mirror(self, children: sortedPairs.map { (label: $0.0, value: shown($0.0, $0.1) as Any) }, displayStyle: .dictionary)
    }
}

extension String {
    func replacingAll(_ target: String, with replacement: String) -> String {
        guard !target.isEmpty else { return self }
        var result = ""
        var rest = self[...]
        while let range = rest.range(of: target) {
            result += rest[..<range.lowerBound]
            result += replacement
            rest = rest[range.upperBound...]
        }
        result += rest
        return result
    }
}

extension Duration {
    /// Whole milliseconds, clamped to `Int32` (librdkafka's timeout type).
    var milliseconds: Int32 {
        let (seconds, attoseconds) = components
        let ms = seconds.multipliedReportingOverflow(by: 1000)
        if ms.overflow { return seconds < 0 ? 0 : Int32.max }
        let total = ms.partialValue + attoseconds / 1_000_000_000_000_000
        return Int32(clamping: max(0, total))
    }
}

/// librdkafka's syslog-style log levels (0 emergency ... 7 debug).
public typealias KafkaLogHandler = @Sendable (_ level: Int, _ facility: String, _ message: String) -> Void
