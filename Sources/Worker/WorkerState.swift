import Kafka
import Logging

/// The worker's bookkeeping as a value: offsets in flight, the batcher, flow control, the lanes'
/// slots, partition generations, in-flight bytes, pending answers, each request's publish order,
/// commits and drains. Events go in (``handle(_:now:)``), actions come out; it never waits, calls
/// Kafka or reads the clock (`now` comes with every event), so every rule below is unit-tested
/// with injected events (`WorkerStateTests`). ``WorkerDriver`` carries the actions out.
///
/// Invariants:
/// - a partition's offsets complete only by answers of its current generation (an answer of a
///   revoked, lost or reset assignment never moves a commit position);
/// - a request has at most one publish in flight, and its messages go out in order
///   (``PublishQueue``); a request counts as answered when its final publish is acknowledged;
/// - one periodic commit at a time (an older position applied after a newer one would stay);
/// - after a fatal error nothing more is committed.
struct WorkerState<Job: Sendable>: Sendable {
    typealias Event = WorkerEvent<Job>
    typealias Action = WorkerAction<Job>
    typealias Request = PendingRequest<Job>

    struct Settings: Sendable {
        var maxBatchTokens: Int
        var maxWait: Duration
        var maxQueuedTokens: Int
        var maxInFlight: Int = .max
        var maxInFlightBytes: Int = .max
        var drainTimeout: Duration
        var lanes: Int
        /// Regular batches a lane holds (one running, one waiting): see ``LaneSlots``.
        var batchesPerLane = 2
        /// Commit a newly assigned partition's start (its low watermark) when the group has no
        /// offset for it, so lag-based autoscalers (KEDA) see an offset from the start. Only
        /// with `auto.offset.reset=earliest` (the default): then the low watermark is where
        /// consumption starts.
        var commitStartPositions = false
    }

    /// A batch on a lane.
    struct RunningBatch: Sendable {
        var slot: LaneSlots.Slot
        var requests: [Request]
        var enqueued: [ContinuousClock.Instant]
        var tokens: Int
    }

    /// A revoke (`partitions`) or the shutdown (nil: all) finishing its in-flight work.
    struct Drain: Sendable {
        var partitions: [KafkaTopicPartition]?
        var deadline: ContinuousClock.Instant
        /// Messages left unanswered when the wait ended (then its commit runs).
        var unfinished: Int?
    }

    let settings: Settings
    var tracker = OffsetTracker()
    var batcher: Batcher<Request>
    var flow: FlowControl
    var slots: LaneSlots
    /// Per assigned partition, the generation of its current assignment (a reset starts a new one).
    var generations: [KafkaTopicPartition: UInt64] = [:]
    var nextGeneration: UInt64 = 0
    /// Bytes of the in-flight messages, per partition (a dropped partition's go with it).
    var inFlightBytes: [KafkaTopicPartition: Int] = [:]
    private(set) var running: [BatchID: RunningBatch] = [:]
    var nextBatch: BatchID = 0
    var publications = PublishQueue()
    /// Requests whose final answer (or dead letter) is being published, not yet acknowledged.
    var pendingAnswers = 0
    /// A periodic commit is in flight (its result, or its timeout, clears it).
    var committing = false
    /// Periodic commits failing since (first failure of the current streak) and how many.
    var commitFailureStreak: (since: ContinuousClock.Instant, count: Int)?
    var drains: [DrainID: Drain] = [:]
    var stopping = false
    var failure: KafkaError?
    /// The shutdown drain's deadline, once it started: a revoke during it shares it.
    var shutdownDeadline: ContinuousClock.Instant?
    /// The earliest `.wake` asked for and not yet reached.
    var wakeAt: ContinuousClock.Instant?
    /// Actions of the event being handled.
    var actions: [Action] = []

    init(settings: Settings) {
        self.settings = settings
        batcher = Batcher(maxBatchTokens: settings.maxBatchTokens, maxWait: settings.maxWait)
        flow = FlowControl(
            maxQueuedTokens: settings.maxQueuedTokens, maxInFlight: settings.maxInFlight,
            maxInFlightBytes: settings.maxInFlightBytes)
        slots = LaneSlots(lanes: settings.lanes, batchesPerLane: settings.batchesPerLane)
    }

    init(configuration: WorkerConfiguration, lanes: Int) {
        self.init(
            settings: Settings(
                maxBatchTokens: configuration.maxBatchTokens, maxWait: configuration.maxWait,
                maxQueuedTokens: configuration.maxQueuedTokens, maxInFlight: configuration.maxInFlight,
                maxInFlightBytes: configuration.maxInFlightBytes, drainTimeout: configuration.drainTimeout, lanes: lanes,
                commitStartPositions: configuration.consumerConfiguration().autoOffsetReset == .earliest))
    }

