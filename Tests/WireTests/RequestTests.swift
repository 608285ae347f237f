import Testing
import Wire

/// Requests, their typed inputs and options, without an engine (the engine's own checks are
/// in PipelinesTests).
@Suite("Wire requests")
struct WireRequestTests {
    func request(_ line: String) throws -> PipelineRequest { try PipelineRequest.decode(line).get() }

    @Test func inputsPerTask() throws {
        #expect(try request(#"{"id": "1", "task": "fill-mask", "text": "a <mask>"}"#).input(for: .fillMask) == .text("a <mask>"))
        let qa = try request(#"{"id": "1", "task": "question-answering", "question": "q", "context": "c"}"#)
        #expect(try qa.input(for: .questionAnswering) == .questionContext(question: "q", context: "c"))
        #expect(throws: PipelineError(.invalidRequest, "field 'question' is not used by text-classification")) {
            try qa.input(for: .textClassification)
        }
        let mc = try request(#"{"id": "1", "task": "multiple-choice", "question": "q"}"#)
        #expect(throws: PipelineError(.missingField, "multiple-choice needs field 'choices'")) { try mc.input(for: .multipleChoice) }
        let empty = try request(#"{"id": "1", "task": "question-answering", "question": "", "context": "c"}"#)
        #expect(throws: PipelineError(.emptyInput, "field 'question' is empty")) { try empty.input(for: .questionAnswering) }
    }

    @Test func typedOptions() throws {
        let bounds = OptionBounds(maxInputTokens: 512, maxTopK: 100, maxNewTokens: 1024)
        let none = try TextClassificationOptions(RequestOptions(), bounds)
        #expect(none.function == nil && none.overflow.policy == .reject && none.overflow.stride == 128)
        let tc = try request(
            #"{"id": "1", "task": "text-classification", "text": "x", "options": {"function_to_apply": "sigmoid", "top_k": null}}"#)
        let typed = try TextClassificationOptions(tc.options, bounds)
        #expect(typed.function == .sigmoid)
        guard case .null = typed.topK else {
            Issue.record("top_k null")
            return
        }
        let qa = try QuestionAnsweringOptions(RequestOptions(), bounds)
        #expect((qa.topK, qa.maxAnswerLen, qa.maxQuestionLen, qa.maxSeqLen, qa.docStride) == (1, 15, 64, 384, 128))
        let over = try request(#"{"id": "1", "task": "fill-mask", "text": "x", "options": {"top_k": 101}}"#)
        #expect(throws: PipelineError(.invalidValue, "option 'top_k' must be at most 100 (setting max-top-k), got 101")) {
            try FillMaskOptions(over.options, bounds)
        }
        let seq = try request(
            #"{"id": "1", "task": "question-answering", "question": "q", "context": "c", "options": {"max_seq_len": 513}}"#)
        #expect(throws: PipelineError(.invalidValue, "option 'max_seq_len' must be in 2...512, got 513")) {
            try QuestionAnsweringOptions(seq.options, bounds)
        }
        let bad = try request(#"{"id": "1", "task": "feature-extraction", "text": "x", "options": {"pooling": "max"}}"#)
        #expect(throws: PipelineError(.invalidValue, "option 'pooling' must be one of mean, first, none, got 'max'")) {
            try FeatureExtractionOptions(bad.options, bounds)
        }
    }

    @Test("each option is declared once per task; the warm-up request of every task is valid and cheap")
    func declarations() throws {
        for task in PipelineTask.allCases {
            let names = task.options.map(\.name)
            #expect(Set(names).count == names.count, "\(task.rawValue) declares an option twice")
            let minimal = PipelineRequest.minimal(id: "w", task: task, head: "h")
            _ = try minimal.input(for: task)
            for option in task.options where option.limitSetting != nil { #expect(minimal.options.values[option.name] == .int(1)) }
        }
        #expect(PipelineTask.allOptionNames.contains("top_k") && !PipelineTask.multipleChoice.optionNames.contains("top_k"))
    }

    @Test func invalidJSONMessages() {
        guard case .failure(let failure) = PipelineRequest.decode("nope") else {
            Issue.record("decoded")
            return
        }
        #expect(failure.error == PipelineError(.invalidJSON, "not valid JSON: malformed JSON in request: invalid literal at byte 0"))
        guard case .failure(let zero) = PipelineRequest.decode(#"{"id": "1", "task": "fill-mask", "text": "x", "options": {"top_k": 01}}"#)
        else {
            Issue.record("a leading zero decoded")
            return
        }
        #expect(zero.error.code == .invalidJSON)
    }
}
