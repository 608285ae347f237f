/// One entry of tokenizer.json's `added_tokens`.
public struct AddedToken: Sendable, Equatable {
    public var id: Int
    public var content: String
    public var singleWord: Bool
    public var lstrip: Bool
    public var rstrip: Bool
    public var normalized: Bool
    public var special: Bool
}

/// Matches added tokens in text: first the non-normalized ones on the raw input, then the
/// normalized ones on each normalized remainder (the library's `AddedVocabulary`).
struct AddedVocabulary: Sendable {
    struct Trie: Sendable {
        var children: [[UInt32: Int32]] = [[:]]
        var terminal: [Int32] = [-1]  // index into tokens, per node
        var firstScalars = Set<UInt32>()

        var isEmpty: Bool { firstScalars.isEmpty }

        mutating func insert(_ s: [UInt32], token: Int) {
            guard let f = s.first else { return }
            firstScalars.insert(f)
            var node = 0
            for v in s {
                if let nxt = children[node][v] {
                    node = Int(nxt)
                } else {
                    children.append([:])
                    terminal.append(-1)
                    children[node][v] = Int32(children.count - 1)
                    node = children.count - 1
                }
            }
            if terminal[node] < 0 { terminal[node] = Int32(token) }
        }

        /// Longest match starting at `i`: (token index, end).
        func longest(_ s: [UInt32], at i: Int) -> (Int, Int)? {
            var node = 0
            var best: (Int, Int)? = nil
            var k = i
            while k < s.count, let nxt = children[node][s[k]] {
                node = Int(nxt)
                k += 1
                if terminal[node] >= 0 { best = (Int(terminal[node]), k) }
            }
            return best
        }
    }

    let tokens: [AddedToken]
    let byContent: [VocabKey: Int]
    let byId: [Int: Int]
    let specialContents: Set<VocabKey>
    let rawTrie: Trie
    let normalizedTrie: Trie

    init(tokens: [AddedToken], normalizer: Normalizer?) throws(TokenizerError) {
        self.tokens = tokens
        var bc: [VocabKey: Int] = [:], bi: [Int: Int] = [:]
        var special = Set<VocabKey>()
        for (k, t) in tokens.enumerated() {
            bc[VocabKey(t.content)] = t.id
            bi[t.id] = k
            if t.special { special.insert(VocabKey(t.content)) }
        }
        byContent = bc
        byId = bi
        specialContents = special
        var raw = Trie(), norm = Trie()
        // Special tokens first, then the others, as the library orders its patterns.
        let order = tokens.indices.filter { tokens[$0].special } + tokens.indices.filter { !tokens[$0].special }
        for k in order where !tokens[k].content.isEmpty {
            let t = tokens[k]
            if t.normalized {
                var ns = NormalizedString(scalars: t.content.unicodeScalars.map { $0.value })
                try normalizer?.normalize(&ns)
                norm.insert(ns.scalars, token: k)
            } else {
                raw.insert(t.content.unicodeScalars.map { $0.value }, token: k)
            }
        }
        rawTrie = raw
        normalizedTrie = norm
    }

    func isSpecial(_ content: String) -> Bool { specialContents.contains(VocabKey(content)) }

    /// Splits `ns` around added-token matches (the library's `find_matches` + `split_with_indices`).
    func split(_ ns: NormalizedString, trie: Trie) -> [PreSplit] {
        let s = ns.scalars
        if trie.isEmpty || s.isEmpty { return [PreSplit(normalized: ns, tokens: nil)] }
        var out: [PreSplit] = []
        var startOffset = 0
        var i = 0
        while i < s.count {
            guard trie.firstScalars.contains(s[i]), let (tk, mEnd) = trie.longest(s, at: i) else {
                i += 1
                continue
            }
            let t = tokens[tk]
            var start = i
            var stop = mEnd
            i = mEnd
            if t.singleWord {
                let startSpace = start == 0 || !UnicodeTables.isWord(s[start - 1])
                let stopSpace = stop == s.count || !UnicodeTables.isWord(s[stop])
                if !startSpace || !stopSpace { continue }
            }
            if t.lstrip {
                var ns0 = start
                while ns0 > startOffset && UnicodeTables.isWhitespace(s[ns0 - 1]) { ns0 -= 1 }
                start = max(ns0, startOffset)
            }
            if t.rstrip {
                while stop < s.count && UnicodeTables.isWhitespace(s[stop]) { stop += 1 }
            }
            if startOffset < start {
                out.append(PreSplit(normalized: ns.slice(startOffset, start), tokens: nil))
            }
            let piece = ns.slice(start, stop)
            out.append(
                PreSplit(normalized: piece, tokens: [Token(id: Int32(t.id), start: 0, end: Int32(stop - start), value: piece.string)]))
            startOffset = stop
        }
        if startOffset != s.count {
            out.append(PreSplit(normalized: ns.slice(startOffset, s.count), tokens: nil))
        }
        return out
    }

    /// The library's `extract_and_normalize`.
    func extractAndNormalize(_ text: [UInt32], normalizer: Normalizer?) throws(TokenizerError) -> PreTokenizedString {
        var p = PreTokenizedString(splits: [PreSplit(normalized: NormalizedString(scalars: text), tokens: nil)])
        if !rawTrie.isEmpty {
            var out: [PreSplit] = []
            for sp in p.splits {
                for x in split(sp.normalized, trie: rawTrie) where !x.normalized.isEmpty { out.append(x) }
            }
            p.splits = out
        } else if text.isEmpty {
            p.splits = []
        }
        var out: [PreSplit] = []
        out.reserveCapacity(p.splits.count)
        for var sp in p.splits {
            if sp.tokens != nil {
                out.append(sp)
                continue
            }
            try normalizer?.normalize(&sp.normalized)
            for x in split(sp.normalized, trie: normalizedTrie) where !x.normalized.isEmpty { out.append(x) }
        }
        p.splits = out
        return p
    }
}
