import Foundation
import Testing
import Wire

@testable import Tokenizers

/// Broken or hostile tokenizer.json files must produce a typed error that names the problem,
/// never a crash.
@Suite("Hostile tokenizer.json files")
struct HostileFileTests {
    /// The fixture tokenizer.json as a mutable JSON tree.
    static func base() throws -> [String: Any] {
        let url = URL(fileURLWithPath: TokenizerFixtures.directory("tokenizer")).appendingPathComponent("tokenizer.json")
        let obj = try JSONSerialization.jsonObject(with: Data(contentsOf: url))
        return try #require(obj as? [String: Any])
    }

    static func load(_ obj: [String: Any]) throws(TokenizerError) -> Tokenizer {
        let data: Data
        do { data = try JSONSerialization.data(withJSONObject: obj) } catch {
            throw .malformedJSON(context: "test", detail: "\(error)")
        }
        return try Tokenizer(tokenizerJSON: data)
    }

    static func expectError(_ obj: [String: Any], sourceLocation: SourceLocation = #_sourceLocation, _ matches: (TokenizerError) -> Bool) {
        do {
            _ = try load(obj)
            Issue.record("loaded without error", sourceLocation: sourceLocation)
        } catch {
            #expect(matches(error), "unexpected error: \(error)", sourceLocation: sourceLocation)
            #expect(!error.description.isEmpty)
        }
    }

    @Test func missingModel() throws {
        var o = try HostileFileTests.base()
        o["model"] = nil
        HostileFileTests.expectError(o) { $0 == .missingField(component: "tokenizer.json", field: "model") }
    }

    @Test func missingVocab() throws {
        var o = try HostileFileTests.base()
        var m = try #require(o["model"] as? [String: Any])
        m["vocab"] = nil
        o["model"] = m
        HostileFileTests.expectError(o) { $0 == .missingField(component: "model BPE", field: "vocab") }
    }

    @Test func missingMerges() throws {
        var o = try HostileFileTests.base()
        var m = try #require(o["model"] as? [String: Any])
        m["merges"] = nil
        o["model"] = m
        HostileFileTests.expectError(o) { $0 == .missingField(component: "model BPE", field: "merges") }
    }

    @Test func missingTypeInNormalizer() throws {
        var o = try HostileFileTests.base()
        o["normalizer"] = ["pattern": "x"]
        HostileFileTests.expectError(o) { $0 == .missingField(component: "normalizer", field: "type") }
    }

    @Test func missingTemplateToken() throws {
        var o = try HostileFileTests.base()
        var pp = try #require(o["post_processor"] as? [String: Any])
        pp["special_tokens"] = [String: Any]()
        o["post_processor"] = pp
        HostileFileTests.expectError(o) {
            if case .tokenNotInVocab = $0 { return true }
            return false
        }
    }

    @Test(arguments: ["normalizer", "pre_tokenizer", "model", "post_processor", "decoder"])
    func unknownType(_ key: String) throws {
        var o = try HostileFileTests.base()
        var c = (o[key] as? [String: Any]) ?? [:]
        c["type"] = "Frobnicate"
        o[key] = c
        HostileFileTests.expectError(o) { $0 == .unknownType(component: key, type: "Frobnicate") }
    }

    @Test func unknownNestedType() throws {
        var o = try HostileFileTests.base()
        o["normalizer"] = ["type": "Sequence", "normalizers": [["type": "NFKC"], ["type": "Nope"]]]
        HostileFileTests.expectError(o) { $0 == .unknownType(component: "normalizer", type: "Nope") }
    }

    @Test(arguments: ["[abc", "(?<name", "a{2,1}", "\\p{NotAProperty}", "*a", "(a|b", "a)", "\\k<x>"])
    func invalidRegex(_ pattern: String) throws {
        var o = try HostileFileTests.base()
        o["pre_tokenizer"] = ["type": "Split", "pattern": ["Regex": pattern], "behavior": "Isolated", "invert": false]
        HostileFileTests.expectError(o) {
            if case .invalidRegex(let p, _) = $0 { return p == pattern }
            return false
        }
    }

    @Test func invalidRegexInReplace() throws {
        var o = try HostileFileTests.base()
        o["normalizer"] = ["type": "Replace", "pattern": ["Regex": "(unclosed"], "content": ""]
        HostileFileTests.expectError(o) {
            if case .invalidRegex = $0 { return true }
            return false
        }
    }

