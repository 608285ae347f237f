import Foundation
import Wire

extension JSONValue {
    /// Parses a tokenizer file or a JSON line (a leading byte order mark is skipped); errors are
    /// `TokenizerError`s naming `context` and the byte offset.
    public static func parse(_ data: Data, context: String) throws(TokenizerError) -> JSONValue {
        try parse([UInt8](data), context: context)
    }

    public static func parse(_ bytes: [UInt8], context: String) throws(TokenizerError) -> JSONValue {
        do {
            return try JSONValue.parse(bytes, limits: .tokenizer)
        } catch {
            throw TokenizerError(error, context: context)
        }
    }
}

extension JSONLimits {
    /// tokenizer.json and its companions: keys byte for byte (vocabulary entries), a leading byte
    /// order mark allowed, strings up to 16 MiB (a hostile file may hold 100 MB strings).
    static let tokenizer = JSONLimits(maxDepth: 512, maxStringBytes: 16 << 20, allowsByteOrderMark: true, keyIdentity: .bytes)
}

extension TokenizerError {
    /// The tokenizer's wording of a JSON syntax error in `context`.
    public init(_ error: JSONSyntaxError, context: String) {
        switch error.kind {
        case .syntax: self = .malformedJSON(context: context, detail: error.description)
        case .stringTooLong(let size, let limit):
            self = .inputTooLarge(what: "string at byte \(error.offset) of \(context)", size: size, limit: limit)
        }
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
