import Synchronization
import Wire

/// Byte-pair encoding (the library's `BPE` model) with a per-word cache.
final class BPEModel: TokenModel {
    /// Without an unknown token, characters outside the vocabulary (and their byte fallback) are
    /// dropped: a piece can give no token.
    var yieldsATokenPerPiece: Bool { unkToken != nil }
    struct Sym {
        var id: Int32
        var start: Int32
        var end: Int32
        var prev: Int32
        var next: Int32
        var alive: Bool
    }

    struct MergeEntry: Comparable {
        var rank: Int32
        var pos: Int32
        var newId: Int32
        static func < (a: MergeEntry, b: MergeEntry) -> Bool {
            a.rank != b.rank ? a.rank < b.rank : a.pos < b.pos
        }
    }

    struct Cached: Sendable {
        var ids: [Int32]
        var starts: [Int32]
        var ends: [Int32]
    }

    let vocab: [VocabKey: Int32]
    let reverse: [Int: String]
    /// (left id, right id) → (rank, new id)
    let merges: [UInt64: (Int32, Int32)]
    let unkToken: String?
    let continuingSubwordPrefix: String?
    let endOfWordSuffix: String?
    let fuseUnk: Bool
    let byteFallback: Bool
    let ignoreMerges: Bool
    /// Single-scalar vocabulary entries, for the common case without prefix/suffix.
    let charIds: [UInt32: Int32]
    let byteFallbackIds: [Int32]
    private let cache = Mutex<[VocabKey: Cached]>([:])
    static let cacheCapacity = 200_000

    init(json f: JSONFields) throws(TokenizerError) {
        let f = JSONFields(same: f, component: "model BPE")
        (vocab, reverse) = try ModelFactory.vocab(f)
        unkToken = try f.optString("unk_token")
        continuingSubwordPrefix = try f.optString("continuing_subword_prefix")
        endOfWordSuffix = try f.optString("end_of_word_suffix")
        fuseUnk = try f.bool("fuse_unk", default: false)
        byteFallback = try f.bool("byte_fallback", default: false)
        ignoreMerges = try f.bool("ignore_merges", default: false)
        if let d = try f.optDouble("dropout"), d < 0 || d > 1 {
            throw .invalidField(component: "model BPE", field: "dropout", expected: "a number between 0 and 1")
        }
        var m: [UInt64: (Int32, Int32)] = [:]
        let rawMerges = try f.array("merges")
        m.reserveCapacity(rawMerges.count)
        for (rank, item) in rawMerges.enumerated() {
            let a: String, b: String
            if let s = item.stringValue {
                let parts = s.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
                guard parts.count == 2 else {
                    throw .invalidField(component: "model BPE", field: "merges[\(rank)]", expected: "\"left right\"")
                }
                a = String(parts[0])
                b = String(parts[1])
            } else if let arr = item.arrayValue, arr.count == 2, let x = arr[0].stringValue, let y = arr[1].stringValue {
                a = x
                b = y
            } else {
                throw .invalidField(component: "model BPE", field: "merges[\(rank)]", expected: "a string \"a b\" or a pair [\"a\", \"b\"]")
            }
            guard let ia = vocab[VocabKey(a)] else { throw .mergeTokenNotInVocab(merge: "\(a) \(b)", token: a) }
            guard let ib = vocab[VocabKey(b)] else { throw .mergeTokenNotInVocab(merge: "\(a) \(b)", token: b) }
            let merged = a + (continuingSubwordPrefix.map { b.hasPrefix($0) ? String(b.dropFirst($0.count)) : b } ?? b)
            guard let im = vocab[VocabKey(merged)] else { throw .mergeTokenNotInVocab(merge: "\(a) \(b)", token: merged) }
            let key = UInt64(UInt32(bitPattern: ia)) << 32 | UInt64(UInt32(bitPattern: ib))
            m[key] = (Int32(rank), im)
        }
        merges = m
        var ci: [UInt32: Int32] = [:]
        for (tok, id) in vocab {
            let sc = tok.string.unicodeScalars
            if sc.count == 1, let v = sc.first?.value { ci[v] = id }
        }
        charIds = ci
        var bf = [Int32](repeating: -1, count: 256)
        for b in 0..<256 {
            let hex = String(b, radix: 16, uppercase: true)
            if let id = vocab[VocabKey("<0x" + (hex.count == 1 ? "0" + hex : hex) + ">")] { bf[b] = id }
        }
        byteFallbackIds = bf
    }

    var vocabSize: Int { vocab.count }
    func tokenToId(_ token: String) -> Int? { vocab[VocabKey(token)].map { Int($0) } }
    func idToToken(_ id: Int) -> String? { reverse[id] }

    func tokenize(_ piece: [UInt32], into out: inout [Token]) throws(TokenizerError) {
        if piece.isEmpty { return }
        let key = VocabKey(piece.asString)
        if ignoreMerges, let id = vocab[key] {
            out.append(Token(id: id, start: 0, end: Int32(piece.count), value: nil))
            return
        }
        if let hit = cache.withLock({ $0[key] }) {
            emit(hit, into: &out)
            return
        }
        let word = try mergeWord(piece)
        if piece.count < 256 {
            cache.withLock { c in
                if c.count < BPEModel.cacheCapacity { c[key] = word }
            }
        }
        emit(word, into: &out)
    }

