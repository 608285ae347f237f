import Foundation
import Synchronization
import Wire

/// A Hugging Face `tokenizer.json` pipeline: added tokens → normalizer → pre-tokenizer → model →
/// post-processor (with truncation and padding), and the decoder. Thread-safe; share one instance.
public final class Tokenizer: Sendable {
    let normalizer: Normalizer?
    let preTokenizer: PreTokenizer?
    let model: TokenModel
    let postProcessor: PostProcessor?
    let decoder: Decoder?
    let added: AddedVocabulary
    /// Special tokens named by the config files.
    public let specialTokens: SpecialTokens
    private let settings: Mutex<(TruncationParams?, PaddingParams?)>

    /// Largest tokenizer.json accepted.
    public static let maxFileBytes = 1 << 30

    /// Loads `tokenizer.json` (required) plus `tokenizer_config.json` and `special_tokens_map.json`
    /// when present.
    public convenience init(directory: String) throws(TokenizerError) {
        let base = URL(fileURLWithPath: directory)
        let main = try Tokenizer.read(base.appendingPathComponent("tokenizer.json").path)
        var configs: [Data] = []
        for name in ["tokenizer_config.json", "special_tokens_map.json"] {
            let path = base.appendingPathComponent(name).path
            if FileManager.default.fileExists(atPath: path) { configs.append(try Tokenizer.read(path)) }
        }
        try self.init(tokenizerJSON: main, configs: configs)
    }

    static func read(_ path: String) throws(TokenizerError) -> Data {
        guard let attrs = try? FileManager.default.attributesOfItem(atPath: path) else { throw .fileNotFound(path: path) }
        if let size = attrs[.size] as? Int, size > maxFileBytes {
            throw .inputTooLarge(what: path, size: size, limit: maxFileBytes)
        }
        guard let d = FileManager.default.contents(atPath: path) else { throw .fileNotFound(path: path) }
        return d
    }

    /// Builds a tokenizer from the bytes of `tokenizer.json` and, optionally, of a
    /// `tokenizer_config.json` / `special_tokens_map.json`.
    public convenience init(tokenizerJSON: Data, config: Data? = nil) throws(TokenizerError) {
        try self.init(tokenizerJSON: tokenizerJSON, configs: config.map { [$0] } ?? [])
    }

    init(tokenizerJSON: Data, configs: [Data]) throws(TokenizerError) {
        if tokenizerJSON.count > Tokenizer.maxFileBytes {
            throw .inputTooLarge(what: "tokenizer.json", size: tokenizerJSON.count, limit: Tokenizer.maxFileBytes)
        }
        let json = try JSONValue.parse(tokenizerJSON, context: "tokenizer.json")
        let root = try JSONFields(json, component: "tokenizer.json")
        normalizer = try NormalizerFactory.make(root.value["normalizer"] ?? .null)
        preTokenizer = try PreTokenizerFactory.make(root.value["pre_tokenizer"] ?? .null)
        model = try ModelFactory.make(try root.raw("model"))
        decoder = try DecoderFactory.make(root.value["decoder"] ?? .null)
        var addedTokens: [AddedToken] = []
        if let list = root.value["added_tokens"], !list.isNull {
            guard let arr = list.arrayValue else {
                throw .invalidField(component: "tokenizer.json", field: "added_tokens", expected: "an array")
            }
            for (k, item) in arr.enumerated() {
                let f = try JSONFields(item, component: "added_tokens[\(k)]")
                let content = try f.string("content")
                let special = try f.bool("special", default: false)
                let givenId = try f.int("id")
                guard givenId >= 0, givenId <= Int(Int32.max) else {
                    throw .invalidField(component: f.component, field: "id", expected: "a non-negative 32-bit id")
                }
                addedTokens.append(
                    AddedToken(
                        id: model.tokenToId(content) ?? givenId, content: content,
                        singleWord: try f.bool("single_word", default: false),
                        lstrip: try f.bool("lstrip", default: false), rstrip: try f.bool("rstrip", default: false),
                        normalized: try f.bool("normalized", default: !special), special: special))
            }
        }
        let addedVocab = try AddedVocabulary(tokens: addedTokens, normalizer: normalizer)
        added = addedVocab
        let m = model
        postProcessor = try PostProcessorFactory.make(root.value["post_processor"] ?? .null) { t in
            addedVocab.byContent[VocabKey(t)] ?? m.tokenToId(t)
        }
        var trunc: TruncationParams? = nil
        if let t = root.value["truncation"], !t.isNull { trunc = try Tokenizer.parseTruncation(t) }
        var pad: PaddingParams? = nil
        if let p = root.value["padding"], !p.isNull { pad = try Tokenizer.parsePadding(p) }
        settings = Mutex((trunc, pad))
        var sp = SpecialTokens()
        for c in configs {
            let cj = try JSONValue.parse(c, context: "tokenizer config")
            sp.apply(cj)
        }
        sp.resolve { t in addedVocab.byContent[VocabKey(t)] ?? m.tokenToId(t) }
        specialTokens = sp
    }

