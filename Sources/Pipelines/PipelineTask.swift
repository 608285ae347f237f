import NorBERT

/// The seven tasks, by their request names (transformers' pipeline names).
public enum PipelineTask: String, Sendable, CaseIterable, Hashable {
    case textClassification = "text-classification"
    case tokenClassification = "token-classification"
    case questionAnswering = "question-answering"
    case fillMask = "fill-mask"
    case multipleChoice = "multiple-choice"
    case textGeneration = "text-generation"
    case featureExtraction = "feature-extraction"

    /// Tasks a checkpoint serves, by its head (config.json `architectures`). The first is the
    /// head's primary task (used for `heads` requests without a `task`).
    public static func served(by kind: HeadKind) -> [PipelineTask] {
        switch kind {
        case .base: return [.featureExtraction]
        case .maskedLM: return [.fillMask, .textGeneration]
        case .causalLM: return [.textGeneration]
        case .sequenceClassification: return [.textClassification]
        case .tokenClassification: return [.tokenClassification]
        case .questionAnswering: return [.questionAnswering]
        case .multipleChoice: return [.multipleChoice]
        }
    }

    /// Option names each task reads (transformers' keyword names, plus `overflow`/`stride`).
    var optionNames: Set<String> {
        switch self {
        case .textClassification: return ["function_to_apply", "top_k", "overflow", "stride"]
        case .tokenClassification: return ["aggregation_strategy", "ignore_labels", "overflow", "stride"]
        case .questionAnswering:
            return ["top_k", "max_answer_len", "max_question_len", "max_seq_len", "doc_stride",
                    "handle_impossible_answer", "align_to_words"]
        case .fillMask: return ["top_k", "targets"]
        case .multipleChoice: return []
        case .textGeneration:
            return ["max_new_tokens", "do_sample", "temperature", "top_k", "top_p", "seed",
                    "stop_at_newline", "return_full_text"]
        case .featureExtraction: return ["pooling", "normalize"]
        }
    }

    /// Every option name of every task: a name outside this set is a typo and is rejected.
    static let allOptionNames: Set<String> = allCases.reduce(into: Set<String>()) { $0.formUnion($1.optionNames) }
}
