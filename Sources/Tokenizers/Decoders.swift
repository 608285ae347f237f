import Wire

/// A `decoder` entry of tokenizer.json (the library's `decode_chain`).
protocol Decoder: Sendable {
    func decodeChain(_ tokens: [String]) -> [String]
}

enum DecoderFactory {
    static func make(_ json: JSONValue) throws(TokenizerError) -> Decoder? {
        if json.isNull { return nil }
        let f = try JSONFields(json, component: "decoder")
        let type = try f.string("type")
        let g = JSONFields(same: f, component: "decoder \(type)")
        switch type {
        case "ByteLevel": return ByteLevelDecoder()
        case "Strip":
            let c = try g.string("content").unicodeScalars
            guard c.count == 1, let ch = c.first else {
                throw .invalidField(component: g.component, field: "content", expected: "one character")
            }
            return StripDecoder(content: ch, start: max(0, try g.optInt("start") ?? 0), stop: max(0, try g.optInt("stop") ?? 0))
        case "Replace":
            return ReplaceDecoder(
                pattern: try SplitPattern.fromJSON(try g.raw("pattern"), component: g.component),
                content: try g.string("content").unicodeScalars.map { $0.value })
        case "WordPiece":
            return WordPieceDecoder(prefix: try g.optString("prefix") ?? "##", cleanup: try g.bool("cleanup", default: true))
        case "Metaspace":
            let rep = try g.string("replacement").unicodeScalars
            guard rep.count == 1, let r = rep.first else {
                throw .invalidField(component: g.component, field: "replacement", expected: "one character")
            }
            var scheme = MetaspacePrependScheme.always
            if let s = try g.optString("prepend_scheme") {
                guard let v = MetaspacePrependScheme(rawValue: s) else {
                    throw .invalidField(component: g.component, field: "prepend_scheme", expected: "always, first or never")
                }
                scheme = v
            } else if g.has("add_prefix_space") {
                scheme = try g.bool("add_prefix_space", default: true) ? .always : .never
            }
            return MetaspaceDecoder(replacement: r, scheme: scheme)
        case "ByteFallback": return ByteFallbackDecoder()
        case "Fuse": return FuseDecoder()
        case "BPEDecoder": return BPEDecoder(suffix: try g.optString("suffix") ?? "</w>")
        case "CTC":
            return CTCDecoder(
                padToken: try g.optString("pad_token") ?? "<pad>",
                wordDelimiter: try g.optString("word_delimiter_token") ?? "|",
                cleanup: try g.bool("cleanup", default: true))
        case "Sequence":
            var steps: [Decoder] = []
            for item in try g.array("decoders") {
                if let d = try make(item) { steps.append(d) }
            }
            return SequenceDecoder(steps: steps)
        default:
            throw .unknownType(component: "decoder", type: type)
        }
    }
}

struct ByteLevelDecoder: Decoder {
    func decodeChain(_ tokens: [String]) -> [String] {
        var bytes: [UInt8] = []
        for t in tokens {
            let start = bytes.count
            var ok = true
            for u in t.unicodeScalars {
                guard let b = ByteLevelTable.byte(for: u.value) else {
                    ok = false
                    break
                }
                bytes.append(b)
            }
            if !ok {
                bytes.removeSubrange(start...)
                bytes.append(contentsOf: Array(t.utf8))
            }
        }
        return [String(decoding: bytes, as: UTF8.self)]
    }
}

struct StripDecoder: Decoder {
    let content: Unicode.Scalar
    let start: Int
    let stop: Int
    func decodeChain(_ tokens: [String]) -> [String] {
        tokens.map { t in
            let chars = Array(t.unicodeScalars)
            var startCut = 0
            for (i, c) in chars.prefix(start).enumerated() {
                if c == content { startCut = i + 1 } else { break }
            }
            var stopCut = chars.count
            for (i, c) in chars.reversed().prefix(stop).enumerated() {
                if c == content { stopCut = chars.count - i - 1 } else { break }
            }
            if startCut >= stopCut { return "" }
            var s = String()
            s.unicodeScalars.append(contentsOf: chars[startCut..<stopCut])
            return s
        }
    }
}

struct ReplaceDecoder: Decoder {
    let pattern: SplitPattern
    let content: [UInt32]
    func decodeChain(_ tokens: [String]) -> [String] {
        tokens.map { t in
            var ns = NormalizedString(scalars: t.unicodeScalars.map { $0.value })
            // Decoding does not throw: a token whose replacement exhausts the regex budget (a token
            // is a short vocabulary string, so only a pathological pattern can) is left unchanged.
            do { try ns.replace(pattern, with: content) } catch { return t }
            return ns.string
        }
    }
}

