import Wire

/// A `post_processor` entry of tokenizer.json.
protocol PostProcessor: Sendable {
    func addedTokens(isPair: Bool) -> Int
    /// The per-type step (`process_encodings` in the library); sequence and type ids are already set.
    func processEncodings(_ encodings: [Encoding], addSpecialTokens: Bool) throws(TokenizerError) -> [Encoding]
}

extension PostProcessor {
    /// The library's `PostProcessor::process`.
    func process(_ encoding: Encoding, _ pair: Encoding?, addSpecialTokens: Bool) throws(TokenizerError) -> Encoding {
        var encs = [encoding]
        if let pair { encs.append(pair) }
        for i in encs.indices {
            encs[i].setSequenceId(i)
            for k in encs[i].overflowing.indices { encs[i].overflowing[k].setSequenceId(i) }
            encs[i].setTypeIds(i)
        }
        return Encoding.merged(try processEncodings(encs, addSpecialTokens: addSpecialTokens), growingOffsets: false)
    }
}

enum PostProcessorFactory {
    static func make(_ json: JSONValue, tokenToId: (String) -> Int?) throws(TokenizerError) -> PostProcessor? {
        if json.isNull { return nil }
        let f = try JSONFields(json, component: "post_processor")
        let type = try f.string("type")
        let g = JSONFields(same: f, component: "post_processor \(type)")
        switch type {
        case "TemplateProcessing": return try TemplateProcessing(json: g)
        case "BertProcessing":
            return BertProcessing(sep: try pair(g, "sep"), cls: try pair(g, "cls"))
        case "RobertaProcessing":
            return RobertaProcessing(
                sep: try pair(g, "sep"), cls: try pair(g, "cls"),
                trimOffsets: try g.bool("trim_offsets", default: true),
                addPrefixSpace: try g.bool("add_prefix_space", default: true))
        case "ByteLevel":
            return ByteLevelPostProcessor(
                trimOffsets: try g.bool("trim_offsets", default: true), addPrefixSpace: try g.bool("add_prefix_space", default: true))
        case "Sequence":
            var steps: [PostProcessor] = []
            for item in try g.array("processors") {
                if let p = try make(item, tokenToId: tokenToId) { steps.append(p) }
            }
            return SequencePostProcessor(steps: steps)
        default:
            throw .unknownType(component: "post_processor", type: type)
        }
    }

    /// `["[SEP]", 102]`
    static func pair(_ g: JSONFields, _ key: String) throws(TokenizerError) -> (String, Int) {
        let a = try g.array(key)
        guard a.count == 2, let s = a[0].stringValue, let id = a[1].intValue else {
            throw .invalidField(component: g.component, field: key, expected: "a [token, id] pair")
        }
        return (s, id)
    }
}

func specialEncoding(ids: [Int], tokens: [String], typeId: Int) -> Encoding {
    var e = Encoding()
    e.ids = ids
    e.tokens = tokens
    e.typeIds = [Int](repeating: typeId, count: ids.count)
    e.wordIds = [Int?](repeating: nil, count: ids.count)
    e.offsets = [Offset](repeating: Offset(0, 0), count: ids.count)
    e.specialTokensMask = [Int](repeating: 1, count: ids.count)
    e.attentionMask = [Int](repeating: 1, count: ids.count)
    return e
}

struct TemplateProcessing: PostProcessor {
    enum Piece: Sendable {
        case sequence(isB: Bool, typeId: Int)
        case special(id: String, typeId: Int)
    }
    let single: [Piece]
    let pair: [Piece]
    let specials: [String: (ids: [Int], tokens: [String])]

    init(json g: JSONFields) throws(TokenizerError) {
        var sp: [String: (ids: [Int], tokens: [String])] = [:]
        if let raw = g.value["special_tokens"], !raw.isNull {
            guard let obj = raw.objectPairs else {
                throw .invalidField(component: g.component, field: "special_tokens", expected: "an object")
            }
            for (name, v) in obj {
                let h = try JSONFields(v, component: "\(g.component) special_tokens[\(name)]")
                let ids = try h.array("ids").map { (x: JSONValue) throws(TokenizerError) -> Int in
                    guard let i = x.intValue else { throw .invalidField(component: h.component, field: "ids", expected: "integers") }
                    return i
                }
                let toks = try h.array("tokens").map { (x: JSONValue) throws(TokenizerError) -> String in
                    guard let s = x.stringValue else { throw .invalidField(component: h.component, field: "tokens", expected: "strings") }
                    return s
                }
                guard ids.count == toks.count else {
                    throw .invalidField(component: h.component, field: "ids", expected: "as many ids as tokens")
                }
                sp[name] = (ids, toks)
            }
        }
        specials = sp
        single = try TemplateProcessing.parse(try g.raw("single"), g: g, field: "single", specials: sp)
        pair = try TemplateProcessing.parse(try g.raw("pair"), g: g, field: "pair", specials: sp)
    }

