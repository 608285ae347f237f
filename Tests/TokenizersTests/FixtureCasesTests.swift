import Foundation
import Testing

@testable import Tokenizers

/// Every case of both fixture files must match the Hugging Face library field for field.
@Suite("Tokenizer fixture parity")
struct FixtureCasesTests {
    static func check(_ name: String, expectedCount: Int) throws {
        let tokenizer = try Tokenizer(directory: TokenizerFixtures.directory(name))
        let cases = try TokenizerFixtures.cases(name)
        #expect(cases.count == expectedCount)
        var passed = 0
        for c in cases {
            let id = c["id"]?.stringValue ?? "?"
            guard let expected = c["expected"] else {
                Issue.record("\(id): no expected")
                continue
            }
            if expected["error"] != nil {
                #expect(throws: TokenizerError.self, "\(id) should raise") { _ = try CaseRunner.run(c, tokenizer: tokenizer) }
                if (try? CaseRunner.run(c, tokenizer: tokenizer)) == nil { passed += 1 }
                continue
            }
            do {
                let got = try CaseRunner.run(c, tokenizer: tokenizer)
                if let d = jsonDiff(expected, got) {
                    Issue.record("\(id) [\(c["tag"]?.stringValue ?? "")]: \(d)")
                } else {
                    passed += 1
                }
            } catch {
                Issue.record("\(id): unexpected error \(error)")
            }
        }
        print("\(name): \(passed)/\(cases.count) cases match the library exactly")
        #expect(passed == cases.count)
    }

    @Test("NorBERT-style byte-level BPE: all 564 cases")
    func bpeCases() throws { try FixtureCasesTests.check("tokenizer", expectedCount: 564) }

    @Test("BERT-style WordPiece: all 209 cases")
    func wordPieceCases() throws { try FixtureCasesTests.check("tokenizer-wordpiece", expectedCount: 209) }

    /// Extra configurations generated with the library by scripts/gen-tokenizer-extra-fixtures.py:
    /// NFD/NFKD/NFC, Lowercase, StripAccents, Strip, Replace, Prepend, Whitespace, WhitespaceSplit,
    /// Digits, Punctuation, Split behaviours, Metaspace, ByteLevel with regex, Unigram, BPE with
    /// prefix/suffix/fuse_unk/byte_fallback, Bert/Roberta/ByteLevel processors, string templates,
    /// and the WordPiece/Metaspace/ByteFallback/Fuse/Strip/Replace/BPEDecoder decoders.
    @Test(
        "Extra generated configurations",
        arguments: [
            "bpe-byte-fallback", "bpe-prefix-suffix-fuse-unk", "bytelevel-postprocessor", "bytelevel-roberta",
            "unigram-metaspace", "wordpiece-nfd-lowercase-bertprocessing", "wordpiece-splits-template-string",
        ])
    func extraConfigurations(_ name: String) throws {
        try FixtureCasesTests.check("tokenizer-extra/" + name, expectedCount: 831)
    }

    @Test("The JSON-lines runner gives the same objects as text")
    func lineRunner() throws {
        let tokenizer = try Tokenizer(directory: TokenizerFixtures.directory("tokenizer"))
        let out = CaseRunner.run(
            line:
                #"""
                {"kind": "encode", "input": {"text": "Hei på deg", "text_pair": null, "add_special_tokens": true, "truncation": \#
                null, "padding": null}}
                """#,
            tokenizer: tokenizer)
        #expect(out.hasPrefix(#"{"ids": [1, 821, 309, 740], "tokens": ["<s>", "Hei", "ĠpÃ¥", "Ġdeg"]"#))
        let bad = CaseRunner.run(line: "{not json", tokenizer: tokenizer)
        #expect(bad.hasPrefix(#"{"error": "#))
    }
}

@Suite("Tokenizer public API")
struct TokenizerAPITests {
    @Test func encodeAndDecode() throws {
        let t = try Tokenizer(directory: TokenizerFixtures.directory("tokenizer"))
        let e = try t.encode("Nå ønsker de seg en ny bolig.")
        #expect(e.ids.first == 1)
        #expect(e.tokens.first == "<s>")
        #expect(e.sequenceIds.first == .some(nil))
        #expect(t.decode(e.ids, skipSpecialTokens: true) == "Nå ønsker de seg en ny bolig.")
        #expect(t.tokenToId("<mask>") == 4)
        #expect(t.idToToken(236) == "Ġ")
        #expect(t.vocabSize == 2048)
        #expect(t.specialTokens.mask == "<mask>" && t.specialTokens.maskId == 4)
        #expect(t.specialTokens.padId == 3 && t.specialTokens.bosId == 1 && t.specialTokens.eosId == 2)
    }

    @Test func byteAndUTF16Offsets() throws {
        let t = try Tokenizer(directory: TokenizerFixtures.directory("tokenizer"))
        let text = "😀 på"
        let e = try t.encode(text, addSpecialTokens: false)
        let scalar = e.offsets
        let utf8 = e.utf8Offsets(text: text)
        let utf16 = e.utf16Offsets(text: text)
        #expect(scalar.last == Offset(1, 4))
        #expect(utf8.last == Offset(4, 8))
        #expect(utf16.last == Offset(2, 5))
    }

    @Test func settableTruncationAndPadding() throws {
        let t = try Tokenizer(directory: TokenizerFixtures.directory("tokenizer-wordpiece"))
        t.truncation = TruncationParams(maxLength: 6, stride: 2)
        t.padding = PaddingParams(length: 8, padId: 0, padToken: "[PAD]")
        let e = try t.encode("Fiskerne kom inn med torsk, sei og hyse.")
        #expect(e.count == 8)
        #expect(e.attentionMask == [1, 1, 1, 1, 1, 1, 0, 0])
        #expect(!e.overflowing.isEmpty)
        #expect(e.overflowing.allSatisfy { $0.count == 8 })
        t.truncation = nil
        t.padding = nil
        let batch = try t.encodeBatch(["a", "b c d"])
        #expect(batch.count == 2)
    }
}
