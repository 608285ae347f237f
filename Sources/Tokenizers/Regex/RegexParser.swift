/// Parser for the Oniguruma (Ruby syntax) subset used by tokenizer.json patterns.
indirect enum RegexNode {
    case empty
    case cls(CharClass)  // a single-character matcher (literal, class, `.`, `\s`…)
    case clsRef(Int)  // a class already in the compiler's table (used by the compiler only)
    case concat([RegexNode])
    case alt([RegexNode])
    case rep(RegexNode, min: Int, max: Int, greedy: Bool, possessive: Bool)  // max < 0: unbounded
    case look(RegexNode, ahead: Bool, negate: Bool)
    case atomic(RegexNode)
    case assert(RegexAssertion)

    var nullable: Bool {
        switch self {
        case .empty, .look, .assert: return true
        case .cls, .clsRef: return false
        case .concat(let xs): return xs.allSatisfy { $0.nullable }
        case .alt(let xs): return xs.contains { $0.nullable }
        case .rep(let n, let min, _, _, _): return min == 0 || n.nullable
        case .atomic(let n): return n.nullable
        }
    }

    /// Length in scalars if every match has the same length.
    var fixedLength: Int? {
        switch self {
        case .empty, .look, .assert: return 0
        case .cls, .clsRef: return 1
        case .concat(let xs):
            var total = 0
            for x in xs {
                guard let l = x.fixedLength else { return nil }
                total += l
            }
            return total
        case .alt(let xs):
            guard let first = xs.first?.fixedLength else { return 0 }
            for x in xs where x.fixedLength != first { return nil }
            return first
        case .rep(let n, let min, let max, _, _):
            guard min == max, let l = n.fixedLength else { return nil }
            return l * min
        case .atomic(let n): return n.fixedLength
        }
    }
}

enum RegexAssertion: Sendable {
    case lineStart, lineEnd, textStart, textEnd, textEndNewline, wordBoundary, notWordBoundary
}

struct RegexParser {
    let pattern: String
    let s: [UInt32]
    var i = 0
    var caseInsensitive = false
    var multiline = false  // Ruby (?m): `.` also matches \n

    init(_ pattern: String) {
        self.pattern = pattern
        self.s = pattern.unicodeScalars.map { $0.value }
    }

    func fail(_ reason: String) -> TokenizerError {
        .invalidRegex(pattern: pattern, reason: reason + " at offset \(i)")
    }

    mutating func parse() throws(TokenizerError) -> RegexNode {
        let node = try parseAlt(depth: 0)
        if i < s.count { throw fail("unmatched `)`") }
        return node
    }

    var atEnd: Bool { i >= s.count }
    func peek() -> UInt32? { i < s.count ? s[i] : nil }

    mutating func parseAlt(depth: Int) throws(TokenizerError) -> RegexNode {
        if depth > 200 { throw fail("nesting too deep") }
        var alts: [RegexNode] = []
        let savedCI = caseInsensitive, savedML = multiline
        alts.append(try parseConcat(depth: depth))
        while peek() == 0x7C {  // |
            i += 1
            alts.append(try parseConcat(depth: depth))
        }
        caseInsensitive = savedCI
        multiline = savedML
        return alts.count == 1 ? alts[0] : .alt(alts)
    }

    mutating func parseConcat(depth: Int) throws(TokenizerError) -> RegexNode {
        var items: [RegexNode] = []
        while let c = peek(), c != 0x7C, c != 0x29 {  // | )
            var atom = try parseAtom(depth: depth)
            atom = try parseQuantifiers(atom)
            items.append(atom)
        }
        if items.isEmpty { return .empty }
        return items.count == 1 ? items[0] : .concat(items)
    }