    static func parse(_ json: JSONValue, g: JSONFields, field: String, specials: [String: (ids: [Int], tokens: [String])])
        throws(TokenizerError) -> [Piece]
    {
        var out: [Piece] = []
        if let s = json.stringValue {
            // "[CLS]:0 $A:0 [SEP]:0" string form.
            for part in s.split(separator: " ") {
                let bits = part.split(separator: ":", maxSplits: 1)
                let name = String(bits[0])
                let tid = bits.count > 1 ? Int(bits[1]) ?? 0 : 0
                if name == "$A" || name == "$" {
                    out.append(.sequence(isB: false, typeId: tid))
                } else if name == "$B" {
                    out.append(.sequence(isB: true, typeId: tid))
                } else if name.hasPrefix("$"), let n = Int(name.dropFirst()) {
                    out.append(.sequence(isB: false, typeId: n))
                } else {
                    guard specials[name] != nil else { throw .tokenNotInVocab(component: "\(g.component) \(field)", token: name) }
                    out.append(.special(id: name, typeId: tid))
                }
            }
            return out
        }
        guard let arr = json.arrayValue else { throw .invalidField(component: g.component, field: field, expected: "a template list") }
        for item in arr {
            if let seq = item["Sequence"] {
                let h = try JSONFields(seq, component: "\(g.component) \(field) Sequence")
                let id = try h.string("id")
                guard id == "A" || id == "B" else { throw .invalidField(component: h.component, field: "id", expected: "A or B") }
                out.append(.sequence(isB: id == "B", typeId: try h.int("type_id")))
            } else if let st = item["SpecialToken"] {
                let h = try JSONFields(st, component: "\(g.component) \(field) SpecialToken")
                let id = try h.string("id")
                guard specials[id] != nil else { throw .tokenNotInVocab(component: "\(g.component) \(field)", token: id) }
                out.append(.special(id: id, typeId: try h.int("type_id")))
            } else {
                throw .invalidField(component: g.component, field: field, expected: "Sequence or SpecialToken pieces")
            }
        }
        return out
    }

    func addedTokens(isPair: Bool) -> Int {
        var n = 0
        for p in isPair ? pair : single {
            if case .special(let id, _) = p { n += specials[id]?.ids.count ?? 0 }
        }
        return n
    }

    func processEncodings(_ encodings: [Encoding], addSpecialTokens: Bool) throws(TokenizerError) -> [Encoding] {
        var encs = encodings
        let template = encs.count == 2 ? pair : single
        var out: [Encoding] = []
        for piece in template {
            switch piece {
            case .sequence(let isB, let typeId):
                let i = isB ? 1 : 0
                guard i < encs.count else { continue }
                encs[i].setTypeIds(typeId)
                encs[i].setSequenceId(i)
                out.append(encs[i])
            case .special(let id, let typeId):
                guard addSpecialTokens, let tok = specials[id] else { continue }
                out.append(specialEncoding(ids: tok.ids, tokens: tok.tokens, typeId: typeId))
            }
        }
        return out
    }
}

struct BertProcessing: PostProcessor {
    let sep: (String, Int)
    let cls: (String, Int)

    func addedTokens(isPair: Bool) -> Int { isPair ? 3 : 2 }

    static func wrap(_ e: Encoding, prefix: (String, Int)?, suffix: (String, Int), typeIdPrefix: Int, typeIdSuffix: Int, seq: Int)
        -> Encoding
    {
        var parts: [Encoding] = []
        if let p = prefix { parts.append(specialEncoding(ids: [p.1], tokens: [p.0], typeId: typeIdPrefix)) }
        var body = e
        body.overflowing = []
        body.specialTokensMask = [Int](repeating: 0, count: body.count)
        body.sequenceRanges = [:]
        parts.append(body)
        parts.append(specialEncoding(ids: [suffix.1], tokens: [suffix.0], typeId: typeIdSuffix))
        var out = Encoding.merged(parts, growingOffsets: false)
        let start = prefix == nil ? 0 : 1
        out.sequenceRanges = [seq: start..<(out.count - 1)]
        return out
    }

