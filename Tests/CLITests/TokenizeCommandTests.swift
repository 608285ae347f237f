import Foundation
import Testing

/// End to end: `norbert-worker tokenize --tokenizer DIR` as a separate process, fed every line of
/// the copied fixture cases.jsonl on stdin; each output line must equal that case's `expected`.
@Suite("norbert-worker tokenize", .timeLimit(.minutes(5)))
struct TokenizeCommandTests {
    static var fixtures: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures")
    }

    /// Runs the binary with `stdin` and returns (status, stdout, stderr).
    static func run(_ arguments: [String], stdin: Data) throws -> (Int32, Data, Data) {
        let binary = try #require(TokenizeCLIBinary.locate(), "norbert-worker binary not found next to the test bundle; build it first (swift build)")
        let process = Process()
        process.executableURL = binary
        process.arguments = arguments
        let inPipe = Pipe(), outPipe = Pipe(), errPipe = Pipe()
        process.standardInput = inPipe
        process.standardOutput = outPipe
        process.standardError = errPipe
        try process.run()
        // Drain stdout/stderr concurrently so a full pipe never blocks the child.
        let outBox = TokenizeOutputBox(), errBox = TokenizeOutputBox()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async { outBox.set(outPipe.fileHandleForReading.readDataToEndOfFile()); group.leave() }
        group.enter()
        DispatchQueue.global().async { errBox.set(errPipe.fileHandleForReading.readDataToEndOfFile()); group.leave() }
        inPipe.fileHandleForWriting.write(stdin)
        try inPipe.fileHandleForWriting.close()
        process.waitUntilExit()
        group.wait()
        return (process.terminationStatus, outBox.get(), errBox.get())
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
        let input = Data("not json\n{\"kind\": \"explode\", \"input\": {}}\n{\"kind\": \"decode\", \"input\": {\"ids\": [1, 55], \"skip_special_tokens\": true}}\n".utf8)
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

final class TokenizeOutputBox: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()
    func set(_ d: Data) { lock.lock(); data = d; lock.unlock() }
    func get() -> Data { lock.lock(); defer { lock.unlock() }; return data }
}

/// Finds the built `norbert-worker`: `NORBERT_WORKER_BIN`, else the build products directory the
/// test bundle runs from (any scratch path), else `.build*/debug` under the package root.
enum TokenizeCLIBinary {
    static func locate() -> URL? {
        let fm = FileManager.default
        func ok(_ u: URL) -> Bool {
            var isDir: ObjCBool = false
            return fm.fileExists(atPath: u.path, isDirectory: &isDir) && !isDir.boolValue && fm.isExecutableFile(atPath: u.path)
        }
        if let env = ProcessInfo.processInfo.environment["NORBERT_WORKER_BIN"], ok(URL(fileURLWithPath: env)) {
            return URL(fileURLWithPath: env)
        }
        var starts: [URL] = []
        if let exe = try? fm.destinationOfSymbolicLink(atPath: "/proc/self/exe") { starts.append(URL(fileURLWithPath: exe)) }
        starts.append(URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL)
        starts.append(Bundle.main.bundleURL)
        starts += Bundle.allBundles.map(\.bundleURL).filter { $0.pathExtension == "xctest" }
        for start in starts {
            var dir = start.deletingLastPathComponent()
            for _ in 0..<5 {
                let candidate = dir.appendingPathComponent("norbert-worker")
                if ok(candidate) { return candidate }
                dir = dir.deletingLastPathComponent()
            }
        }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let entries = (try? fm.contentsOfDirectory(atPath: root.path)) ?? []
        for name in [".build"] + entries.filter({ $0.hasPrefix(".build") }).sorted() {
            for config in ["debug", "release"] {
                let candidate = root.appendingPathComponent(name).appendingPathComponent(config).appendingPathComponent("norbert-worker")
                if ok(candidate) { return candidate }
            }
        }
        return nil
    }
}