    static func parseTruncation(_ j: JSONValue) throws(TokenizerError) -> TruncationParams {
        let f = try JSONFields(j, component: "truncation")
        let strategy = try f.optString("strategy") ?? "LongestFirst"
        let direction = try f.optString("direction") ?? "Right"
        let s: TruncationStrategy
        switch strategy {
        case "LongestFirst", "longest_first": s = .longestFirst
        case "OnlyFirst", "only_first": s = .onlyFirst
        case "OnlySecond", "only_second": s = .onlySecond
        default: throw .invalidField(component: "truncation", field: "strategy", expected: "LongestFirst, OnlyFirst or OnlySecond")
        }
        let maxLength = try f.int("max_length")
        let stride = try f.optInt("stride") ?? 0
        guard maxLength >= 0, stride >= 0 else {
            throw .invalidField(component: "truncation", field: "max_length", expected: "non-negative")
        }
        return TruncationParams(
            maxLength: maxLength, stride: stride, strategy: s,
            direction: direction.lowercased() == "left" ? .left : .right)
    }

    static func parsePadding(_ j: JSONValue) throws(TokenizerError) -> PaddingParams {
        let f = try JSONFields(j, component: "padding")
        var length: Int? = nil
        if let st = f.value["strategy"], let fixed = st["Fixed"]?.intValue { length = fixed }
        return PaddingParams(
            length: length, padToMultipleOf: try f.optInt("pad_to_multiple_of"),
            direction: (try f.optString("direction") ?? "Right").lowercased() == "left" ? .left : .right,
            padId: try f.optInt("pad_id") ?? 0, padTypeId: try f.optInt("pad_type_id") ?? 0,
            padToken: try f.optString("pad_token") ?? "[PAD]")
    }

    // MARK: - Settings

    public var truncation: TruncationParams? {
        get { settings.withLock { $0.0 } }
        set { settings.withLock { $0.0 = newValue } }
    }

    public var padding: PaddingParams? {
        get { settings.withLock { $0.1 } }
        set { settings.withLock { $0.1 = newValue } }
    }

    // MARK: - Vocabulary

    public func tokenToId(_ token: String) -> Int? {
        added.byContent[VocabKey(token)] ?? model.tokenToId(token)
    }

    public func idToToken(_ id: Int) -> String? {
        if let k = added.byId[id] { return added.tokens[k].content }
        return model.idToToken(id)
    }

    /// Vocabulary size including added tokens.
    public var vocabSize: Int {
        var n = model.vocabSize
        for t in added.tokens where model.tokenToId(t.content) == nil { n += 1 }
        return n
    }

    /// The added tokens (special and normal) of tokenizer.json.
    public var addedTokens: [AddedToken] { added.tokens }
}