/// BERT's `clean_up_tokenization`.
func wordPieceCleanup(_ s: String) -> String {
    s.replacingAll(" .", ".").replacingAll(" ?", "?").replacingAll(" !", "!").replacingAll(" ,", ",")
        .replacingAll(" ' ", "'").replacingAll(" n't", "n't").replacingAll(" 'm", "'m")
        .replacingAll(" do not", " don't").replacingAll(" 's", "'s").replacingAll(" 've", "'ve").replacingAll(" 're", "'re")
}

extension String {
    /// Literal, non-overlapping, left-to-right replacement over Unicode scalars (no Character semantics).
    func replacingAll(_ target: String, _ with: String) -> String {
        let s = Array(unicodeScalars), t = Array(target.unicodeScalars)
        guard !t.isEmpty, s.count >= t.count else { return self }
        var out = String.UnicodeScalarView()
        var i = 0
        var changed = false
        while i < s.count {
            if i + t.count <= s.count && s[i] == t[0] && s[i..<(i + t.count)].elementsEqual(t) {
                out.append(contentsOf: with.unicodeScalars)
                i += t.count
                changed = true
            } else {
                out.append(s[i])
                i += 1
            }
        }
        return changed ? String(out) : self
    }

    func replacingFirst(_ target: String, _ with: String) -> String {
        let s = Array(unicodeScalars), t = Array(target.unicodeScalars)
        guard !t.isEmpty, s.count >= t.count else { return self }
        for i in 0...(s.count - t.count) where s[i..<(i + t.count)].elementsEqual(t) {
            var out = String.UnicodeScalarView()
            out.append(contentsOf: s[0..<i])
            out.append(contentsOf: with.unicodeScalars)
            out.append(contentsOf: s[(i + t.count)...])
            return String(out)
        }
        return self
    }
}

struct WordPieceDecoder: Decoder {
    let prefix: String
    let cleanup: Bool
    func decodeChain(_ tokens: [String]) -> [String] {
        tokens.enumerated().map { i, t in
            var tok = t
            if i != 0 {
                if tok.unicodeScalars.starts(with: prefix.unicodeScalars) { tok = tok.replacingFirst(prefix, "") } else { tok = " " + tok }
            }
            if cleanup { tok = wordPieceCleanup(tok) }
            return tok
        }
    }
}

struct MetaspaceDecoder: Decoder {
    let replacement: Unicode.Scalar
    let scheme: MetaspacePrependScheme
    func decodeChain(_ tokens: [String]) -> [String] {
        tokens.enumerated().map { i, t in
            var out = String.UnicodeScalarView()
            for c in t.unicodeScalars {
                if c == replacement {
                    if i == 0 && scheme != .never { continue }
                    out.append(" ")
                } else {
                    out.append(c)
                }
            }
            return String(out)
        }
    }
}

struct ByteFallbackDecoder: Decoder {
    func decodeChain(_ tokens: [String]) -> [String] {
        var out: [String] = []
        var pending: [UInt8] = []
        func flush() {
            guard !pending.isEmpty else { return }
            var it = pending.makeIterator()
            var decoder = UTF8()
            var s = String.UnicodeScalarView()
            var valid = true
            loop: while true {
                switch decoder.decode(&it) {
                case .scalarValue(let u): s.append(u)
                case .emptyInput: break loop
                case .error:
                    valid = false
                    break loop
                }
            }
            if valid { out.append(String(s)) } else { out.append(contentsOf: [String](repeating: "\u{FFFD}", count: pending.count)) }
            pending.removeAll()
        }
        for t in tokens {
            let u = Array(t.utf8)
            if u.count == 6, t.hasPrefix("<0x"), u[5] == 0x3E, let b = UInt8(String(decoding: u[3..<5], as: UTF8.self), radix: 16) {
                pending.append(b)
            } else {
                flush()
                out.append(t)
            }
        }
        flush()
        return out
    }
}

struct FuseDecoder: Decoder {
    func decodeChain(_ tokens: [String]) -> [String] { [tokens.joined()] }
}

struct BPEDecoder: Decoder {
    let suffix: String
    func decodeChain(_ tokens: [String]) -> [String] {
        let n = tokens.count - 1
        return tokens.enumerated().map { i, t in t.replacingAll(suffix, i == n ? "" : " ") }
    }
}

struct CTCDecoder: Decoder {
    let padToken: String
    let wordDelimiter: String
    let cleanup: Bool
    func decodeChain(_ tokens: [String]) -> [String] {
        var dedup: [String] = []
        for t in tokens where dedup.last != t { dedup.append(t) }
        return dedup.compactMap { t in
            if t == padToken { return nil }
            var r = t
            if cleanup {
                r = wordPieceCleanup(r).replacingAll(wordDelimiter, " ")
            }
            return r.isEmpty ? nil : r
        }
    }
}

struct SequenceDecoder: Decoder {
    let steps: [Decoder]
    func decodeChain(_ tokens: [String]) -> [String] {
        var t = tokens
        for s in steps { t = s.decodeChain(t) }
        return t
    }
}
