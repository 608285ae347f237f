/// The seven tasks, by their request names (transformers' pipeline names).
public enum PipelineTask: String, Sendable, CaseIterable, Hashable {
    case textClassification = "text-classification"
    case tokenClassification = "token-classification"
    case questionAnswering = "question-answering"
    case fillMask = "fill-mask"
    case multipleChoice = "multiple-choice"
    case textGeneration = "text-generation"
    case featureExtraction = "feature-extraction"

    /// The request's input fields the task reads (all required, non-empty; any other input field
    /// is rejected).
    public var inputs: [String] {
        switch self {
        case .textClassification, .tokenClassification, .fillMask, .textGeneration, .featureExtraction: return ["text"]
        case .questionAnswering: return ["question", "context"]
        case .multipleChoice: return ["question", "choices"]
        }
    }

    /// Every input field of any task.
    public static let inputFields = ["text", "question", "context", "choices"]

    /// The options the task reads (see ``OptionDeclaration/all``).
    public var options: [OptionDeclaration] { OptionDeclaration.all.filter { $0.tasks.contains(self) } }

    /// Option names the task reads.
    public var optionNames: Set<String> { Set(options.map(\.name)) }

    /// Every option name of every task: a name outside this set is a typo and is rejected.
    public static let allOptionNames: Set<String> = Set(OptionDeclaration.all.map(\.name))
}
