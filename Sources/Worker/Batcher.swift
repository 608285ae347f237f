/// What the batcher needs to know about a queued request.
public protocol Batchable: Sendable {
    /// Encoder tokens the request costs (all its windows/choices).
    var tokens: Int { get }
    /// Requests with the same key run on the same encoder and may share a batch.
    var encoderKey: Int { get }
}

/// Packs queued requests into encoder batches under a token budget and a maximum wait.
///
/// Pure logic: the caller enqueues, and whenever an inference lane is free asks
/// ``next(now:flush:)`` for a batch; the answer is a batch, a time to ask again, or nothing
/// queued. A group (one encoder) is ready when its queued tokens reach the budget or its
/// oldest request has waited `maxWait`. A batch always holds its group's oldest request (no
/// starvation) and is filled in arrival order (first fit: a request that would pass the budget
/// is skipped for later, smaller ones) while its tokens stay within the budget; it is returned
/// sorted by length, longest first. A request over the budget runs alone.
///
/// Arrival order, not similar lengths: the encoder packs sequences without padding, so a batch
/// costs its tokens whatever their lengths, and answering in offset order lets the committed
/// offsets follow the answers closely (fewer repeats after a crash, fairer latency).
public struct Batcher<Item: Batchable>: Sendable {
    public struct Entry: Sendable {
        public var item: Item
        public var enqueued: ContinuousClock.Instant
        var sequence: UInt64
    }

    public enum Next: Sendable {
        case batch([Entry])
        /// Nothing ready yet: ask again at this instant (or when something is enqueued).
        case wait(until: ContinuousClock.Instant)
        case empty
    }

    public let maxBatchTokens: Int
    public let maxWait: Duration
    private var groups: [Int: [Entry]] = [:]
    private var sequence: UInt64 = 0
    /// Tokens of everything queued (not yet handed out in a batch).
    public private(set) var queuedTokens = 0
    public private(set) var count = 0

    public init(maxBatchTokens: Int, maxWait: Duration) {
        self.maxBatchTokens = max(1, maxBatchTokens)
        self.maxWait = max(.zero, maxWait)
    }

    public mutating func enqueue(_ item: Item, now: ContinuousClock.Instant) {
        sequence += 1
        groups[item.encoderKey, default: []].append(Entry(item: item, enqueued: now, sequence: sequence))
        queuedTokens += max(0, item.tokens)
        count += 1
    }

    /// The next batch to run, if any is ready. `flush`: do not wait (draining). `allowed`: only
    /// groups whose key it accepts (e.g. no generation when only a short slot is free).
    public mutating func next(now: ContinuousClock.Instant, flush: Bool = false, allowed: (Int) -> Bool = { _ in true }) -> Next {
        var best: (key: Int, oldest: UInt64)?
        var earliestDeadline: ContinuousClock.Instant?
        for (key, entries) in groups where allowed(key) {
            guard let first = entries.first else { continue }
            let deadline = first.enqueued + maxWait
            let tokens = entries.reduce(0) { $0 + max(0, $1.item.tokens) }
            if flush || tokens >= maxBatchTokens || deadline <= now {
                if best == nil || first.sequence < (best?.oldest ?? .max) { best = (key, first.sequence) }
            } else if earliestDeadline == nil || deadline < (earliestDeadline ?? deadline) {
                earliestDeadline = deadline
            }
        }
        if let best { return .batch(take(from: best.key)) }
        if let earliestDeadline { return .wait(until: earliestDeadline) }
        return .empty
    }

    /// Removes queued requests matching `predicate` (e.g. of lost partitions); returns them.
    public mutating func remove(where predicate: (Item) -> Bool) -> [Item] {
        var removed: [Item] = []
        for key in Array(groups.keys) {
            guard var entries = groups[key] else { continue }
            let gone = entries.filter { predicate($0.item) }
            guard !gone.isEmpty else { continue }
            entries.removeAll { predicate($0.item) }
            groups[key] = entries.isEmpty ? nil : entries
            removed += gone.map(\.item)
        }
        queuedTokens -= removed.reduce(0) { $0 + max(0, $1.tokens) }
        count -= removed.count
        return removed
    }

    private mutating func take(from key: Int) -> [Entry] {
        guard var entries = groups[key], !entries.isEmpty else { return [] }
        let oldest = entries.removeFirst()
        var chosen = [oldest]
        var tokens = max(1, oldest.item.tokens)
        var left: [Entry] = []
        left.reserveCapacity(entries.count)
        for candidate in entries {
            let cost = max(1, candidate.item.tokens)
            if tokens < maxBatchTokens, tokens + cost <= maxBatchTokens {
                chosen.append(candidate)
                tokens += cost
            } else {
                left.append(candidate)
            }
        }
        groups[key] = left.isEmpty ? nil : left
        queuedTokens -= chosen.reduce(0) { $0 + max(0, $1.item.tokens) }
        count -= chosen.count
        return chosen.sorted { $0.item.tokens != $1.item.tokens ? $0.item.tokens > $1.item.tokens : $0.sequence < $1.sequence }
    }
}
