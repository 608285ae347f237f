import Foundation
import Testing

@testable import Tokenizers

/// `encode(maxTokens:)`: the same encoding within the limit; `tooManyTokens` past it, found while
/// the pre-tokenizers split when the model gives every piece a token (so a hostile input is
/// rejected before all of its pieces are made), and only from real token counts otherwise.
@Suite("Token limit")
struct TokenLimitTests {
    static let texts = [
        "Dette var den beste konserten jeg har vært på i år!", "12345 67890", "a", "Kari bor i Tromsø. Hun liker 3 katter.",
        "  mellomrom   og\n\nlinjer  ", "Æøå ÆØÅ — «sitat» 😀",
    ]

    /// Tokens of the text (or the longer of a pair's texts), special tokens not counted.
    static func count(_ t: Tokenizer, _ text: String, pair: String? = nil) throws -> Int {
        let first = try t.encode(text, pair: nil, addSpecialTokens: false, truncation: nil, padding: nil).count
        let second = try pair.map { try t.encode($0, pair: nil, addSpecialTokens: false, truncation: nil, padding: nil).count } ?? 0
        return max(first, second)
    }

    @Test(arguments: ["tokenizer", "tokenizer-wordpiece"])
    func withinTheLimitTheSameEncodingPastItTooManyTokens(fixture: String) throws {
        let t = try Tokenizer(directory: TokenizerFixtures.directory(fixture))
        #expect(t.model.yieldsATokenPerPiece)
        for (i, text) in Self.texts.enumerated() {
            let pair: String? = i % 2 == 0 ? Self.texts[(i + 1) % Self.texts.count] : nil
            let whole = try t.encode(text, pair: pair, addSpecialTokens: true, truncation: nil, padding: nil)
            let n = try Self.count(t, text, pair: pair)
            for limit in [0, 1, n - 1, n, n + 1, 10_000] where limit >= 0 {
                do {
                    let e = try t.encode(text, pair: pair, addSpecialTokens: true, truncation: nil, padding: nil, maxTokens: limit)
                    #expect(n <= limit, "\(fixture) \(text.debugDescription): \(n) tokens passed a limit of \(limit)")
                    #expect(e.ids == whole.ids && e.offsets == whole.offsets && e.typeIds == whole.typeIds)
                } catch {
                    #expect(error == .tooManyTokens(limit: limit), "\(error)")
                    #expect(n > limit, "\(fixture) \(text.debugDescription): \(n) tokens rejected by a limit of \(limit)")
                }
            }
        }
    }

    /// 256 KiB of digits (one token each): rejected while the pre-tokenizers split, before the model.
    @Test(arguments: ["tokenizer", "tokenizer-wordpiece"])
    func aHostileInputStopsWhileSplitting(fixture: String) throws {
        let t = try Tokenizer(directory: TokenizerFixtures.directory(fixture))
        let digits = String(repeating: "1 ", count: 1 << 17)
        #expect(throws: TokenizerError.tooManyTokens(limit: 16_384)) { _ = try t.preTokenize(digits, maxTokens: 16_384) }
        #expect(throws: TokenizerError.tooManyTokens(limit: 16_384)) {
            _ = try t.encode(digits, pair: nil, addSpecialTokens: true, truncation: nil, padding: nil, maxTokens: 16_384)
        }
        #expect(throws: TokenizerError.tooManyTokens(limit: 3)) {
            _ = try t.encode("a", pair: digits, addSpecialTokens: true, truncation: nil, padding: nil, maxTokens: 3)
        }
    }

    /// A BPE without an unknown token drops characters outside its vocabulary, so pieces do not
    /// bound tokens from below: many pieces that give no token must not be rejected.
    @Test func piecesWithoutTokensAreNotCounted() throws {
        let json = #"""
            {"version": "1.0", "added_tokens": [], "normalizer": null,
             "pre_tokenizer": {"type": "WhitespaceSplit"}, "post_processor": null, "decoder": null,
             "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"], "unk_token": null}}
            """#
        let t = try Tokenizer(tokenizerJSON: Data(json.utf8))
        #expect(!t.model.yieldsATokenPerPiece)
        let text = String(repeating: "x ", count: 500) + "ab"
        let e = try t.encode(text, pair: nil, addSpecialTokens: false, truncation: nil, padding: nil, maxTokens: 1)
        #expect(e.ids == [2])
        #expect(throws: TokenizerError.tooManyTokens(limit: 1)) {
            _ = try t.encode(text + " a b", pair: nil, addSpecialTokens: false, truncation: nil, padding: nil, maxTokens: 1)
        }
    }
}
