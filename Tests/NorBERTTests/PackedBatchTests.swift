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
}
