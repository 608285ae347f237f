import Foundation

/// A parsed JSON value. `tokenizer.json` is read into this tree first, so that every
/// component factory can report precisely which field is missing or malformed. Object keys are
/// kept exactly as written (byte-exact, in order): Swift `String` equality is canonical
/// equivalence, which would merge distinct vocabulary entries such as NFC and NFD spellings.
public enum JSONValue: Sendable {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([(String, JSONValue)])

    /// Parses UTF-8 JSON text.
    public static func parse(_ data: Data, context: String) throws(TokenizerError) -> JSONValue {
        var p = JSONParser(bytes: [UInt8](data), context: context)
        return try p.parseDocument()
    }

    public static func parse(_ bytes: [UInt8], context: String) throws(TokenizerError) -> JSONValue {
        var p = JSONParser(bytes: bytes, context: context)
        return try p.parseDocument()
    }

    public subscript(key: String) -> JSONValue? {
        guard case .object(let pairs) = self else { return nil }
        for (k, v) in pairs.reversed() where k.utf8.elementsEqual(key.utf8) { return v }
        return nil
    }

    public var stringValue: String? {
        if case .string(let s) = self { return s }
        return nil
    }

    public var intValue: Int? {
        switch self {
        case .int(let i): return i
        case .double(let d):
            if d.rounded() == d, abs(d) < 9.0e15 { return Int(d) }
            return nil
        default: return nil
        }
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
}

/// Typed field access with errors that name the component and the field.
struct JSONFields {
    let json: JSONValue
    let component: String

    init(_ json: JSONValue, component: String) throws(TokenizerError) {
        guard json.objectPairs != nil else {
            throw TokenizerError.invalidField(component: component, field: "(self)", expected: "an object")
        }
        self.json = json
        self.component = component
    }

    init(same other: JSONFields, component: String) {
        self.json = other.json
        self.component = component
    }

    var value: JSONFieldLookup { JSONFieldLookup(json: json) }

    func has(_ key: String) -> Bool {
        if let v = value[key], !v.isNull { return true }
        return false
    }

    func raw(_ key: String) throws(TokenizerError) -> JSONValue {
        guard let v = value[key] else { throw TokenizerError.missingField(component: component, field: key) }
        return v
    }

    func string(_ key: String) throws(TokenizerError) -> String {
        guard let v = value[key] else { throw TokenizerError.missingField(component: component, field: key) }
        guard let s = v.stringValue else { throw TokenizerError.invalidField(component: component, field: key, expected: "a string") }
        return s
    }

    func optString(_ key: String) throws(TokenizerError) -> String? {
        guard let v = value[key], !v.isNull else { return nil }
        guard let s = v.stringValue else { throw TokenizerError.invalidField(component: component, field: key, expected: "a string") }
        return s
    }

    func bool(_ key: String, default def: Bool) throws(TokenizerError) -> Bool {
        guard let v = value[key], !v.isNull else { return def }
        guard let b = v.boolValue else { throw TokenizerError.invalidField(component: component, field: key, expected: "a boolean") }
        return b
    }

    func int(_ key: String) throws(TokenizerError) -> Int {
        guard let v = value[key] else { throw TokenizerError.missingField(component: component, field: key) }
        guard let i = v.intValue else { throw TokenizerError.invalidField(component: component, field: key, expected: "an integer") }
        return i
    }

    func optInt(_ key: String) throws(TokenizerError) -> Int? {
        guard let v = value[key], !v.isNull else { return nil }
        guard let i = v.intValue else { throw TokenizerError.invalidField(component: component, field: key, expected: "an integer") }
        return i
    }

    func optDouble(_ key: String) throws(TokenizerError) -> Double? {
        guard let v = value[key], !v.isNull else { return nil }
        guard let d = v.doubleValue else { throw TokenizerError.invalidField(component: component, field: key, expected: "a number") }
        return d
    }

    func array(_ key: String) throws(TokenizerError) -> [JSONValue] {
        guard let v = value[key] else { throw TokenizerError.missingField(component: component, field: key) }
        guard let a = v.arrayValue else { throw TokenizerError.invalidField(component: component, field: key, expected: "an array") }
        return a
    }

    func object(_ key: String) throws(TokenizerError) -> [(String, JSONValue)] {
        guard let v = value[key] else { throw TokenizerError.missingField(component: component, field: key) }
        guard let o = v.objectPairs else { throw TokenizerError.invalidField(component: component, field: key, expected: "an object") }
        return o
    }
}

struct JSONFieldLookup {
    let json: JSONValue
    subscript(key: String) -> JSONValue? { json[key] }
}
