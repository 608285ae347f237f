import Foundation
import NorBERT
import Testing
import Tokenizers
import Wire

@testable import Pipelines

/// Request decoding and head resolution: every bad input becomes a typed error.
@Suite("Pipelines: requests")
struct RequestTests {
    func decodeError(_ line: String) -> PipelineError.Code? {
        if case .failure(let f) = PipelineRequest.decode(line) { return f.error.code }
        return nil
    }

    func runError(_ line: String, engine: PipelineEngine) -> PipelineError.Code? {
        engine.respond(toLines: [Array(line.utf8)], workspace: EncoderWorkspace()).flat.first?.error?.code
    }

    @Test func decodingKeepsAbsentAndNullApart() throws {
        let absent = try PipelineRequest.decode(#"{"id": "a", "task": "text-classification", "text": "x"}"#).get()
        let null = try PipelineRequest.decode(#"{"id": "a", "task": "text-classification", "text": "x", "options": {"top_k": null}}"#).get()
        let two = try PipelineRequest.decode(#"{"id": "a", "task": "text-classification", "text": "x", "options": {"top_k": 2}}"#).get()
        guard case .absent = try absent.options.int(.classificationTopK) else {
            Issue.record("absent")
            return
        }
        guard case .null = try null.options.int(.classificationTopK) else {
            Issue.record("null")
            return
        }
        guard case .value(2) = try two.options.int(.classificationTopK) else {
            Issue.record("2")
            return
        }
        let engine = try #require(PipelineFixtures.engine)
        let results = engine.run([absent, null, two], workspace: EncoderWorkspace()).flat.map { $0.result?.arrayValue?.count }
        #expect(results == [1, 3, 2])
    }

    @Test func malformedRequests() {
        #expect(decodeError("not json") == .invalidJSON)
        #expect(decodeError("") == .invalidJSON)
        #expect(decodeError("[1]") == .invalidRequest)
        #expect(decodeError(#"{"task": "fill-mask", "text": "x"}"#) == .missingField)
        #expect(decodeError(#"{"id": 7, "task": "fill-mask", "text": "x"}"#) == .wrongType)
        #expect(decodeError(#"{"id": "a", "text": "x"}"#) == .missingField)
        #expect(decodeError(#"{"id": "a", "task": "translation", "text": "x"}"#) == .unknownTask)
        #expect(decodeError(#"{"id": "a", "task": "fill-mask", "txt": "x"}"#) == .invalidRequest)
        #expect(decodeError(#"{"id": "a", "task": "fill-mask", "text": ["x"]}"#) == .wrongType)
        #expect(decodeError(#"{"id": "a", "task": "multiple-choice", "question": "q", "choices": [1, 2]}"#) == .wrongType)
        #expect(decodeError(#"{"id": "a", "task": "fill-mask", "text": "x", "options": []}"#) == .wrongType)
        #expect(decodeError(#"{"id": "a", "task": "fill-mask", "text": "x", "options": {"topk": 3}}"#) == .invalidRequest)
        #expect(decodeError(#"{"id": "a", "head": "x", "heads": ["y"], "task": "fill-mask", "text": "x"}"#) == .invalidRequest)
        #expect(decodeError(#"{"id": "a", "heads": [], "text": "x"}"#) == .invalidValue)
        #expect(decodeError(#"{"id": "a", "heads": ["x", "x"], "text": "x"}"#) == .invalidValue)
        if case .failure(let f) = PipelineRequest.decode(#"{"id": "keep", "task": 3}"#) {
            #expect(f.id == "keep" && f.error.code == .wrongType)
        } else {
            Issue.record("expected a failure")
        }
    }

    /// Two values for one key: a gateway that validated the first would see another request than
    /// the one run, so the request is refused as invalid JSON naming the key.
    @Test func duplicateKeysAreInvalidJSON() throws {
        let line = #"{"id": "a", "task": "fill-mask", "text": "harmless <mask>", "text": "other <mask>"}"#
        guard case .failure(let failure) = PipelineRequest.decode(line) else {
            Issue.record("decoded a request with two \"text\" keys")
            return
        }
        #expect(failure.error.code == .invalidJSON)
        #expect(failure.error.message.contains(#"duplicate key "text" at byte 60"#), "\(failure.error.message)")
        #expect(
            decodeError(#"{"id": "a", "task": "fill-mask", "text": "x <mask>", "options": {"top_k": 1, "top_\u006b": 9}}"#) == .invalidJSON)
        let engine = try #require(PipelineFixtures.engine)
        let response = engine.respond(toLines: [Array(line.utf8)], workspace: EncoderWorkspace()).flat.first
        #expect(response?.error?.code == .invalidJSON)
        #expect(response?.error?.message.contains(#"duplicate key "text""#) == true, "\(String(describing: response?.error))")
    }

    @Test func badRequestsAgainstTheEngine() throws {
        let engine = try #require(PipelineFixtures.engine)
        #expect(runError(#"{"id": "a", "task": "text-classification", "head": "nope", "text": "x"}"#, engine: engine) == .unknownHead)
        #expect(runError(#"{"id": "a", "task": "text-classification", "head": "ner", "text": "x"}"#, engine: engine) == .unsupportedTask)
        #expect(runError(#"{"id": "a", "task": "text-generation", "text": "x"}"#, engine: engine) == .invalidRequest)
        #expect(runError(#"{"id": "a", "task": "text-classification", "text": ""}"#, engine: engine) == .emptyInput)
        #expect(runError(#"{"id": "a", "task": "text-classification", "question": "x"}"#, engine: engine) == .invalidRequest)
        #expect(
            runError(#"{"id": "a", "task": "text-classification", "text": "x", "options": {"top_k": 0}}"#, engine: engine) == .invalidValue)
        #expect(
            runError(#"{"id": "a", "task": "text-classification", "text": "x", "options": {"top_k": 1.5}}"#, engine: engine) == .wrongType)
        #expect(
            runError(#"{"id": "a", "task": "text-classification", "text": "x", "options": {"function_to_apply": "relu"}}"#, engine: engine)
                == .invalidValue)
        #expect(
            runError(#"{"id": "a", "task": "token-classification", "text": "x", "options": {"aggregation_strategy": 1}}"#, engine: engine)
                == .wrongType)
        #expect(runError(#"{"id": "a", "task": "question-answering", "question": "q"}"#, engine: engine) == .missingField)
        #expect(
            runError(
                #"""
                {"id": "a", "task": "question-answering", "question": "q", "context": "c", "options": {"max_seq_len": 16, \#
                "doc_stride": 17}}
                """#,
                engine: engine) == .invalidValue)
        #expect(
            runError(
                #"""
                {"id": "a", "task": "question-answering", "question": "a b c d e f", "context": "c", "options": {"max_question_len": \#
                3}}
                """#,
                engine: engine) == .inputTooLong)
        #expect(
            runError(
                #"""
                {"id": "a", "task": "question-answering", "question": "a b c d e f g h i j k l m n", "context": "c", "options": \#
                {"max_seq_len": 8}}
                """#,
                engine: engine) == .invalidInput)
        #expect(runError(#"{"id": "a", "task": "fill-mask", "text": "no mask"}"#, engine: engine) == .invalidInput)
        #expect(runError(#"{"id": "a", "task": "fill-mask", "text": "a <mask>", "options": {"targets": 3}}"#, engine: engine) == .wrongType)
        #expect(runError(#"{"id": "a", "task": "multiple-choice", "question": "q", "choices": []}"#, engine: engine) == .emptyInput)
        #expect(runError(#"{"id": "a", "task": "multiple-choice", "question": "q", "choices": ["a", ""]}"#, engine: engine) == .emptyInput)
        #expect(
            runError(
                #"{"id": "a", "task": "text-generation", "head": "causal", "text": "x", "options": {"temperature": 0}}"#, engine: engine)
                == .invalidValue)
        #expect(
            runError(#"{"id": "a", "task": "feature-extraction", "text": "x", "options": {"pooling": "max"}}"#, engine: engine)
                == .invalidValue)
        #expect(runError(#"{"id": "a", "heads": ["sentiment", "nope"], "text": "x"}"#, engine: engine) == .unknownHead)
        #expect(
            runError(#"{"id": "a", "task": "fill-mask", "heads": ["mlm", "sentiment"], "text": "a <mask>"}"#, engine: engine)
                == .unsupportedTask)
    }

    /// A tokenizer regex that exhausts its search budget is a clean `invalid_input` request error.
    @Test func regexBudgetIsAnInvalidInput() throws {
        let source = URL(fileURLWithPath: PipelineFixtures.tokenizerDirectory).appendingPathComponent("tokenizer.json")
        var json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: source)) as? [String: Any])
        json["pre_tokenizer"] = ["type": "Split", "pattern": ["Regex": "(?:(?>a*)b|a)*c"], "behavior": "Isolated", "invert": false]
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("regex-budget-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try JSONSerialization.data(withJSONObject: json).write(to: dir.appendingPathComponent("tokenizer.json"))
        let engine = try PipelineEngine(heads: PipelineFixtures.headSpecs, tokenizerDirectory: dir.path)
        let long = String(repeating: "a", count: 20_000)
        for line in [
            #"{"id": "a", "task": "text-classification", "text": "\#(long)"}"#,
            #"{"id": "a", "task": "question-answering", "question": "q", "context": "\#(long)"}"#,
        ] {
            let error = engine.respond(toLines: [Array(line.utf8)], workspace: EncoderWorkspace()).flat.first?.error
            #expect(error?.code == .invalidInput)
            #expect(
                error?.message.contains("cannot tokenize the") == true && error?.message.contains("too much backtracking") == true,
                "\(error?.message ?? "no error")")
        }
        #expect(runError(#"{"id": "a", "task": "text-classification", "text": "aab"}"#, engine: engine) == nil)
    }

    @Test func overTheLimit() throws {
        let small = try PipelineEngine(
            heads: PipelineFixtures.headSpecs, tokenizerDirectory: PipelineFixtures.tokenizerDirectory,
            configuration: EngineConfiguration(maxInputTokens: 16))
        let long = String(repeating: "ord ", count: 40)
        for task in ["text-classification", "token-classification", "feature-extraction"] {
            #expect(runError(#"{"id": "a", "task": "\#(task)", "text": "\#(long)"}"#, engine: small) == .inputTooLong)
        }
        #expect(runError(#"{"id": "a", "task": "fill-mask", "text": "\#(long) <mask>"}"#, engine: small) == .inputTooLong)
        #expect(
            runError(
                #"{"id": "a", "task": "text-generation", "head": "causal", "text": "ord ord ord", "options": {"max_new_tokens": 20}}"#,
                engine: small) == .inputTooLong)
        #expect(
            runError(#"{"id": "a", "task": "multiple-choice", "question": "\#(long)", "choices": ["a"]}"#, engine: small) == .inputTooLong)
        #expect(
            runError(
                #"{"id": "a", "task": "text-classification", "text": "\#(long)", "options": {"overflow": "window", "stride": 15}}"#,
                engine: small) == .invalidValue)
        #expect(
            runError(
                #"""
                {"id": "a", "task": "question-answering", "question": "q", "context": "\#(long)", "options": {"max_seq_len": 16, \#
                "doc_stride": 4}}
                """#,
                engine: small) == .inputTooLong)
        let fits = small.respond(
            toLines: [
                Array(
                    #"""
                    {"id": "a", "task": "question-answering", "question": "q", "context": "ord ord ord ord ord", "options": \#
                    {"max_seq_len": 8, "doc_stride": 2}}
                    """#
                    .utf8)
            ],
            workspace: EncoderWorkspace()
        ).flat[0]
        #expect(fits.error == nil && (fits.usage?.windows ?? 0) > 1, "\(fits.error?.description ?? "")")
        #expect(small.maxInputTokens == 16)
        #expect(PipelineFixtures.engine?.maxInputTokens == 16384)
    }
}
