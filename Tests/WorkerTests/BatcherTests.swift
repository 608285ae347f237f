import Tensors
import Testing

@testable import Worker

struct Item: Batchable, Equatable {
    var id: Int
    var tokens: Int
    var encoderKey: Int = 0
}

@Suite("Batcher and flow control")
struct BatcherTests {
    let t0 = ContinuousClock.now

    @Test("waits up to maxWait, then dispatches what is queued")
    func maxWait() {
        var b = Batcher<Item>(maxBatchTokens: 100, maxWait: .milliseconds(5))
        b.enqueue(Item(id: 1, tokens: 10), now: t0)
        guard case .wait(let until) = b.next(now: t0) else {
            Issue.record("expected wait")
            return
        }
        #expect(until == t0 + .milliseconds(5))
        guard case .wait = b.next(now: t0 + .milliseconds(4)) else {
            Issue.record("expected wait")
            return
        }
        guard case .batch(let batch) = b.next(now: t0 + .milliseconds(5)) else {
            Issue.record("expected batch")
            return
        }
        #expect(batch.map(\.item.id) == [1])
        guard case .empty = b.next(now: t0 + .seconds(1)) else {
            Issue.record("expected empty")
            return
        }
        #expect(b.queuedTokens == 0 && b.count == 0)
    }

    @Test("a full budget dispatches at once; the batch's tokens stay within it")
    func budget() {
        var b = Batcher<Item>(maxBatchTokens: 100, maxWait: .seconds(10))
        for i in 0..<12 { b.enqueue(Item(id: i, tokens: 10), now: t0) }
        guard case .batch(let first) = b.next(now: t0) else {
            Issue.record("expected batch")
            return
        }
        #expect(first.count == 10)
        #expect(first.map(\.item.id).sorted() == Array(0..<10))
        guard case .wait = b.next(now: t0) else {
            Issue.record("expected wait for the 2 left")
            return
        }
        guard case .batch(let second) = b.next(now: t0, flush: true) else {
            Issue.record("expected flush batch")
            return
        }
        #expect(second.map(\.item.id).sorted() == [10, 11])
    }

    @Test("the oldest request always goes first; others join in arrival order (first fit); result sorted longest first")
    func arrivalOrder() {
        var b = Batcher<Item>(maxBatchTokens: 120, maxWait: .zero)
        b.enqueue(Item(id: 0, tokens: 30), now: t0)
        b.enqueue(Item(id: 1, tokens: 100), now: t0)
        b.enqueue(Item(id: 2, tokens: 28), now: t0)
        b.enqueue(Item(id: 3, tokens: 31), now: t0)
        b.enqueue(Item(id: 4, tokens: 5), now: t0)
        b.enqueue(Item(id: 5, tokens: 40), now: t0)
        guard case .batch(let batch) = b.next(now: t0) else {
            Issue.record("expected batch")
            return
        }
        // 30 (oldest); 100 would pass 120, skipped; 28, 31, 5 fit (94); 40 would pass.
        #expect(batch.map(\.item.id) == [3, 0, 2, 4])
        #expect(batch.reduce(0) { $0 + $1.item.tokens } == 94)
        guard case .batch(let next) = b.next(now: t0) else {
            Issue.record("expected batch")
            return
        }
        #expect(next.map(\.item.id) == [1])  // 100 + 40 > 120
        guard case .batch(let last) = b.next(now: t0) else {
            Issue.record("expected batch")
            return
        }
        #expect(last.map(\.item.id) == [5])
    }