    /// The levels for gauges and probes.
    var gauges: WorkerGauges {
        let inFlight = tracker.inFlight()
        // Not ready while answers pile up unacknowledged: the broker, not the model, is the limit.
        let stalled = flow.paused && pendingAnswers > 0 && pendingAnswers * 2 >= max(1, inFlight)
        return WorkerGauges(
            assigned: generations.count, inFlight: inFlight, inFlightBytes: inFlightBytes.values.reduce(0, +),
            queuedTokens: batcher.queuedTokens, pendingAnswers: pendingAnswers, paused: flow.paused,
            awaitingBroker: stalled ? pendingAnswers : 0, stopping: stopping)
    }

    /// Takes one event; returns what to do about it, in order.
    mutating func handle(_ event: Event, now: ContinuousClock.Instant) -> [Action] {
        actions = []
        switch event {
        case .assigned(let partitions): assign(partitions)
        case .startPositions(let positions): startAt(positions)
        case .revoked(let partitions, let drain): startDrain(drain, partitions: partitions, now: now)
        case .lost(let partitions): lose(partitions)
        case .received(let message, let classified): receive(message, classified, now: now)
        case .partial(let batch, let index, let response): partial(batch, index, response)
        case .batchFinished(let batch, let results, let started): finished(batch, results: results, started: started, now: now)
        case .published(let key, let step): published(key, step, now: now)
        case .commitDue: commitDue()
        case .commitFinished(let offsets, let error): commitFinished(offsets, error, now: now)
        case .drainCommitted(let drain, let error): drainCommitted(drain, error)
        case .tick: if let wakeAt, wakeAt <= now { self.wakeAt = nil }
        case .shutdown(let drain): shutdown(drain, now: now)
        case .failed(let error): fail(error)
        }
        pump(now: now)
        checkDrains(now: now)
        return actions
    }

    mutating func log(_ level: Logger.Level, _ message: String, _ metadata: [String: String] = [:]) {
        actions.append(.log(WorkerLogEntry(level: level, message: message, metadata: metadata)))
    }

    static func names(_ partitions: [KafkaTopicPartition]) -> String { partitions.map(\.description).joined(separator: " ") }

    // MARK: Rebalances

    private mutating func assign(_ partitions: [KafkaTopicPartition]) {
        for partition in partitions {
            nextGeneration += 1
            generations[partition] = nextGeneration
        }
        tracker.assign(partitions)
        if flow.paused || stopping, !partitions.isEmpty { actions.append(.pause(partitions)) }
        log(.info, "partitions assigned", ["partitions": Self.names(partitions)])
        if settings.commitStartPositions, !partitions.isEmpty, !stopping {
            var query: [KafkaTopicPartition: UInt64] = [:]
            for partition in partitions { query[partition] = generations[partition] }
            actions.append(.queryStartPositions(query))
        }
    }

    /// Start positions of partitions the group has no offset for: committed with the next
    /// periodic commit unless the assignment changed meanwhile or an answer already moved it.
    private mutating func startAt(_ positions: [StartPosition]) {
        guard failure == nil, !stopping else { return }
        for position in positions where generations[position.partition] == position.generation {
            tracker.start(position.partition, at: position.offset)
        }
    }

    private mutating func lose(_ partitions: [KafkaTopicPartition]) {
        let left = tracker.inFlight(partitions)
        drop(partitions)
        log(
            .warning, "partitions lost; in-flight work dropped without committing",
            [
                "partitions": Self.names(partitions), "dropped": "\(left)",
            ])
    }

    /// Forgets partitions: their queued requests, waiting publishes and offsets. Batches and
    /// publishes already running end unheard (their generation is gone).
    mutating func drop(_ partitions: [KafkaTopicPartition]) {
        let set = Set(partitions)
        for partition in partitions {
            generations[partition] = nil
            inFlightBytes[partition] = nil
        }
        pendingAnswers -= publications.drop { set.contains($0) }
        tracker.remove(partitions)
        _ = batcher.remove { set.contains($0.partition) }
    }

    // MARK: Messages

    private mutating func receive(_ message: KafkaConsumerMessage, _ classified: Classified<Job>, now: ContinuousClock.Instant) {
        let partition = message.topicPartition
        guard !stopping, var generation = generations[partition] else { return }
        switch tracker.receive(partition, offset: message.offset) {
        case nil, .duplicate?:
            return
        case .reset?:
            // The log was truncated and rewritten (or the position reset): answers still on
            // their way belong to the old offsets and must not complete the new ones.
            nextGeneration += 1
            generation = nextGeneration
            generations[partition] = generation
            inFlightBytes[partition] = 0
            log(
                .warning, "offsets went back (offset reset onto a rewritten log?); tracking restarts",
                [
                    "partition": "\(partition)", "offset": "\(message.offset)",
                ])
        case .accepted?:
            break
        }
        inFlightBytes[partition, default: 0] += message.byteCount
        switch classified {
        case .job(let prepared, let replyTo):
            let request = Request(
                message: message, generation: generation, replyTo: replyTo, received: now, job: prepared.job,
                tokens: prepared.tokens, encoderKey: Self.batcherKey(encoderKey: prepared.encoderKey, steps: prepared.steps),
                task: prepared.task, head: prepared.head, id: prepared.id)
            batcher.enqueue(request, now: now)
        case .rejected(let rejection, let replyTo):
            let answer = Answer(message: message, generation: generation, replyTo: replyTo, received: now, id: rejection.id)
            let response = BackendResponse(
                value: rejection.response, rejection: rejection, outcome: rejection.code, task: rejection.task, head: rejection.head)
            publish(answer, [response], final: true, now: now)
        }
    }

