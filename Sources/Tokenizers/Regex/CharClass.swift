/// A set of Unicode scalars for the regex engine: ranges, general categories and a few
/// binary properties, optionally negated. BMP membership is precomputed into a bitmap.
struct CharClass: Sendable {
    enum Item: Sendable {
        case range(UInt32, UInt32)
        /// Bit mask over `GC.rawValue`.
        case categories(UInt32)
        case whitespace
        case word
        case alphabetic
        case lowercase
        case uppercase
        case any
        case nested(CharClass)
    }

    var items: [Item] = []
    var negated = false
    var caseInsensitive = false
    private(set) var bitmap: [UInt64] = []

    init(items: [Item] = [], negated: Bool = false) {
        self.items = items
        self.negated = negated
    }

    static func single(_ v: UInt32) -> CharClass { CharClass(items: [.range(v, v)]) }

    /// Builds the BMP bitmap; call once when the class is complete.
    mutating func finalize() {
        var bits = [UInt64](repeating: 0, count: 1024)
        for v in 0..<UInt32(0x10000) where slowMatches(v) {
            bits[Int(v >> 6)] |= 1 << UInt64(v & 63)
        }
        bitmap = bits
    }

    @inline(__always)
    func matches(_ v: UInt32) -> Bool {
        if v < 0x10000, !bitmap.isEmpty {
            return bitmap[Int(v >> 6)] & (1 << UInt64(v & 63)) != 0
        }
        return slowMatches(v)
    }

    func slowMatches(_ v: UInt32) -> Bool {
        var hit = rawMatches(v)
        if !hit, caseInsensitive {
            let f = UnicodeTables.simpleFold(v)
            if f != v { hit = rawMatches(f) }
            if !hit, let s = Unicode.Scalar(v) {
                let up = s.properties.uppercaseMapping.unicodeScalars
                if up.count == 1, let u = up.first, u.value != v { hit = rawMatches(u.value) }
            }
        }
        return hit != negated
    }

    private func rawMatches(_ v: UInt32) -> Bool {
        for item in items {
            switch item {
            case .range(let lo, let hi): if v >= lo && v <= hi { return true }
            case .categories(let mask):
                if mask & (1 << UInt32(UnicodeTables.category(v).rawValue)) != 0 { return true }
            case .whitespace: if UnicodeTables.isWhitespace(v) { return true }
            case .word: if UnicodeTables.isWord(v) { return true }
            case .alphabetic: if UnicodeTables.flags(v) & UFlag.alphabetic != 0 { return true }
            case .lowercase: if UnicodeTables.flags(v) & UFlag.lowercase != 0 { return true }
            case .uppercase: if UnicodeTables.flags(v) & UFlag.uppercase != 0 { return true }
            case .any: return true
            case .nested(let c): if c.slowMatches(v) { return true }
            }
        }
        return false
    }

