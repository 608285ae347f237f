import Foundation
import SafeTensors
import Tensors
import Testing

/// End to end: `norbert-worker forward` on the fixture checkpoints, outputs checked against the
/// reference values stored in the case files.
@Suite("norbert-worker forward")
struct ForwardCommandTests {
    static let tiny = CLI.fixtures.appendingPathComponent("norbert4-tiny")

    func maxDiff(_ expected: [Float], _ actual: [Float], valid: (Int) -> Bool) -> (Float, Int) {
        var worst: Float = 0, compared = 0
        for i in 0..<min(expected.count, actual.count) where valid(i) && !expected[i].isNaN {
            worst = max(worst, abs(expected[i] - actual[i]))
            compared += 1
        }
        return (worst, compared)
    }

    @Test func tokenClassificationWithHiddenStates() throws {
        let dir = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let output = dir.appendingPathComponent("out.safetensors").path
        let cases = Self.tiny.appendingPathComponent("cases/padded_batch.safetensors").path
        let r = try CLI.run([
            "forward", "--model", Self.tiny.appendingPathComponent("token-classification").path,
            "--inputs", cases, "--output", output, "--hidden-states",
        ])
        #expect(r.status == 0, "\(r.err)")
        let out = try SafeTensorsFile(path: output)
        let expected = try SafeTensorsFile(path: cases)
        let mask = try expected.int64s("attention_mask")
        #expect(out.info("logits")?.shape == [4, 40, 5])
        #expect(out.info("last_hidden_state")?.shape == [4, 40, 64])
        #expect(out.names.filter { $0.hasPrefix("hidden_states.") }.count == 5)
        let (d, n) = maxDiff(try expected.floats("token-classification.logits"), try out.floats("logits")) { mask[$0 / 5] != 0 }
        print("forward token-classification logits: max |Δ| = \(d) over \(n) values")
        #expect(n == 63 * 5 && d <= 1e-4)
        let states = try expected.floats("base.hidden_states")
        for layer in 0...4 {
            let slice = Array(states[(layer * 4 * 40 * 64)..<((layer + 1) * 4 * 40 * 64)])
            let (dl, nl) = maxDiff(slice, try out.floats("hidden_states.\(layer)")) { mask[$0 / 64] != 0 }
            #expect(nl == 63 * 64 && dl <= 2e-4, "hidden_states.\(layer): \(dl)")
        }
    }

    @Test func multipleChoiceAndQuestionAnswering() throws {
        let dir = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let mcOut = dir.appendingPathComponent("mc.safetensors").path
        let mcCases = Self.tiny.appendingPathComponent("cases/multiple_choice.safetensors").path
        let r = try CLI.run([
            "forward", "--model", Self.tiny.appendingPathComponent("multiple-choice").path,
            "--inputs", mcCases, "--output", mcOut,
        ])
        #expect(r.status == 0, "\(r.err)")
        let mc = try SafeTensorsFile(path: mcOut)
        #expect(mc.info("logits")?.shape == [2, 3])
        let (d, n) = maxDiff(try SafeTensorsFile(path: mcCases).floats("multiple-choice.logits_first_token"), try mc.floats("logits")) {
            _ in true
        }
        #expect(n == 6 && d <= 1e-4, "multiple choice: \(d)")

        let qaOut = dir.appendingPathComponent("qa.safetensors").path
        let long = Self.tiny.appendingPathComponent("cases/long_300.safetensors").path
        let q = try CLI.run([
            "forward", "--model", Self.tiny.appendingPathComponent("question-answering").path,
            "--inputs", long, "--output", qaOut,
        ])
        #expect(q.status == 0, "\(q.err)")
        let qa = try SafeTensorsFile(path: qaOut), ref = try SafeTensorsFile(path: long)
        for name in ["start_logits", "end_logits"] {
            let (dq, nq) = maxDiff(try ref.floats("question-answering.\(name)"), try qa.floats(name)) { _ in true }
            #expect(nq == 300 && dq <= 1e-4, "\(name): \(dq)")
        }
    }