    func processEncodings(_ encodings: [Encoding], addSpecialTokens: Bool) throws(TokenizerError) -> [Encoding] {
        guard addSpecialTokens else { return encodings }
        return encodings.enumerated().map { i, e in
            let first = i == 0
            var main = BertProcessing.wrap(e, prefix: first ? cls : nil, suffix: sep, typeIdPrefix: 0, typeIdSuffix: first ? 0 : 1, seq: i)
            main.overflowing = e.overflowing.map {
                BertProcessing.wrap($0, prefix: first ? cls : nil, suffix: sep, typeIdPrefix: 0, typeIdSuffix: first ? 0 : 1, seq: i)
            }
            return main
        }
    }
}

struct RobertaProcessing: PostProcessor {
    let sep: (String, Int)
    let cls: (String, Int)
    let trimOffsets: Bool
    let addPrefixSpace: Bool

    func addedTokens(isPair: Bool) -> Int { isPair ? 4 : 2 }

    func processEncodings(_ encodings: [Encoding], addSpecialTokens: Bool) throws(TokenizerError) -> [Encoding] {
        var encs = encodings
        if trimOffsets { ByteLevelPostProcessor.trim(&encs, addPrefixSpace: addPrefixSpace) }
        guard addSpecialTokens else { return encs }
        return encs.enumerated().map { i, e in
            func wrap(_ x: Encoding) -> Encoding {
                var body = x
                body.overflowing = []
                body.specialTokensMask = [Int](repeating: 0, count: body.count)
                body.sequenceRanges = [:]
                body.setTypeIds(0)
                let pre = specialEncoding(ids: [i == 0 ? cls.1 : sep.1], tokens: [i == 0 ? cls.0 : sep.0], typeId: 0)
                let post = specialEncoding(ids: [sep.1], tokens: [sep.0], typeId: 0)
                var out = Encoding.merged([pre, body, post], growingOffsets: false)
                out.sequenceRanges = [i: 1..<(out.count - 1)]
                return out
            }
            var main = wrap(e)
            main.overflowing = e.overflowing.map(wrap)
            return main
        }
    }
}

struct ByteLevelPostProcessor: PostProcessor {
    let trimOffsets: Bool
    let addPrefixSpace: Bool

    func addedTokens(isPair: Bool) -> Int { 0 }

    /// The library's `process_offsets`: drop leading/trailing spaces (Ġ) from token offsets.
    /// Trims the offsets of every encoding and of its overflowing parts.
    static func trim(_ encodings: inout [Encoding], addPrefixSpace: Bool) {
        for k in encodings.indices {
            trim(&encodings[k], addPrefixSpace: addPrefixSpace)
            for j in encodings[k].overflowing.indices { trim(&encodings[k].overflowing[j], addPrefixSpace: addPrefixSpace) }
        }
    }

    static func trim(_ e: inout Encoding, addPrefixSpace: Bool) {
        for i in e.tokens.indices {
            let sc = Array(e.tokens[i].unicodeScalars)
            func isSpace(_ u: Unicode.Scalar) -> Bool { u.value == 0x120 || UnicodeTables.isWhitespace(u.value) }
            var leading = 0
            while leading < sc.count && isSpace(sc[leading]) { leading += 1 }
            var trailing = 0
            while trailing < sc.count && isSpace(sc[sc.count - 1 - trailing]) { trailing += 1 }
            guard leading > 0 || trailing > 0 else { continue }
            var o = e.offsets[i]
            if leading > 0 {
                let isFirst = i == 0 || o.start == 0
                if isFirst && addPrefixSpace && leading == 1 { leading = 0 }
                o.start = min(o.start + leading, o.end)
            }
            if trailing > 0 && o.end >= trailing {
                o.end = max(o.end - trailing, o.start)
            }
            e.offsets[i] = o
        }
    }

    func processEncodings(_ encodings: [Encoding], addSpecialTokens: Bool) throws(TokenizerError) -> [Encoding] {
        var encs = encodings
        if trimOffsets { ByteLevelPostProcessor.trim(&encs, addPrefixSpace: addPrefixSpace) }
        for k in encs.indices { encs[k].setSequenceId(k) }
        return encs
    }
}

struct SequencePostProcessor: PostProcessor {
    let steps: [PostProcessor]

    func addedTokens(isPair: Bool) -> Int { steps.reduce(0) { $0 + $1.addedTokens(isPair: isPair) } }

    func processEncodings(_ encodings: [Encoding], addSpecialTokens: Bool) throws(TokenizerError) -> [Encoding] {
        var encs = encodings
        for s in steps { encs = try s.processEncodings(encs, addSpecialTokens: addSpecialTokens) }
        return encs
    }
}