    mutating func parseQuantifiers(_ node: RegexNode) throws(TokenizerError) -> RegexNode {
        var node = node
        while let c = peek() {
            var minC = 0, maxC = -1
            switch c {
            case 0x2A:
                minC = 0
                maxC = -1
                i += 1  // *
            case 0x2B:
                minC = 1
                maxC = -1
                i += 1  // +
            case 0x3F:
                minC = 0
                maxC = 1
                i += 1  // ?
            case 0x7B:  // {
                guard let (lo, hi, len) = parseInterval(at: i) else { return node }
                minC = lo
                maxC = hi
                i += len
            default: return node
            }
            if case .assert = node { throw fail("target of repeat operator is invalid") }
            if case .look = node { throw fail("target of repeat operator is invalid") }
            var greedy = true, possessive = false
            if peek() == 0x3F {
                greedy = false
                i += 1
            } else if peek() == 0x2B, c != 0x7B {
                possessive = true
                i += 1
            }
            if maxC >= 0 && minC > maxC { throw fail("upper bound smaller than lower bound in interval") }
            if minC > 100_000 || maxC > 100_000 { throw fail("too big number for repeat range") }
            node = .rep(node, min: minC, max: maxC, greedy: greedy, possessive: possessive)
        }
        return node
    }

    /// `{n}`, `{n,}`, `{n,m}`, `{,m}`; returns nil when the brace is a literal.
    func parseInterval(at start: Int) -> (Int, Int, Int)? {
        var j = start + 1
        func num() -> Int? {
            var v = 0, any = false
            while j < s.count, s[j] >= 0x30, s[j] <= 0x39 {
                v = min(v * 10 + Int(s[j] - 0x30), 1_000_000)
                any = true
                j += 1
            }
            return any ? v : nil
        }
        let lo = num()
        if j < s.count, s[j] == 0x7D {
            guard let lo else { return nil }
            return (lo, lo, j + 1 - start)
        }
        guard j < s.count, s[j] == 0x2C else { return nil }
        j += 1
        let hi = num()
        guard j < s.count, s[j] == 0x7D else { return nil }
        if lo == nil && hi == nil { return nil }
        return (lo ?? 0, hi ?? -1, j + 1 - start)
    }

    mutating func literal(_ v: UInt32) -> RegexNode {
        var c = CharClass.single(v)
        c.caseInsensitive = caseInsensitive
        return .cls(c)
    }

    mutating func parseAtom(depth: Int) throws(TokenizerError) -> RegexNode {
        guard let c = peek() else { throw fail("unexpected end") }
        i += 1
        switch c {
        case 0x28: return try parseGroup(depth: depth)  // (
        case 0x5B: return .cls(try parseClass(depth: depth))  // [
        case 0x2E:  // .
            return .cls(multiline ? CharClass(items: [.any]) : CharClass(items: [.range(0x0A, 0x0A)], negated: true))
        case 0x5E: return .assert(.lineStart)
        case 0x24: return .assert(.lineEnd)
        case 0x5C: return try parseEscape(inClass: false)
        case 0x2A, 0x2B, 0x3F: throw fail("target of repeat operator is not specified")
        default: return literal(c)
        }
    }

