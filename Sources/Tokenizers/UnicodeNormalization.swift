import Foundation
import Synchronization

/// NFD / NFKD / NFC / NFKC over a `NormalizedString`, keeping alignments: a decomposed scalar's
/// parts all map to it; a composed scalar keeps the alignment of its starter.
enum NormalizationForm: Sendable {
    case nfd, nfkd, nfc, nfkc

    var compatibility: Bool { self == .nfkd || self == .nfkc }
    var composes: Bool { self == .nfc || self == .nfkc }
}

/// A memo shared by every tokenizer in the process, bounded: it starts over when it holds
/// `limit` entries, so text made of ever new scalars (a hostile requester) cannot grow it
/// without end, while the few hundred a language uses stay cached.
struct BoundedMemo<Key: Hashable & Sendable, Value: Sendable>: ~Copyable, Sendable {
    let limit: Int
    private let table = Mutex<[Key: Value]>([:])
    init(limit: Int) { self.limit = limit }
    func get(_ key: Key) -> Value? { table.withLock { $0[key] } }
    func set(_ key: Key, _ value: Value) {
        table.withLock { t in
            if t.count >= limit { t.removeAll(keepingCapacity: true) }
            t[key] = value
        }
    }
    var count: Int { table.withLock { $0.count } }
}

enum UnicodeNormalizer {
    /// Entries per memo (≈ 4 MiB each at most); text in one language needs a few hundred.
    static let memoLimit = 1 << 16
    static let canonicalCache = BoundedMemo<UInt32, [UInt32]>(limit: memoLimit)
    static let compatCache = BoundedMemo<UInt32, [UInt32]>(limit: memoLimit)
    static let compositionCache = BoundedMemo<UInt64, UInt32>(limit: memoLimit)  // 0 = none

    static func ccc(_ v: UInt32) -> UInt8 {
        if v < 0x300 { return 0 }
        guard let s = Unicode.Scalar(v) else { return 0 }
        return s.properties.canonicalCombiningClass.rawValue
    }

    static func decomposition(_ v: UInt32, compat: Bool) -> [UInt32]? {
        if v < 0xA0 { return nil }
        let cached = compat ? compatCache.get(v) : canonicalCache.get(v)
        if let hit = cached { return hit.isEmpty ? nil : hit }
        guard let sc = Unicode.Scalar(v) else { return nil }
        let str = String(Character(sc))
        let d = compat ? str.decomposedStringWithCompatibilityMapping : str.decomposedStringWithCanonicalMapping
        let arr = d.unicodeScalars.map { $0.value }
        let stored = (arr.count == 1 && arr[0] == v) ? [] : arr
        if compat { compatCache.set(v, stored) } else { canonicalCache.set(v, stored) }
        return stored.isEmpty ? nil : stored
    }

    /// Scalars with canonical combining class 0 that can still combine with a preceding starter.
    static func mayComposeWithPrevious(_ v: UInt32, ccc: UInt8) -> Bool {
        if ccc != 0 { return true }
        if v < 0x9BE { return false }
        if v >= 0x1161 && v <= 0x1175 { return true }
        if v >= 0x11A8 && v <= 0x11C2 { return true }
        switch v {
        case 0x09BE, 0x09D7, 0x0B3E, 0x0B56, 0x0B57, 0x0BBE, 0x0BD7, 0x0C56, 0x0CC2, 0x0CD5, 0x0CD6,
            0x0D3E, 0x0D57, 0x0DCF, 0x0DDF, 0x102E, 0x1B35, 0x110BA, 0x11127, 0x1133E, 0x11357,
            0x113B8, 0x113BB, 0x113C2, 0x113C5, 0x113C7, 0x113C8, 0x113C9,
            0x114B0, 0x114BA, 0x114BD, 0x115AF, 0x11930, 0x1611E, 0x1611F, 0x16120, 0x16121, 0x16122, 0x16129,
            0x16D67, 0x16D68:
            return true
        default: return false
        }
    }

