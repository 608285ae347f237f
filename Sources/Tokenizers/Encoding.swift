/// `[start, end)` in Unicode scalar offsets of the original text (or of the pair text for
/// tokens of the second sequence).
public struct Offset: Sendable, Hashable, CustomStringConvertible {
    public var start: Int
    public var end: Int
    public init(_ start: Int, _ end: Int) {
        self.start = start
        self.end = end
    }
    public var description: String { "[\(start), \(end))" }
}

/// The output of encoding one text or pair, field for field what the library's `Encoding` holds.
public struct Encoding: Sendable, Equatable {
    public internal(set) var ids: [Int] = []
    public internal(set) var typeIds: [Int] = []
    public internal(set) var tokens: [String] = []
    /// Scalar offsets into the original text (see `Offset`).
    public internal(set) var offsets: [Offset] = []
    /// Index of the pre-tokenized word each token came from; nil for inserted special tokens and padding.
    public internal(set) var wordIds: [Int?] = []
    public internal(set) var specialTokensMask: [Int] = []
    public internal(set) var attentionMask: [Int] = []
    /// Further windows produced by truncation (nested as the library nests them).
    public internal(set) var overflowing: [Encoding] = []
    /// Which tokens belong to which input sequence.
    var sequenceRanges: [Int: Range<Int>] = [:]

    public init() {}

    public var count: Int { ids.count }

    /// 0 or 1 for the sequence each token belongs to; nil for inserted special tokens and padding.
    public var sequenceIds: [Int?] {
        // As the library: sequences 0..<n (n = number of ranges, at least 1); a missing id
        // covers the whole encoding.
        let n = ids.count
        var out = [Int?](repeating: nil, count: n)
        for seq in 0..<max(1, sequenceRanges.count) {
            let r = sequenceRanges[seq] ?? 0..<n
            for k in r where k >= 0 && k < n { out[k] = seq }
        }
        return out
    }

    mutating func setSequenceId(_ id: Int) {
        sequenceRanges[id] = 0..<ids.count
    }

    mutating func setTypeIds(_ v: Int) {
        typeIds = [Int](repeating: v, count: ids.count)
    }

    /// The library's `Encoding::merge_with`.
    mutating func merge(with pair: Encoding, growingOffsets: Bool) {
        var overflowings: [Encoding] = []
        for selfO in overflowing {
            var n = selfO
            n.merge(with: pair, growingOffsets: growingOffsets)
            overflowings.append(n)
            for otherO in pair.overflowing {
                var n2 = selfO
                n2.merge(with: otherO, growingOffsets: growingOffsets)
                overflowings.append(n2)
            }
        }
        for otherO in pair.overflowing {
            var n = self
            n.merge(with: otherO, growingOffsets: growingOffsets)
            overflowings.append(n)
        }
        let originalLen = ids.count
        for (seq, r) in pair.sequenceRanges {
            sequenceRanges[seq] = (originalLen + r.lowerBound)..<(originalLen + r.upperBound)
        }
        ids += pair.ids
        typeIds += pair.typeIds
        tokens += pair.tokens
        wordIds += pair.wordIds
        let shift = growingOffsets ? (offsets.last?.end ?? 0) : 0
        offsets += pair.offsets.map { Offset($0.start + shift, $0.end + shift) }
        specialTokensMask += pair.specialTokensMask
        attentionMask += pair.attentionMask
        overflowing = overflowings
    }

    static func merged(_ encodings: [Encoding], growingOffsets: Bool) -> Encoding {
        var e = Encoding()
        for sub in encodings { e.merge(with: sub, growingOffsets: growingOffsets) }
        return e
    }

    func slice(_ a: Int, _ b: Int) -> Encoding {
        var e = Encoding()
        e.ids = Array(ids[a..<b])
        e.typeIds = Array(typeIds[a..<b])
        e.tokens = Array(tokens[a..<b])
        e.offsets = Array(offsets[a..<b])
        e.wordIds = Array(wordIds[a..<b])
        e.specialTokensMask = Array(specialTokensMask[a..<b])
        e.attentionMask = Array(attentionMask[a..<b])
        return e
    }

