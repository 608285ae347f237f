/// The batches each lane holds, and where the next may go. A lane runs its regular batches in
/// order and takes a second one while it runs one (so it starts the next at once instead of
/// idling while the loop catches up) — unless the one it runs generates text: a generation can
/// take long, so nothing waits behind it. Instead such a lane offers its *side slot*: one short
/// batch run between two decoding steps. Short batches go to an idle lane first, then behind a
/// short batch, then into a side slot; generations only to a lane without a generation.
struct LaneSlots: Sendable, Equatable {
    struct Slot: Sendable, Equatable {
        var lane: Int
        var side: Bool
    }
    /// What is free: `generation` when a generating batch may take it.
    struct Free: Sendable, Equatable {
        var generation: Bool
    }

    /// Per lane, its queued regular batches (true: generates).
    private(set) var queued: [[Bool]]
    private(set) var sideTaken: [Bool]
    let batchesPerLane: Int

    init(lanes: Int, batchesPerLane: Int) {
        queued = Array(repeating: [], count: max(1, lanes))
        sideTaken = Array(repeating: false, count: max(1, lanes))
        self.batchesPerLane = max(1, batchesPerLane)
    }

    /// Whether any slot is free, and whether a generation may take one.
    func free() -> Free? {
        if queued.contains(where: { canQueue($0, generation: true) }) { return Free(generation: true) }
        if queued.indices.contains(where: { canQueue(queued[$0], generation: false) || sideFree($0) }) { return Free(generation: false) }
        return nil
    }

    private func canQueue(_ lane: [Bool], generation: Bool) -> Bool {
        if lane.isEmpty { return true }
        guard lane.count < batchesPerLane, !lane.contains(true) else { return false }
        return !generation || lane.count < batchesPerLane
    }

    private func sideFree(_ lane: Int) -> Bool { queued[lane].first == true && !sideTaken[lane] }

    /// Takes the best slot for a batch, or nil when none suits it.
    mutating func take(generation: Bool) -> Slot? {
        let lanes = queued.indices
        if let idle = lanes.first(where: { queued[$0].isEmpty }) {
            queued[idle].append(generation)
            return Slot(lane: idle, side: false)
        }
        if let behind = lanes.min(by: { queued[$0].count < queued[$1].count }), canQueue(queued[behind], generation: generation) {
            queued[behind].append(generation)
            return Slot(lane: behind, side: false)
        }
        if let next = lanes.first(where: { canQueue(queued[$0], generation: generation) }) {
            queued[next].append(generation)
            return Slot(lane: next, side: false)
        }
        guard !generation, let side = lanes.first(where: sideFree) else { return nil }
        sideTaken[side] = true
        return Slot(lane: side, side: true)
    }

    /// A batch in `slot` finished (regular batches of a lane finish in order).
    mutating func release(_ slot: Slot) {
        guard queued.indices.contains(slot.lane) else { return }
        if slot.side {
            sideTaken[slot.lane] = false
        } else if !queued[slot.lane].isEmpty {
            queued[slot.lane].removeFirst()
        }
    }
}
