import Wire

/// A `normalizer` entry of tokenizer.json.
protocol Normalizer: Sendable {
    func normalize(_ s: inout NormalizedString) throws(TokenizerError)
}

enum NormalizerFactory {
    static func make(_ json: JSONValue) throws(TokenizerError) -> Normalizer? {
        if json.isNull { return nil }
        let f = try JSONFields(json, component: "normalizer")
        let type = try f.string("type")
        switch type {
        case "NFC": return UnicodeNormalizerStep(form: .nfc)
        case "NFD": return UnicodeNormalizerStep(form: .nfd)
        case "NFKC": return UnicodeNormalizerStep(form: .nfkc)
        case "NFKD": return UnicodeNormalizerStep(form: .nfkd)
        case "Lowercase": return LowercaseNormalizer()
        case "StripAccents": return StripAccentsNormalizer()
        case "Strip":
            return StripNormalizer(left: try f.bool("strip_left", default: true), right: try f.bool("strip_right", default: true))
        case "Replace":
            let comp = JSONFields(same: f, component: "normalizer Replace")
            return ReplaceNormalizer(
                pattern: try SplitPattern.fromJSON(try comp.raw("pattern"), component: "normalizer Replace"),
                content: try comp.string("content").unicodeScalars.map { $0.value })
        case "Prepend":
            return PrependNormalizer(prepend: try f.string("prepend").unicodeScalars.map { $0.value })
        case "BertNormalizer":
            let lowercase = try f.bool("lowercase", default: true)
            var stripAccents: Bool? = nil
            if f.has("strip_accents") { stripAccents = try f.bool("strip_accents", default: lowercase) }
            return BertNormalizer(
                cleanText: try f.bool("clean_text", default: true),
                handleChineseChars: try f.bool("handle_chinese_chars", default: true),
                stripAccents: stripAccents ?? lowercase,
                lowercase: lowercase)
        case "Sequence":
            var steps: [Normalizer] = []
            for item in try f.array("normalizers") {
                if let n = try make(item) { steps.append(n) }
            }
            return SequenceNormalizer(steps: steps)
        default:
            throw .unknownType(component: "normalizer", type: type)
        }
    }
}

struct UnicodeNormalizerStep: Normalizer {
    let form: NormalizationForm
    func normalize(_ s: inout NormalizedString) { UnicodeNormalizer.normalize(&s, form) }
}

/// Full lowercase mapping of one scalar (nil when unchanged).
func lowercaseMapping(_ v: UInt32) -> [UInt32]? {
    if v < 0x80 {
        if v >= 0x41 && v <= 0x5A { return [v + 0x20] }
        return nil
    }
    guard let s = Unicode.Scalar(v) else { return nil }
    if !s.properties.changesWhenLowercased { return nil }
    let m = s.properties.lowercaseMapping.unicodeScalars.map { $0.value }
    if m.count == 1 && m[0] == v { return nil }
    return m
}

struct LowercaseNormalizer: Normalizer {
    func normalize(_ s: inout NormalizedString) {
        var any = false
        for v in s.scalars where v >= 0x41 && (v <= 0x5A || v >= 0x80) {
            any = true
            break
        }
        if !any { return }
        s.mapExpanding(lowercaseMapping)
    }
}

struct StripAccentsNormalizer: Normalizer {
    func normalize(_ s: inout NormalizedString) {
        s.filter { $0 < 0x300 || UnicodeTables.category($0) != .Mn }
    }
}

struct StripNormalizer: Normalizer {
    let left: Bool
    let right: Bool
    func normalize(_ s: inout NormalizedString) {
        if left { s.lstrip() }
        if right { s.rstrip() }
    }
}

struct ReplaceNormalizer: Normalizer {
    let pattern: SplitPattern
    let content: [UInt32]
    func normalize(_ s: inout NormalizedString) throws(TokenizerError) { try s.replace(pattern, with: content) }
}

struct PrependNormalizer: Normalizer {
    let prepend: [UInt32]
    func normalize(_ s: inout NormalizedString) {
        if !s.isEmpty { s.prepend(prepend) }
    }
}

struct SequenceNormalizer: Normalizer {
    let steps: [Normalizer]
    func normalize(_ s: inout NormalizedString) throws(TokenizerError) {
        for st in steps { try st.normalize(&s) }
    }
}

struct BertNormalizer: Normalizer {
    let cleanText: Bool
    let handleChineseChars: Bool
    let stripAccents: Bool
    let lowercase: Bool

    static func isBertWhitespace(_ v: UInt32) -> Bool {
        if v == 0x20 || v == 0x09 || v == 0x0A || v == 0x0D { return true }
        return UnicodeTables.isWhitespace(v)
    }

    static func isBertControl(_ v: UInt32) -> Bool {
        if v == 0x09 || v == 0x0A || v == 0x0D { return false }
        // Cc, Cf, Co, Cs (the `unicode_categories` crate has no table for unassigned Cn).
        let c = UnicodeTables.category(v)
        return c == .Cc || c == .Cf || c == .Co || c == .Cs
    }

    static func isChineseChar(_ v: UInt32) -> Bool {
        switch v {
        case 0x4E00...0x9FFF, 0x3400...0x4DBF, 0x20000...0x2A6DF, 0x2A700...0x2B73F, 0x2B740...0x2B81F,
            0x2B920...0x2CEAF, 0xF900...0xFAFF, 0x2F800...0x2FA1F:
            return true
        default: return false
        }
    }

    func normalize(_ s: inout NormalizedString) {
        if cleanText {
            s.filter { !($0 == 0 || $0 == 0xFFFD || BertNormalizer.isBertControl($0)) }
            s.map { BertNormalizer.isBertWhitespace($0) ? 0x20 : $0 }
        }
        if handleChineseChars {
            var any = false
            for v in s.scalars where BertNormalizer.isChineseChar(v) {
                any = true
                break
            }
            if any {
                var dest: [(UInt32, Int)] = []
                dest.reserveCapacity(s.count + 8)
                for v in s.scalars {
                    if BertNormalizer.isChineseChar(v) {
                        dest.append((0x20, 0))
                        dest.append((v, 1))
                        dest.append((0x20, 1))
                    } else {
                        dest.append((v, 0))
                    }
                }
                s.transform(dest)
            }
        }
        if stripAccents {
            UnicodeNormalizer.normalize(&s, .nfd)
            s.filter { $0 < 0x300 || UnicodeTables.category($0) != .Mn }
        }
        if lowercase {
            LowercaseNormalizer().normalize(&s)
        }
    }
}
