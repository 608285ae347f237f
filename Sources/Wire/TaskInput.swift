/// The input of one task, typed: what ``PipelineRequest/input(for:)`` gives after checking the
/// request's input fields against ``PipelineTask/inputs``.
public enum TaskInput: Sendable, Equatable {
    /// text-classification, token-classification, fill-mask, text-generation, feature-extraction.
    case text(String)
    /// question-answering.
    case questionContext(question: String, context: String)
    /// multiple-choice.
    case questionChoices(question: String, choices: [String])
}

extension PipelineRequest {
    /// The request's input for `task`, checked in this order: a field the task does not read is
    /// `invalid_request`; each field it reads must be given (`missing_field`) and non-empty
    /// (`empty_input`; a list of choices must not be empty, each choice is the plan's to check).
    public func input(for task: PipelineTask) throws(PipelineError) -> TaskInput {
        let reads = task.inputs
        for name in PipelineTask.inputFields where given(name) && !reads.contains(name) {
            throw PipelineError(.invalidRequest, "field '\(name)' is not used by \(task.rawValue)")
        }
        func string(_ name: String) throws(PipelineError) -> String {
            let value: String?
            switch name {
            case "question": value = question
            case "context": value = context
            default: value = text
            }
            guard let value else { throw PipelineError(.missingField, "\(task.rawValue) needs field '\(name)'") }
            guard !value.isEmpty else { throw PipelineError(.emptyInput, "field '\(name)' is empty") }
            return value
        }
        switch task {
        case .questionAnswering:
            let q = try string("question")
            return .questionContext(question: q, context: try string("context"))
        case .multipleChoice:
            let q = try string("question")
            guard let choices else { throw PipelineError(.missingField, "\(task.rawValue) needs field 'choices'") }
            guard !choices.isEmpty else { throw PipelineError(.emptyInput, "field 'choices' is empty") }
            return .questionChoices(question: q, choices: choices)
        case .textClassification, .tokenClassification, .fillMask, .textGeneration, .featureExtraction:
            return .text(try string("text"))
        }
    }

    private func given(_ field: String) -> Bool {
        switch field {
        case "text": return text != nil
        case "question": return question != nil
        case "context": return context != nil
        case "choices": return choices != nil
        default: return false
        }
    }
}
