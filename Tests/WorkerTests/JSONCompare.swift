import Tokenizers
import Wire

/// Compares response JSON: objects by keys (order-free), arrays in order, strings, integers and
/// booleans exactly, other numbers within `tolerance` (absolute, or relative for large values).
/// Batching the same requests differently changes float sums slightly (packed passes of other
/// lengths), so scores are compared within 1e-5 and everything else exactly.
enum JSONCompare {
    static func difference(_ a: JSONValue, _ b: JSONValue, tolerance: Double = 1e-5, path: String = "$") -> String? {
        switch (a, b) {
        case (.object(let x), .object(let y)):
            let kx = x.map(\.0).sorted(), ky = y.map(\.0).sorted()
            guard kx == ky else { return "\(path): keys \(kx) != \(ky)" }
            for (key, value) in x {
                guard let other = b[key] else { return "\(path).\(key) missing" }
                if let d = difference(value, other, tolerance: tolerance, path: "\(path).\(key)") { return d }
            }
            return nil
        case (.array(let x), .array(let y)):
            guard x.count == y.count else { return "\(path): \(x.count) items != \(y.count)" }
            for i in x.indices {
                if let d = difference(x[i], y[i], tolerance: tolerance, path: "\(path)[\(i)]") { return d }
            }
            return nil
        case (.string(let x), .string(let y)):
            return Array(x.unicodeScalars) == Array(y.unicodeScalars) ? nil : "\(path): \(x.debugDescription) != \(y.debugDescription)"
        case (.bool(let x), .bool(let y)): return x == y ? nil : "\(path): \(x) != \(y)"
        case (.null, .null): return nil
        case (.int(let x), .int(let y)): return x == y ? nil : "\(path): \(x) != \(y)"
        default:
            if let x = a.doubleValue, let y = b.doubleValue, abs(x - y) <= tolerance * max(1, abs(y)) { return nil }
            return "\(path): \(a.jsonText.prefix(120)) != \(b.jsonText.prefix(120))"
        }
    }

    /// Parses two response lines and compares them.
    static func difference(_ a: String, _ b: String, tolerance: Double = 1e-5) -> String? {
        guard let x = try? JSONValue.parse(Array(a.utf8), context: "a"), let y = try? JSONValue.parse(Array(b.utf8), context: "b") else {
            return "not JSON: \(a.prefix(120)) / \(b.prefix(120))"
        }
        return difference(x, y, tolerance: tolerance)
    }

    /// The `head` of a response line.
    static func head(_ line: String) -> String? {
        (try? JSONValue.parse(Array(line.utf8), context: "r"))?["head"]?.stringValue
    }

    static func isPartial(_ line: String) -> Bool {
        (try? JSONValue.parse(Array(line.utf8), context: "r"))?["partial"]?.boolValue == true
    }
}
