import Wire

/// A `pre_tokenizer` entry of tokenizer.json.
protocol PreTokenizer: Sendable {
    func preTokenize(_ p: inout PreTokenizedString) throws(TokenizerError)
}

enum PreTokenizerFactory {
    static let gpt2Pattern = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#

    static func make(_ json: JSONValue) throws(TokenizerError) -> PreTokenizer? {
        if json.isNull { return nil }
        let f = try JSONFields(json, component: "pre_tokenizer")
        let type = try f.string("type")
        let component = "pre_tokenizer \(type)"
        let g = JSONFields(same: f, component: component)
        switch type {
        case "ByteLevel":
            let useRegex = try g.bool("use_regex", default: true)
            return ByteLevelPreTokenizer(
                addPrefixSpace: try g.bool("add_prefix_space", default: true),
                regex: useRegex ? try Regex(gpt2Pattern) : nil)
        case "Split":
            return SplitPreTokenizer(
                pattern: try splitPattern(try g.raw("pattern"), component: component),
                behavior: try behavior(g, default: nil),
                invert: try g.bool("invert", default: false))
        case "Whitespace":
            return SplitPreTokenizer(pattern: .regex(try Regex(#"\w+|[^\w\s]+"#)), behavior: .removed, invert: true)
        case "WhitespaceSplit":
            return SplitPreTokenizer(pattern: .predicate(UnicodeTables.isWhitespace), behavior: .removed, invert: false)
        case "BertPreTokenizer":
            return BertPreTokenizer()
        case "Punctuation":
            return SplitPreTokenizer(pattern: .predicate(isBertPunctuation), behavior: try behavior(g, default: .isolated), invert: false)
        case "Digits":
            let individual = try g.bool("individual_digits", default: false)
            return SplitPreTokenizer(
                pattern: .predicate({ UnicodeTables.category($0).isNumber }),
                behavior: individual ? .isolated : .contiguous, invert: false)
        case "CharDelimiterSplit":
            let d = try g.string("delimiter").unicodeScalars
            guard d.count == 1, let c = d.first?.value else {
                throw .invalidField(component: component, field: "delimiter", expected: "a single character")
            }
            return SplitPreTokenizer(pattern: .predicate({ $0 == c }), behavior: .removed, invert: false)
        case "Metaspace":
            let rep = try g.string("replacement").unicodeScalars
            guard rep.count == 1, let r = rep.first?.value else {
                throw .invalidField(component: component, field: "replacement", expected: "a single character")
            }
            var scheme = MetaspacePrependScheme.always
            if let s = try g.optString("prepend_scheme") {
                guard let v = MetaspacePrependScheme(rawValue: s) else {
                    throw .invalidField(component: component, field: "prepend_scheme", expected: "always, first or never")
                }
                scheme = v
            } else if g.has("add_prefix_space") {
                scheme = try g.bool("add_prefix_space", default: true) ? .always : .never
            }
            return MetaspacePreTokenizer(replacement: r, scheme: scheme, split: try g.bool("split", default: true))
        case "Sequence":
            var steps: [PreTokenizer] = []
            for item in try g.array("pretokenizers") {
                if let p = try make(item) { steps.append(p) }
            }
            return SequencePreTokenizer(steps: steps)
        default:
            throw .unknownType(component: "pre_tokenizer", type: type)
        }
    }

    /// Split's String patterns are escaped and run as a regex by the library.
    static func splitPattern(_ json: JSONValue, component: String) throws(TokenizerError) -> SplitPattern {
        if let s = json["String"]?.stringValue { return .literal(s.unicodeScalars.map { $0.value }) }
        return try SplitPattern.fromJSON(json, component: component)
    }

    static func behavior(_ g: JSONFields, default def: SplitBehavior?) throws(TokenizerError) -> SplitBehavior {
        guard let s = try g.optString("behavior") else {
            if let def { return def }
            throw .missingField(component: g.component, field: "behavior")
        }
        guard let b = SplitBehavior(rawValue: s) else {
            throw .invalidField(
                component: g.component, field: "behavior", expected: "Removed, Isolated, MergedWithPrevious, MergedWithNext or Contiguous")
        }
        return b
    }
}

@Sendable func isBertPunctuation(_ v: UInt32) -> Bool {
    if v < 0x80 {
        return (v >= 0x21 && v <= 0x2F) || (v >= 0x3A && v <= 0x40) || (v >= 0x5B && v <= 0x60) || (v >= 0x7B && v <= 0x7E)
    }
    return UnicodeTables.category(v).isPunctuation
}

struct ByteLevelPreTokenizer: PreTokenizer {
    let addPrefixSpace: Bool
    let regex: Regex?

    func preTokenize(_ p: inout PreTokenizedString) throws(TokenizerError) {
        try p.split { (_, ns, budget) throws(TokenizerError) in
            var ns = ns
            if addPrefixSpace && ns.scalars.first != 0x20 { ns.prepend([0x20]) }
            if let regex { return try ns.split(.regex(regex), .isolated, maxPieces: budget) }
            return [ns]
        }
        p.normalize { ByteLevelTable.transform(&$0) }
    }
}

struct SplitPreTokenizer: PreTokenizer {
    let pattern: SplitPattern
    let behavior: SplitBehavior
    let invert: Bool

    func preTokenize(_ p: inout PreTokenizedString) throws(TokenizerError) {
        try p.split { (_, ns, budget) throws(TokenizerError) in try ns.split(pattern, behavior, invert: invert, maxPieces: budget) }
    }
}

struct BertPreTokenizer: PreTokenizer {
    func preTokenize(_ p: inout PreTokenizedString) throws(TokenizerError) {
        try p.split { (_, ns, budget) throws(TokenizerError) in
            try ns.split(.predicate(UnicodeTables.isWhitespace), .removed, maxPieces: budget)
        }
        try p.split { (_, ns, budget) throws(TokenizerError) in try ns.split(.predicate(isBertPunctuation), .isolated, maxPieces: budget) }
    }
}

enum MetaspacePrependScheme: String, Sendable {
    case always, first, never
}

struct MetaspacePreTokenizer: PreTokenizer {
    let replacement: UInt32
    let scheme: MetaspacePrependScheme
    let split: Bool

    func preTokenize(_ p: inout PreTokenizedString) throws(TokenizerError) {
        try p.split { (_, ns, budget) throws(TokenizerError) in
            var ns = ns
            try ns.replace(.literal([0x20]), with: [replacement])
            switch scheme {
            case .always:
                if ns.scalars.first != replacement { ns.prepend([replacement]) }
            case .first:
                if ns.scalars.first != replacement && ns.origStart == 0 { ns.prepend([replacement]) }
            case .never: break
            }
            if split { return try ns.split(.predicate({ $0 == replacement }), .mergedWithNext, maxPieces: budget) }
            return [ns]
        }
    }
}

struct SequencePreTokenizer: PreTokenizer {
    let steps: [PreTokenizer]
    func preTokenize(_ p: inout PreTokenizedString) throws(TokenizerError) {
        for s in steps { try s.preTokenize(&p) }
    }
}
