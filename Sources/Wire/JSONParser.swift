/// Why a document is not accepted: `message` ("invalid literal", `duplicate key "a"`, …) at byte
/// `offset` of the document; or a string longer than the limit (``JSONLimits/maxStringBytes``).
public struct JSONSyntaxError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        case syntax
        /// A string of `size` bytes (so far) starting at `offset`, over `limit`.
        case stringTooLong(size: Int, limit: Int)
    }

    public var kind: Kind
    public var message: String
    public var offset: Int

    public init(_ message: String, offset: Int) {
        self.init(.syntax, message, offset: offset)
    }

    public init(_ kind: Kind, _ message: String, offset: Int) {
        self.kind = kind
        self.message = message
        self.offset = offset
    }

    /// "invalid literal at byte 0".
    public var description: String { "\(message) at byte \(offset)" }
}

/// What a document may be. Every limit holds for hostile input in time and memory linear in its size.
public struct JSONLimits: Sendable {
    /// How duplicate object keys are recognised (a duplicate is always an error).
    public enum KeyIdentity: Sendable {
        /// Byte for byte after unescaping (tokenizer vocabularies: NFC and NFD are two tokens).
        case bytes
        /// Swift `String` equality (canonical equivalence), for readers that look keys up by `String`.
        case canonical
    }

    /// Containers may nest `maxDepth + 1` levels deep (the top level is depth 0).
    public var maxDepth: Int
    /// Longest string (after unescaping), in UTF-8 bytes.
    public var maxStringBytes: Int
    /// Skip a leading UTF-8 byte order mark (tokenizer files written by some editors have one).
    public var allowsByteOrderMark: Bool
    public var keyIdentity: KeyIdentity

    public init(
        maxDepth: Int = 512, maxStringBytes: Int = 16 << 20, allowsByteOrderMark: Bool = false,
        keyIdentity: KeyIdentity = .bytes
    ) {
        self.maxDepth = maxDepth
        self.maxStringBytes = maxStringBytes
        self.allowsByteOrderMark = allowsByteOrderMark
        self.keyIdentity = keyIdentity
    }

    /// Requests, responses and tokenizer files.
    public static let standard = JSONLimits()
}

extension JSONValue {
    /// Parses one strict RFC 8259 document (UTF-8; whitespace around it allowed). Duplicate keys,
    /// leading zeros, lone surrogates, invalid UTF-8 and trailing characters are errors.
    public static func parse(_ bytes: UnsafeRawBufferPointer, limits: JSONLimits = .standard) throws(JSONSyntaxError) -> JSONValue {
        var parser = JSONParser(bytes: bytes, limits: limits)
        return try parser.parseDocument()
    }

    public static func parse(_ bytes: [UInt8], limits: JSONLimits = .standard) throws(JSONSyntaxError) -> JSONValue {
        let result: Result<JSONValue, JSONSyntaxError> = bytes.withUnsafeBytes { raw in
            Result { () throws(JSONSyntaxError) -> JSONValue in try parse(raw, limits: limits) }
        }
        return try result.get()
    }
}

/// A hash key comparing strings byte for byte.
private struct ByteKey: Hashable {
    let string: String
    static func == (a: ByteKey, b: ByteKey) -> Bool { a.string.utf8.elementsEqual(b.string.utf8) }
    func hash(into h: inout Hasher) {
        let u = string.utf8
        if u.withContiguousStorageIfAvailable({ h.combine(bytes: UnsafeRawBufferPointer($0)) }) == nil {
            for b in u { h.combine(b) }
        }
        h.combine(u.count)
    }
}

/// The parser over a byte buffer (recursive descent; depth bounded by ``JSONLimits/maxDepth``).
struct JSONParser {
    private let bytes: UnsafeRawBufferPointer
    private let limits: JSONLimits
    private var i = 0

    init(bytes: UnsafeRawBufferPointer, limits: JSONLimits) {
        self.bytes = bytes
        self.limits = limits
    }

    private func fail(_ what: String) -> JSONSyntaxError { JSONSyntaxError(what, offset: i) }

    mutating func parseDocument() throws(JSONSyntaxError) -> JSONValue {
        if limits.allowsByteOrderMark, bytes.count >= 3, bytes[0] == 0xEF, bytes[1] == 0xBB, bytes[2] == 0xBF { i = 3 }
        let v = try parseValue(depth: 0)
        skipWS()
        if i != bytes.count { throw fail("trailing characters") }
        return v
    }

    private mutating func skipWS() {
        while i < bytes.count {
            let c = bytes[i]
            if c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 { i += 1 } else { break }
        }
    }

    private mutating func parseValue(depth: Int) throws(JSONSyntaxError) -> JSONValue {
        if depth > limits.maxDepth { throw fail("nesting deeper than \(limits.maxDepth)") }
        skipWS()
        guard i < bytes.count else { throw fail("unexpected end of input") }
        switch bytes[i] {
        case 0x7B: return try parseObject(depth: depth)
        case 0x5B: return try parseArray(depth: depth)
        case 0x22: return .string(try parseString())
        case 0x74:
            try literal("true")
            return .bool(true)
        case 0x66:
            try literal("false")
            return .bool(false)
        case 0x6E:
            try literal("null")
            return .null
        case 0x2D, 0x30...0x39: return try parseNumber()
        default: throw fail("unexpected character")
        }
    }

    private mutating func literal(_ word: StaticString) throws(JSONSyntaxError) {
        let n = word.utf8CodeUnitCount
        guard bytes.count - i >= n else { throw fail("invalid literal") }
        let w = word.utf8Start
        for k in 0..<n where bytes[i + k] != w[k] { throw fail("invalid literal") }
        i += n
    }

