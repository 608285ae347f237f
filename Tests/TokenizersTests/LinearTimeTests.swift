import Foundation
import Testing

@testable import Tokenizers

/// The tokenizer must take time linear in the input for the patterns NorBERT 4 (and the other
/// fixture tokenizers) use, whatever the text. Checked by counting the regex engine's steps at
/// n and 4n characters: linear work grows about 4×, quadratic work 16×. No wall-clock assertions.
@Suite("Linear-time tokenization")
struct LinearTimeTests {
    /// Every `Regex` pattern of the fixture tokenizers' normalizers and pre-tokenizers, plus the
    /// built-in ByteLevel and Whitespace patterns.
    static let patterns: [String] = {
        var found: [String] = [PreTokenizerFactory.gpt2Pattern, #"\w+|[^\w\s]+"#]
        func collect(_ v: Any) {
            if let d = v as? [String: Any] {
                if let r = d["Regex"] as? String { found.append(r) }
                for (_, x) in d { collect(x) }
            } else if let a = v as? [Any] {
                for x in a { collect(x) }
            }
        }
        let root = TokenizerFixtures.root
        var files = [root.appendingPathComponent("tokenizer/tokenizer.json")]
        let extra = root.appendingPathComponent("tokenizer-extra")
        for name in (try? FileManager.default.contentsOfDirectory(atPath: extra.path)) ?? [] {
            files.append(extra.appendingPathComponent(name).appendingPathComponent("tokenizer.json"))
        }
        for f in files {
            guard let data = try? Data(contentsOf: f), let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                continue
            }
            collect(obj["normalizer"] ?? NSNull())
            collect(obj["pre_tokenizer"] ?? NSNull())
        }
        var seen = Set<String>()
        return found.filter { seen.insert($0).inserted }
    }()

    /// Adversarial text families: a unit repeated (and an optional tail) to about n scalars.
    static let families: [(name: String, unit: String, tail: String)] = [
        ("spaces", " ", ""), ("spaces then x", " ", "x"), ("spaces then newline", " ", "\n"),
        ("tabs then x", "\t", "x"), ("newlines", "\n", ""), ("CRLF", "\r\n", ""), ("space newline", " \n", ""),
        ("lowercase", "a", ""), ("uppercase", "A", ""), ("uppercase then digit", "A", "1"), ("other letters", "あ", ""),
        ("letter and marks", "a\u{301}\u{302}", ""), ("digits", "7", ""), ("punctuation", "!", ""),
        ("punctuation then x", "-", "x"), ("punctuation slash", "!/", ""), ("punctuation newline", "!\n", ""),
        ("apostrophes", "'", ""), ("apostrophe s", "'s", ""), ("alternating case", "aA", ""), ("space letter", " a", ""),
        ("letter space", "a ", ""), ("space punctuation", " !", ""), ("space digit", " 7", ""),
        ("mixed whitespace", " \t\u{A0}", "x"), ("Norwegian", "Blåbærsyltetøy på 17. mai, sa Åse! ", ""),
    ]

    static func text(_ family: (name: String, unit: String, tail: String), _ n: Int) -> [UInt32] {
        let unit = family.unit.unicodeScalars.map(\.value)
        var out: [UInt32] = []
        out.reserveCapacity(n + 8)
        while out.count < n { out.append(contentsOf: unit) }
        out.append(contentsOf: family.tail.unicodeScalars.map(\.value))
        return out
    }

    /// Regex steps of `findAll` over `s`.
    static func steps(_ re: Regex, _ s: [UInt32]) throws -> Int {
        let counter = RegexStepCounter()
        try Regex.$stepCounter.withValue(counter) {
            _ = try s.withUnsafeBufferPointer { try re.findAll($0) }
        }
        return counter.count
    }

    /// Regex steps of a whole `encode`.
    static func encodeSteps(_ t: Tokenizer, _ s: String) throws -> Int {
        let counter = RegexStepCounter()
        try Regex.$stepCounter.withValue(counter) { _ = try t.encode(s) }
        return counter.count
    }

    static func expectLinear(_ small: Int, _ large: Int, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
        // 4× the input: linear work is ~4× (plus a constant), quadratic would be ~16×.
        #expect(large <= 5 * small + 2_000, "\(what): \(small) steps at n, \(large) at 4n", sourceLocation: sourceLocation)
    }

    @Test func fixturePatternsAreFound() {
        #expect(Self.patterns.contains(" *\n"))
        #expect(Self.patterns.contains { $0.hasSuffix(#"|\s+(?!\S)|\s+"#) && $0.contains(#"\p{Lu}"#) })
        #expect(Self.patterns.contains(".{1,24}"))
    }

    @Test(arguments: patterns)
    func patternIsLinearOnAdversarialText(_ pattern: String) throws {
        let re = try Regex(pattern)
        let n = 3_000
        for family in Self.families {
            let small = try Self.steps(re, Self.text(family, n))
            let large = try Self.steps(re, Self.text(family, 4 * n))
            Self.expectLinear(small, large, "`\(pattern)` on \(family.name)")
        }
    }

    @Test func norbertEncodeIsLinearOnAdversarialText() throws {
        let t = try Tokenizer(directory: TokenizerFixtures.directory("tokenizer"))
        let n = 3_000
        for family in Self.families {
            let one = String(String.UnicodeScalarView(Self.text(family, n).compactMap(Unicode.Scalar.init)))
            let four = String(String.UnicodeScalarView(Self.text(family, 4 * n).compactMap(Unicode.Scalar.init)))
            Self.expectLinear(try Self.encodeSteps(t, one), try Self.encodeSteps(t, four), "encode of \(family.name)")
        }
    }

    /// The issue's case: a long run of spaces before a newline goes through `Replace(" *\n")`.
    @Test func spacesBeforeNewlineStayWithinAStepBudget() throws {
        let t = try Tokenizer(directory: TokenizerFixtures.directory("tokenizer"))
        let n = 80_000
        let steps = try Self.encodeSteps(t, String(repeating: " ", count: n) + "x\n")
        #expect(steps < 200 * n, "\(steps) steps for \(n) spaces")
    }

    /// A mebibyte of the regex-adversarial families encodes (a quadratic pass would take hours
    /// here), and the spaces-before-newline text is normalized the way the patterns say (`\n` →
    /// `\n `, then ` *\n` → `\n`). A mebibyte single word goes through byte-level BPE in one piece
    /// (no splitting pattern in that tokenizer): the heap-based merge is O(n log n).
    @Test func mebibyteAdversarialTextsEncode() throws {
        let t = try Tokenizer(directory: TokenizerFixtures.directory("tokenizer"))
        let n = 1 << 20
        for family in Self.families where ["spaces then x", "mixed whitespace", "Norwegian"].contains(family.name) {
            let s = String(String.UnicodeScalarView(Self.text(family, n).compactMap(Unicode.Scalar.init)))
            let steps = try Self.encodeSteps(t, s)
            #expect(steps < 100 * n, "\(family.name): \(steps) regex steps")
        }
        #expect(try t.normalize(String(repeating: " ", count: n) + "\n") == "\n ")
        let roberta = try Tokenizer(directory: TokenizerFixtures.directory("tokenizer-extra/bytelevel-roberta"))
        let word = try roberta.encode(String(repeating: "ab", count: n / 2), addSpecialTokens: false)
        #expect(word.count > 1 && word.count < n)
    }
}
