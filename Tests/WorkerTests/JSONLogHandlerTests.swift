import Foundation
import Logging
import Testing
import Tokenizers
import Wire

@testable import Worker

@Suite("JSON logs")
struct JSONLogHandlerTests {
    @Test("one JSON object per line: ts, level, label, msg, then metadata by key; quotes, newlines and controls escaped")
    func line() throws {
        let text = JSONLogHandler.line(
            date: Date(timeIntervalSince1970: 0), level: .warning, label: "norbert-worker",
            message: "say \"hi\"\nthen\u{1}go", metadata: ["topic": "res", "error": "a\\b"])
        #expect(!text.contains("\n"))
        let json = try JSONValue.parse(Array(text.utf8), context: "log")
        guard case .object(let pairs) = json else {
            Issue.record("not an object: \(text)")
            return
        }
        #expect(pairs.map(\.0) == ["ts", "level", "label", "msg", "error", "topic"])
        #expect(json["ts"]?.stringValue == "1970-01-01T00:00:00Z")
        #expect(json["level"]?.stringValue == "warning")
        #expect(json["msg"]?.stringValue == "say \"hi\"\nthen\u{1}go")
        #expect(json["error"]?.stringValue == "a\\b" && json["topic"]?.stringValue == "res")
    }
}
