import Foundation
import Synchronization
import TestSupport
import Testing

/// End to end: `norbert-worker infer` as a separate process over the tiny fixture checkpoints:
/// every task, a request naming two heads, and bad lines that must yield error responses
/// while the run goes on.
@Suite("norbert-worker infer")
struct InferCommandTests {
    static let tiny = CLI.fixtures.appendingPathComponent("norbert4-tiny")
    static let heads = [
        "sentiment": "sequence-classification", "ner": "token-classification", "qa": "question-answering",
        "mlm": "mlm", "mc": "multiple-choice", "causal": "causal-lm", "base": "base",
    ]

    static func arguments(_ extra: [String] = []) -> [String] {
        var args = ["infer", "--tokenizer", CLI.fixtures.appendingPathComponent("tokenizer").path, "--max-tokens", "64"]
        for name in heads.keys.sorted() {
            args += ["--head", "\(name)=\(tiny.appendingPathComponent(heads[name] ?? "").path)"]
        }
        return args + extra
    }

    static func line(_ object: [String: Any]) throws -> String {
        String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
    }

    static func responses(_ text: String) throws -> [[String: Any]] {
        try text.split(separator: "\n").map { l in
            try #require(try JSONSerialization.jsonObject(with: Data(l.utf8)) as? [String: Any], "not a JSON object: \(l)")
        }
    }

