/// Compact one-line JSON text: `", "` and `": "` separators; strings escape `"`, `\`, control
/// characters, U+007F, U+0085, U+2028 and U+2029 (so a line is one line for every reader).
/// Doubles are written as the shortest decimal that reads back as the same float64 (Swift's
/// `description`); a non-finite double is written as `null`. Response fixtures compare this text
/// exactly.
extension JSONValue {
    public var jsonText: String {
        var out = ""
        write(into: &out)
        return out
    }

    public func write(into out: inout String) {
        switch self {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .int(let i): out += String(i)
        case .double(let d): out += d.isFinite ? String(d) : "null"
        case .string(let s): JSONValue.writeString(s, into: &out)
        case .array(let a):
            out += "["
            for (k, v) in a.enumerated() {
                if k > 0 { out += ", " }
                v.write(into: &out)
            }
            out += "]"
        case .object(let pairs):
            out += "{"
            for (k, (key, v)) in pairs.enumerated() {
                if k > 0 { out += ", " }
                JSONValue.writeString(key, into: &out)
                out += ": "
                v.write(into: &out)
            }
            out += "}"
        }
    }

    /// `s` as a JSON string literal (quotes included).
    public static func quoted(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.utf8.count + 2)
        writeString(s, into: &out)
        return out
    }

    public static func writeString(_ s: String, into out: inout String) {
        out += "\""
        for u in s.unicodeScalars {
            switch u.value {
            case 0x22: out += "\\\""
            case 0x5C: out += "\\\\"
            case 0x0A: out += "\\n"
            case 0x0D: out += "\\r"
            case 0x09: out += "\\t"
            case 0x08: out += "\\b"
            case 0x0C: out += "\\f"
            case 0..<0x20, 0x7F, 0x85, 0x2028, 0x2029:
                let h = String(u.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - h.count) + h
            default: out.unicodeScalars.append(u)
            }
        }
        out += "\""
    }

    /// `text` quoted for an error message, cut after `limit` Unicode scalars ("…" marks the cut).
    /// Scalars, not `Character`s: one Character can hold any number of combining scalars.
    public static func quotedExcerpt(_ text: String, limit: Int = 100) -> String {
        let scalars = text.unicodeScalars
        guard let cut = scalars.index(scalars.startIndex, offsetBy: limit, limitedBy: scalars.endIndex),
            cut != scalars.endIndex
        else { return quoted(text) }
        return quoted(String(String.UnicodeScalarView(scalars[..<cut]))) + "…"
    }
}