    private func emit(_ w: Cached, into out: inout [Token]) {
        for k in 0..<w.ids.count {
            out.append(Token(id: w.ids[k], start: w.starts[k], end: w.ends[k], value: nil))
        }
    }

    func mergeWord(_ piece: [UInt32]) throws(TokenizerError) -> Cached {
        var syms: [Sym] = []
        syms.reserveCapacity(piece.count)
        var unk: (Int32, Int32, Int32)? = nil  // id, start, end
        let plain = continuingSubwordPrefix == nil && endOfWordSuffix == nil
        func add(_ id: Int32, _ s: Int32, _ e: Int32) {
            syms.append(Sym(id: id, start: s, end: e, prev: Int32(syms.count - 1), next: Int32(syms.count + 1), alive: true))
        }
        for i in 0..<piece.count {
            let v = piece[i]
            var id: Int32? = nil
            if plain {
                id = charIds[v]
            } else {
                var s = ""
                if i > 0, let p = continuingSubwordPrefix { s += p }
                if let u = Unicode.Scalar(v) { s.unicodeScalars.append(u) }
                if i == piece.count - 1, let suf = endOfWordSuffix { s += suf }
                id = vocab[VocabKey(s)]
            }
            if let id {
                if let u = unk {
                    add(u.0, u.1, u.2)
                    unk = nil
                }
                add(id, Int32(i), Int32(i + 1))
                continue
            }
            if byteFallback {
                var bytes: [UInt8] = []
                if let u = Unicode.Scalar(v) { bytes = Array(String(Character(u)).utf8) }
                let ids = bytes.map { byteFallbackIds[Int($0)] }
                if !ids.isEmpty && !ids.contains(-1) {
                    if let u = unk {
                        add(u.0, u.1, u.2)
                        unk = nil
                    }
                    for b in ids { add(b, Int32(i), Int32(i + 1)) }
                    continue
                }
            }
            if let unkTok = unkToken {
                guard let unkId = vocab[VocabKey(unkTok)] else { throw .tokenNotInVocab(component: "model BPE", token: unkTok) }
                if let u = unk {
                    if fuseUnk {
                        unk = (u.0, u.1, Int32(i + 1))
                    } else {
                        add(u.0, u.1, u.2)
                        unk = (unkId, Int32(i), Int32(i + 1))
                    }
                } else {
                    unk = (unkId, Int32(i), Int32(i + 1))
                }
            }
        }
        if let u = unk { add(u.0, u.1, u.2) }
        if !syms.isEmpty { syms[syms.count - 1].next = -1 }
        mergeAll(&syms)
        var ids: [Int32] = [], starts: [Int32] = [], ends: [Int32] = []
        for s in syms where s.alive {
            ids.append(s.id)
            starts.append(s.start)
            ends.append(s.end)
        }
        return Cached(ids: ids, starts: starts, ends: ends)
    }

    @inline(__always)
    func lookupMerge(_ a: Int32, _ b: Int32) -> (Int32, Int32)? {
        merges[UInt64(UInt32(bitPattern: a)) << 32 | UInt64(UInt32(bitPattern: b))]
    }

    func mergeAll(_ syms: inout [Sym]) {
        if syms.count < 2 { return }
        var heap = MinHeap<MergeEntry>()
        for k in 0..<(syms.count - 1) {
            if let (rank, nid) = lookupMerge(syms[k].id, syms[k + 1].id) {
                heap.push(MergeEntry(rank: rank, pos: Int32(k), newId: nid))
            }
        }
        while let top = heap.pop() {
            let pos = Int(top.pos)
            guard syms[pos].alive, syms[pos].next >= 0 else { continue }
            let nextPos = Int(syms[pos].next)
            let right = syms[nextPos]
            guard let (_, nid) = lookupMerge(syms[pos].id, right.id), nid == top.newId else { continue }
            syms[pos].id = top.newId
            syms[pos].end = right.end
            syms[pos].next = right.next
            syms[nextPos].alive = false
            if right.next >= 0 { syms[Int(right.next)].prev = Int32(pos) }
            let cur = syms[pos]
            if cur.prev >= 0, let (rank, nid2) = lookupMerge(syms[Int(cur.prev)].id, cur.id) {
                heap.push(MergeEntry(rank: rank, pos: cur.prev, newId: nid2))
            }
            if cur.next >= 0, let (rank, nid2) = lookupMerge(cur.id, syms[Int(cur.next)].id) {
                heap.push(MergeEntry(rank: rank, pos: Int32(pos), newId: nid2))
            }
        }
    }
}

struct MinHeap<T: Comparable> {
    var items: [T] = []

    mutating func push(_ x: T) {
        items.append(x)
        var i = items.count - 1
        while i > 0 {
            let p = (i - 1) / 2
            if items[i] < items[p] {
                items.swapAt(i, p)
                i = p
            } else {
                break
            }
        }
    }

    mutating func pop() -> T? {
        guard let first = items.first else { return nil }
        let last = items.removeLast()
        if items.isEmpty { return first }
        items[0] = last
        var i = 0
        let n = items.count
        while true {
            let l = 2 * i + 1, r = l + 1
            var m = i
            if l < n && items[l] < items[m] { m = l }
            if r < n && items[r] < items[m] { m = r }
            if m == i { break }
            items.swapAt(i, m)
            i = m
        }
        return first
    }
}
