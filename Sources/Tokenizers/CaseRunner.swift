import Wire

/// Runs one test-vector case (a line of `cases.jsonl`: `kind` + `input`) and produces the object
/// the library's Python bindings would give (the `expected` field), or `{"error": …}`.
/// Used by `norbert-worker tokenize` and by the tests.
public enum CaseRunner {
    public static func run(line: String, tokenizer: Tokenizer) -> String {
        let result: JSONValue
        do {
            let json = try JSONValue.parse(Array(line.utf8), context: "input line")
            result = try run(json, tokenizer: tokenizer)
        } catch {
            result = .object([("error", .string(error.description))])
        }
        return result.jsonText
    }

    public static func run(_ json: JSONValue, tokenizer: Tokenizer) throws(TokenizerError) -> JSONValue {
        guard let kind = json["kind"]?.stringValue else { throw .missingField(component: "case", field: "kind") }
        guard let input = json["input"], input.objectPairs != nil else { throw .missingField(component: "case", field: "input") }
        let f = try JSONFields(input, component: "input")
        switch kind {
        case "encode":
            let text = try f.string("text")
            let pair = try f.optString("text_pair")
            let add = try f.bool("add_special_tokens", default: true)
            let trunc = try truncation(f, tokenizer: tokenizer, isPair: pair != nil)
            let pad = try padding(f)
            let e = try tokenizer.encode(text, pair: pair, addSpecialTokens: add, truncation: trunc, padding: pad)
            return encodingJSON(e, withOverflowing: trunc != nil)
        case "encode_batch":
            var items: [EncodeInput] = []
            for item in try f.array("batch") {
                let g = try JSONFields(item, component: "input.batch[]")
                items.append(EncodeInput(try g.string("text"), pair: try g.optString("text_pair")))
            }
            let add = try f.bool("add_special_tokens", default: true)
            let trunc = try truncation(f, tokenizer: tokenizer, isPair: false)
            let pad = try padding(f)
            let encs = try tokenizer.encodeBatch(items, addSpecialTokens: add, truncation: trunc, padding: pad)
            return .object([("encodings", .array(encs.map { encodingJSON($0, withOverflowing: trunc != nil) }))])
        case "decode":
            var ids: [Int] = []
            for v in try f.array("ids") {
                guard let i = v.intValue, i >= 0, i <= Int(UInt32.max) else {
                    throw .invalidField(component: "input", field: "ids", expected: "unsigned 32-bit integers")
                }
                ids.append(i)
            }
            let skip = try f.bool("skip_special_tokens", default: false)
            return .object([("text", .string(tokenizer.decode(ids, skipSpecialTokens: skip)))])
        default:
            throw .unknownType(component: "case kind", type: kind)
        }
    }

    static func truncation(_ f: JSONFields, tokenizer: Tokenizer, isPair: Bool) throws(TokenizerError) -> TruncationParams? {
        guard let t = f.value["truncation"], !t.isNull else { return nil }
        let g = try JSONFields(t, component: "input.truncation")
        let maxLength = try g.int("max_length")
        let stride = try g.optInt("stride") ?? 0
        guard maxLength >= 0, stride >= 0 else {
            throw .invalidField(component: "input.truncation", field: "max_length", expected: "non-negative")
        }
        guard let strategy = TruncationStrategy(rawValue: try g.optString("strategy") ?? "longest_first") else {
            throw .invalidField(component: "input.truncation", field: "strategy", expected: "longest_first, only_first or only_second")
        }
        guard let direction = TruncationDirection(rawValue: try g.optString("direction") ?? "right") else {
            throw .invalidField(component: "input.truncation", field: "direction", expected: "left or right")
        }
        let params = TruncationParams(maxLength: maxLength, stride: stride, strategy: strategy, direction: direction)
        try tokenizer.validate(truncation: params)
        return params
    }

    static func padding(_ f: JSONFields) throws(TokenizerError) -> PaddingParams? {
        guard let p = f.value["padding"], !p.isNull else { return nil }
        let g = try JSONFields(p, component: "input.padding")
        guard let direction = PaddingDirection(rawValue: try g.optString("direction") ?? "right") else {
            throw .invalidField(component: "input.padding", field: "direction", expected: "left or right")
        }
        return PaddingParams(
            length: try g.optInt("length"), padToMultipleOf: try g.optInt("pad_to_multiple_of"), direction: direction,
            padId: try g.optInt("pad_id") ?? 0, padTypeId: try g.optInt("pad_type_id") ?? 0,
            padToken: try g.optString("pad_token") ?? "[PAD]")
    }

    /// The fields of one encoding, in the order the fixtures list them.
    public static func encodingJSON(_ e: Encoding, withOverflowing: Bool) -> JSONValue {
        func ints(_ a: [Int]) -> JSONValue { .array(a.map { .int($0) }) }
        func optInts(_ a: [Int?]) -> JSONValue { .array(a.map { $0.map { .int($0) } ?? .null }) }
        var pairs: [(String, JSONValue)] = [
            ("ids", ints(e.ids)),
            ("tokens", .array(e.tokens.map { .string($0) })),
            ("offsets", .array(e.offsets.map { .array([.int($0.start), .int($0.end)]) })),
            ("type_ids", ints(e.typeIds)),
            ("special_tokens_mask", ints(e.specialTokensMask)),
            ("attention_mask", ints(e.attentionMask)),
            ("word_ids", optInts(e.wordIds)),
            ("sequence_ids", optInts(e.sequenceIds)),
        ]
        if withOverflowing {
            pairs.append(("overflowing", .array(e.overflowing.map { encodingJSON($0, withOverflowing: true) })))
        }
        return .object(pairs)
    }
}

extension Tokenizer {
    /// The check `enable_truncation` makes: the stride must be below the effective max length.
    public func validate(truncation t: TruncationParams) throws(TokenizerError) {
        let nAdded = postProcessor?.addedTokens(isPair: false) ?? 0
        guard t.maxLength >= nAdded else { return }  // unsigned underflow in the library: no check fails
        let effective = t.maxLength - nAdded
        if effective < t.stride {
            throw .truncation(
                """
                tokenizer stride set to \(t.stride), which is greater than or equal to its effective max length of \(effective) (= \
                \(t.maxLength) original max length - \(nAdded) added special tokens), 
                """
            )
        }
    }
}