    /// --head overrides architectures: the masked-LM checkpoint run as its base encoder.
    @Test func headOverride() throws {
        let dir = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let output = dir.appendingPathComponent("base.safetensors").path
        let cases = Self.tiny.appendingPathComponent("cases/single_token.safetensors").path
        let r = try CLI.run([
            "forward", "--model", Self.tiny.appendingPathComponent("mlm").path, "--head", "base",
            "--inputs", cases, "--output", output,
        ])
        #expect(r.status == 0, "\(r.err)")
        let out = try SafeTensorsFile(path: output)
        #expect(out.info("logits") == nil)
        let (d, n) = maxDiff(try SafeTensorsFile(path: cases).floats("base.last_hidden_state"), try out.floats("last_hidden_state")) { _ in
            true
        }
        #expect(n == 64 && d <= 2e-4)
    }

    /// Bad inputs: a clear message on stderr and a non-zero exit, never a crash.
    @Test func badInputs() throws {
        let dir = try CLI.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = Self.tiny.appendingPathComponent("sequence-classification").path
        func inputs(_ name: String, _ tensors: [(name: String, value: SafeTensorsWriter.Value)]) throws -> String {
            let path = dir.appendingPathComponent(name).path
            try SafeTensorsWriter.write(tensors, to: path)
            return path
        }
        let cases: [(String, String, String)] = [
            (
                "out of vocabulary", try inputs("oov.safetensors", [("input_ids", .int64(shape: [1, 3], values: [1, 99_999, 2]))]),
                "outside the vocabulary"
            ),
            (
                "negative id", try inputs("neg.safetensors", [("input_ids", .int64(shape: [1, 2], values: [1, -5]))]),
                "outside the vocabulary"
            ),
            // 2^32 + 20 must not wrap to id 20 when narrowed.
            (
                "id past Int32", try inputs("wrap.safetensors", [("input_ids", .int64(shape: [1, 2], values: [1, 4_294_967_316]))]),
                "token id 4294967316 is outside the vocabulary"
            ),
            (
                "float ids", try inputs("float.safetensors", [("input_ids", .float32(Tensor(shape: [1, 2], storage: [1, 2])))]),
                "must be int64"
            ),
            ("missing ids", try inputs("missing.safetensors", [("ids", .int64(shape: [1, 2], values: [1, 2]))]), "no tensor 'input_ids'"),
            ("wrong rank", try inputs("rank.safetensors", [("input_ids", .int64(shape: [3], values: [1, 2, 3]))]), "rank 2"),
            (
                "mask shape",
                try inputs(
                    "mask.safetensors",
                    [
                        ("input_ids", .int64(shape: [1, 2], values: [1, 2])),
                        ("attention_mask", .int64(shape: [1, 3], values: [1, 1, 1])),
                    ]), "attention_mask shape"
            ),
            (
                "left padding",
                try inputs(
                    "left.safetensors",
                    [
                        ("input_ids", .int64(shape: [1, 3], values: [3, 1, 2])),
                        ("attention_mask", .int64(shape: [1, 3], values: [0, 1, 1])),
                    ]), "right padding"
            ),
            (
                "empty row",
                try inputs(
                    "empty.safetensors",
                    [("input_ids", .int64(shape: [1, 2], values: [3, 3])), ("attention_mask", .int64(shape: [1, 2], values: [0, 0]))]),
                "has no tokens"
            ),
        ]
        for (label, path, message) in cases {
            let r = try CLI.run([
                "forward", "--model", model, "--inputs", path, "--output", dir.appendingPathComponent("o.safetensors").path,
            ])
            #expect(r.status != 0, "\(label) should fail")
            #expect(r.err.contains(message), "\(label): \(r.err)")
            #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("o.safetensors").path), "\(label) wrote output")
        }
        let missing = try CLI.run(["forward", "--model", dir.appendingPathComponent("nope").path, "--inputs", cases[0].1, "--output", "x"])
        #expect(missing.status != 0 && missing.err.contains("config.json"))
        let badInput = try CLI.run([
            "forward", "--model", model, "--inputs", dir.appendingPathComponent("absent.safetensors").path, "--output", "x",
        ])
        #expect(badInput.status != 0 && badInput.err.contains("absent.safetensors"))
    }

