import Wire

/// The `options` object of a request: transformers' keyword arguments, read with typed accessors
/// that keep "absent" and explicit `null` apart and report wrong types as `wrong_type`.
public struct RequestOptions: Sendable {
    /// The options as given (an explicit `null` is stored as `.null`).
    public private(set) var values: [String: JSONValue]

    public init(_ values: [String: JSONValue] = [:]) { self.values = values }

    /// A value that may be absent, explicitly null, or given.
    public enum Presence<T: Sendable>: Sendable {
        case absent
        case null
        case value(T)
    }

    public mutating func set(_ name: String, _ value: JSONValue) { values[name] = value }

    func raw(_ name: String) -> JSONValue? { values[name] }

    func wrongType(_ name: String, _ expected: String) -> PipelineError {
        PipelineError(.wrongType, "option '\(name)' must be \(expected)")
    }

    func invalid(_ name: String, _ why: String) -> PipelineError {
        PipelineError(.invalidValue, "option '\(name)' \(why)")
    }

    /// An integer option (JSON numbers with an integral value) inside `range`.
    func int(_ name: String, in range: ClosedRange<Int>) throws(PipelineError) -> Presence<Int> {
        guard let v = values[name] else { return .absent }
        if v.isNull { return .null }
        if case .bool = v { throw wrongType(name, "an integer") }
        guard let i = v.intValue else { throw wrongType(name, "an integer") }
        guard range.contains(i) else { throw invalid(name, "must be in \(range.lowerBound)...\(range.upperBound), got \(i)") }
        return .value(i)
    }

    /// An integer option; explicit null means the default.
    func int(_ name: String, default d: Int, in range: ClosedRange<Int>) throws(PipelineError) -> Int {
        if case .value(let i) = try int(name, in: range) { return i }
        return d
    }

    func double(_ name: String, default d: Double, in range: ClosedRange<Double>) throws(PipelineError) -> Double {
        guard let v = values[name], !v.isNull else { return d }
        guard let x = v.doubleValue, x.isFinite else { throw wrongType(name, "a number") }
        guard range.contains(x) else { throw invalid(name, "must be in \(range.lowerBound)...\(range.upperBound), got \(x)") }
        return x
    }

    func bool(_ name: String, default d: Bool) throws(PipelineError) -> Bool {
        guard let v = values[name], !v.isNull else { return d }
        guard let b = v.boolValue else { throw wrongType(name, "true or false") }
        return b
    }

    /// A string option that must be one of `allowed`.
    func choice(_ name: String, _ allowed: [String]) throws(PipelineError) -> String? {
        guard let v = values[name], !v.isNull else { return nil }
        guard let s = v.stringValue else { throw wrongType(name, "a string (one of \(allowed.joined(separator: ", ")))") }
        guard allowed.contains(s) else { throw invalid(name, "must be one of \(allowed.joined(separator: ", ")), got '\(s.prefix(100))'") }
        return s
    }

    /// A string or a list of strings (transformers accepts both for `targets`).
    func strings(_ name: String) throws(PipelineError) -> [String]? {
        guard let v = values[name], !v.isNull else { return nil }
        if let s = v.stringValue { return [s] }
        guard let a = v.arrayValue else { throw wrongType(name, "a string or a list of strings") }
        var out: [String] = []
        for item in a {
            guard let s = item.stringValue else { throw wrongType(name, "a string or a list of strings") }
            out.append(s)
        }
        return out
    }
}

/// How an input longer than the configured maximum is handled (`overflow` option).
public enum OverflowPolicy: String, Sendable {
    /// Reject with `input_too_long` (the default).
    case reject
    /// Classification only: split into windows of the maximum length sharing `stride` tokens, and aggregate.
    case window
}

extension RequestOptions {
    /// `overflow` and `stride` (tokens shared by consecutive windows; default min(max/2, 128)).
    func overflow(maxTokens: Int) throws(PipelineError) -> (OverflowPolicy, Int) {
        let policy = try choice("overflow", ["reject", "window"]).flatMap(OverflowPolicy.init(rawValue:)) ?? .reject
        let stride = try int("stride", default: min(maxTokens / 2, 128), in: 0...Int(Int32.max))
        return (policy, stride)
    }
}
