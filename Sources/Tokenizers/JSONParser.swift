/// A small strict JSON parser (RFC 8259) over UTF-8 bytes that keeps object keys byte-exact and
/// in order. Errors name the file and byte offset; nesting depth is bounded.
struct JSONParser {
    let bytes: [UInt8]
    let context: String
    var i = 0
    static let maxDepth = 512
    /// Longest string accepted in a tokenizer file (a hostile file may hold 100 MB strings).
    static let maxStringBytes = 16 << 20

    init(bytes: [UInt8], context: String) {
        self.bytes = bytes
        self.context = context
    }

    func fail(_ what: String) -> TokenizerError {
        .malformedJSON(context: context, detail: "\(what) at byte \(i)")
    }

    mutating func parseDocument() throws(TokenizerError) -> JSONValue {
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { i = 3 }
        let v = try parseValue(depth: 0)
        skipWS()
        if i != bytes.count { throw fail("trailing characters") }
        return v
    }

    mutating func skipWS() {
        while i < bytes.count {
            let c = bytes[i]
            if c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 { i += 1 } else { break }
        }
    }

    mutating func parseValue(depth: Int) throws(TokenizerError) -> JSONValue {
        if depth > JSONParser.maxDepth { throw fail("nesting deeper than \(JSONParser.maxDepth)") }
        skipWS()
        guard i < bytes.count else { throw fail("unexpected end of input") }
        switch bytes[i] {
        case 0x7B: return try parseObject(depth: depth)
        case 0x5B: return try parseArray(depth: depth)
        case 0x22: return .string(try parseString())
        case 0x74: try literal("true"); return .bool(true)
        case 0x66: try literal("false"); return .bool(false)
        case 0x6E: try literal("null"); return .null
        case 0x2D, 0x30...0x39: return try parseNumber()
        default: throw fail("unexpected character")
        }
    }

    mutating func literal(_ word: String) throws(TokenizerError) {
        let w = Array(word.utf8)
        guard i + w.count <= bytes.count, bytes[i..<(i + w.count)].elementsEqual(w) else { throw fail("invalid literal") }
        i += w.count
    }

    /// Objects with a duplicate key are refused: readers that keep the first value and readers that
    /// keep the last (as `JSONValue`'s subscript does) would otherwise see different documents.
    /// Keys are compared after unescaping, byte for byte (like every key lookup here), through a
    /// hash set: O(n) in the number of keys.
    mutating func parseObject(depth: Int) throws(TokenizerError) -> JSONValue {
        i += 1
        var pairs: [(String, JSONValue)] = []
        var seen = Set<VocabKey>()
        skipWS()
        if i < bytes.count, bytes[i] == 0x7D { i += 1; return .object(pairs) }
        while true {
            skipWS()
            guard i < bytes.count, bytes[i] == 0x22 else { throw fail("expected a string key") }
            let keyStart = i
            let key = try parseString()
            guard seen.insert(VocabKey(key)).inserted else {
                throw .malformedJSON(context: context, detail: "duplicate key \(JSONParser.quotedExcerpt(key)) at byte \(keyStart)")
            }
            skipWS()
            guard i < bytes.count, bytes[i] == 0x3A else { throw fail("expected `:`") }
            i += 1
            let v = try parseValue(depth: depth + 1)
            pairs.append((key, v))
            skipWS()
            guard i < bytes.count else { throw fail("unterminated object") }
            if bytes[i] == 0x2C { i += 1; continue }
            if bytes[i] == 0x7D { i += 1; return .object(pairs) }
            throw fail("expected `,` or `}`")
        }
    }

    /// `text` quoted for an error message, cut after `limit` Unicode scalars ("…" marks the cut).
    /// Scalars, not `Character`s: one Character can hold any number of combining scalars.
    static func quotedExcerpt(_ text: String, limit: Int = 100) -> String {
        let scalars = text.unicodeScalars
        var out = ""
        if let cut = scalars.index(scalars.startIndex, offsetBy: limit, limitedBy: scalars.endIndex), cut != scalars.endIndex {
            JSONValue.writeString(String(String.UnicodeScalarView(scalars[..<cut])), into: &out)
            out += "…"
        } else {
            JSONValue.writeString(text, into: &out)
        }
        return out
    }

    mutating func parseArray(depth: Int) throws(TokenizerError) -> JSONValue {
        i += 1
        var items: [JSONValue] = []
        skipWS()
        if i < bytes.count, bytes[i] == 0x5D { i += 1; return .array(items) }
        while true {
            items.append(try parseValue(depth: depth + 1))
            skipWS()
            guard i < bytes.count else { throw fail("unterminated array") }
            if bytes[i] == 0x2C { i += 1; continue }
            if bytes[i] == 0x5D { i += 1; return .array(items) }
            throw fail("expected `,` or `]`")
        }
    }