    @Test("mixed lengths in arrival order: batches follow the queue, so completions stay close to offset order")
    func followsTheQueue() {
        var b = Batcher<Item>(maxBatchTokens: 100, maxWait: .zero)
        // Lengths cycling 5, 40, 12, 25: similar-length grouping would reach across the whole
        // queue; arrival order takes the front of the queue.
        for i in 0..<40 { b.enqueue(Item(id: i, tokens: [5, 40, 12, 25][i % 4]), now: t0) }
        var batches: [[Int]] = []
        while case .batch(let batch) = b.next(now: t0) { batches.append(batch.map(\.item.id).sorted()) }
        #expect(batches.first == [0, 1, 2, 3, 4, 6])  // 82 tokens; 5 (40) would pass 100, 6 (12) fits, 7 (25) would pass
        for (k, batch) in batches.enumerated() {
            #expect(batch.reduce(0) { $0 + [5, 40, 12, 25][$1 % 4] } <= 100)
            // Each batch starts at or after the previous batch's oldest request.
            if k > 0, let previous = batches[k - 1].min(), let first = batch.min() { #expect(first >= previous) }
        }
        #expect(batches.flatMap { $0 }.sorted() == Array(0..<40))
    }

    @Test("a request over the budget runs alone")
    func oversize() {
        var b = Batcher<Item>(maxBatchTokens: 64, maxWait: .zero)
        b.enqueue(Item(id: 0, tokens: 500), now: t0)
        b.enqueue(Item(id: 1, tokens: 1), now: t0)
        guard case .batch(let batch) = b.next(now: t0) else {
            Issue.record("expected batch")
            return
        }
        #expect(batch.map(\.item.id) == [0])
    }

    @Test("groups by encoder; the group with the oldest ready request goes first")
    func groups() {
        var b = Batcher<Item>(maxBatchTokens: 1000, maxWait: .milliseconds(5))
        b.enqueue(Item(id: 0, tokens: 10, encoderKey: 1), now: t0)
        b.enqueue(Item(id: 1, tokens: 10, encoderKey: 2), now: t0 + .milliseconds(1))
        b.enqueue(Item(id: 2, tokens: 10, encoderKey: 1), now: t0 + .milliseconds(2))
        guard case .batch(let first) = b.next(now: t0 + .milliseconds(6)) else {
            Issue.record("expected batch")
            return
        }
        #expect(first.map(\.item.id).sorted() == [0, 2])
        guard case .batch(let second) = b.next(now: t0 + .milliseconds(6)) else {
            Issue.record("expected batch")
            return
        }
        #expect(second.map(\.item.id) == [1])
    }

    @Test("remove takes requests out (lost partitions) and keeps the accounting")
    func remove() {
        var b = Batcher<Item>(maxBatchTokens: 1000, maxWait: .seconds(1))
        for i in 0..<10 { b.enqueue(Item(id: i, tokens: i + 1, encoderKey: i % 3), now: t0) }
        let gone = b.remove { $0.id % 2 == 0 }
        #expect(gone.map(\.id).sorted() == [0, 2, 4, 6, 8])
        #expect(b.count == 5)
        #expect(b.queuedTokens == 2 + 4 + 6 + 8 + 10)
        var seen: [Int] = []
        while case .batch(let batch) = b.next(now: t0, flush: true) { seen += batch.map(\.item.id) }
        #expect(seen.sorted() == [1, 3, 5, 7, 9])
    }

    /// Randomized: every request comes out exactly once, each batch within budget (or a single
    /// oversize request), from one encoder group, sorted longest first; accounting stays exact.
    @Test("randomized: exactly once, within budget, one group per batch")
    func randomized() {
        var rng = SplitMix64(seed: 42)
        for round in 0..<40 {
            let budget = 64 + Int(rng.next() % 2000)
            var b = Batcher<Item>(maxBatchTokens: budget, maxWait: .milliseconds(Int64(rng.next() % 10)))
            var now = t0
            var expected = Set<Int>()
            var seen = Set<Int>()
            var nextID = 0
            for _ in 0..<400 {
                now += .microseconds(Int64(rng.next() % 3000))
                if rng.next() % 2 == 0 {
                    let item = Item(id: nextID, tokens: 1 + Int(rng.next() % UInt64(budget / 2 + 20)), encoderKey: Int(rng.next() % 3))
                    nextID += 1
                    expected.insert(item.id)
                    b.enqueue(item, now: now)
                } else if case .batch(let batch) = b.next(now: now, flush: round % 5 == 0) {
                    check(batch, budget: budget, seen: &seen)
                }
            }
            while case .batch(let batch) = b.next(now: now, flush: true) { check(batch, budget: budget, seen: &seen) }
            #expect(seen == expected)
            #expect(b.count == 0 && b.queuedTokens == 0)
        }
    }

    private func check(_ batch: [Batcher<Item>.Entry], budget: Int, seen: inout Set<Int>) {
        #expect(!batch.isEmpty)
        #expect(batch.count == 1 || batch.reduce(0) { $0 + $1.item.tokens } <= budget)
        #expect(Set(batch.map(\.item.encoderKey)).count == 1)
        #expect(batch.map(\.item.tokens) == batch.map(\.item.tokens).sorted(by: >))
        for entry in batch { #expect(seen.insert(entry.item.id).inserted) }
    }

    @Test("flow control pauses above the bound and resumes at half of it")
    func flow() {
        var f = FlowControl(maxQueuedTokens: 100)
        #expect(f.update(queuedTokens: 100) == nil)
        #expect(f.update(queuedTokens: 101) == .pause)
        #expect(f.update(queuedTokens: 500) == nil)
        #expect(f.update(queuedTokens: 51) == nil)
        #expect(f.paused)
        #expect(f.update(queuedTokens: 50) == .resume)
        #expect(f.update(queuedTokens: 0) == nil)
        #expect(!f.paused)
    }
}