    /// Objects with a duplicate key are refused: readers that keep the first value and readers that
    /// keep the last (as the subscript does) would otherwise see different documents. Keys are
    /// compared after unescaping, through a hash set: O(n) in the number of keys.
    private mutating func parseObject(depth: Int) throws(JSONSyntaxError) -> JSONValue {
        i += 1
        var pairs: [(String, JSONValue)] = []
        var seenBytes = Set<ByteKey>()
        var seenStrings = Set<String>()
        skipWS()
        if i < bytes.count, bytes[i] == 0x7D {
            i += 1
            return .object(pairs)
        }
        while true {
            skipWS()
            guard i < bytes.count, bytes[i] == 0x22 else { throw fail("expected a string key") }
            let keyStart = i
            let key = try parseString()
            let inserted: Bool
            switch limits.keyIdentity {
            case .bytes: inserted = seenBytes.insert(ByteKey(string: key)).inserted
            case .canonical: inserted = seenStrings.insert(key).inserted
            }
            guard inserted else { throw JSONSyntaxError("duplicate key \(JSONValue.quotedExcerpt(key))", offset: keyStart) }
            skipWS()
            guard i < bytes.count, bytes[i] == 0x3A else { throw fail("expected `:`") }
            i += 1
            let v = try parseValue(depth: depth + 1)
            pairs.append((key, v))
            skipWS()
            guard i < bytes.count else { throw fail("unterminated object") }
            if bytes[i] == 0x2C {
                i += 1
                continue
            }
            if bytes[i] == 0x7D {
                i += 1
                return .object(pairs)
            }
            throw fail("expected `,` or `}`")
        }
    }

    private mutating func parseArray(depth: Int) throws(JSONSyntaxError) -> JSONValue {
        i += 1
        var items: [JSONValue] = []
        skipWS()
        if i < bytes.count, bytes[i] == 0x5D {
            i += 1
            return .array(items)
        }
        while true {
            items.append(try parseValue(depth: depth + 1))
            skipWS()
            guard i < bytes.count else { throw fail("unterminated array") }
            if bytes[i] == 0x2C {
                i += 1
                continue
            }
            if bytes[i] == 0x5D {
                i += 1
                return .array(items)
            }
            throw fail("expected `,` or `]`")
        }
    }

    private mutating func hex4() throws(JSONSyntaxError) -> UInt32 {
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

    private func tooLong(_ start: Int, _ size: Int) -> JSONSyntaxError {
        JSONSyntaxError(.stringTooLong(size: size, limit: limits.maxStringBytes), "string too long", offset: start)
    }

    /// A string from its opening quote, validated as UTF-8 (bytes >= 0x80 outside strings are
    /// grammar errors, so a parsed document is UTF-8).
    private mutating func parseString() throws(JSONSyntaxError) -> String {
        i += 1
        let start = i
        // Fast path: no escapes.
        while i < bytes.count {
            let c = bytes[i]
            if c == 0x22 {
                if i - start > limits.maxStringBytes { throw tooLong(start, i - start) }
                let s = UnsafeRawBufferPointer(rebasing: bytes[start..<i])
                i += 1
                guard let str = String(validating: s, as: UTF8.self) else { throw fail("invalid UTF-8 in string") }
                return str
            }
            if c == 0x5C || c < 0x20 { break }
            i += 1
        }
        var buf = [UInt8](UnsafeRawBufferPointer(rebasing: bytes[start..<i]))
        while true {
            guard i < bytes.count else { throw fail("unterminated string") }
            let c = bytes[i]
            if c == 0x22 {
                i += 1
                break
            }
            if buf.count > limits.maxStringBytes { throw tooLong(start, buf.count) }
            if c < 0x20 { throw fail("control character in string") }
            if c != 0x5C {
                buf.append(c)
                i += 1
                continue
            }
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
                buf.append(contentsOf: String(Character(u)).utf8)
            default: throw fail("invalid escape")
            }
        }
        guard let str = String(validating: buf, as: UTF8.self) else { throw fail("invalid UTF-8 in string") }
        return str
    }

    /// RFC 8259 numbers only: no leading zeros, no `+`, digits after `.` and `e`. An integer
    /// literal that fits `Int` is `.int`; anything else `.double` (out of range: ±infinity).
    private mutating func parseNumber() throws(JSONSyntaxError) -> JSONValue {
        let start = i
        if bytes[i] == 0x2D { i += 1 }
        var isInt = true
        guard i < bytes.count, bytes[i] >= 0x30, bytes[i] <= 0x39 else { throw fail("invalid number") }
        if bytes[i] == 0x30 {
            i += 1
            if i < bytes.count, bytes[i] >= 0x30, bytes[i] <= 0x39 { throw fail("invalid number") }
        }
        while i < bytes.count, bytes[i] >= 0x30, bytes[i] <= 0x39 { i += 1 }
        if i < bytes.count, bytes[i] == 0x2E {
            isInt = false
            i += 1
            guard i < bytes.count, bytes[i] >= 0x30, bytes[i] <= 0x39 else { throw fail("invalid number") }
            while i < bytes.count, bytes[i] >= 0x30, bytes[i] <= 0x39 { i += 1 }
        }
        if i < bytes.count, bytes[i] == 0x65 || bytes[i] == 0x45 {
            isInt = false
            i += 1
            if i < bytes.count, bytes[i] == 0x2B || bytes[i] == 0x2D { i += 1 }
            guard i < bytes.count, bytes[i] >= 0x30, bytes[i] <= 0x39 else { throw fail("invalid number") }
            while i < bytes.count, bytes[i] >= 0x30, bytes[i] <= 0x39 { i += 1 }
        }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<i]), as: UTF8.self)
        if isInt, let v = Int(text) { return .int(v) }
        guard let d = Double(text) else { throw fail("invalid number") }
        return .double(d)
    }
}
