import Foundation

/// `config.json` of a NorBERT 4 (GPT-BERT) checkpoint: every field the reference modeling file reads.
///
/// The reference config class has no defaults (it copies whatever the JSON holds), so the
/// architecture fields are required; label maps, problem type and token ids are optional.
public struct NorBERTConfig: Codable, Sendable, Equatable {
    public var hiddenSize: Int
    public var numLayers: Int
    public var numAttentionHeads: Int
    public var queryKeyHeadSize: Int
    public var valueHeadSize: Int
    public var intermediateSize: Int
    public var vocabSize: Int
    public var layerNormEps: Double
    public var maxSequenceLength: Int
    public var localGlobalRatio: Int
    public var localWindowLength: Int
    public var globalWindowLength: Int
    public var isDecoder: Bool?
    public var architectures: [String]?
    public var id2label: [String: String]?
    public var label2id: [String: Int]?
    public var numLabelsField: Int?
    public var problemType: String?
    public var bosTokenId: Int?
    public var eosTokenId: Int?
    public var padTokenId: Int?
    public var maskTokenId: Int?
    public var unkTokenId: Int?

    public init(
        hiddenSize: Int, numLayers: Int, numAttentionHeads: Int, queryKeyHeadSize: Int, valueHeadSize: Int,
        intermediateSize: Int, vocabSize: Int, layerNormEps: Double, maxSequenceLength: Int,
        localGlobalRatio: Int, localWindowLength: Int, globalWindowLength: Int,
        isDecoder: Bool? = nil, architectures: [String]? = nil, id2label: [String: String]? = nil,
        label2id: [String: Int]? = nil, numLabels: Int? = nil, problemType: String? = nil,
        bosTokenId: Int? = 1, eosTokenId: Int? = 2, padTokenId: Int? = 3, maskTokenId: Int? = 4, unkTokenId: Int? = 0
    ) {
        self.hiddenSize = hiddenSize
        self.numLayers = numLayers
        self.numAttentionHeads = numAttentionHeads
        self.queryKeyHeadSize = queryKeyHeadSize
        self.valueHeadSize = valueHeadSize
        self.intermediateSize = intermediateSize
        self.vocabSize = vocabSize
        self.layerNormEps = layerNormEps
        self.maxSequenceLength = maxSequenceLength
        self.localGlobalRatio = localGlobalRatio
        self.localWindowLength = localWindowLength
        self.globalWindowLength = globalWindowLength
        self.isDecoder = isDecoder
        self.architectures = architectures
        self.id2label = id2label
        self.label2id = label2id
        self.numLabelsField = numLabels
        self.problemType = problemType
        self.bosTokenId = bosTokenId
        self.eosTokenId = eosTokenId
        self.padTokenId = padTokenId
        self.maskTokenId = maskTokenId
        self.unkTokenId = unkTokenId
    }

    enum CodingKeys: String, CodingKey {
        case hiddenSize = "hidden_size"
        case numLayers = "num_layers"
        case numAttentionHeads = "num_attention_heads"
        case queryKeyHeadSize = "query_key_head_size"
        case valueHeadSize = "value_head_size"
        case intermediateSize = "intermediate_size"
        case vocabSize = "vocab_size"
        case layerNormEps = "layer_norm_eps"
        case maxSequenceLength = "max_sequence_length"
        case localGlobalRatio = "local_global_ratio"
        case localWindowLength = "local_window_length"
        case globalWindowLength = "global_window_length"
        case isDecoder = "is_decoder"
        case architectures
        case id2label
        case label2id
        case numLabelsField = "num_labels"
        case problemType = "problem_type"
        case bosTokenId = "bos_token_id"
        case eosTokenId = "eos_token_id"
        case padTokenId = "pad_token_id"
        case maskTokenId = "mask_token_id"
        case unkTokenId = "unk_token_id"
    }

    /// Number of labels as transformers derives it: the size of id2label, else `num_labels`, else 2.
    public var numLabels: Int { id2label?.count ?? numLabelsField ?? 2 }

    /// Labels ordered by id (`LABEL_i` where id2label is silent, as transformers names them).
    public var labels: [String] { labels(count: numLabels) }

    /// The names of `count` outputs: `id2label`'s, else `LABEL_i`.
    public func labels(count: Int) -> [String] {
        (0..<count).map { id2label?[String($0)] ?? Self.defaultLabelPrefix + String($0) }
    }
    public static let defaultLabelPrefix = "LABEL_"