    mutating func parseGroup(depth: Int) throws(TokenizerError) -> RegexNode {
        var kind = 0  // 0 plain, 1 lookahead, 2 neg lookahead, 3 lookbehind, 4 neg lookbehind, 5 atomic
        let savedCI = caseInsensitive, savedML = multiline
        if peek() == 0x3F {  // ?
            i += 1
            guard let k = peek() else { throw fail("end pattern in group") }
            switch k {
            case 0x3A: i += 1  // (?:
            case 0x3D:
                i += 1
                kind = 1
            case 0x21:
                i += 1
                kind = 2
            case 0x3E:
                i += 1
                kind = 5
            case 0x3C:  // (?<= (?<! (?<name>
                i += 1
                if peek() == 0x3D {
                    i += 1
                    kind = 3
                } else if peek() == 0x21 {
                    i += 1
                    kind = 4
                } else {
                    while let n = peek(), n != 0x3E { i += 1 }
                    if atEnd { throw fail("invalid group name") }
                    i += 1
                }
            case 0x50:  // (?P<name>
                i += 1
                guard peek() == 0x3C else { throw fail("undefined group option") }
                while let n = peek(), n != 0x3E { i += 1 }
                if atEnd { throw fail("invalid group name") }
                i += 1
            case 0x23:  // (?# comment )
                while let n = peek(), n != 0x29 { i += 1 }
                if atEnd { throw fail("end pattern in group") }
                i += 1
                return .empty
            default:
                // flags: (?imx-imx) or (?imx-imx:subexp)
                var on = true
                var ci = caseInsensitive, ml = multiline
                while let f = peek(), f != 0x29, f != 0x3A {
                    switch f {
                    case 0x2D: on = false
                    case 0x69: ci = on
                    case 0x6D: ml = on
                    case 0x78: throw fail("extended mode (?x) is not supported")
                    default: throw fail("undefined group option")
                    }
                    i += 1
                }
                guard let end = peek() else { throw fail("end pattern in group") }
                i += 1
                if end == 0x29 {  // (?i) applies to the rest of the enclosing group
                    caseInsensitive = ci
                    multiline = ml
                    return .empty
                }
                caseInsensitive = ci
                multiline = ml
            }
        }
        let inner = try parseAlt(depth: depth + 1)
        caseInsensitive = savedCI
        multiline = savedML
        guard peek() == 0x29 else { throw fail("end pattern with unmatched parenthesis") }
        i += 1
        switch kind {
        case 1: return .look(inner, ahead: true, negate: false)
        case 2: return .look(inner, ahead: true, negate: true)
        case 3, 4:
            guard inner.fixedLength != nil else { throw fail("invalid pattern in look-behind") }
            return .look(inner, ahead: false, negate: kind == 4)
        case 5: return .atomic(inner)
        default: return inner
        }
    }

    mutating func hexValue(maxDigits: Int, braced: Bool) throws(TokenizerError) -> UInt32 {
        var v: UInt32 = 0, n = 0
        if braced {
            guard peek() == 0x7B else { throw fail("invalid code point value") }
            i += 1
        }
        while let h = peek(), n < (braced ? 8 : maxDigits) {
            let d: UInt32
            switch h {
            case 0x30...0x39: d = h - 0x30
            case 0x41...0x46: d = h - 0x41 + 10
            case 0x61...0x66: d = h - 0x61 + 10
            default: d = 99
            }
            if d == 99 { break }
            v = v * 16 + d
            n += 1
            i += 1
        }
        if braced {
            guard peek() == 0x7D else { throw fail("invalid code point value") }
            i += 1
        }
        if n == 0 { throw fail("invalid code point value") }
        if v > 0x10FFFF { throw fail("too big wide-char value") }
        return v
    }