    @Test func everyTaskTwoHeadsAndBadLines() throws {
        let kari = "Kari Nordmann bor i Tromsø og jobber på UiT."
        var lines: [String] = [
            try Self.line(["id": "tc", "task": "text-classification", "text": "Dette var den beste konserten jeg har vært på i år!"]),
            try Self.line([
                "id": "tc-all", "task": "text-classification", "text": "Maten var kald.",
                "options": ["top_k": NSNull(), "function_to_apply": "sigmoid"],
            ]),
            try Self.line(["id": "ner", "task": "token-classification", "text": kari, "options": ["aggregation_strategy": "simple"]]),
            try Self.line([
                "id": "qa", "task": "question-answering", "question": "Hvem kom?", "context": "Per kom.",
                "options": ["top_k": 3, "max_seq_len": 64, "doc_stride": 16],
            ]),
            try Self.line(["id": "fm", "task": "fill-mask", "text": "<mask> og <mask> ligger i Troms.", "options": ["top_k": 5]]),
            try Self.line([
                "id": "mc", "task": "multiple-choice", "question": "Hva er hovedstaden i Norge?",
                "choices": ["Oslo", "Bergen", "Trondheim"],
            ]),
            try Self.line([
                "id": "gen", "task": "text-generation", "head": "causal", "text": "Det var en gang", "options": ["max_new_tokens": 6],
            ]),
            try Self.line(["id": "fe", "task": "feature-extraction", "text": "Hei", "options": ["pooling": "mean", "normalize": true]]),
            try Self.line(["id": "two", "heads": ["sentiment", "ner"], "text": kari]),
            try Self.line(["id": "one-ner", "task": "token-classification", "text": kari]),
        ]
        let good = lines.count
        lines += [
            "{this is not json",
            try Self.line(["id": "b-task", "task": "summarization", "text": "x"]),
            try Self.line(["id": "b-head", "task": "text-classification", "head": "nope", "text": "x"]),
            try Self.line(["id": "b-missing", "task": "question-answering", "question": "Hvem?"]),
            try Self.line(["id": "b-noid", "task": "text-classification", "text": "x"]),
            try Self.line(["id": "b-type", "task": "text-classification", "text": 42]),
            try Self.line(["id": "b-option", "task": "text-classification", "text": "x", "options": ["top_k": "two"]]),
            try Self.line(["id": "b-choices", "task": "multiple-choice", "question": "Hva?", "choices": "Oslo"]),
            try Self.line(["id": "b-empty", "task": "token-classification", "text": ""]),
            try Self.line(["id": "b-long", "task": "text-classification", "text": String(repeating: "ord ", count: 100)]),
            "[1, 2, 3]",
        ]
        lines[good + 4] = #"{"task": "text-classification", "text": "x"}"#
        let r = try CLI.run(Self.arguments(), stdin: Data((lines.joined(separator: "\n") + "\n\n").utf8))
        #expect(r.status == 0, "\(r.err)")
        let out = try Self.responses(r.out)
        // One line per request, two for the two-head request, in input order.
        let ids = out.map { $0["id"] as? String ?? "null" }
        #expect(
            ids == [
                "tc", "tc-all", "ner", "qa", "fm", "mc", "gen", "fe", "two", "two", "one-ner",
                "null", "b-task", "b-head", "b-missing", "null", "b-type", "b-option", "b-choices", "b-empty", "b-long", "null",
            ])
        guard out.count == 22 else { return }
        for k in 0..<(good + 1) {
            #expect(out[k]["result"] != nil && out[k]["error"] == nil, "\(ids[k]): \(out[k])")
            let usage = out[k]["usage"] as? [String: Any]
            #expect((usage?["input_tokens"] as? Int ?? 0) > 0 && usage?["truncated"] as? Bool == false)
        }
        // Values: the fixture goldens' first text-classification and multiple-choice cases.
        let tc = out[0]["result"] as? [[String: Any]]
        #expect(tc?.count == 1 && tc?.first?["label"] as? String == "positiv")
        #expect(abs((tc?.first?["score"] as? Double ?? 0) - 0.6701847910881042) < 1e-4)
        #expect((out[1]["result"] as? [[String: Any]])?.count == 3)
        let mc = out[5]["result"] as? [String: Any]
        #expect(mc?["choice"] as? Int == 0)
        #expect(abs(((mc?["logits"] as? [Double])?.first ?? 0) - (-0.14653027057647705)) < 1e-4)
        #expect((out[4]["result"] as? [[Any]])?.count == 2, "two masks: a list per mask")
        #expect((out[3]["result"] as? [[String: Any]])?.count == 3)
        #expect(((out[6]["result"] as? [[String: Any]])?.first?["generated_text"] as? String)?.hasPrefix("Det var en gang") == true)
        #expect((out[7]["result"] as? [Double])?.count == 64)
        // The two-head request: one response per head, each equal to the single-head request.
        #expect(out[8]["head"] as? String == "sentiment" && out[8]["task"] as? String == "text-classification")
        #expect(out[9]["head"] as? String == "ner" && out[9]["task"] as? String == "token-classification")
        // (Equal up to float noise: the two lines may land in different packed batches.)
        let viaTwo = out[9]["result"] as? [[String: Any]] ?? [], alone = out[10]["result"] as? [[String: Any]] ?? []
        #expect(viaTwo.count == alone.count && !viaTwo.isEmpty)
        for (a, b) in zip(viaTwo, alone) {
            #expect(a["entity"] as? String == b["entity"] as? String && a["word"] as? String == b["word"] as? String)
            #expect(a["start"] as? Int == b["start"] as? Int && a["end"] as? Int == b["end"] as? Int)
            #expect(abs((a["score"] as? Double ?? 0) - (b["score"] as? Double ?? 1)) < 1e-5)
        }
        // Bad lines: error responses with the right codes.
        let codes = out[11...].map { ($0["error"] as? [String: Any])?["code"] as? String ?? "-" }
        #expect(
            codes == [
                "invalid_json", "unknown_task", "unknown_head", "missing_field", "missing_field", "wrong_type",
                "wrong_type", "wrong_type", "empty_input", "input_too_long", "invalid_request",
            ])
        for response in out[11...] {
            #expect(((response["error"] as? [String: Any])?["message"] as? String)?.isEmpty == false)
            #expect(response["result"] == nil)
        }
    }

    @Test func inputAndOutputFilesWithProgress() throws {
        let dir = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let input = dir.appendingPathComponent("requests.jsonl"), output = dir.appendingPathComponent("responses.jsonl")
        let lines = try (0..<40).map { k in
            try Self.line([
                "id": "r\(k)", "task": k % 2 == 0 ? "text-classification" : "token-classification", "text": "Tekst nummer \(k).",
            ])
        }
        try Data(lines.joined(separator: "\n").utf8).write(to: input)
        let r = try CLI.run(Self.arguments(["--input", input.path, "--output", output.path, "--batch-size", "16"]))
        #expect(r.status == 0, "\(r.err)")
        #expect(r.out.isEmpty)
        #expect(r.err.contains("40/40 requests") && r.err.contains("req/s") && r.err.contains("tok/s"))
        let out = try Self.responses(String(decoding: try Data(contentsOf: output), as: UTF8.self))
        #expect(out.map { $0["id"] as? String ?? "" } == (0..<40).map { "r\($0)" })
        #expect(out.allSatisfy { $0["result"] != nil })
    }

    @Test func overLongLineIsAnsweredAndSkipped() throws {
        var input = Data(#"{"id": "huge", "task": "text-classification", "text": ""#.utf8)
        input.append(Data(repeating: UInt8(ascii: "x"), count: (16 << 20) + 10))
        input.append(Data("\"}\n".utf8))
        input.append(Data((try Self.line(["id": "after", "task": "text-classification", "text": "Hei"]) + "\n").utf8))
        let r = try CLI.run(Self.arguments(), stdin: input)
        #expect(r.status == 0, "\(r.err)")
        let out = try Self.responses(r.out)
        #expect(out.count == 2)
        #expect((out.first?["error"] as? [String: Any])?["code"] as? String == "invalid_request")
        #expect(out.last?["id"] as? String == "after" && out.last?["result"] != nil)
    }

    @Test func badSetupFails() throws {
        let r = try CLI.run(["infer", "--head", "x=/nonexistent/folder"])
        #expect(r.status != 0)
        #expect(r.err.contains("x"))
        let noHead = try CLI.run(["infer"])
        #expect(noHead.status != 0)
    }
}

