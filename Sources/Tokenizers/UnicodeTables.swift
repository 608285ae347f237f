/// Unicode character properties used by the regex engine, normalizers and pre-tokenizers.
/// Basic Multilingual Plane values are cached in flat tables; other planes ask the standard library.
enum GC: UInt8 {
    case Lu, Ll, Lt, Lm, Lo, Mn, Mc, Me, Nd, Nl, No, Pc, Pd, Ps, Pe, Pi, Pf, Po, Sm, Sc, Sk, So, Zs, Zl, Zp, Cc, Cf, Cs, Co, Cn

    init(_ c: Unicode.GeneralCategory) {
        switch c {
        case .uppercaseLetter: self = .Lu
        case .lowercaseLetter: self = .Ll
        case .titlecaseLetter: self = .Lt
        case .modifierLetter: self = .Lm
        case .otherLetter: self = .Lo
        case .nonspacingMark: self = .Mn
        case .spacingMark: self = .Mc
        case .enclosingMark: self = .Me
        case .decimalNumber: self = .Nd
        case .letterNumber: self = .Nl
        case .otherNumber: self = .No
        case .connectorPunctuation: self = .Pc
        case .dashPunctuation: self = .Pd
        case .openPunctuation: self = .Ps
        case .closePunctuation: self = .Pe
        case .initialPunctuation: self = .Pi
        case .finalPunctuation: self = .Pf
        case .otherPunctuation: self = .Po
        case .mathSymbol: self = .Sm
        case .currencySymbol: self = .Sc
        case .modifierSymbol: self = .Sk
        case .otherSymbol: self = .So
        case .spaceSeparator: self = .Zs
        case .lineSeparator: self = .Zl
        case .paragraphSeparator: self = .Zp
        case .control: self = .Cc
        case .format: self = .Cf
        case .surrogate: self = .Cs
        case .privateUse: self = .Co
        case .unassigned: self = .Cn
        @unknown default: self = .Cn
        }
    }

    var isLetter: Bool { rawValue <= GC.Lo.rawValue }
    var isMark: Bool { self == .Mn || self == .Mc || self == .Me }
    var isNumber: Bool { self == .Nd || self == .Nl || self == .No }
    var isPunctuation: Bool { rawValue >= GC.Pc.rawValue && rawValue <= GC.Po.rawValue }
    var isSymbol: Bool { rawValue >= GC.Sm.rawValue && rawValue <= GC.So.rawValue }
    var isSeparator: Bool { self == .Zs || self == .Zl || self == .Zp }
    var isOther: Bool { rawValue >= GC.Cc.rawValue }
}

/// Bit flags per scalar for the hot paths.
enum UFlag {
    static let whitespace: UInt8 = 1  // Unicode White_Space (Rust `char::is_whitespace`, Oniguruma `\s`)
    static let alphabetic: UInt8 = 2  // Alphabetic property
    static let lowercase: UInt8 = 4
    static let uppercase: UInt8 = 8
}

enum UnicodeTables {
    /// General category for every BMP scalar (surrogates included as Cs).
    static let bmpCategory: [UInt8] = {
        var t = [UInt8](repeating: GC.Cn.rawValue, count: 0x10000)
        for v in 0..<0x10000 {
            if let s = Unicode.Scalar(UInt32(v)) {
                t[v] = GC(s.properties.generalCategory).rawValue
            } else {
                t[v] = GC.Cs.rawValue
            }
        }
        return t
    }()

    static let bmpFlags: [UInt8] = {
        var t = [UInt8](repeating: 0, count: 0x10000)
        for v in 0..<0x10000 {
            guard let s = Unicode.Scalar(UInt32(v)) else { continue }
            let p = s.properties
            var f: UInt8 = 0
            if p.isWhitespace { f |= UFlag.whitespace }
            if p.isAlphabetic { f |= UFlag.alphabetic }
            if p.isLowercase { f |= UFlag.lowercase }
            if p.isUppercase { f |= UFlag.uppercase }
            t[v] = f
        }
        return t
    }()

    @inline(__always)
    static func category(_ v: UInt32) -> GC {
        if v < 0x10000 { return GC(rawValue: bmpCategory[Int(v)]) ?? .Cn }
        guard let s = Unicode.Scalar(v) else { return .Cn }
        return GC(s.properties.generalCategory)
    }

    @inline(__always)
    static func flags(_ v: UInt32) -> UInt8 {
        if v < 0x10000 { return bmpFlags[Int(v)] }
        guard let s = Unicode.Scalar(v) else { return 0 }
        let p = s.properties
        var f: UInt8 = 0
        if p.isWhitespace { f |= UFlag.whitespace }
        if p.isAlphabetic { f |= UFlag.alphabetic }
        if p.isLowercase { f |= UFlag.lowercase }
        if p.isUppercase { f |= UFlag.uppercase }
        return f
    }

    /// Rust `char::is_whitespace` / Oniguruma `\s` (Unicode White_Space).
    @inline(__always)
    static func isWhitespace(_ v: UInt32) -> Bool {
        if v < 0x80 { return v == 0x20 || (v >= 0x09 && v <= 0x0D) }
        return flags(v) & UFlag.whitespace != 0
    }

    /// Rust `char::is_alphanumeric`: Alphabetic or Numeric (Nd, Nl, No).
    static func isAlphanumeric(_ v: UInt32) -> Bool {
        if flags(v) & UFlag.alphabetic != 0 { return true }
        return category(v).isNumber
    }

    /// Oniguruma `\w` (Unicode): letters, marks, decimal numbers, connector punctuation.
    static func isWord(_ v: UInt32) -> Bool {
        if v < 0x80 {
            return (v >= 0x30 && v <= 0x39) || (v >= 0x41 && v <= 0x5A) || (v >= 0x61 && v <= 0x7A) || v == 0x5F
        }
        if flags(v) & UFlag.alphabetic != 0 { return true }
        let c = category(v)
        return c.isMark || c == .Nd || c == .Pc || v == 0x200C || v == 0x200D
    }

    /// Simple lowercase of one scalar (for case-insensitive regex).
    static func simpleFold(_ v: UInt32) -> UInt32 {
        if v < 0x80 {
            if v >= 0x41 && v <= 0x5A { return v + 0x20 }
            return v
        }
        guard let s = Unicode.Scalar(v) else { return v }
        let lower = s.properties.lowercaseMapping.unicodeScalars
        if lower.count == 1, let f = lower.first { return f.value }
        return v
    }
}