    /// The library's `Encoding::truncate`: keeps the first window, the rest go to `overflowing`.
    mutating func truncate(maxLength: Int, stride: Int, direction: TruncationDirection) throws(TokenizerError) {
        let n = ids.count
        if maxLength >= n { return }
        if maxLength == 0 {
            let whole = self
            self = Encoding()
            overflowing.append(whole)
            return
        }
        guard stride < maxLength else {
            throw .truncation(
                """
                `stride` must be strictly less than `max_len=\(maxLength)` (note that `max_len` may be shorter than the max length of \
                the original model, as it subtracts the number of special characters
                """
            )
        }
        let step = maxLength - stride
        var parts: [(Int, Int)] = []
        switch direction {
        case .right:
            var start = 0
            while start < n {
                let stop = min(start + maxLength, n)
                parts.append((start, stop))
                if stop == n { break }
                start += step
            }
        case .left:
            var stop1 = n - 1
            while stop1 >= 0 {
                let stop = stop1 + 1
                let start = max(0, stop - maxLength)
                if start < stop { parts.append((start, stop)) }
                if start == 0 { break }
                stop1 -= step
            }
        }
        guard let first = parts.first else { return }
        var main = slice(first.0, first.1)
        for p in parts.dropFirst() { main.overflowing.append(slice(p.0, p.1)) }
        self = main
    }

    /// The library's `Encoding::pad` (overflowing windows first).
    mutating func pad(to target: Int, id: Int, typeId: Int, token: String, direction: PaddingDirection) {
        for k in overflowing.indices {
            overflowing[k].pad(to: target, id: id, typeId: typeId, token: token, direction: direction)
        }
        guard ids.count < target else { return }
        let n = target - ids.count
        switch direction {
        case .left:
            ids = [Int](repeating: id, count: n) + ids
            typeIds = [Int](repeating: typeId, count: n) + typeIds
            tokens = [String](repeating: token, count: n) + tokens
            wordIds = [Int?](repeating: nil, count: n) + wordIds
            attentionMask = [Int](repeating: 0, count: n) + attentionMask
            specialTokensMask = [Int](repeating: 1, count: n) + specialTokensMask
            offsets = [Offset](repeating: Offset(0, 0), count: n) + offsets
            for (k, r) in sequenceRanges { sequenceRanges[k] = (r.lowerBound + n)..<(r.upperBound + n) }
        case .right:
            ids += [Int](repeating: id, count: n)
            typeIds += [Int](repeating: typeId, count: n)
            tokens += [String](repeating: token, count: n)
            wordIds += [Int?](repeating: nil, count: n)
            attentionMask += [Int](repeating: 0, count: n)
            specialTokensMask += [Int](repeating: 1, count: n)
            offsets += [Offset](repeating: Offset(0, 0), count: n)
        }
    }

    /// Offsets converted to UTF-8 byte positions (`text` for sequence 0, `pair` for sequence 1).
    public func utf8Offsets(text: String, pair: String? = nil) -> [Offset] {
        convertOffsets(text: text, pair: pair) { $0.utf8.count }
    }

    /// Offsets converted to UTF-16 code-unit positions (`text` for sequence 0, `pair` for sequence 1).
    public func utf16Offsets(text: String, pair: String? = nil) -> [Offset] {
        convertOffsets(text: text, pair: pair) { $0.utf16.count }
    }

    private func convertOffsets(text: String, pair: String?, width: (String) -> Int) -> [Offset] {
        func table(_ s: String) -> [Int] {
            var t = [0]
            t.reserveCapacity(s.unicodeScalars.count + 1)
            var acc = 0
            for u in s.unicodeScalars {
                acc += width(String(u))
                t.append(acc)
            }
            return t
        }
        let t0 = table(text)
        let t1 = pair.map(table) ?? t0
        let seqs = sequenceIds
        return offsets.enumerated().map { k, o in
            let t = seqs[k] == 1 ? t1 : t0
            return Offset(t[min(o.start, t.count - 1)], t[min(o.end, t.count - 1)])
        }
    }
}

