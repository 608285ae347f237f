/// One item of a batch: a text, or a (first, second) pair.
public struct EncodeInput: Sendable {
    public var text: String
    public var pair: String?
    public init(_ text: String, pair: String? = nil) {
        self.text = text
        self.pair = pair
    }
}

extension Tokenizer {
    /// Encodes one text or pair; applies the configured truncation and padding.
    public func encode(_ text: String, pair: String? = nil, addSpecialTokens: Bool = true) throws(TokenizerError) -> Encoding {
        try encode(text, pair: pair, addSpecialTokens: addSpecialTokens, truncation: truncation, padding: padding)
    }

    /// Encodes with explicit truncation and padding instead of the tokenizer's settings.
    ///
    /// `maxTokens`: throw ``TokenizerError/tooManyTokens(limit:)`` as soon as the text or the pair
    /// is known to have more tokens than this (special tokens not counted), before the rest of it
    /// is worked on: pieces are counted while the pre-tokenizers split (when the model gives every
    /// piece a token) and tokens while the model runs. The cost of rejecting an over-long input is
    /// then bounded by the limit, not by the input (1 MiB of digits: one token each).
    public func encode(
        _ text: String, pair: String?, addSpecialTokens: Bool, truncation trunc: TruncationParams?, padding pad: PaddingParams?,
        maxTokens: Int? = nil
    ) throws(TokenizerError) -> Encoding {
        var e = try encodeUnpadded(text, pair: pair, addSpecialTokens: addSpecialTokens, truncation: trunc, maxTokens: maxTokens)
        if let pad {
            var arr = [e]
            TruncationLogic.pad(&arr, pad)
            e = arr[0]
        }
        return e
    }

    /// Encodes many inputs; padding (when configured) is applied across the batch.
    public func encodeBatch(_ inputs: [EncodeInput], addSpecialTokens: Bool = true) throws(TokenizerError) -> [Encoding] {
        try encodeBatch(inputs, addSpecialTokens: addSpecialTokens, truncation: truncation, padding: padding)
    }

    /// Batch encoding with explicit truncation and padding.
    public func encodeBatch(
        _ inputs: [EncodeInput], addSpecialTokens: Bool, truncation trunc: TruncationParams?, padding pad: PaddingParams?
    ) throws(TokenizerError) -> [Encoding] {
        var out: [Encoding] = []
        out.reserveCapacity(inputs.count)
        for inp in inputs {
            out.append(try encodeUnpadded(inp.text, pair: inp.pair, addSpecialTokens: addSpecialTokens, truncation: trunc))
        }
        if let pad { TruncationLogic.pad(&out, pad) }
        return out
    }

    /// Convenience for a batch of single texts.
    public func encodeBatch(_ texts: [String], addSpecialTokens: Bool = true) throws(TokenizerError) -> [Encoding] {
        try encodeBatch(texts.map { EncodeInput($0) }, addSpecialTokens: addSpecialTokens)
    }

    func encodeUnpadded(
        _ text: String, pair: String?, addSpecialTokens: Bool, truncation: TruncationParams?, maxTokens: Int? = nil
    ) throws(TokenizerError) -> Encoding {
        var first = try encodeSequence(text, typeId: 0, maxTokens: maxTokens)
        var second = try pair.map { (p: String) throws(TokenizerError) -> Encoding in
            try encodeSequence(p, typeId: 1, maxTokens: maxTokens)
        }
        if var t = truncation {
            let nAdded = postProcessor?.addedTokens(isPair: pair != nil) ?? 0
            if addSpecialTokens && nAdded > 0 {
                // The library subtracts in unsigned arithmetic; an underflow wraps to "no limit".
                t.maxLength = t.maxLength >= nAdded ? t.maxLength - nAdded : Int.max
            }
            try TruncationLogic.truncate(&first, &second, t)
        }
        if let pp = postProcessor {
            return try pp.process(first, second, addSpecialTokens: addSpecialTokens)
        }
        guard var s = second else { return first }
        first.setSequenceId(0)
        s.setSequenceId(1)
        return Encoding.merged([first, s], growingOffsets: false)
    }

    /// Pre-tokenized pieces of one sequence (after added-token extraction, normalization and
    /// pre-tokenization), each with its original offsets.
    func preTokenize(_ text: String, maxTokens: Int? = nil) throws(TokenizerError) -> PreTokenizedString {
        let scalars = text.unicodeScalars.map { $0.value }
        var p = try added.extractAndNormalize(scalars, normalizer: normalizer)
        if model.yieldsATokenPerPiece { p.pieceLimit = maxTokens }
        try preTokenizer?.preTokenize(&p)
        return p
    }

    func encodeSequence(_ text: String, typeId: Int, maxTokens: Int? = nil) throws(TokenizerError) -> Encoding {
        let p = try preTokenize(text, maxTokens: maxTokens)
        let limit = maxTokens ?? .max
        var e = Encoding()
        var toks: [Token] = []
        for (wordIndex, sp) in p.splits.enumerated() {
            toks.removeAll(keepingCapacity: true)
            if let given = sp.tokens {
                toks = given
            } else {
                try model.tokenize(sp.normalized.scalars, into: &toks)
            }
            for t in toks {
                let id = Int(t.id)
                e.ids.append(id)
                e.tokens.append(t.value ?? model.idToToken(id) ?? "")
                let (a, b) = sp.normalized.originalRange(Int(t.start), Int(t.end))
                e.offsets.append(Offset(a, b))
                e.wordIds.append(wordIndex)
            }
            if e.ids.count > limit { throw .tooManyTokens(limit: limit) }
        }
        let n = e.ids.count
        e.typeIds = [Int](repeating: typeId, count: n)
        e.specialTokensMask = [Int](repeating: 0, count: n)
        e.attentionMask = [Int](repeating: 1, count: n)
        return e
    }

    /// Decodes ids to text. Unknown ids are skipped, like the library does.
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = true) -> String {
        var tokens: [String] = []
        tokens.reserveCapacity(ids.count)
        for id in ids {
            guard let t = idToToken(id) else { continue }
            if skipSpecialTokens && added.isSpecial(t) { continue }
            tokens.append(t)
        }
        if let decoder { return decoder.decodeChain(tokens).joined() }
        return tokens.joined(separator: " ")
    }

    /// The normalized text (the normalizer alone), as `normalizer.normalize_str` returns it.
    public func normalize(_ text: String) throws(TokenizerError) -> String {
        var ns = NormalizedString(scalars: text.unicodeScalars.map { $0.value })
        try normalizer?.normalize(&ns)
        return ns.string
    }
}
