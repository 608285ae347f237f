import Wire

/// SentencePiece-style unigram language model (the library's `Unigram`), Viterbi decoding.
struct UnigramModel: TokenModel {
    let pieces: [String]
    let scores: [Double]
    let vocab: [VocabKey: Int32]
    let unkId: Int?
    let byteFallback: Bool
    let fuseUnk: Bool
    let maxPieceLength: Int
    let minScore: Double
    static let unkPenalty = 10.0

    init(json f: JSONFields) throws(TokenizerError) {
        let f = JSONFields(same: f, component: "model Unigram")
        var p: [String] = [], s: [Double] = []
        var v: [VocabKey: Int32] = [:]
        var maxLen = 1
        var minS = Double.greatestFiniteMagnitude
        for (k, item) in try f.array("vocab").enumerated() {
            guard let arr = item.arrayValue, arr.count == 2, let tok = arr[0].stringValue, let score = arr[1].doubleValue else {
                throw .invalidField(component: "model Unigram", field: "vocab[\(k)]", expected: "a [piece, score] pair")
            }
            p.append(tok)
            s.append(score)
            if v[VocabKey(tok)] == nil { v[VocabKey(tok)] = Int32(k) }
            maxLen = max(maxLen, tok.unicodeScalars.count)
            minS = min(minS, score)
        }
        pieces = p
        scores = s
        vocab = v
        maxPieceLength = maxLen
        minScore = p.isEmpty ? 0 : minS
        unkId = try f.optInt("unk_id")
        if let u = unkId, u < 0 || u >= p.count {
            throw .invalidField(component: "model Unigram", field: "unk_id", expected: "an index into vocab")
        }
        byteFallback = try f.bool("byte_fallback", default: false)
        fuseUnk = true
    }

    var vocabSize: Int { pieces.count }
    func tokenToId(_ token: String) -> Int? { vocab[VocabKey(token)].map { Int($0) } }
    func idToToken(_ id: Int) -> String? { id >= 0 && id < pieces.count ? pieces[id] : nil }

    func tokenize(_ piece: [UInt32], into out: inout [Token]) throws(TokenizerError) {
        let n = piece.count
        if n == 0 { return }
        let unkScore = minScore - UnigramModel.unkPenalty
        var best = [Double](repeating: -Double.infinity, count: n + 1)
        var backStart = [Int](repeating: -1, count: n + 1)
        var backId = [Int32](repeating: -1, count: n + 1)
        best[0] = 0
        for st in 0..<n where best[st] > -Double.infinity {
            var hasSingle = false
            var s = ""
            for len in 1...min(maxPieceLength, n - st) {
                if let u = Unicode.Scalar(piece[st + len - 1]) { s.unicodeScalars.append(u) }
                guard let id = vocab[VocabKey(s)] else { continue }
                if len == 1 { hasSingle = true }
                let sc = best[st] + scores[Int(id)]
                if sc > best[st + len] {
                    best[st + len] = sc
                    backStart[st + len] = st
                    backId[st + len] = id
                }
            }
            if !hasSingle {
                let sc = best[st] + unkScore
                if sc > best[st + 1] {
                    best[st + 1] = sc
                    backStart[st + 1] = st
                    backId[st + 1] = -1
                }
            }
        }
        var segs: [(Int, Int, Int32)] = []
        var e = n
        while e > 0 {
            let st = backStart[e]
            if st < 0 { break }
            segs.append((st, e, backId[e]))
            e = st
        }
        segs.reverse()
        // Fuse consecutive unknown pieces.
        var fused: [(Int, Int, Int32)] = []
        for sg in segs {
            if fuseUnk, sg.2 < 0, let last = fused.last, last.2 < 0 {
                fused[fused.count - 1].1 = sg.1
            } else {
                fused.append(sg)
            }
        }
        for (st, en, id) in fused {
            if id >= 0 {
                out.append(Token(id: id, start: Int32(st), end: Int32(en), value: nil))
                continue
            }
            let text = piece[st..<en].asString
            if byteFallback {
                var ids: [Int32] = []
                for b in text.utf8 {
                    let h = String(b, radix: 16, uppercase: true)
                    guard let bid = vocab[VocabKey("<0x" + (h.count == 1 ? "0" + h : h) + ">")] else {
                        ids = []
                        break
                    }
                    ids.append(bid)
                }
                if !ids.isEmpty {
                    for bid in ids { out.append(Token(id: bid, start: Int32(st), end: Int32(en), value: nil)) }
                    continue
                }
            }
            guard let u = unkId else { throw .encoding("Unigram: encountered an unknown piece but no unk_id is set") }
            out.append(Token(id: Int32(u), start: Int32(st), end: Int32(en), value: text))
        }
    }
}
