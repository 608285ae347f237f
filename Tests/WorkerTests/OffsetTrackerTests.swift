import Kafka
import Tensors
import Testing

@testable import Worker

@Suite("Offset tracker")
struct OffsetTrackerTests {
    @Test("commit position is offset+1 of the highest contiguous answered offset")
    func contiguousPrefix() {
        var p = PartitionOffsets()
        for o in 10...14 { #expect(p.receive(Int64(o)) == .accepted) }
        #expect(p.complete(12) == nil)
        #expect(p.commitPosition == nil)
        #expect(p.complete(10) == 11)
        #expect(p.complete(11) == 13)
        #expect(p.complete(14) == nil)
        #expect(p.commitPosition == 13)
        #expect(p.complete(13) == 15)
        #expect(p.isIdle)
        #expect(p.inFlight == 0)
    }

    @Test("gaps in offsets (compaction, transaction markers) do not block the prefix")
    func gaps() {
        var p = PartitionOffsets()
        for o: Int64 in [3, 7, 8, 20] { _ = p.receive(o) }
        #expect(p.complete(7) == nil)
        #expect(p.complete(3) == 8)
        #expect(p.complete(20) == nil)
        #expect(p.complete(8) == 21)
    }

    @Test("redeliveries, unknown and repeated completions are ignored")
    func duplicates() {
        var p = PartitionOffsets()
        _ = p.receive(5)
        #expect(p.receive(5) == .duplicate)
        #expect(p.complete(6) == nil)
        #expect(p.complete(5) == 6)
        #expect(p.complete(5) == nil)
        #expect(p.commitPosition == 6)
    }

    @Test("offsets going back (offset reset onto a truncated, rewritten log) restart tracking; new records are not skipped")
    func offsetsGoBack() {
        var p = PartitionOffsets()
        for o: Int64 in [10, 11, 12] { #expect(p.receive(o) == .accepted) }
        #expect(p.complete(10) == 11)
        #expect(p.receive(3) == .reset)
        #expect(p.commitPosition == nil, "the old position describes a log that is gone")
        #expect(p.inFlight == 1)
        #expect(p.complete(11) == nil, "an old offset's answer does not count")
        #expect(p.receive(4) == .accepted)
        #expect(p.complete(3) == 4)
        #expect(p.complete(4) == 5)
        var tracker = OffsetTracker()
        let partition = KafkaTopicPartition(topic: "t", partition: 0)
        tracker.assign([partition])
        #expect(tracker.receive(partition, offset: 7) == .accepted)
        tracker.complete(partition, offset: 7)
        #expect(tracker.takeCommits().first?.offset == 8)
        #expect(tracker.receive(partition, offset: 2) == .reset)
        tracker.complete(partition, offset: 2)
        #expect(tracker.takeCommits().first?.offset == 3, "the lower position is committed after the reset")
    }

    /// Exhaustive over every completion order of n offsets (n ≤ 6: 720 orders each) and
    /// randomized over long runs: the commit position never passes an unanswered offset and
    /// always equals the answered prefix.
    @Test("never passes an unanswered offset, in every completion order", arguments: 1...6)
    func everyOrder(n: Int) {
        let offsets = (0..<n).map { Int64($0 * 2 + 100) }  // with gaps
        for order in permutations(Array(0..<n)) {
            var p = PartitionOffsets()
            for o in offsets { _ = p.receive(o) }
            var answered = Set<Int>()
            var last: Int64?
            for index in order {
                answered.insert(index)
                let moved = p.complete(offsets[index])
                var prefix = 0
                while prefix < n, answered.contains(prefix) { prefix += 1 }
                let expected: Int64? = prefix == 0 ? nil : offsets[prefix - 1] + 1
                #expect(p.commitPosition == expected)
                if let moved {
                    #expect(moved == expected)
                    #expect(moved > (last ?? .min))
                }
                if let position = p.commitPosition {
                    for (k, o) in offsets.enumerated() where o < position { #expect(answered.contains(k)) }
                }
                last = p.commitPosition ?? last
            }
            #expect(p.commitPosition == offsets[n - 1] + 1)
        }
    }

    @Test("randomized long runs with interleaved receives and completions")
    func randomized() {
        var rng = SplitMix64(seed: 7)
        for _ in 0..<50 {
            var p = PartitionOffsets()
            var next: Int64 = 0
            var open: [Int64] = []
            var answered = Set<Int64>()
            var received: [Int64] = []
            for _ in 0..<2000 {
                if open.isEmpty || rng.next() % 3 != 0 {
                    next += Int64(1 + rng.next() % 3)
                    _ = p.receive(next)
                    open.append(next)
                    received.append(next)
                } else {
                    let o = open.remove(at: Int(rng.next() % UInt64(open.count)))
                    answered.insert(o)
                    _ = p.complete(o)
                    if let position = p.commitPosition {
                        #expect(received.filter { $0 < position }.allSatisfy(answered.contains))
                        let firstOpen = received.first { !answered.contains($0) }
                        if let firstOpen { #expect(position <= firstOpen) }
                    }
                }
            }
            #expect(p.inFlight == open.count)
        }
    }

    @Test("tracker hands out each moved position once, re-offers failed commits, forgets removed partitions")
    func tracker() {
        let a = KafkaTopicPartition(topic: "t", partition: 0), b = KafkaTopicPartition(topic: "t", partition: 1)
        var t = OffsetTracker()
        let r1 = t.receive(a, offset: 0)
        #expect(r1 == nil)  // not assigned
        t.assign([a, b])
        let r2 = t.receive(a, offset: 0)
        #expect(r2 == .accepted)
        let r3 = t.receive(a, offset: 1)
        #expect(r3 == .accepted)
        let r4 = t.receive(b, offset: 5)
        #expect(r4 == .accepted)
        let r5 = t.takeCommits().isEmpty
        #expect(r5)
        t.complete(a, offset: 0)
        let first = t.takeCommits()
        #expect(first == [KafkaTopicPartitionOffset(topic: "t", partition: 0, offset: 1)])
        let r6 = t.takeCommits().isEmpty
        #expect(r6)
        t.commitFailed(first)
        let r7 = t.takeCommits()
        #expect(r7 == first)
        t.complete(b, offset: 5)
        t.complete(a, offset: 1)
        let r8 = t.takeCommits(for: [b])
        #expect(r8 == [KafkaTopicPartitionOffset(topic: "t", partition: 1, offset: 6)])
        #expect(t.inFlight() == 0)
        let r9 = t.takeCommits()
        #expect(r9 == [KafkaTopicPartitionOffset(topic: "t", partition: 0, offset: 2)])
        let r10 = t.receive(a, offset: 2)
        #expect(r10 == .accepted)
        #expect(t.inFlight([a]) == 1)
        t.remove([a])
        #expect(!t.owns(a))
        let stale = t.complete(a, offset: 2)
        #expect(stale == nil)
        t.assign([a])
        #expect(t.partitions[a]?.commitPosition == nil)
        #expect(t.inFlight() == 0)
    }

    @Test("compacts its storage on long runs")
    func longRun() {
        var p = PartitionOffsets()
        for o in 0..<100_000 {
            _ = p.receive(Int64(o))
            if o >= 10 { _ = p.complete(Int64(o - 10)) }
        }
        #expect(p.inFlight == 10)
        #expect(p.commitPosition == 99_990)
    }
}

func permutations(_ items: [Int]) -> [[Int]] {
    guard items.count > 1 else { return [items] }
    var out: [[Int]] = []
    for (i, x) in items.enumerated() {
        var rest = items
        rest.remove(at: i)
        for p in permutations(rest) { out.append([x] + p) }
    }
    return out
}
