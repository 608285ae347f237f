import Testing

@testable import Tokenizers

@Suite("Unicode normalization memos")
struct NormalizationMemoTests {
    static func nfc(_ scalars: [UInt32]) -> [UInt32] {
        var ns = NormalizedString(scalars: scalars)
        UnicodeNormalizer.normalize(&ns, .nfc)
        return ns.scalars
    }

    @Test("text of ever new starters + a combining mark keeps the composition memo bounded, and composing stays right")
    func compositionMemoBounded() {
        let limit = UnicodeNormalizer.memoLimit
        // Unassigned scalars of plane 4 (no decomposition, combining class 0), each followed by
        // U+0301: a distinct (starter, mark) pair each, none composing; more than the memo holds.
        let starters = (0..<UInt32(limit + limit / 2)).map { 0x4_0000 + $0 }
        var text: [UInt32] = []
        for s in starters { text += [s, 0x301] }
        let normalized = Self.nfc(text)
        let firstDifference = zip(normalized, text).enumerated().first { $0.element.0 != $0.element.1 }
        #expect(
            normalized.count == text.count && normalized == text,
            """
            NFC changed text it must leave alone: \(normalized.count) vs \(text.count) scalars, first difference \
            \(String(describing: firstDifference))
            """
        )
        #expect(UnicodeNormalizer.compositionCache.count <= limit)
        #expect(UnicodeNormalizer.compositionCache.count > 0)
        // After the memo started over, pairs that do compose still do: e + ◌́ = é, A + ◌̊ = Å.
        #expect(Self.nfc([0x65, 0x301, 0x41, 0x30A]) == [0xE9, 0xC5])
    }

    @Test("a supplementary-plane starter + a combining mark stays two scalars (Foundation on Linux composed U+20041 + U+0301 into Á)")
    func supplementaryStarterDoesNotCompose() {
        #expect(Self.nfc([0x2_0041, 0x301]) == [0x2_0041, 0x301])  // CJK Ext. B ideograph + acute
        #expect(Self.nfc([0x1_0065, 0x301]) == [0x1_0065, 0x301])
        #expect(Self.nfc([0x1_1099, 0x1_10BA]) == [0x1_109A])  // Kaithi: a supplementary pair that does compose
        #expect(Self.nfc([0x1_1347, 0x1_133E]) == [0x1_134B])  // Grantha
        #expect(Self.nfc([0xC7, 0x301]) == [0x1E08])  // Ç + ◌́ = Ḉ (a composite whose decomposition is three scalars)
    }

    @Test("decomposition memos stay bounded over every scalar above U+00A0")
    func decompositionMemoBounded() {
        for v in UInt32(0xA0)..<UInt32(0x3_0000) where v < 0xD800 || v > 0xDFFF {
            _ = UnicodeNormalizer.decomposition(v, compat: true)
            _ = UnicodeNormalizer.decomposition(v, compat: false)
        }
        #expect(UnicodeNormalizer.compatCache.count <= UnicodeNormalizer.memoLimit)
        #expect(UnicodeNormalizer.canonicalCache.count <= UnicodeNormalizer.memoLimit)
        #expect(UnicodeNormalizer.decomposition(0xE9, compat: false) == [0x65, 0x301])
        #expect(UnicodeNormalizer.decomposition(0xFB01, compat: true) == [0x66, 0x69])  // ﬁ
        #expect(UnicodeNormalizer.decomposition(0xFB01, compat: false) == nil)
    }
}
