import Foundation
import Logging
import Wire

/// One JSON object per line on stderr: `ts`, `level`, `label`, `msg`, metadata fields.
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    let label: String

    public init(label: String) { self.label = label }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let merged = metadata.merging(event.metadata ?? [:]) { _, new in new }
        let line = Self.line(date: Date(), level: event.level, label: label, message: "\(event.message)", metadata: merged)
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }

    /// One log line: `ts`, `level`, `label`, `msg`, then the metadata fields sorted by key.
    static func line(date: Date, level: Logger.Level, label: String, message: String, metadata: Logger.Metadata) -> String {
        var fields: [(String, JSONValue)] = [
            ("ts", .string(ISO8601DateFormatter().string(from: date))), ("level", .string(level.rawValue)), ("label", .string(label)),
            ("msg", .string(message)),
        ]
        for (key, value) in metadata.sorted(by: { $0.key < $1.key }) { fields.append((key, .string("\(value)"))) }
        return JSONValue.object(fields).jsonText
    }
}