    static func compose(_ a: UInt32, _ b: UInt32) -> UInt32? {
        // Hangul syllables compose algorithmically.
        if a >= 0x1100 && a < 0x1113 && b >= 0x1161 && b < 0x1176 {
            return 0xAC00 + ((a - 0x1100) * 21 + (b - 0x1161)) * 28
        }
        if a >= 0xAC00 && a < 0xAC00 + 11172 && (a - 0xAC00) % 28 == 0 && b >= 0x11A8 && b < 0x11C3 {
            return a + (b - 0x11A7)
        }
        let key = UInt64(a) << 32 | UInt64(b)
        if let hit = compositionCache.get(key) { return hit == 0 ? nil : hit }
        var result: UInt32 = 0
        if let sa = Unicode.Scalar(a), let sb = Unicode.Scalar(b) {
            var s = String()
            s.unicodeScalars.append(sa)
            s.unicodeScalars.append(sb)
            let c = Array(s.precomposedStringWithCanonicalMapping.unicodeScalars)
            // swift-corelibs-foundation composes a supplementary-plane starter by its low 16 bits
            // (U+20041 + U+0301 gives U+00C1 'Á'): a composite is kept only if it is canonically
            // equivalent to the pair (its full decomposition equals the pair's).
            if c.count == 1 {
                let composite = c[0].value
                let pair = s.decomposedStringWithCanonicalMapping.unicodeScalars.map(\.value)
                if (decomposition(composite, compat: false) ?? [composite]) == pair { result = composite }
            }
        }
        compositionCache.set(key, result)
        return result == 0 ? nil : result
    }

    static func normalize(_ ns: inout NormalizedString, _ form: NormalizationForm) {
        // Fast path: nothing at or above U+00A0 means nothing changes in any form.
        var needs = false
        for v in ns.scalars where v >= 0xA0 {
            needs = true
            break
        }
        if !needs { return }

        // 1. Decompose.
        var chars = [UInt32]()
        var align = [Span]()
        var cccs = [UInt8]()
        chars.reserveCapacity(ns.scalars.count + 8)
        align.reserveCapacity(ns.scalars.count + 8)
        cccs.reserveCapacity(ns.scalars.count + 8)
        for k in 0..<ns.scalars.count {
            let v = ns.scalars[k]
            if let d = decomposition(v, compat: form.compatibility) {
                for x in d {
                    chars.append(x)
                    align.append(ns.align[k])
                    cccs.append(ccc(x))
                }
            } else {
                chars.append(v)
                align.append(ns.align[k])
                cccs.append(ccc(v))
            }
        }
        // 2. Canonical ordering: stable sort of every run of non-starters by combining class.
        var k = 0
        while k < chars.count {
            if cccs[k] == 0 {
                k += 1
                continue
            }
            var e = k
            while e < chars.count && cccs[e] != 0 { e += 1 }
            if e - k > 1 {
                var idx = Array(k..<e)
                idx.sort { (cccs[$0], $0) < (cccs[$1], $1) }
                let c2 = idx.map { chars[$0] }, a2 = idx.map { align[$0] }, k2 = idx.map { cccs[$0] }
                for (j, src) in (k..<e).enumerated() {
                    chars[src] = c2[j]
                    align[src] = a2[j]
                    cccs[src] = k2[j]
                }
            }
            k = e
        }
        guard form.composes else {
            ns.scalars = chars
            ns.align = align
            return
        }
        // 3. Canonical composition.
        var out = [UInt32]()
        var outAlign = [Span]()
        out.reserveCapacity(chars.count)
        outAlign.reserveCapacity(chars.count)
        var starter = -1
        var lastCCC: UInt8 = 0
        for j in 0..<chars.count {
            let c = chars[j], cc = cccs[j]
            if starter >= 0, mayComposeWithPrevious(c, ccc: cc) {
                let adjacent = out.count - 1 == starter
                if adjacent || (lastCCC != 0 && lastCCC < cc) {
                    if let comp = compose(out[starter], c) {
                        out[starter] = comp
                        continue
                    }
                }
            }
            if cc == 0 { starter = out.count }
            lastCCC = cc
            out.append(c)
            outAlign.append(align[j])
        }
        ns.scalars = out
        ns.align = outAlign
    }
}