/// `infer` reads a bounded number of lines ahead of its batches: a large input does not end up
/// in memory whole. Shown without timing: while nobody reads its output, `infer` stops (its
/// output pipe is full), and then it must also stop reading its input.
@Suite("norbert-worker infer: bounded read-ahead")
struct InferReadAheadTests {
    final class Counter: Sendable {
        let written = Mutex(0)
    }

    @Test func inputIsNotReadAheadWhole() async throws {
        let binary = try #require(NorbertBinary.locate())
        // The child is terminated while the writer may still be writing: EPIPE, not SIGPIPE.
        signal(SIGPIPE, SIG_IGN)
        let process = Process()
        process.executableURL = binary
        process.arguments = InferCommandTests.arguments()
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output  // never read: infer blocks once the pipe is full
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { process.terminate() } }
        // Lines that are not JSON: each answered at once with an error line (~150 bytes).
        let line = Data((String(repeating: "x", count: 1023) + "\n").utf8)
        var lines = Data()
        for _ in 0..<64 { lines.append(line) }
        let chunk = lines
        let counter = Counter(), total = 256 << 20
        let writer = Thread {
            let handle = input.fileHandleForWriting
            while counter.written.withLock({ $0 }) < total {
                do { try handle.write(contentsOf: chunk) } catch { return }
                counter.written.withLock { $0 += chunk.count }
            }
        }
        writer.start()
        // Wait for infer to start reading (past the input pipe's 64 KiB buffer), then until the
        // writer stops making progress (infer stopped reading).
        let started = ContinuousClock.now
        while counter.written.withLock({ $0 }) <= 128 << 10, ContinuousClock.now - started < .seconds(120) {
            try await Task.sleep(for: .milliseconds(50))
        }
        var last = -1
        for _ in 0..<100 {
            try await Task.sleep(for: .milliseconds(300))
            let now = counter.written.withLock { $0 }
            if now == last { break }
            last = now
        }
        let accepted = counter.written.withLock { $0 }
        print("infer read-ahead: took \(accepted >> 10) KiB of input while its output was not read")
        // Bounded: lines queued (≤ 256) + one read chunk + the pipes' buffers; far below the 256 MiB offered.
        #expect(accepted < 16 << 20, "infer read \(accepted >> 20) MiB ahead")
        counter.written.withLock { $0 = total }  // the writer stops at its next chunk
        process.terminate()
        process.waitUntilExit()
    }
}
