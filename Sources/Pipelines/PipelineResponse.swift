import Wire

/// Token accounting of one result: nothing is truncated silently.
public struct Usage: Sendable, Equatable {
    /// Tokens the model ran for this result (all windows, choices or prompt, special tokens included).
    public var inputTokens: Int
    /// Always false: inputs are never cut; over-long inputs are rejected or windowed.
    public var truncated: Bool
    /// Encoder windows used (more than 1 only for windowed long inputs and question answering).
    public var windows: Int
    /// New tokens produced (text-generation only).
    public var generatedTokens: Int?

    public init(inputTokens: Int, truncated: Bool = false, windows: Int = 1, generatedTokens: Int? = nil) {
        self.inputTokens = inputTokens
        self.truncated = truncated
        self.windows = windows
        self.generatedTokens = generatedTokens
    }

    var json: JSONValue {
        var pairs: [(String, JSONValue)] = [
            ("input_tokens", .int(inputTokens)), ("truncated", .bool(truncated)), ("windows", .int(windows)),
        ]
        if let g = generatedTokens { pairs.append(("generated_tokens", .int(g))) }
        return .object(pairs)
    }
}

/// One response line: a result (`id`, `task`, `head`, `result`, `usage`) or an error (`id`, `error`).
/// See schemas/response.schema.json and schemas/error.schema.json.
public struct PipelineResponse: Sendable {
    public enum Outcome: Sendable {
        case success(result: JSONValue, usage: Usage)
        case failure(PipelineError)
    }

    public var id: String?
    public var task: PipelineTask?
    public var head: String?
    public var outcome: Outcome
    /// A streamed partial response (`"partial": true`), published before the final one of its
    /// (request, head): question-answering's answers after a window, text-generation's token
    /// chunk (`{"token": id, "text": new text}`). false: the final response.
    public var isPartial: Bool

    public init(id: String?, task: PipelineTask?, head: String?, outcome: Outcome, isPartial: Bool = false) {
        self.id = id
        self.task = task
        self.head = head
        self.outcome = outcome
        self.isPartial = isPartial
    }

    public static func failure(id: String?, task: PipelineTask? = nil, head: String? = nil, _ error: PipelineError) -> PipelineResponse {
        PipelineResponse(id: id, task: task, head: head, outcome: .failure(error))
    }

    public var error: PipelineError? {
        if case .failure(let e) = outcome { return e }
        return nil
    }

    public var result: JSONValue? {
        if case .success(let r, _) = outcome { return r }
        return nil
    }

    public var usage: Usage? {
        if case .success(_, let u) = outcome { return u }
        return nil
    }

    /// The response as a JSON object.
    public var json: JSONValue {
        var pairs: [(String, JSONValue)] = [("id", id.map(JSONValue.string) ?? .null)]
        if let task { pairs.append(("task", .string(task.rawValue))) }
        if let head { pairs.append(("head", .string(head))) }
        if isPartial { pairs.append(("partial", .bool(true))) }
        switch outcome {
        case .success(let result, let usage):
            pairs.append(("result", result))
            pairs.append(("usage", usage.json))
        case .failure(let e):
            pairs.append(("error", .object([("code", .string(e.code.rawValue)), ("message", .string(e.message))])))
        }
        return .object(pairs)
    }

    /// One line of JSON (no trailing newline; U+2028/U+2029/U+0085 escaped).
    public var jsonLine: String { json.jsonText }
}
