import Wire

/// Special tokens named by `tokenizer_config.json` / `special_tokens_map.json` (transformers'
/// conventions), resolved to ids through the tokenizer's vocabulary.
public struct SpecialTokens: Sendable, Equatable {
    public var bos: String?
    public var eos: String?
    public var unk: String?
    public var sep: String?
    public var pad: String?
    public var cls: String?
    public var mask: String?
    /// Ids of the tokens above (nil when absent from the vocabulary).
    public var bosId: Int?
    public var eosId: Int?
    public var unkId: Int?
    public var sepId: Int?
    public var padId: Int?
    public var clsId: Int?
    public var maskId: Int?
    /// `model_max_length` from tokenizer_config.json, when given.
    public var modelMaxLength: Int?

    public init() {}

    static func name(_ v: JSONValue?) -> String? {
        guard let v else { return nil }
        if let s = v.stringValue { return s }
        return v["content"]?.stringValue
    }

    /// Later sources override earlier ones: tokenizer_config.json, then special_tokens_map.json.
    mutating func apply(_ json: JSONValue) {
        if let s = SpecialTokens.name(json["bos_token"]) { bos = s }
        if let s = SpecialTokens.name(json["eos_token"]) { eos = s }
        if let s = SpecialTokens.name(json["unk_token"]) { unk = s }
        if let s = SpecialTokens.name(json["sep_token"]) { sep = s }
        if let s = SpecialTokens.name(json["pad_token"]) { pad = s }
        if let s = SpecialTokens.name(json["cls_token"]) { cls = s }
        if let s = SpecialTokens.name(json["mask_token"]) { mask = s }
        if let m = json["model_max_length"]?.intValue { modelMaxLength = m }
    }

    mutating func resolve(_ tokenToId: (String) -> Int?) {
        bosId = bos.flatMap(tokenToId)
        eosId = eos.flatMap(tokenToId)
        unkId = unk.flatMap(tokenToId)
        sepId = sep.flatMap(tokenToId)
        padId = pad.flatMap(tokenToId)
        clsId = cls.flatMap(tokenToId)
        maskId = mask.flatMap(tokenToId)
    }
}
