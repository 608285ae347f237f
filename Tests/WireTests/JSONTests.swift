import Testing
import Wire

/// The one JSON parser and writer of the package (safetensors headers, tokenizer files, requests,
/// responses, logs). Hostile-input behaviour is tested through each reader too
/// (SafeTensorsTests/TokenizersTests HostileFileTests, WorkerTests BadInputTests, the fuzzers).
@Suite("Wire JSON")
struct JSONTests {
    func error(_ text: String, limits: JSONLimits = .standard) -> JSONSyntaxError? {
        do {
            _ = try JSONValue.parse(Array(text.utf8), limits: limits)
            return nil
        } catch {
            return error
        }
    }

    @Test func numbers() throws {
        #expect(try JSONValue.parse(Array("12".utf8)) == .int(12))
        #expect(try JSONValue.parse(Array("-0".utf8)) == .int(0))
        #expect(try JSONValue.parse(Array("1.5e2".utf8)) == .double(150))
        // An integer beyond Int is a double, never a wrapped or rounded integer.
        let big = try JSONValue.parse(Array("99999999999999999999".utf8))
        #expect(big.exactInt == nil && big.doubleValue == 1e20)
        #expect(try JSONValue.parse(Array("2.0".utf8)).intValue == 2)
        #expect(try JSONValue.parse(Array("2.0".utf8)).exactInt == nil)
    }

    /// RFC 8259: no leading zeros (the tokenizer reader used to take `01` as 1; safetensors headers
    /// always refused it; now every reader refuses it), no `+`, digits after `.` and `e`.
    @Test(arguments: ["01", "-01", "+1", "1.", ".5", "1e", "-", "00"])
    func invalidNumbers(_ text: String) {
        #expect(error(text)?.message == "invalid number" || error(text)?.message == "unexpected character", "\(text)")
    }

    @Test func messagesNameTheByte() {
        #expect(error("nope")?.description == "invalid literal at byte 0")
        #expect(error("{} x")?.description == "trailing characters at byte 3")
        #expect(error(#"{"a": 1, "\u0061": 2}"#)?.description == #"duplicate key "a" at byte 9"#)
        #expect(error(#"{"a" 1}"#)?.description == "expected `:` at byte 5")
        #expect(error(#""\ud800""#)?.message == "lone surrogate")
    }

    @Test func limits() {
        let deep = String(repeating: "[", count: 600) + String(repeating: "]", count: 600)
        #expect(error(deep)?.message == "nesting deeper than 512")
        #expect(
            error(String(repeating: "[", count: 3) + String(repeating: "]", count: 3), limits: JSONLimits(maxDepth: 1))?.message
                == "nesting deeper than 1")
        let long = "\"" + String(repeating: "a", count: 33) + "\""
        #expect(error(long, limits: JSONLimits(maxStringBytes: 32))?.kind == .stringTooLong(size: 33, limit: 32))
        // Canonically equivalent keys: two keys byte for byte, one key for String lookups.
        let nfcNfd = #"{"\u00e9": 1, "e\u0301": 2}"#
        #expect(error(nfcNfd) == nil)
        #expect(error(nfcNfd, limits: JSONLimits(keyIdentity: .canonical))?.message.hasPrefix("duplicate key") == true)
        // A byte order mark only where allowed.
        #expect(error("\u{FEFF}{}") != nil)
        #expect(error("\u{FEFF}{}", limits: JSONLimits(allowsByteOrderMark: true)) == nil)
    }

    /// Scores are written as the shortest decimal of their float64 value; fixtures compare the text.
    @Test func writer() {
        let score = Float(0.6701848)
        let value = JSONValue.object([
            ("score", .double(Double(score))), ("n", .int(3)), ("s", .string("a\"\n\u{2028}\u{7F}")),
            ("x", .double(.nan)), ("l", .array([.bool(true), .null])),
        ])
        #expect(value.jsonText == #"{"score": 0.6701847910881042, "n": 3, "s": "a\"\n\u2028\u007f", "x": null, "l": [true, null]}"#)
        #expect(JSONValue.quotedExcerpt(String(repeating: "x", count: 120), limit: 3) == "\"xxx\"…")
    }
}
