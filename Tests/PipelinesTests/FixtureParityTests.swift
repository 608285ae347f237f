import Foundation
import NorBERT
import Testing
import Tokenizers
import Wire

@testable import Pipelines

/// Every case of Fixtures/pipelines/*/cases.jsonl through the pipelines, compared with
/// `output_corrected` (calls marked `corrected_unstable` are skipped). All calls of a task go
/// through one `run`, so they share packed encoder passes.
@Suite("Pipelines: fixture parity")
struct FixtureParityTests {
    /// Builds one request per call, runs them as a batch and compares results.
    func check(
        task: String, head: String, inputs: (JSONValue) -> [(String, JSONValue)],
        close: @escaping (Double, Double) -> Bool
    ) throws {
        let engine = try #require(PipelineFixtures.engine, "engine did not load")
        let cases = try PipelineFixtures.cases(task)
        var requests: [PipelineRequest] = []
        var expected: [(id: String, output: JSONValue)] = []
        var skipped = 0
        for c in cases {
            let id = c["id"]?.stringValue ?? "?"
            for (k, call) in (c["calls"]?.arrayValue ?? []).enumerated() {
                if call["corrected_unstable"]?.boolValue == true {
                    skipped += 1
                    continue
                }
                var pairs: [(String, JSONValue)] = [("id", .string("\(id)#\(k)")), ("task", .string(task)), ("head", .string(head))]
                pairs += inputs(c)
                pairs.append(("options", call["kwargs"] ?? .object([])))
                let request = try PipelineRequest.decode(.object(pairs)).get()
                requests.append(request)
                expected.append(("\(id)#\(k)", call["output_corrected"] ?? .null))
            }
        }
        let result = engine.run(requests, workspace: EncoderWorkspace())
        var passed = 0
        for (k, responses) in result.responses.enumerated() {
            let r = try #require(responses.first)
            #expect(r.id == expected[k].id)
            guard let output = r.result else {
                Issue.record("\(expected[k].id): error \(r.error?.description ?? "?")")
                continue
            }
            if let m = mismatch(output, expected[k].output, close: close) {
                Issue.record("\(expected[k].id): \(m)")
            } else {
                passed += 1
            }
        }
        print(
            """
            pipelines \(task): \(passed)/\(expected.count) calls match output_corrected (\(skipped) corrected_unstable skipped; \
            \(result.stats.encoderPasses) encoder passes, \(result.stats.encodedSequences) sequences)
            """
        )
        #expect(passed == expected.count)
        #expect(expected.count > 0)
    }

    func textInput(_ c: JSONValue) -> [(String, JSONValue)] { [("text", c["text"] ?? .null)] }

    @Test func textClassification() throws {
        try check(task: "text-classification", head: "sentiment", inputs: textInput, close: absolute(1e-4))
    }

    @Test func tokenClassification() throws {
        try check(task: "token-classification", head: "ner", inputs: textInput, close: absolute(1e-4))
    }

    @Test func questionAnswering() throws {
        try check(
            task: "question-answering", head: "qa",
            inputs: { c in
                [("question", c["question"] ?? .null), ("context", c["context"] ?? .null)]
            }, close: relative(1e-4))
    }

    @Test func fillMask() throws {
        try check(task: "fill-mask", head: "mlm", inputs: textInput, close: absolute(1e-4))
    }

    @Test func multipleChoice() throws {
        let engine = try #require(PipelineFixtures.engine)
        let cases = try PipelineFixtures.cases("multiple-choice")
        let requests = try cases.map { c in
            try PipelineRequest.decode(
                .object([
                    ("id", c["id"] ?? .null), ("task", .string("multiple-choice")),
                    ("question", c["question"] ?? .null), ("choices", c["choices"] ?? .null),
                ])
            ).get()
        }
        let result = engine.run(requests, workspace: EncoderWorkspace())
        var passed = 0
        for (c, responses) in zip(cases, result.responses) {
            let r = try #require(responses.first)
            let expected: JSONValue = .object([
                ("choice", c["predicted_choice"] ?? .null), ("scores", c["softmax"] ?? .null),
                ("logits", c["logits"] ?? .null),
            ])
            guard let output = r.result else {
                Issue.record("\(r.id ?? ""): \(r.error?.description ?? "")")
                continue
            }
            if let m = mismatch(output, expected, close: absolute(1e-4)) { Issue.record("\(r.id ?? ""): \(m)") } else { passed += 1 }
        }
        print("pipelines multiple-choice: \(passed)/\(cases.count) cases match (choice, softmax, logits)")
        #expect(passed == cases.count)
    }

    /// The model inputs the goldens record: `<s> text` ids, QA windows, multiple-choice pairs.
    @Test func tokenizedInputsMatchTheGoldens() throws {
        let engine = try #require(PipelineFixtures.engine)
        for task in ["text-classification", "token-classification", "fill-mask"] {
            for c in try PipelineFixtures.cases(task) {
                let ids = try engine.tokenizer.encode(c["text"]?.stringValue ?? "").ids
                #expect(ids == c["input_ids"]?.intArray, "\(c["id"]?.stringValue ?? "")")
            }
        }
        let qa = try #require(engine.head(named: "qa"))
        var stats = RunStats()
        for c in try PipelineFixtures.cases("question-answering") {
            var options = RequestOptions()
            options.set("max_seq_len", .int(128))
            options.set("doc_stride", .int(32))
            let r = PipelineRequest(
                id: "w", task: .questionAnswering, question: c["question"]?.stringValue,
                context: c["context"]?.stringValue, options: options)
            let plan = try QuestionAnsweringPlan(r, head: qa, engine: engine, stats: &stats)
            let expected = (c["windows"]?.arrayValue ?? []).map { $0["input_ids"]?.intArray ?? [] }
            #expect(plan.sequences == expected, "\(c["id"]?.stringValue ?? "")")
        }
        let mc = try #require(engine.head(named: "mc"))
        for c in try PipelineFixtures.cases("multiple-choice") {
            let r = PipelineRequest(
                id: "m", task: .multipleChoice, question: c["question"]?.stringValue,
                choices: c["choices"]?.arrayValue?.compactMap(\.stringValue))
            let plan = try MultipleChoicePlan(r, head: mc, engine: engine, stats: &stats)
            let padded = c["input_ids"]?.arrayValue ?? []
            let masks = c["attention_mask"]?.arrayValue ?? []
            for (k, ids) in plan.sequences.enumerated() {
                let length = (masks[k].intArray ?? []).filter { $0 == 1 }.count
                #expect(Array((padded[k].intArray ?? []).prefix(length)) == ids)
            }
        }
    }
}