    @Test func mergeNamingUnknownToken() throws {
        var o = try HostileFileTests.base()
        var m = try #require(o["model"] as? [String: Any])
        var merges = try #require(m["merges"] as? [Any])
        merges.append(["Ġ", "zzzz_not_a_token"])
        m["merges"] = merges
        o["model"] = m
        HostileFileTests.expectError(o) { $0 == .mergeTokenNotInVocab(merge: "Ġ zzzz_not_a_token", token: "zzzz_not_a_token") }
    }

    @Test func mergeWithUnknownResult() throws {
        var o = try HostileFileTests.base()
        var m = try #require(o["model"] as? [String: Any])
        m["merges"] = ["Ġ !"]  // both parts exist, "Ġ!" does not
        o["model"] = m
        HostileFileTests.expectError(o) {
            if case .mergeTokenNotInVocab(_, let t) = $0 { return t == "Ġ!" }
            return false
        }
    }

    @Test func malformedMergeEntry() throws {
        var o = try HostileFileTests.base()
        var m = try #require(o["model"] as? [String: Any])
        m["merges"] = [42]
        o["model"] = m
        HostileFileTests.expectError(o) {
            if case .invalidField(_, let f, _) = $0 { return f == "merges[0]" }
            return false
        }
    }

    @Test func wrongFieldTypes() throws {
        var o = try HostileFileTests.base()
        var m = try #require(o["model"] as? [String: Any])
        m["vocab"] = ["a": "not-an-id"]
        o["model"] = m
        HostileFileTests.expectError(o) {
            if case .invalidField(let c, _, _) = $0 { return c == "model BPE" }
            return false
        }
        var o2 = try HostileFileTests.base()
        o2["added_tokens"] = "nope"
        HostileFileTests.expectError(o2) { $0 == .invalidField(component: "tokenizer.json", field: "added_tokens", expected: "an array") }
        var o3 = try HostileFileTests.base()
        o3["pre_tokenizer"] = ["type": "Split", "pattern": ["Regex": "a"], "behavior": "Sideways"]
        HostileFileTests.expectError(o3) {
            if case .invalidField(_, let f, _) = $0 { return f == "behavior" }
            return false
        }
    }

    @Test func hundredMegabyteStrings() throws {
        let huge = String(repeating: "a", count: 100 << 20)
        let model = #""model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": []}"#
        let inPattern = #"{"normalizer": {"type": "Replace", "pattern": {"String": ""# + huge + #""}, "content": ""}, "# + model + "}"
        #expect(throws: TokenizerError.self) { _ = try Tokenizer(tokenizerJSON: Data(inPattern.utf8)) }
        do { _ = try Tokenizer(tokenizerJSON: Data(inPattern.utf8)) } catch {
            if case .inputTooLarge = error {} else { Issue.record("unexpected \(error)") }
        }
        let inVocab = #"{"model": {"type": "BPE", "vocab": {""# + huge + #"": 0}, "merges": []}}"#
        do {
            _ = try Tokenizer(tokenizerJSON: Data(inVocab.utf8))
            Issue.record("loaded")
        } catch {
            if case .inputTooLarge = error {} else { Issue.record("unexpected \(error)") }
        }
        // A 100 MB regex given through an escaped string is refused by the regex compiler too.
        #expect(throws: TokenizerError.self) { _ = try Regex(String(repeating: "a", count: 2 << 20)) }
    }