    mutating func hex4() throws(TokenizerError) -> UInt32 {
        guard i + 4 <= bytes.count else { throw fail("truncated \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[i]
            let d: UInt32
            switch c {
            case 0x30...0x39: d = UInt32(c - 0x30)
            case 0x41...0x46: d = UInt32(c - 0x41 + 10)
            case 0x61...0x66: d = UInt32(c - 0x61 + 10)
            default: throw fail("invalid \\u escape")
            }
            v = v * 16 + d
            i += 1
        }
        return v
    }

    mutating func parseString() throws(TokenizerError) -> String {
        i += 1
        let start = i
        // Fast path: no escapes.
        while i < bytes.count {
            let c = bytes[i]
            if c == 0x22 {
                if i - start > JSONParser.maxStringBytes {
                    throw .inputTooLarge(what: "string at byte \(start) of \(context)", size: i - start, limit: JSONParser.maxStringBytes)
                }
                let s = bytes[start..<i]
                i += 1
                guard let str = String(validating: s, as: UTF8.self) else { throw fail("invalid UTF-8 in string") }
                return str
            }
            if c == 0x5C || c < 0x20 { break }
            i += 1
        }
        var buf = [UInt8](bytes[start..<i])
        while true {
            guard i < bytes.count else { throw fail("unterminated string") }
            let c = bytes[i]
            if c == 0x22 { i += 1; break }
            if buf.count > JSONParser.maxStringBytes {
                throw .inputTooLarge(what: "string at byte \(start) of \(context)", size: buf.count, limit: JSONParser.maxStringBytes)
            }
            if c < 0x20 { throw fail("control character in string") }
            if c != 0x5C { buf.append(c); i += 1; continue }
            i += 1
            guard i < bytes.count else { throw fail("unterminated escape") }
            let e = bytes[i]
            i += 1
            switch e {
            case 0x22: buf.append(0x22)
            case 0x5C: buf.append(0x5C)
            case 0x2F: buf.append(0x2F)
            case 0x62: buf.append(0x08)
            case 0x66: buf.append(0x0C)
            case 0x6E: buf.append(0x0A)
            case 0x72: buf.append(0x0D)
            case 0x74: buf.append(0x09)
            case 0x75:
                var v = try hex4()
                if v >= 0xD800 && v < 0xDC00 {
                    guard i + 6 <= bytes.count, bytes[i] == 0x5C, bytes[i + 1] == 0x75 else { throw fail("lone surrogate") }
                    i += 2
                    let lo = try hex4()
                    guard lo >= 0xDC00 && lo < 0xE000 else { throw fail("invalid surrogate pair") }
                    v = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00)
                } else if v >= 0xDC00 && v < 0xE000 {
                    throw fail("lone surrogate")
                }
                guard let u = Unicode.Scalar(v) else { throw fail("invalid code point") }
                buf.append(contentsOf: Array(String(Character(u)).utf8))
            default: throw fail("invalid escape")
            }
        }
        guard let str = String(validating: buf, as: UTF8.self) else { throw fail("invalid UTF-8 in string") }
        return str
    }

    mutating func parseNumber() throws(TokenizerError) -> JSONValue {
        let start = i
        if bytes[i] == 0x2D { i += 1 }
        var isInt = true
        guard i < bytes.count, bytes[i] >= 0x30, bytes[i] <= 0x39 else { throw fail("invalid number") }
        while i < bytes.count, bytes[i] >= 0x30, bytes[i] <= 0x39 { i += 1 }
        if i < bytes.count, bytes[i] == 0x2E {
            isInt = false; i += 1
            guard i < bytes.count, bytes[i] >= 0x30, bytes[i] <= 0x39 else { throw fail("invalid number") }
            while i < bytes.count, bytes[i] >= 0x30, bytes[i] <= 0x39 { i += 1 }
        }
        if i < bytes.count, bytes[i] == 0x65 || bytes[i] == 0x45 {
            isInt = false; i += 1
            if i < bytes.count, bytes[i] == 0x2B || bytes[i] == 0x2D { i += 1 }
            guard i < bytes.count, bytes[i] >= 0x30, bytes[i] <= 0x39 else { throw fail("invalid number") }
            while i < bytes.count, bytes[i] >= 0x30, bytes[i] <= 0x39 { i += 1 }
        }
        let text = String(decoding: bytes[start..<i], as: UTF8.self)
        if isInt, let v = Int(text) { return .int(v) }
        guard let d = Double(text) else { throw fail("invalid number") }
        return .double(d)
    }
}
