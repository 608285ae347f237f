/// A batch of sequences of any lengths, packed back to back: token t of sequence s is row
/// `offsets[s] + t` of every [total tokens × features] matrix. No padding anywhere.
public struct PackedBatch: Sendable, Equatable {
    public private(set) var tokens: [Int32] = []
    public private(set) var offsets: [Int] = [0]
    /// The first id given that does not fit `Int32` (stored as -1 in `tokens`): `Encoder.validate`
    /// reports it as given instead of letting it wrap into the vocabulary.
    public private(set) var unrepresentableId: Int?

    public init() {}
    public init(_ sequences: [[Int]]) {
        for s in sequences { append(s) }
    }
    public mutating func append(_ ids: [Int]) {
        tokens.reserveCapacity(tokens.count + ids.count)
        for id in ids {
            if let narrow = Int32(exactly: id) {
                tokens.append(narrow)
            } else {
                if unrepresentableId == nil { unrepresentableId = id }
                tokens.append(-1)
            }
        }
        offsets.append(tokens.count)
    }
    public var count: Int { offsets.count - 1 }
    public var totalTokens: Int { tokens.count }
    public func length(_ s: Int) -> Int { offsets[s + 1] - offsets[s] }
    public var lengths: [Int] { (0..<count).map(length) }

    /// The sequences with at least one row in `rows` (a range of rows within 0..<totalTokens), by
    /// binary search over the offsets.
    public func sequences(overlapping rows: Range<Int>) -> Range<Int> {
        guard !rows.isEmpty, count > 0 else { return 0..<0 }
        let first = max(0, firstOffset(above: rows.lowerBound) - 1)
        let end = firstOffset(atLeast: rows.upperBound)
        return first..<max(first, min(end, count))
    }

    /// The first s in 0...count with offsets[s] > row (count + 1 when none).
    private func firstOffset(above row: Int) -> Int { offsets.partitionIndex { $0 > row } }
    /// The first s in 0...count with offsets[s] >= row.
    private func firstOffset(atLeast row: Int) -> Int { offsets.partitionIndex { $0 >= row } }

    /// The sequences `range` as a batch of their own (rows offsets[range.lowerBound] ..<
    /// offsets[range.upperBound] of this one).
    public func slice(_ range: Range<Int>) -> PackedBatch {
        var sub = PackedBatch()
        let first = offsets[range.lowerBound], end = offsets[range.upperBound]
        sub.tokens = Array(tokens[first..<end])
        sub.offsets = offsets[range.lowerBound...range.upperBound].map { $0 - first }
        sub.unrepresentableId = unrepresentableId
        return sub
    }

    /// The sequences in consecutive groups of at most `tokens` tokens each (a longer sequence is
    /// a group of its own), in order; no group is empty.
    public func groups(ofAtMost tokens: Int) -> [Range<Int>] {
        var groups: [Range<Int>] = []
        var start = 0
        while start < count {
            var end = start + 1
            while end < count && offsets[end + 1] - offsets[start] <= tokens { end += 1 }
            groups.append(start..<end)
            start = end
        }
        return groups
    }
}

extension Array where Element == Int {
    /// The first index whose element satisfies `isAbove`, for a predicate false then true along
    /// the (sorted) array; `count` when none does.
    fileprivate func partitionIndex(_ isAbove: (Int) -> Bool) -> Int {
        var low = 0, high = count
        while low < high {
            let mid = (low + high) / 2
            if isAbove(self[mid]) { high = mid } else { low = mid + 1 }
        }
        return low
    }
}
