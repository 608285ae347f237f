import NorBERT
import Wire

extension PipelineTask {
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
}