    /// A layer is global when (index + 1) is a multiple of local_global_ratio (reference `Encoder.set_window_length`).
    public func isGlobalLayer(_ index: Int) -> Bool { (index + 1) % localGlobalRatio == 0 }
    public func window(ofLayer index: Int) -> Int { isGlobalLayer(index) ? globalWindowLength : localWindowLength }
    /// RoPE bases: hard-coded in the reference `SelfAttention.__init__` (config `rope_theta` is not read).
    public static let localRopeTheta: Double = 10_000
    public static let globalRopeTheta: Double = 160_000

    public static func load(directory: String) throws -> NorBERTConfig {
        let path = (directory as NSString).appendingPathComponent("config.json")
        guard let data = FileManager.default.contents(atPath: path) else {
            throw NorBERTError.config(path: path, message: "cannot read the file")
        }
        return try decode(data, path: path)
    }

    public static func decode(_ data: Data, path: String = "config.json") throws -> NorBERTConfig {
        let config: NorBERTConfig
        do {
            config = try JSONDecoder().decode(NorBERTConfig.self, from: data)
        } catch let DecodingError.keyNotFound(key, _) {
            throw NorBERTError.config(path: path, message: "missing field '\(key.stringValue)'")
        } catch let DecodingError.typeMismatch(_, context) {
            throw NorBERTError.config(
                path: path, message: "field '\(context.codingPath.map(\.stringValue).joined(separator: "."))' has the wrong type")
        } catch let DecodingError.valueNotFound(_, context) {
            throw NorBERTError.config(
                path: path, message: "field '\(context.codingPath.map(\.stringValue).joined(separator: "."))' is null")
        } catch {
            throw NorBERTError.config(path: path, message: "not a valid JSON object (\(error.localizedDescription))")
        }
        try config.validate(path: path)
        return config
    }

    /// Rejects values that cannot describe a real model (and would make the loader allocate absurd sizes).
    public func validate(path: String = "config.json") throws {
        func check(_ ok: Bool, _ field: String, _ why: String) throws {
            if !ok { throw NorBERTError.config(path: path, message: "field '\(field)' \(why)") }
        }
        let limit = 1 << 20
        try check((1...limit).contains(hiddenSize), "hidden_size", "must be in 1...\(limit), got \(hiddenSize)")
        try check((1...4096).contains(numLayers), "num_layers", "must be in 1...4096, got \(numLayers)")
        try check((1...4096).contains(numAttentionHeads), "num_attention_heads", "must be in 1...4096, got \(numAttentionHeads)")
        try check(
            (2...65536).contains(queryKeyHeadSize) && queryKeyHeadSize % 2 == 0, "query_key_head_size",
            "must be even and in 2...65536, got \(queryKeyHeadSize)")
        try check((1...65536).contains(valueHeadSize), "value_head_size", "must be in 1...65536, got \(valueHeadSize)")
        try check((1...limit * 4).contains(intermediateSize), "intermediate_size", "must be in 1...\(limit * 4), got \(intermediateSize)")
        try check((1...(1 << 24)).contains(vocabSize), "vocab_size", "must be in 1...\(1 << 24), got \(vocabSize)")
        try check(
            layerNormEps.isFinite && layerNormEps > 0 && layerNormEps < 1, "layer_norm_eps",
            "must be a positive number below 1, got \(layerNormEps)")
        try check(maxSequenceLength >= 1, "max_sequence_length", "must be positive, got \(maxSequenceLength)")
        try check(localGlobalRatio >= 1, "local_global_ratio", "must be at least 1, got \(localGlobalRatio)")
        try check(localWindowLength >= 0, "local_window_length", "must not be negative, got \(localWindowLength)")
        try check(globalWindowLength >= 0, "global_window_length", "must not be negative, got \(globalWindowLength)")
        let (qk, o1) = numAttentionHeads.multipliedReportingOverflow(by: queryKeyHeadSize)
        let (vv, o2) = numAttentionHeads.multipliedReportingOverflow(by: valueHeadSize)
        try check(!o1 && qk <= limit, "query_key_head_size", "times num_attention_heads is absurd")
        try check(!o2 && vv <= limit, "value_head_size", "times num_attention_heads is absurd")
        if let labels = id2label {
            for key in labels.keys {
                try check(
                    Int(key).map { (0..<labels.count).contains($0) } ?? false, "id2label", "keys must be 0..<\(labels.count), got '\(key)'")
            }
        }
        if let n = numLabelsField, id2label == nil {
            try check((1...100_000).contains(n), "num_labels", "must be in 1...100000, got \(n)")
        }
        for (name, id) in [
            ("bos_token_id", bosTokenId), ("eos_token_id", eosTokenId), ("pad_token_id", padTokenId), ("mask_token_id", maskTokenId),
            ("unk_token_id", unkTokenId),
        ] {
            if let id { try check((0..<vocabSize).contains(id), name, "must be a token id below vocab_size \(vocabSize), got \(id)") }
        }
    }
}