    // MARK: Batches

    /// Batcher keys: the encoder group, doubled, plus one for requests that generate, so
    /// generations batch only with each other and short requests never wait in their batches.
    static func batcherKey(encoderKey: Int, steps: Int) -> Int { encoderKey * 2 + (steps > 0 ? 1 : 0) }
    static func generates(_ key: Int) -> Bool { key & 1 == 1 }

    /// Hands ready batches to free lane slots; asks for a wake-up when the batcher waits; then
    /// pauses or resumes fetching as the load says.
    private mutating func pump(now: ContinuousClock.Instant) {
        let flush = stopping || drains.values.contains { $0.unfinished == nil }
        fill: while let free = slots.free() {
            switch batcher.next(now: now, flush: flush, allowed: { free.generation || !Self.generates($0) }) {
            case .batch(let entries):
                let generation = entries.first.map { Self.generates($0.item.encoderKey) } ?? false
                guard let slot = slots.take(generation: generation) else { break fill }
                dispatch(entries, slot: slot)
            case .wait(let until):
                wake(at: until)
                break fill
            case .empty:
                break fill
            }
        }
        updateFlow()
    }

    private mutating func dispatch(_ entries: [Batcher<Request>.Entry], slot: LaneSlots.Slot) {
        let requests = entries.map(\.item)
        let tokens = requests.reduce(0) { $0 + $1.tokens }
        nextBatch += 1
        running[nextBatch] = RunningBatch(slot: slot, requests: requests, enqueued: entries.map(\.enqueued), tokens: tokens)
        actions.append(.metric(.batch(tokens: tokens, requests: requests.count)))
        actions.append(.dispatch(nextBatch, slot: slot, jobs: requests.map(\.job)))
    }

    /// A streamed partial response: published at once, after the request's earlier ones.
    private mutating func partial(_ batch: BatchID, _ index: Int, _ response: BackendResponse) {
        guard let requests = running[batch]?.requests, requests.indices.contains(index) else { return }
        let request = requests[index]
        guard generations[request.partition] == request.generation else { return }
        if case .start(let responses) = publications.enqueue(request.answer, [response], final: false) {
            actions.append(.publish(request.key, request.answer, responses))
        }
    }

    private mutating func finished(
        _ batch: BatchID, results: [[BackendResponse]], started: ContinuousClock.Instant, now: ContinuousClock.Instant
    ) {
        guard let done = running.removeValue(forKey: batch) else { return }
        slots.release(done.slot)
        for enqueued in done.enqueued { actions.append(.metric(.queued(started - enqueued))) }
        actions.append(.metric(.inference(now - started, tokens: done.tokens)))
        for (request, responses) in zip(done.requests, results) {
            guard generations[request.partition] == request.generation else { continue }  // revoked or lost meanwhile
            publish(request.answer, responses, final: true, now: now)
        }
    }

    /// Asks the driver for a `.tick` at `instant`, unless an earlier one is coming.
    mutating func wake(at instant: ContinuousClock.Instant) {
        if let wakeAt, wakeAt <= instant { return }
        wakeAt = instant
        actions.append(.wake(at: instant))
    }

    private mutating func updateFlow() {
        let gauges = self.gauges
        let load = FlowControl.Load(queuedTokens: gauges.queuedTokens, inFlight: gauges.inFlight, inFlightBytes: gauges.inFlightBytes)
        let metadata = [
            "queued_tokens": "\(load.queuedTokens)", "in_flight": "\(load.inFlight)",
            "in_flight_bytes": "\(load.inFlightBytes)", "pending_answers": "\(pendingAnswers)",
        ]
        switch flow.update(load) {
        case .pause?:
            actions.append(.metric(.paused))
            if !generations.isEmpty { actions.append(.pause(Array(generations.keys).sorted())) }
            log(.info, "fetching paused", metadata)
        case .resume?:
            guard !stopping else { return }
            actions.append(.resume(Array(generations.keys).sorted()))
            log(.info, "fetching resumed", metadata)
        case nil:
            break
        }
    }
}
