/// Every failure the tokenizer can report. Loading never crashes on bad input: it throws one of these,
/// naming the component and field at fault.
public enum TokenizerError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The file is not valid JSON (or not UTF-8).
    case malformedJSON(context: String, detail: String)
    /// A required field is absent.
    case missingField(component: String, field: String)
    /// A field has the wrong JSON type or an out-of-range value.
    case invalidField(component: String, field: String, expected: String)
    /// A `type` string that this implementation does not know.
    case unknownType(component: String, type: String)
    /// A regular expression that cannot be compiled.
    case invalidRegex(pattern: String, reason: String)
    /// A BPE merge names a token that is not in the vocabulary.
    case mergeTokenNotInVocab(merge: String, token: String)
    /// A token referenced by the configuration (unk, template special, …) is missing from the vocabulary.
    case tokenNotInVocab(component: String, token: String)
    /// A string or file larger than the configured limit.
    case inputTooLarge(what: String, size: Int, limit: Int)
    /// A file could not be read.
    case fileNotFound(path: String)
    /// Truncation could not satisfy the request (mirrors the library's `TruncationError`).
    case truncation(String)
    /// Any other error the library would raise during encoding.
    case encoding(String)
    /// A regex search needed more steps than its budget (proportional to the text length) allows:
    /// the pattern backtracks too much on this text. Raised instead of a silent "no match".
    case regexBudgetExceeded(pattern: String, length: Int, steps: Int)
    /// The input has more than `limit` tokens (encoding with `maxTokens`): found while splitting or
    /// tokenizing, before the rest of the input was worked on.
    case tooManyTokens(limit: Int)

    public var description: String {
        switch self {
        case .malformedJSON(let context, let detail): return "malformed JSON in \(context): \(detail)"
        case .missingField(let c, let f): return "\(c): missing field `\(f)`"
        case .invalidField(let c, let f, let e): return "\(c): field `\(f)` must be \(e)"
        case .unknownType(let c, let t): return "\(c): unknown type `\(t)`"
        case .invalidRegex(let p, let r): return "invalid regex `\(p.prefix(200))`: \(r)"
        case .mergeTokenNotInVocab(let m, let t):
            return "BPE merge `\(m.prefix(200))` names token `\(t.prefix(200))` that is not in the vocabulary"
        case .tokenNotInVocab(let c, let t): return "\(c): token `\(t.prefix(200))` is not in the vocabulary"
        case .inputTooLarge(let w, let s, let l): return "\(w) is too large: \(s) > \(l)"
        case .fileNotFound(let p): return "cannot read \(p)"
        case .truncation(let m): return "Truncation error: \(m)"
        case .encoding(let m): return m
        case .regexBudgetExceeded(let p, let n, let steps):
            return "regex `\(p.prefix(200))` needs more than \(steps) steps on a text of \(n) characters (too much backtracking)"
        case .tooManyTokens(let limit): return "the input is more than \(limit) tokens"
        }
    }
}