    @Test func malformedBytes() {
        let samples: [(String, [UInt8])] = [
            ("empty", []),
            ("truncated", Array(#"{"model": {"type": "BPE", "vocab": {"a": 0"#.utf8)),
            ("not an object", Array("[1, 2, 3]".utf8)),
            ("invalid UTF-8", [0x7B, 0x22, 0xFF, 0xFE, 0x22, 0x3A, 0x31, 0x7D]),
            ("lone surrogate", Array(#"{"a": "\ud800"}"#.utf8)),
            ("trailing garbage", Array(#"{} x"#.utf8)),
            ("deep nesting", Array(String(repeating: "[", count: 100_000).utf8)),
        ]
        for (name, bytes) in samples {
            #expect(throws: TokenizerError.self, "\(name)") { _ = try Tokenizer(tokenizerJSON: Data(bytes)) }
        }
    }

    /// The `detail` of a `.malformedJSON` error from loading `json` as tokenizer.json ("" if none).
    static func malformedDetail(_ json: String, config: String? = nil) -> String {
        do {
            _ = try Tokenizer(tokenizerJSON: Data(json.utf8), config: config.map { Data($0.utf8) })
            Issue.record("loaded without error")
        } catch {
            if case .malformedJSON(_, let detail) = error { return detail }
            Issue.record("unexpected error: \(error)")
        }
        return ""
    }

    /// Duplicate keys are refused wherever they are (a reader keeping the first value and one keeping
    /// the last would see different files), compared after unescaping, named in the error (cut at 100
    /// Unicode scalars).
    @Test func duplicateKeys() throws {
        let model = #""model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": []}"#
        var d = HostileFileTests.malformedDetail(#"{"model": {"type": "BPE", "vocab": {"a": 0, "\u0061": 1}, "merges": []}}"#)
        #expect(d.hasPrefix(#"duplicate key "a" at byte "#), "\(d)")
        d = HostileFileTests.malformedDetail(#"{"normalizer": null, "# + model + #", "normalizer": {"type": "Lowercase"}}"#)
        #expect(d.hasPrefix(#"duplicate key "normalizer""#), "\(d)")
        d = HostileFileTests.malformedDetail("{" + model + "}", config: #"{"unk_token": "a", "unk_token": "b"}"#)
        #expect(d.hasPrefix(#"duplicate key "unk_token""#), "\(d)")
        // Shown escaped; long keys (8 KB, or one Character of 5,000 combining marks) cut at 100 scalars.
        d = HostileFileTests.malformedDetail(#"{"model": {"type": "BPE", "vocab": {"a\n": 0, "a\u000a": 1}, "merges": []}}"#)
        #expect(d.hasPrefix(#"duplicate key "a\n""#), "\(d)")
        let long = "k" + String(repeating: "x", count: 8_000)
        d = HostileFileTests.malformedDetail(
            #"{"model": {"type": "BPE", "vocab": {""# + long + #"": 0, ""# + long + #"": 1}, "merges": []}}"#)
        #expect(d.hasPrefix("duplicate key \"k" + String(repeating: "x", count: 99) + "\"… at byte "), "\(d.prefix(300))")
        let zalgo = "a" + String(repeating: "\u{301}", count: 5_000)
        d = HostileFileTests.malformedDetail(
            #"{"model": {"type": "BPE", "vocab": {""# + zalgo + #"": 0, ""# + zalgo + #"": 1}, "merges": []}}"#)
        #expect(d.hasPrefix("duplicate key") && d.utf8.count < 400, "\(d.prefix(400))")
    }

    /// Keys are compared byte for byte, like vocabulary lookups: NFC "é" and NFD "e\u{301}" are two tokens.
    @Test func canonicallyEquivalentKeysAreDistinct() throws {
        let t = try Tokenizer(tokenizerJSON: Data(#"{"model": {"type": "BPE", "vocab": {"\u00e9": 0, "e\u0301": 1}, "merges": []}}"#.utf8))
        #expect(t.tokenToId("\u{e9}") == 0)
        #expect(t.tokenToId("e\u{301}") == 1)
    }

    /// 200,000 keys (a hash set, not a scan per key): a duplicate at the end is found quickly.
    @Test func duplicateAfterManyKeys() throws {
        var json = "{"
        for k in 0..<200_000 { json += "\"k\(k)\": \(k), " }
        json += "\"k123456\": 0}"
        let started = ContinuousClock.now
        #expect(throws: TokenizerError.malformedJSON(context: "t", detail: #"duplicate key "k123456" at byte \#(json.utf8.count - 13)"#)) {
            _ = try JSONValue.parse(Array(json.utf8), context: "t")
        }
        #expect(ContinuousClock.now - started < .seconds(10))
    }

    @Test func missingDirectory() {
        #expect(throws: TokenizerError.fileNotFound(path: "/nonexistent-dir-xyz/tokenizer.json")) {
            _ = try Tokenizer(directory: "/nonexistent-dir-xyz")
        }
    }

    @Test func catastrophicRegexDoesNotHang() throws {
        var o = try HostileFileTests.base()
        o["pre_tokenizer"] = ["type": "Split", "pattern": ["Regex": "(a*)*b|(x+x+)+y"], "behavior": "Isolated", "invert": false]
        let t = try HostileFileTests.load(o)
        let e = try t.encode(String(repeating: "a", count: 40) + String(repeating: "x", count: 16))
        #expect(e.count > 1)
    }
}
