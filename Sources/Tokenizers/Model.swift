import Wire

/// The `model` entry of tokenizer.json: turns one pre-tokenized piece into tokens.
protocol TokenModel: Sendable {
    /// Tokenizes `piece` (normalized scalars) and appends tokens with offsets inside the piece.
    func tokenize(_ piece: [UInt32], into out: inout [Token]) throws(TokenizerError)
    func tokenToId(_ token: String) -> Int?
    func idToToken(_ id: Int) -> String?
    var vocabSize: Int { get }
    /// Whether every non-empty piece gives at least one token (or an error): then a count of
    /// pieces is a lower bound of the count of tokens (`Tokenizer.encode(maxTokens:)` uses it).
    var yieldsATokenPerPiece: Bool { get }
}

extension TokenModel {
    /// WordPiece, WordLevel and Unigram give an unknown piece the unknown token (or throw).
    var yieldsATokenPerPiece: Bool { true }
}

enum ModelFactory {
    static func make(_ json: JSONValue) throws(TokenizerError) -> TokenModel {
        let f = try JSONFields(json, component: "model")
        // Older files omit `type`; infer it from the fields like the library does.
        var type = try f.optString("type")
        if type == nil {
            if f.has("merges") {
                type = "BPE"
            } else if f.has("max_input_chars_per_word") {
                type = "WordPiece"
            } else if f.value["vocab"]?.arrayValue != nil {
                type = "Unigram"
            }
        }
        guard let type else { throw .missingField(component: "model", field: "type") }
        switch type {
        case "BPE": return try BPEModel(json: f)
        case "WordPiece": return try WordPieceModel(json: f)
        case "WordLevel": return try WordLevelModel(json: f)
        case "Unigram": return try UnigramModel(json: f)
        default: throw .unknownType(component: "model", type: type)
        }
    }

    /// Reads a `{token: id}` vocabulary.
    static func vocab(_ f: JSONFields) throws(TokenizerError) -> ([VocabKey: Int32], [Int: String]) {
        let raw = try f.object("vocab")
        var vocab: [VocabKey: Int32] = [:]
        var reverse: [Int: String] = [:]
        vocab.reserveCapacity(raw.count)
        reverse.reserveCapacity(raw.count)
        for (tok, v) in raw {
            guard let id = v.intValue, id >= 0, id <= Int(Int32.max) else {
                throw .invalidField(component: f.component, field: "vocab[\(tok.prefix(100))]", expected: "a non-negative integer id")
            }
            vocab[VocabKey(tok)] = Int32(id)
            reverse[id] = tok
        }
        return (vocab, reverse)
    }
}

extension Array where Element == UInt32 {
    var asString: String {
        var s = String()
        s.unicodeScalars.reserveCapacity(count)
        for v in self { if let u = Unicode.Scalar(v) { s.unicodeScalars.append(u) } }
        return s
    }
}

extension ArraySlice where Element == UInt32 {
    var asString: String {
        var s = String()
        s.unicodeScalars.reserveCapacity(count)
        for v in self { if let u = Unicode.Scalar(v) { s.unicodeScalars.append(u) } }
        return s
    }
}

struct WordPieceModel: TokenModel {
    let vocab: [VocabKey: Int32]
    let reverse: [Int: String]
    let unkToken: String
    let prefix: String
    let maxInputCharsPerWord: Int

    init(json f: JSONFields) throws(TokenizerError) {
        let f = JSONFields(same: f, component: "model WordPiece")
        (vocab, reverse) = try ModelFactory.vocab(f)
        unkToken = try f.optString("unk_token") ?? "[UNK]"
        prefix = try f.optString("continuing_subword_prefix") ?? "##"
        maxInputCharsPerWord = try f.optInt("max_input_chars_per_word") ?? 100
    }

    var vocabSize: Int { vocab.count }
    func tokenToId(_ token: String) -> Int? { vocab[VocabKey(token)].map { Int($0) } }
    func idToToken(_ id: Int) -> String? { reverse[id] }

    func tokenize(_ piece: [UInt32], into out: inout [Token]) throws(TokenizerError) {
        let n = piece.count
        guard n <= maxInputCharsPerWord else {
            guard let unk = vocab[VocabKey(unkToken)] else { throw .tokenNotInVocab(component: "model WordPiece", token: unkToken) }
            out.append(Token(id: unk, start: 0, end: Int32(n), value: nil))
            return
        }
        var start = 0
        var subs: [Token] = []
        while start < n {
            var end = n
            var found: Token? = nil
            while start < end {
                var s = start > 0 ? prefix : ""
                s += piece[start..<end].asString
                if let id = vocab[VocabKey(s)] {
                    found = Token(id: id, start: Int32(start), end: Int32(end), value: nil)
                    break
                }
                end -= 1
            }
            guard let tok = found else {
                guard let unk = vocab[VocabKey(unkToken)] else { throw .tokenNotInVocab(component: "model WordPiece", token: unkToken) }
                out.append(Token(id: unk, start: 0, end: Int32(n), value: nil))
                return
            }
            subs.append(tok)
            start = end
        }
        out.append(contentsOf: subs)
    }
}

struct WordLevelModel: TokenModel {
    let vocab: [VocabKey: Int32]
    let reverse: [Int: String]
    let unkToken: String

    init(json f: JSONFields) throws(TokenizerError) {
        let f = JSONFields(same: f, component: "model WordLevel")
        (vocab, reverse) = try ModelFactory.vocab(f)
        unkToken = try f.optString("unk_token") ?? "<unk>"
    }

    var vocabSize: Int { vocab.count }
    func tokenToId(_ token: String) -> Int? { vocab[VocabKey(token)].map { Int($0) } }
    func idToToken(_ id: Int) -> String? { reverse[id] }

    func tokenize(_ piece: [UInt32], into out: inout [Token]) throws(TokenizerError) {
        let s = piece.asString
        if let id = vocab[VocabKey(s)] {
            out.append(Token(id: id, start: 0, end: Int32(piece.count), value: nil))
        } else if let unk = vocab[VocabKey(unkToken)] {
            out.append(Token(id: unk, start: 0, end: Int32(piece.count), value: nil))
        } else {
            throw .tokenNotInVocab(component: "model WordLevel", token: unkToken)
        }
    }
}
