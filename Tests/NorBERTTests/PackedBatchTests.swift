import NorBERT
import Testing

/// The row → sequence lookup the encoder's row blocks use.
@Suite struct PackedBatchTests {
    /// Brute force: the sequences with a row in `rows`.
    static func overlapping(_ batch: PackedBatch, _ rows: Range<Int>) -> [Int] {
        (0..<batch.count).filter { s in
            let start = batch.offsets[s]
            return batch.length(s) > 0 && start < rows.upperBound && start + batch.length(s) > rows.lowerBound
        }
    }

    @Test func sequencesOverlappingARowBlock() {
        let batches = [
            PackedBatch([[1, 2, 3], [4], [5, 6, 7, 8, 9], [10, 11]]),
            PackedBatch([[], [1, 2], [], [], [3, 4, 5], []]),
            PackedBatch([Array(repeating: 7, count: 600), Array(repeating: 8, count: 5), Array(repeating: 9, count: 300)]),
            PackedBatch([[1]]),
        ]
        for batch in batches {
            let n = batch.totalTokens
            for lower in 0..<n {
                for upper in (lower + 1)...n where upper - lower <= 40 || upper == n || (upper - lower) % 97 == 0 {
                    let got = Array(batch.sequences(overlapping: lower..<upper)).filter { batch.length($0) > 0 }
                    #expect(got == Self.overlapping(batch, lower..<upper), "rows \(lower)..<\(upper) of \(batch.lengths)")
                }
            }
            #expect(batch.sequences(overlapping: 0..<0).isEmpty)
        }
        #expect(PackedBatch().sequences(overlapping: 0..<1).isEmpty)
    }

    /// The encoder's sub-pass split: consecutive groups of whole sequences, in order, each within
    /// the limit unless it is one longer sequence, each as long as the limit allows; a slice is
    /// the same sequences as a batch of their own.
    @Test func groupsOfWholeSequencesAndSlices() {
        let batches = [
            PackedBatch([[1, 2, 3], [4], [5, 6, 7, 8, 9], [10, 11]]),
            PackedBatch((0..<40).map { s in Array(repeating: s, count: 1 + (s * 7) % 33) }),
            PackedBatch([Array(repeating: 7, count: 600), Array(repeating: 8, count: 5), Array(repeating: 9, count: 300)]),
            PackedBatch([[1]]),
            PackedBatch(),
        ]
        for batch in batches {
            for limit in [1, 2, 5, 32, 512, Int.max] {
                let groups = batch.groups(ofAtMost: limit)
                #expect(
                    groups.map(\.lowerBound) == (groups.isEmpty ? [] : [0] + groups.dropLast().map(\.upperBound)),
                    "\(batch.lengths) by \(limit)")
                #expect((groups.last?.upperBound ?? 0) == batch.count)
                for (index, group) in groups.enumerated() {
                    let tokens = group.reduce(0) { $0 + batch.length($1) }
                    #expect(!group.isEmpty && (tokens <= limit || group.count == 1), "\(group) of \(batch.lengths) by \(limit)")
                    if index + 1 < groups.count {
                        #expect(tokens + batch.length(group.upperBound) > limit, "\(group) could take the next sequence")
                    }
                    let slice = batch.slice(group)
                    #expect(slice.lengths == group.map { batch.length($0) })
                    #expect(slice.tokens == Array(batch.tokens[batch.offsets[group.lowerBound]..<batch.offsets[group.upperBound]]))
                }
            }
        }
    }
}
