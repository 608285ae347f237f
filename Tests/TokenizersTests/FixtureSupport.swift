import Foundation
import Wire

@testable import Tokenizers

/// Locates the copied fixtures from this file's path (no reads outside the repository).
enum TokenizerFixtures {
    static var root: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures")
    }

    static func directory(_ name: String) -> String { root.appendingPathComponent(name).path }

    static func cases(_ name: String) throws -> [JSONValue] {
        let data = try Data(contentsOf: root.appendingPathComponent(name).appendingPathComponent("cases.jsonl"))
        var out: [JSONValue] = []
        for line in data.split(separator: 0x0A) where !line.isEmpty {
            out.append(try JSONValue.parse(Array(line), context: "cases.jsonl"))
        }
        return out
    }
}

/// Structural JSON equality (object keys compared as sets, numbers exactly).
func jsonEqual(_ a: JSONValue, _ b: JSONValue) -> Bool {
    switch (a, b) {
    case (.null, .null): return true
    case (.bool(let x), .bool(let y)): return x == y
    case (.int(let x), .int(let y)): return x == y
    case (.double(let x), .double(let y)): return x == y
    case (.int(let x), .double(let y)), (.double(let y), .int(let x)): return Double(x) == y
    case (.string(let x), .string(let y)): return x.unicodeScalars.elementsEqual(y.unicodeScalars)
    case (.array(let x), .array(let y)):
        return x.count == y.count && zip(x, y).allSatisfy { jsonEqual($0, $1) }
    case (.object(let x), .object(let y)):
        guard x.count == y.count else { return false }
        for (k, v) in x {
            guard let w = b[k], jsonEqual(v, w) else { return false }
        }
        return true
    default: return false
    }
}

/// First differing path, for failure messages.
func jsonDiff(_ a: JSONValue, _ b: JSONValue, path: String = "") -> String? {
    switch (a, b) {
    case (.array(let x), .array(let y)):
        for (i, (p, q)) in zip(x, y).enumerated() {
            if let d = jsonDiff(p, q, path: path + "[\(i)]") { return d }
        }
        return x.count == y.count ? nil : "\(path): length \(x.count) vs \(y.count)"
    case (.object(let x), .object(_)):
        for (k, v) in x {
            guard let w = b[k] else { return "\(path).\(k) missing" }
            if let d = jsonDiff(v, w, path: path + "." + k) { return d }
        }
        return jsonEqual(a, b) ? nil : "\(path): extra keys"
    default:
        return jsonEqual(a, b) ? nil : "\(path): expected \(a.jsonText.prefix(200)) got \(b.jsonText.prefix(200))"
    }
}
