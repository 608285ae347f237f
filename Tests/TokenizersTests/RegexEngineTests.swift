import Foundation
import Testing

@testable import Tokenizers

/// The memoizing engine must give exactly the plain backtracker's (Oniguruma's) matches, and a
/// search that runs out of its budget must throw instead of reporting "no match".
@Suite("Regex engines")
struct RegexEngineTests {
    static func matches(_ pattern: String, _ text: String, memoize: Bool = false) throws -> [[Int]] {
        try matches(try Regex(pattern), text, memoize: memoize)
    }

    static func matches(_ re: Regex, _ text: String, memoize: Bool = false) throws -> [[Int]] {
        let s = text.unicodeScalars.map(\.value)
        let found = try Regex.$memoizeFromStart.withValue(memoize) {
            try s.withUnsafeBufferPointer { try re.findAll($0) }
        }
        return found.map { [$0.0, $0.1] }
    }

    static func steps(_ pattern: String, _ text: String, memoize: Bool = false) throws -> Int {
        let counter = RegexStepCounter()
        _ = try Regex.$stepCounter.withValue(counter) { try matches(pattern, text, memoize: memoize) }
        return counter.count
    }

    /// All fixture cases again, with every search on the memoizing engine from its first step.
    @Test(
        "Fixture cases through the memoizing engine",
        arguments: [
            ("tokenizer", 564), ("tokenizer-wordpiece", 209), ("tokenizer-extra/bytelevel-postprocessor", 831),
            ("tokenizer-extra/bytelevel-roberta", 831), ("tokenizer-extra/wordpiece-nfd-lowercase-bertprocessing", 831),
        ])
    func fixtureCasesMemoized(_ name: String, _ count: Int) throws {
        try Regex.$memoizeFromStart.withValue(true) {
            try FixtureCasesTests.check(name, expectedCount: count)
        }
    }

    /// Random patterns over a small alphabet (alternation, classes, greedy/lazy/possessive and
    /// bounded repeats, lookarounds, atomic groups, anchors) on random texts: both engines agree.
    @Test func enginesAgreeOnRandomPatterns() throws {
        var rng = SystemRandomNumberGenerator()
        var seed = UInt64.random(in: 0...UInt64.max, using: &rng)
        let firstSeed = seed
        func next(_ bound: Int) -> Int {
            seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Int((seed >> 33) % UInt64(bound))
        }
        let atoms = ["a", "b", " ", "\\s", "\\S", "[ab]", "[^a]", ".", "\\p{L}", "\\n", "'s", "x"]
        func gen(_ depth: Int) -> String {
            if depth == 0 { return atoms[next(atoms.count)] }
            switch next(9) {
            case 0: return gen(depth - 1) + gen(depth - 1)
            case 1: return "(?:" + gen(depth - 1) + "|" + gen(depth - 1) + ")"
            case 2: return "(?:" + gen(depth - 1) + ")" + ["*", "+", "?", "*?", "+?", "*+", "{1,3}", "{2}", "{0,2}?"][next(9)]
            case 3: return atoms[next(atoms.count)] + ["*", "+", "?", "*?", "++", "{1,4}"][next(6)]
            case 4: return "(?=" + gen(depth - 1) + ")"
            case 5: return "(?!" + gen(depth - 1) + ")"
            case 6: return "(?<=" + atoms[next(atoms.count)] + ")" + gen(depth - 1)
            case 7: return "(?>" + gen(depth - 1) + ")"
            default: return ["^", "$", "\\b"][next(3)] + gen(depth - 1)
            }
        }
        let alphabet: [Character] = ["a", "b", " ", "\n", "x", "'", "s"]
        var compared = 0
        for _ in 0..<150 {
            let pattern = gen(1 + next(3))
            guard let re = try? Regex(pattern) else { continue }
            for _ in 0..<10 {
                let text = String((0..<next(14)).map { _ in alphabet[next(alphabet.count)] })
                let plain = try Self.matches(re, text)
                let memo = try Self.matches(re, text, memoize: true)
                #expect(plain == memo, "`\(pattern)` on \(text.debugDescription) (seed \(firstSeed))")
                compared += 1
            }
        }
        #expect(compared > 500)
    }

    /// Patterns that need exponential time in a plain backtracker are linear once memoized, and
    /// their answer is complete: before, the per-attempt step limit silently turned
    /// `(a|a)*c|a` on 30 a's into "no match" at the first starts.
    @Test func exponentialPatternsAreLinearAndExact() throws {
        let a30 = String(repeating: "a", count: 30)
        #expect(try Self.matches("(?:(a|a)*c|a)", a30) == (0..<30).map { [$0, $0 + 1] })
        #expect(try Self.matches("(x+x+)+y", String(repeating: "x", count: 40)) == [])
        #expect(try Self.matches("(x+x+)+y", String(repeating: "x", count: 40) + "y") == [[0, 41]])
        for pattern in ["(a|a)*c", "(a*)*c", "(x+x+)+y", "(?:a|ab|b)*c"] {
            for memoize in [false, true] {
                let text = String(repeating: pattern.hasPrefix("(x") ? "x" : "a", count: 2_000)
                let small = try Self.steps(pattern, text, memoize: memoize)
                let large = try Self.steps(pattern, text + text + text + text, memoize: memoize)
                #expect(large <= 5 * small + 2_000, "`\(pattern)`: \(small) → \(large) steps")
            }
        }
    }

    /// An atomic group that succeeds after a long scan from every position is quadratic even when
    /// memoized (a successful sub-program is explored again from the next position): the search
    /// runs out of its budget and throws.
    @Test func exhaustedBudgetThrows() throws {
        let pattern = "(?:(?>a*)b|a)*c"
        let text = String(repeating: "a", count: 20_000)
        #expect(throws: TokenizerError.self) { _ = try Self.matches(pattern, text) }
        do {
            _ = try Self.matches(pattern, text)
        } catch let error as TokenizerError {
            guard case .regexBudgetExceeded(let p, let length, let steps) = error else {
                Issue.record("unexpected \(error)")
                return
            }
            #expect(p == pattern && length == 20_000 && steps > 20_000)
            #expect(error.description.contains("too much backtracking"))
        } catch {
            Issue.record("unexpected \(error)")
        }
        // Short texts stay inside the budget.
        #expect(try Self.matches(pattern, String(repeating: "a", count: 40)) == [])
    }

    /// The budget error leaves `encode` as the typed error (pre-tokenizer and normalizer alike).
    @Test func budgetErrorSurfacesFromEncode() throws {
        let text = String(repeating: "a", count: 20_000)
        var o = try HostileFileTests.base()
        o["pre_tokenizer"] = ["type": "Split", "pattern": ["Regex": "(?:(?>a*)b|a)*c"], "behavior": "Isolated", "invert": false]
        let split = try HostileFileTests.load(o)
        var o2 = try HostileFileTests.base()
        o2["normalizer"] = ["type": "Replace", "pattern": ["Regex": "(?:(?>a*)b|a)*c"], "content": "x"]
        let replace = try HostileFileTests.load(o2)
        for t in [split, replace] {
            do {
                _ = try t.encode(text)
                Issue.record("encoded without error")
            } catch {
                if case .regexBudgetExceeded(_, let length, _) = error {
                    #expect(length >= 20_000)
                } else {
                    Issue.record("unexpected \(error)")
                }
            }
            #expect(try t.encode("aaab").count > 1)
        }
    }
}
