/// One request (a JSON object, the same format `infer` reads and the Kafka worker consumes).
/// See schemas/request.schema.json.
public struct PipelineRequest: Sendable {
    public var id: String
    /// Required unless `heads` is given (then each head runs its primary task).
    public var task: PipelineTask?
    public var head: String?
    public var heads: [String]?
    public var text: String?
    public var question: String?
    public var context: String?
    public var choices: [String]?
    public var options: RequestOptions
    /// Streamed answers: partial responses (`"partial": true`) before the final one —
    /// question-answering's best answers after each window but the last, text-generation's
    /// token chunks. Other tasks answer with the final response only.
    public var stream: Bool

    public init(
        id: String, task: PipelineTask?, head: String? = nil, heads: [String]? = nil, text: String? = nil,
        question: String? = nil, context: String? = nil, choices: [String]? = nil,
        options: RequestOptions = RequestOptions(), stream: Bool = false
    ) {
        self.id = id
        self.task = task
        self.head = head
        self.heads = heads
        self.text = text
        self.question = question
        self.context = context
        self.choices = choices
        self.options = options
        self.stream = stream
    }

    public static let fields: Set<String> = ["id", "task", "head", "heads", "text", "question", "context", "choices", "options", "stream"]
}

/// A request that could not be decoded: the error plus whatever identified it (for the response).
public struct RequestFailure: Error, Sendable {
    public var id: String?
    public var task: String?
    public var error: PipelineError
    public init(id: String?, task: String?, error: PipelineError) {
        self.id = id
        self.task = task
        self.error = error
    }
}

extension PipelineRequest {
    /// Largest request line accepted (bytes).
    public static let maxLineBytes = 16 << 20

    /// Decodes one JSON request (UTF-8 bytes of one line).
    public static func decode(_ bytes: [UInt8]) -> Result<PipelineRequest, RequestFailure> {
        if bytes.count > maxLineBytes {
            return .failure(
                RequestFailure(
                    id: nil, task: nil, error: PipelineError(.invalidRequest, "request is \(bytes.count) bytes, more than \(maxLineBytes)"))
            )
        }
        let json: JSONValue
        do {
            json = try JSONValue.parse(bytes, limits: .request)
        } catch {
            let why: String
            switch error.kind {
            case .syntax: why = "malformed JSON in request: \(error.description)"
            case .stringTooLong(let size, let limit): why = "string at byte \(error.offset) of request is too large: \(size) > \(limit)"
            }
            return .failure(RequestFailure(id: nil, task: nil, error: PipelineError(.invalidJSON, "not valid JSON: \(why)")))
        }
        return decode(json)
    }

    public static func decode(_ line: String) -> Result<PipelineRequest, RequestFailure> { decode(Array(line.utf8)) }

    /// Decodes a parsed request object.
    public static func decode(_ json: JSONValue) -> Result<PipelineRequest, RequestFailure> {
        guard let pairs = json.objectPairs else {
            return .failure(RequestFailure(id: nil, task: nil, error: PipelineError(.invalidRequest, "a request must be a JSON object")))
        }
        let id = json["id"]?.stringValue
        let taskName = json["task"]?.stringValue
        func fail(_ code: PipelineError.Code, _ message: String) -> Result<PipelineRequest, RequestFailure> {
            .failure(RequestFailure(id: id, task: taskName, error: PipelineError(code, message)))
        }
        for (key, _) in pairs where !fields.contains(key) {
            return fail(.invalidRequest, "unknown field '\(key.prefix(100))' (allowed: \(fields.sorted().joined(separator: ", ")))")
        }
        guard let idValue = json["id"], !idValue.isNull else { return fail(.missingField, "missing field 'id'") }
        guard id != nil else { return fail(.wrongType, "field 'id' must be a string") }
        var request = PipelineRequest(id: id ?? "", task: nil)
        func string(_ name: String) -> Result<String?, RequestFailure> {
            guard let v = json[name], !v.isNull else { return .success(nil) }
            guard let s = v.stringValue else {
                return .failure(
                    RequestFailure(id: id, task: taskName, error: PipelineError(.wrongType, "field '\(name)' must be a string")))
            }
            return .success(s)
        }
        func stringList(_ name: String) -> Result<[String]?, RequestFailure> {
            guard let v = json[name], !v.isNull else { return .success(nil) }
            let bad = RequestFailure(id: id, task: taskName, error: PipelineError(.wrongType, "field '\(name)' must be a list of strings"))
            guard let a = v.arrayValue else { return .failure(bad) }
            var out: [String] = []
            for item in a {
                guard let s = item.stringValue else { return .failure(bad) }
                out.append(s)
            }
            return .success(out)
        }
        do {
            if let t = try string("task").get() {
                guard let task = PipelineTask(rawValue: t) else {
                    return fail(
                        .unknownTask,
                        "unknown task '\(t.prefix(100))' (one of \(PipelineTask.allCases.map(\.rawValue).joined(separator: ", ")))")
                }
                request.task = task
            }
            request.head = try string("head").get()
            request.heads = try stringList("heads").get()
            request.text = try string("text").get()
            request.question = try string("question").get()
            request.context = try string("context").get()
            request.choices = try stringList("choices").get()
        } catch {
            return .failure(error)
        }
        if let v = json["stream"], !v.isNull {
            guard case .bool(let flag) = v else { return fail(.wrongType, "field 'stream' must be true or false") }
            request.stream = flag
        }
        if request.head != nil && request.heads != nil { return fail(.invalidRequest, "give either 'head' or 'heads', not both") }
        if let heads = request.heads {
            if heads.isEmpty { return fail(.invalidValue, "field 'heads' must name at least one head") }
            if Set(heads).count != heads.count { return fail(.invalidValue, "field 'heads' names a head twice") }
        }
        if request.task == nil && request.heads == nil {
            return fail(.missingField, "missing field 'task' (required unless 'heads' is given)")
        }
        if let o = json["options"], !o.isNull {
            guard let optionPairs = o.objectPairs else { return fail(.wrongType, "field 'options' must be an object") }
            for (key, value) in optionPairs {
                guard PipelineTask.allOptionNames.contains(key) else {
                    return fail(.invalidRequest, "unknown option '\(key.prefix(100))'")
                }
                request.options.set(key, value)
            }
        }
        return .success(request)
    }
}

extension JSONLimits {
    /// Request lines: as tokenizer files (a leading byte order mark skipped, keys byte for byte,
    /// nesting at most 512 deep, strings at most 16 MiB).
    public static let request = JSONLimits(maxDepth: 512, maxStringBytes: 16 << 20, allowsByteOrderMark: true, keyIdentity: .bytes)
}

extension PipelineRequest {
    /// The cheapest request of `task` on `head` (the worker's warm-up): a short text in each of
    /// the task's ``PipelineTask/inputs``, and every option capped by a setting (`top_k` of
    /// question-answering and fill-mask, `max_new_tokens`) at 1.
    public static func minimal(id: String, task: PipelineTask, head: String?) -> PipelineRequest {
        var request = PipelineRequest(id: id, task: task, head: head)
        for field in task.inputs {
            switch field {
            case "question": request.question = "Hvem kom?"
            case "context": request.context = "Per kom."
            case "choices": request.choices = ["Ja", "Nei"]
            default: request.text = "Hei på deg."
            }
        }
        for option in task.options where option.limitSetting != nil {
            request.options.set(option.name, .int(1))
        }
        return request
    }
}