    @Test func generateGreedyIds() throws {
        let cases = try SafeTensorsFile(path: Self.tiny.appendingPathComponent("cases/greedy_generation.safetensors").path)
        let prompt = try cases.int64s("prompt_1").map(String.init).joined(separator: ",")
        let expected = try cases.int64s("generated_1").map(String.init).joined(separator: ",")
        let r = try CLI.run([
            "generate", "--model", Self.tiny.appendingPathComponent("causal-lm").path,
            "--prompt-ids", prompt, "--max-new-tokens", "10",
        ])
        #expect(r.status == 0, "\(r.err)")
        #expect(r.out.trimmingCharacters(in: .whitespacesAndNewlines) == expected)
    }

    /// 2^32 + 20 must be rejected, not run as id 20.
    @Test func generateRejectsIdPastInt32() throws {
        let r = try CLI.run([
            "generate", "--model", Self.tiny.appendingPathComponent("causal-lm").path,
            "--prompt-ids", "1,4294967316", "--max-new-tokens", "2",
        ])
        #expect(r.status != 0)
        #expect(r.err.contains("token id 4294967316 is outside the vocabulary"), "\(r.err)")
    }
}

/// `generate --prompt TEXT`: tokenized, generated and decoded exactly as the id-level commands do it.
@Suite("norbert-worker generate --prompt")
struct GeneratePromptTests {
    @Test func promptTextMatchesIdPipeline() throws {
        let tiny = CLI.fixtures.appendingPathComponent("norbert4-tiny")
        let tokenizer = CLI.fixtures.appendingPathComponent("tokenizer").path
        let model = tiny.appendingPathComponent("causal-lm").path
        let prompt = "Nå ønsker de seg en ny bolig"
        func tokenize(_ request: [String: Any]) throws -> [String: Any] {
            let line = try JSONSerialization.data(withJSONObject: request) + Data("\n".utf8)
            let r = try CLI.run(["tokenize", "--tokenizer", tokenizer], stdin: line)
            #expect(r.status == 0, "\(r.err)")
            return try #require(try JSONSerialization.jsonObject(with: r.stdout) as? [String: Any])
        }
        let encoded = try tokenize([
            "kind": "encode",
            "input": ["text": prompt, "text_pair": NSNull(), "add_special_tokens": true, "truncation": NSNull(), "padding": NSNull()],
        ])
        let ids = try #require(encoded["ids"] as? [Int])
        #expect(ids.first == 1 && ids.count > 3)
        let byIds = try CLI.run([
            "generate", "--model", model, "--prompt-ids", ids.map(String.init).joined(separator: ","), "--max-new-tokens", "8",
        ])
        #expect(byIds.status == 0, "\(byIds.err)")
        let generated = byIds.out.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: ",").compactMap { Int($0) }
        #expect(generated.count == 8)
        let decoded = try tokenize(["kind": "decode", "input": ["ids": generated, "skip_special_tokens": true]])
        let byText = try CLI.run(["generate", "--model", model, "--tokenizer", tokenizer, "--prompt", prompt, "--max-new-tokens", "8"])
        #expect(byText.status == 0, "\(byText.err)")
        #expect(byText.out.dropLast() == (decoded["text"] as? String ?? "<none>"))
        let both = try CLI.run(["generate", "--model", model, "--prompt", "x", "--prompt-ids", "1"])
        #expect(both.status != 0 && both.err.contains("exactly one"))
    }
}
