import Foundation
import Testing

/// End to end: `norbert-worker tokenize --tokenizer DIR` as a separate process, fed every line of
/// the copied fixture cases.jsonl on stdin; each output line must equal that case's `expected`.
@Suite("norbert-worker tokenize", .timeLimit(.minutes(5)))
struct TokenizeCommandTests {
    static var fixtures: URL { CLI.fixtures }

    /// Runs the binary with `stdin` and returns (status, stdout, stderr).
    static func run(_ arguments: [String], stdin: Data) throws -> (Int32, Data, Data) {
        let r = try CLI.run(arguments, stdin: stdin)
        return (r.status, r.stdout, r.stderr)
    }

    @Test(arguments: ["tokenizer", "tokenizer-wordpiece"])
    func allCasesThroughTheBinary(_ name: String) throws {
        let dir = TokenizeCommandTests.fixtures.appendingPathComponent(name)
        let input = try Data(contentsOf: dir.appendingPathComponent("cases.jsonl"))
        let lines = input.split(separator: 0x0A).filter { !$0.isEmpty }
        let (status, out, err) = try TokenizeCommandTests.run(["tokenize", "--tokenizer", dir.path], stdin: input)
        #expect(status == 0, "stderr: \(String(decoding: err, as: UTF8.self))")
        let outLines = out.split(separator: 0x0A)
        try #require(outLines.count == lines.count, "one output line per input line")
        var passed = 0
        for (inLine, outLine) in zip(lines, outLines) {
            let c = try #require(try JSONSerialization.jsonObject(with: Data(inLine)) as? [String: Any])
            let expected = try #require(c["expected"] as? NSDictionary)
            let got = try #require(try JSONSerialization.jsonObject(with: Data(outLine)) as? NSDictionary)
            if expected["error"] != nil {
                if got["error"] != nil { passed += 1 } else { Issue.record("\(c["id"] ?? "?"): expected an error") }
            } else if got.isEqual(expected) {
                passed += 1
            } else {
                Issue.record("\(c["id"] ?? "?"): output differs: \(String(decoding: outLine, as: UTF8.self).prefix(300))")
            }
        }
        print("tokenize CLI \(name): \(passed)/\(lines.count) lines equal expected")
        #expect(passed == lines.count)
    }

    @Test func helpExplainsTheProtocol() throws {
        let (status, out, _) = try TokenizeCommandTests.run(["tokenize", "--help"], stdin: Data())
        let text = String(decoding: out, as: UTF8.self)
        #expect(status == 0)
        #expect(text.contains("--tokenizer"))
        #expect(text.contains("encode_batch"))
        #expect(text.contains("decode"))
    }

    @Test func badInputLinesGiveErrorObjects() throws {
        let dir = TokenizeCommandTests.fixtures.appendingPathComponent("tokenizer")
        let input = Data(
            """
            not json\n{\"kind\": \"explode\", \"input\": {}}\n{\"kind\": \"decode\", \"input\": {\"ids\": [1, 55], \
            \"skip_special_tokens\": true}}\n
            """
            .utf8)
        let (status, out, _) = try TokenizeCommandTests.run(["tokenize", "--tokenizer", dir.path], stdin: input)
        #expect(status == 0)
        let lines = String(decoding: out, as: UTF8.self).split(separator: "\n").map(String.init)
        #expect(lines.count == 3)
        #expect(lines.first?.hasPrefix(#"{"error": "#) == true)
        #expect(lines.dropFirst().first?.hasPrefix(#"{"error": "#) == true)
        #expect(lines.last == #"{"text": "H"}"#)
    }

    @Test func missingTokenizerFails() throws {
        let (status, _, err) = try TokenizeCommandTests.run(["tokenize", "--tokenizer", "/nonexistent-tokenizer-dir"], stdin: Data())
        #expect(status != 0)
        #expect(String(decoding: err, as: UTF8.self).contains("tokenizer.json"))
    }
}