public enum TruncationDirection: String, Sendable { case left, right }
public enum PaddingDirection: String, Sendable { case left, right }

public enum TruncationStrategy: String, Sendable {
    case longestFirst = "longest_first"
    case onlyFirst = "only_first"
    case onlySecond = "only_second"
}

public struct TruncationParams: Sendable, Equatable {
    public var maxLength: Int
    public var stride: Int
    public var strategy: TruncationStrategy
    public var direction: TruncationDirection
    public init(maxLength: Int, stride: Int = 0, strategy: TruncationStrategy = .longestFirst, direction: TruncationDirection = .right) {
        self.maxLength = maxLength
        self.stride = stride
        self.strategy = strategy
        self.direction = direction
    }
}

public struct PaddingParams: Sendable, Equatable {
    /// nil: pad to the longest encoding of the batch.
    public var length: Int?
    public var padToMultipleOf: Int?
    public var direction: PaddingDirection
    public var padId: Int
    public var padTypeId: Int
    public var padToken: String
    public init(
        length: Int? = nil, padToMultipleOf: Int? = nil, direction: PaddingDirection = .right, padId: Int = 0, padTypeId: Int = 0,
        padToken: String = "[PAD]"
    ) {
        self.length = length
        self.padToMultipleOf = padToMultipleOf
        self.direction = direction
        self.padId = padId
        self.padTypeId = padTypeId
        self.padToken = padToken
    }
}

enum TruncationLogic {
    /// The library's `truncate_encodings`.
    static func truncate(_ encoding: inout Encoding, _ pair: inout Encoding?, _ p: TruncationParams) throws(TokenizerError) {
        guard p.maxLength >= 0, p.stride >= 0 else {
            throw .truncation("max_length and stride must be non-negative")
        }
        if p.maxLength == 0 {
            try encoding.truncate(maxLength: 0, stride: p.stride, direction: p.direction)
            try pair?.truncate(maxLength: 0, stride: p.stride, direction: p.direction)
            return
        }
        let total = encoding.count + (pair?.count ?? 0)
        guard total > p.maxLength else { return }
        let toRemove = total - p.maxLength
        switch p.strategy {
        case .longestFirst:
            if var other = pair {
                var n1 = encoding.count, n2 = other.count
                var swap = false
                if n1 > n2 {
                    swap = true
                    (n1, n2) = (n2, n1)
                }
                if n1 > p.maxLength { n2 = n1 } else { n2 = max(n1, p.maxLength - n1) }
                if n1 + n2 > p.maxLength {
                    n1 = p.maxLength / 2
                    n2 = n1 + p.maxLength % 2
                }
                if swap { (n1, n2) = (n2, n1) }
                try encoding.truncate(maxLength: n1, stride: p.stride, direction: p.direction)
                try other.truncate(maxLength: n2, stride: p.stride, direction: p.direction)
                pair = other
            } else {
                try encoding.truncate(maxLength: total - toRemove, stride: p.stride, direction: p.direction)
            }
        case .onlyFirst, .onlySecond:
            if p.strategy == .onlyFirst {
                guard encoding.count > toRemove else {
                    throw .truncation("Sequence to truncate too short to respect the provided max_length")
                }
                try encoding.truncate(maxLength: encoding.count - toRemove, stride: p.stride, direction: p.direction)
            } else {
                guard var other = pair else { throw .truncation("Second sequence not provided") }
                guard other.count > toRemove else { throw .truncation("Sequence to truncate too short to respect the provided max_length") }
                try other.truncate(maxLength: other.count - toRemove, stride: p.stride, direction: p.direction)
                pair = other
            }
        }
    }

    /// The library's `pad_encodings`.
    static func pad(_ encodings: inout [Encoding], _ p: PaddingParams) {
        guard !encodings.isEmpty else { return }
        var target = p.length ?? encodings.map(\.count).max() ?? 0
        if let m = p.padToMultipleOf, m > 0, target % m > 0 { target += m - target % m }
        for k in encodings.indices {
            encodings[k].pad(to: target, id: p.padId, typeId: p.padTypeId, token: p.padToken, direction: p.direction)
        }
    }
}