    /// After a backslash.
    mutating func parseEscape(inClass: Bool) throws(TokenizerError) -> RegexNode {
        guard let e = peek() else { throw fail("end pattern at escape") }
        i += 1
        switch e {
        case 0x73: return .cls(CharClass(items: [.whitespace]))  // s
        case 0x53: return .cls(CharClass(items: [.whitespace], negated: true))
        case 0x64: return .cls(CharClass(items: [CharClass.property("nd") ?? .any]))  // d
        case 0x44: return .cls(CharClass(items: [CharClass.property("nd") ?? .any], negated: true))
        case 0x77: return .cls(CharClass(items: [.word]))
        case 0x57: return .cls(CharClass(items: [.word], negated: true))
        case 0x68: return .cls(CharClass(items: [.range(0x30, 0x39), .range(0x41, 0x46), .range(0x61, 0x66)]))
        case 0x48: return .cls(CharClass(items: [.range(0x30, 0x39), .range(0x41, 0x46), .range(0x61, 0x66)], negated: true))
        case 0x70, 0x50:  // p P
            guard peek() == 0x7B else { throw fail("invalid character property name") }
            i += 1
            var negate = e == 0x50
            if peek() == 0x5E {
                negate.toggle()
                i += 1
            }
            var name = ""
            while let n = peek(), n != 0x7D {
                guard let sc = Unicode.Scalar(n) else { throw fail("invalid property") }
                name.unicodeScalars.append(sc)
                i += 1
            }
            if atEnd { throw fail("invalid character property name {\(name)") }
            i += 1
            guard let item = CharClass.property(name) else { throw fail("invalid character property name {\(name)}") }
            return .cls(CharClass(items: [item], negated: negate))
        case 0x6E: return literal(0x0A)
        case 0x72: return literal(0x0D)
        case 0x74: return literal(0x09)
        case 0x66: return literal(0x0C)
        case 0x76: return literal(0x0B)
        case 0x61: return literal(0x07)
        case 0x65: return literal(0x1B)
        case 0x30: return literal(0)
        case 0x78:  // x
            if peek() == 0x7B { return literal(try hexValue(maxDigits: 8, braced: true)) }
            return literal(try hexValue(maxDigits: 2, braced: false))
        case 0x75: return literal(try hexValue(maxDigits: 4, braced: false))
        case 0x62:
            if inClass { return literal(0x08) }
            return .assert(.wordBoundary)
        case 0x42:
            if inClass { throw fail("invalid escape in class") }
            return .assert(.notWordBoundary)
        case 0x41:
            if inClass { throw fail("invalid escape in class") }
            return .assert(.textStart)
        case 0x7A:
            if inClass { throw fail("invalid escape in class") }
            return .assert(.textEnd)
        case 0x5A:
            if inClass { throw fail("invalid escape in class") }
            return .assert(.textEndNewline)
        case 0x31...0x39, 0x6B, 0x67, 0x52, 0x58, 0x4B, 0x47:
            throw fail("unsupported escape \\\(Character(Unicode.Scalar(e) ?? "?"))")
        default: return literal(e)
        }
    }

    mutating func parseClass(depth: Int) throws(TokenizerError) -> CharClass {
        var cls = CharClass()
        cls.caseInsensitive = caseInsensitive
        if peek() == 0x5E {
            cls.negated = true
            i += 1
        }
        var first = true
        while true {
            guard let c = peek() else { throw fail("premature end of char-class") }
            if c == 0x5D && !first {
                i += 1
                break
            }  // ]
            first = false
            if c == 0x5B {  // nested class or POSIX bracket
                if i + 1 < s.count, s[i + 1] == 0x3A {
                    throw fail("POSIX bracket expressions are not supported")
                }
                i += 1
                if depth > 50 { throw fail("nesting too deep") }
                cls.items.append(.nested(try parseClass(depth: depth + 1)))
                continue
            }
            if c == 0x26, i + 1 < s.count, s[i + 1] == 0x26 { throw fail("class intersection && is not supported") }
            var lo: UInt32
            i += 1
            if c == 0x5C {
                let node = try parseEscape(inClass: true)
                guard case .cls(let sub) = node else { throw fail("invalid escape in class") }
                if case .range(let a, let b) = sub.items.first, sub.items.count == 1, a == b, !sub.negated {
                    lo = a
                } else {
                    cls.items.append(.nested(sub))
                    continue
                }
            } else {
                lo = c
            }
            // range?
            if peek() == 0x2D, i + 1 < s.count, s[i + 1] != 0x5D {
                i += 1
                guard let h = peek() else { throw fail("premature end of char-class") }
                i += 1
                var hi = h
                if h == 0x5C {
                    let node = try parseEscape(inClass: true)
                    guard case .cls(let sub) = node, case .range(let a, let b) = sub.items.first, a == b, sub.items.count == 1 else {
                        throw fail("char-class value at end of range")
                    }
                    hi = a
                } else if h == 0x5B {
                    throw fail("char-class value at end of range")
                }
                if hi < lo { throw fail("empty range in char class") }
                cls.items.append(.range(lo, hi))
            } else {
                cls.items.append(.range(lo, lo))
            }
        }
        return cls
    }
}
