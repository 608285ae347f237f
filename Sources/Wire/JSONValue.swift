/// A parsed (or to-be-written) JSON value: the one JSON tree of the package. safetensors headers,
/// tokenizer.json, requests, responses and log lines all go through it.
///
/// Object members keep their order and their keys exactly as written (byte for byte): Swift
/// `String` equality is canonical equivalence, which would merge distinct vocabulary entries
/// such as NFC and NFD spellings. Integer literals that fit `Int` are `.int`; every other number
/// is `.double` (so an integer is never silently rounded through a Double).
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([(String, JSONValue)])

    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): return true
        case let (.bool(a), .bool(b)): return a == b
        case let (.int(a), .int(b)): return a == b
        case let (.double(a), .double(b)): return a == b
        case let (.string(a), .string(b)): return a.utf8.elementsEqual(b.utf8)
        case let (.array(a), .array(b)): return a == b
        case let (.object(a), .object(b)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.0.utf8.elementsEqual($1.0.utf8) && $0.1 == $1.1 }
        default: return false
        }
    }

    /// The member named `key` (compared byte for byte); nil for a non-object or a missing key.
    public subscript(key: String) -> JSONValue? {
        guard case .object(let pairs) = self else { return nil }
        for (k, v) in pairs.reversed() where k.utf8.elementsEqual(key.utf8) { return v }
        return nil
    }

    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    /// An integer, or a double with an integral value below 9e15 in magnitude.
    public var intValue: Int? {
        switch self {
        case .int(let i): return i
        case .double(let d):
            if d.rounded() == d, abs(d) < 9.0e15 { return Int(d) }
            return nil
        default: return nil
        }
    }

    /// Only an integer literal that fits `Int` (no fraction, no exponent): exact sizes and offsets.
    public var exactInt: Int? {
        if case .int(let i) = self { return i }
        return nil
    }

    public var doubleValue: Double? {
        switch self {
        case .int(let i): return Double(i)
        case .double(let d): return d
        default: return nil
        }
    }

    public var boolValue: Bool? {
        if case .bool(let b) = self { return b }
        return nil
    }

    public var arrayValue: [JSONValue]? {
        if case .array(let a) = self { return a }
        return nil
    }

    public var objectPairs: [(String, JSONValue)]? {
        if case .object(let o) = self { return o }
        return nil
    }

    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }

    /// A short name of the value's JSON type, for error messages ("an object", "a number", …).
    public var typeName: String {
        switch self {
        case .object: return "an object"
        case .array: return "an array"
        case .string: return "a string"
        case .int, .double: return "a number"
        case .bool: return "a boolean"
        case .null: return "null"
        }
    }

    /// A scalar as text (strings as they are, numbers as written by ``jsonText``, booleans, null);
    /// nil for containers.
    public var scalarText: String? {
        switch self {
        case .string(let s): return s
        case .int, .double, .bool, .null: return jsonText
        case .object, .array: return nil
        }
    }
}
