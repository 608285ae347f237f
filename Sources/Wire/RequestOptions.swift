/// The `options` object of a request, as given: transformers' keyword arguments. Read through
/// their ``OptionDeclaration``s (type, range, default), which keep "absent" and explicit `null`
/// apart and report wrong types as `wrong_type`, values out of range as `invalid_value`.
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

    func wrongType(_ name: String, _ expected: String) -> PipelineError {
        PipelineError(.wrongType, "option '\(name)' must be \(expected)")
    }

    func invalid(_ name: String, _ why: String) -> PipelineError {
        PipelineError(.invalidValue, "option '\(name)' \(why)")
    }

    /// The given value, nil when absent or (unless `null` is a value of the option) null.
    func given(_ d: OptionDeclaration) -> JSONValue? {
        guard let v = values[d.name], !v.isNull else { return nil }
        return v
    }

    /// An integer option in its declared range (`upTo`: the top of the range is the engine's instead).
    public func int(_ d: OptionDeclaration, upTo top: Int? = nil) throws(PipelineError) -> Presence<Int> {
        guard let v = values[d.name] else { return .absent }
        if v.isNull { return .null }
        if case .bool = v { throw wrongType(d.name, "an integer") }
        guard let i = v.intValue else { throw wrongType(d.name, "an integer") }
        let declared = d.integerRange ?? Int.min...Int.max
        let range = declared.lowerBound...max(declared.lowerBound, top ?? declared.upperBound)
        guard range.contains(i) else { throw invalid(d.name, "must be in \(range.lowerBound)...\(range.upperBound), got \(i)") }
        return .value(i)
    }

    /// An integer option; absent or null: `fallback` (the declared default when nil).
    public func int(_ d: OptionDeclaration, upTo top: Int? = nil, default fallback: Int? = nil) throws(PipelineError) -> Int {
        if case .value(let i) = try int(d, upTo: top) { return i }
        return fallback ?? d.defaultInt
    }

    /// An integer option capped by a setting (``OptionDeclaration/limitSetting``): `invalid_value`
    /// below the range or above `limit` (naming the setting); absent or null: the default, at most
    /// the limit.
    public func capped(_ d: OptionDeclaration, limit: Int) throws(PipelineError) -> Int {
        let lower = d.integerRange?.lowerBound ?? 0
        guard let v = given(d) else { return min(d.defaultInt, limit) }
        if case .bool = v { throw wrongType(d.name, "an integer") }
        guard let i = v.intValue else { throw wrongType(d.name, "an integer") }
        guard i >= lower else { throw invalid(d.name, "must be in \(lower)...\(limit), got \(i)") }
        guard i <= limit else { throw invalid(d.name, "must be at most \(limit) (setting \(d.limitSetting ?? "")), got \(i)") }
        return i
    }

    public func double(_ d: OptionDeclaration) throws(PipelineError) -> Double {
        var fallback = 0.0
        if case .number(let x) = d.defaultValue { fallback = x }
        guard let v = given(d) else { return fallback }
        guard let x = v.doubleValue, x.isFinite else { throw wrongType(d.name, "a number") }
        if case .number(let range) = d.type, !range.contains(x) {
            throw invalid(d.name, "must be in \(range.lowerBound)...\(range.upperBound), got \(x)")
        }
        return x
    }

    public func bool(_ d: OptionDeclaration) throws(PipelineError) -> Bool {
        var fallback = false
        if case .boolean(let b) = d.defaultValue { fallback = b }
        guard let v = given(d) else { return fallback }
        guard let b = v.boolValue else { throw wrongType(d.name, "true or false") }
        return b
    }

    /// A string option that must be one of the declared choices; nil when absent or null.
    public func choice<E: RawRepresentable>(_ d: OptionDeclaration, as: E.Type) throws(PipelineError) -> E? where E.RawValue == String {
        let allowed = d.choices
        guard let v = given(d) else { return nil }
        guard let s = v.stringValue else { throw wrongType(d.name, "a string (one of \(allowed.joined(separator: ", ")))") }
        guard allowed.contains(s), let value = E(rawValue: s) else {
            throw invalid(d.name, "must be one of \(allowed.joined(separator: ", ")), got '\(s.prefix(100))'")
        }
        return value
    }

    /// A string or a list of strings (transformers accepts both); nil when absent or null.
    public func strings(_ d: OptionDeclaration) throws(PipelineError) -> [String]? {
        guard let v = given(d) else { return nil }
        if let s = v.stringValue { return [s] }
        guard let a = v.arrayValue else { throw wrongType(d.name, "a string or a list of strings") }
        var out: [String] = []
        for item in a {
            guard let s = item.stringValue else { throw wrongType(d.name, "a string or a list of strings") }
            out.append(s)
        }
        return out
    }

    // Lenient reads, for pricing before the plans run: a bad value prices as the default (the
    // plan then reports it, for its head only).

    /// An integer option for pricing: the default when absent or not a usable integer.
    public func lenientInt(_ d: OptionDeclaration, default fallback: Int? = nil) -> Int {
        guard let v = given(d), let i = v.intValue else { return fallback ?? d.defaultInt }
        if case .bool = v { return fallback ?? d.defaultInt }
        return i
    }

    /// A capped integer option for pricing: `invalid_value` only for an integer over the limit;
    /// any other bad value prices as the default.
    public func priced(_ d: OptionDeclaration, limit: Int) throws(PipelineError) -> Int {
        if let v = values[d.name], case .bool = v {
        } else if let i = values[d.name]?.intValue, i > limit {
            throw invalid(d.name, "must be at most \(limit) (setting \(d.limitSetting ?? "")), got \(i)")
        }
        return max(0, min(lenientInt(d), limit))
    }

    public func lenientBool(_ d: OptionDeclaration) -> Bool {
        (try? bool(d))
            ?? {
                if case .boolean(let b) = d.defaultValue { return b }
                return false
            }()
    }
}

extension OptionDeclaration {
    /// The default of an integer option (0 for a computed or absent default: callers pass theirs).
    var defaultInt: Int {
        if case .integer(let i) = defaultValue { return i }
        return 0
    }
}