    /// Resolves a `\p{…}` name (Oniguruma accepts short and long names, case and `_`/space insensitive).
    static func property(_ rawName: String) -> Item? {
        let name = String(rawName.lowercased().filter { $0 != "_" && $0 != " " && $0 != "-" })
        func cats(_ list: [GC]) -> Item { .categories(list.reduce(0) { $0 | (1 << UInt32($1.rawValue)) }) }
        switch name {
        case "l", "letter": return cats([.Lu, .Ll, .Lt, .Lm, .Lo])
        case "lu", "uppercaseletter": return cats([.Lu])
        case "ll", "lowercaseletter": return cats([.Ll])
        case "lt", "titlecaseletter": return cats([.Lt])
        case "lm", "modifierletter": return cats([.Lm])
        case "lo", "otherletter": return cats([.Lo])
        case "lc", "casedletter", "l&": return cats([.Lu, .Ll, .Lt])
        case "m", "mark", "combiningmark": return cats([.Mn, .Mc, .Me])
        case "mn", "nonspacingmark": return cats([.Mn])
        case "mc", "spacingmark": return cats([.Mc])
        case "me", "enclosingmark": return cats([.Me])
        case "n", "number": return cats([.Nd, .Nl, .No])
        case "nd", "decimalnumber", "digit": return cats([.Nd])
        case "nl", "letternumber": return cats([.Nl])
        case "no", "othernumber": return cats([.No])
        case "p", "punctuation", "punct": return cats([.Pc, .Pd, .Ps, .Pe, .Pi, .Pf, .Po])
        case "pc", "connectorpunctuation": return cats([.Pc])
        case "pd", "dashpunctuation": return cats([.Pd])
        case "ps", "openpunctuation": return cats([.Ps])
        case "pe", "closepunctuation": return cats([.Pe])
        case "pi", "initialpunctuation": return cats([.Pi])
        case "pf", "finalpunctuation": return cats([.Pf])
        case "po", "otherpunctuation": return cats([.Po])
        case "s", "symbol": return cats([.Sm, .Sc, .Sk, .So])
        case "sm", "mathsymbol": return cats([.Sm])
        case "sc", "currencysymbol": return cats([.Sc])
        case "sk", "modifiersymbol": return cats([.Sk])
        case "so", "othersymbol": return cats([.So])
        case "z", "separator": return cats([.Zs, .Zl, .Zp])
        case "zs", "spaceseparator": return cats([.Zs])
        case "zl", "lineseparator": return cats([.Zl])
        case "zp", "paragraphseparator": return cats([.Zp])
        case "c", "other": return cats([.Cc, .Cf, .Cs, .Co, .Cn])
        case "cc", "control", "cntrl": return cats([.Cc])
        case "cf", "format": return cats([.Cf])
        case "cs", "surrogate": return cats([.Cs])
        case "co", "privateuse": return cats([.Co])
        case "cn", "unassigned": return cats([.Cn])
        case "any": return .any
        case "assigned":
            return .nested(CharClass(items: [cats([.Cn])], negated: true))
        case "ascii": return .range(0, 0x7F)
        case "space", "whitespace": return .whitespace
        case "word": return .word
        case "alpha", "alphabetic": return .alphabetic
        case "lower", "lowercase": return .lowercase
        case "upper", "uppercase": return .uppercase
        case "alnum":
            return .nested(CharClass(items: [.alphabetic, cats([.Nd])]))
        case "han":
            return .nested(
                CharClass(items: [
                    .range(0x2E80, 0x2E99), .range(0x2E9B, 0x2EF3), .range(0x2F00, 0x2FD5), .range(0x3005, 0x3005),
                    .range(0x3007, 0x3007), .range(0x3021, 0x3029), .range(0x3038, 0x303B), .range(0x3400, 0x4DBF),
                    .range(0x4E00, 0x9FFF), .range(0xF900, 0xFA6D), .range(0xFA70, 0xFAD9), .range(0x20000, 0x2A6DF),
                    .range(0x2A700, 0x2EBE0), .range(0x2F800, 0x2FA1D), .range(0x30000, 0x3134A),
                ]))
        case "hiragana": return .nested(CharClass(items: [.range(0x3041, 0x3096), .range(0x309D, 0x309F)]))
        case "katakana":
            return .nested(
                CharClass(items: [
                    .range(0x30A1, 0x30FA), .range(0x30FD, 0x30FF), .range(0x31F0, 0x31FF), .range(0x32D0, 0x32FE),
                    .range(0x3300, 0x3357), .range(0xFF66, 0xFF6F), .range(0xFF71, 0xFF9D),
                ]))
        case "hangul":
            return .nested(
                CharClass(items: [
                    .range(0x1100, 0x11FF), .range(0x3131, 0x318E), .range(0xA960, 0xA97C), .range(0xAC00, 0xD7A3),
                    .range(0xD7B0, 0xD7FB), .range(0xFFA0, 0xFFDC),
                ]))
        default: return nil
        }
    }
}
