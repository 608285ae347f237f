import Dispatch
import Foundation
import Synchronization

/// A Kafka consumer in a consumer group.
///
/// Messages and rebalance events arrive in order on ``events`` (or only messages on
/// ``messages``). librdkafka's blocking poll runs on a dedicated thread, never on Swift's
/// cooperative pool; a second thread serves commit results, errors and statistics.
/// Auto-commit is always off: commit with ``commit(_:timeout:)`` or ``commitAsync(_:completion:)``,
/// or store offsets with ``storeOffset(_:)`` and let revokes and ``close()`` commit them.
public final class KafkaConsumer: Sendable {
    let core: ConsumerCore

    public init(configuration: KafkaConsumerConfiguration) throws {
        core = try ConsumerCore(configuration: configuration)
    }

    deinit { core.shutdownDetached() }

    /// Joins the group and starts fetching `topics`.
    public func subscribe(topics: [String]) throws {
        try core.subscribe(topics)
    }

    /// Messages and rebalance events, in order. Iterate from one task only.
    public var events: KafkaConsumerEvents { KafkaConsumerEvents(buffer: core.buffer) }
    /// Only the messages (rebalance events acknowledged as they pass). Iterate from one task only.
    public var messages: KafkaConsumerMessages { KafkaConsumerMessages(buffer: core.buffer) }
    /// Parsed `statistics.interval.ms` reports (newest kept when nobody reads).
    public var statistics: AsyncStream<KafkaStatistics> { core.statisticsStream }

    /// Pauses fetching from `partitions` (messages already delivered stay delivered).
    public func pause(_ partitions: [KafkaTopicPartition]) throws {
        try core.withOpenClient("pause") { (client) throws(KafkaError) in try client.pause(partitions) }
    }
    public func resume(_ partitions: [KafkaTopicPartition]) throws {
        try core.withOpenClient("resume") { (client) throws(KafkaError) in try client.resume(partitions) }
    }

    /// The current assignment.
    public func assignment() throws -> [KafkaTopicPartition] {
        try core.withOpenClient("assignment") { (client) throws(KafkaError) in try client.assignment() }.sorted()
    }

    /// Leaves the group after committing the offsets stored with ``storeOffset(_:)`` and waits
    /// at most ``KafkaConsumerConfiguration/closeTimeout``. The event sequences end. Throws if
    /// the final commit failed (the consumer is closed regardless).
    public func close() async throws {
        try await core.close(leaveGroup: true)
    }

    /// Destroys the consumer without committing or leaving the group, as a crashed process
    /// would: the group notices only after the session timeout.
    func terminateWithoutLeaving() async {
        try? await core.close(leaveGroup: false)
    }
}

/// The consumer's machinery, shared by its threads (which never retain the public facade).
final class ConsumerCore: Sendable {
    enum Phase { case created, running, closing, closed }

    let client: RDKafkaClient
    let configuration: KafkaConsumerConfiguration
    let buffer: ConsumerEventBuffer
    let commits = PromiseRegistry<[KafkaTopicPartitionOffset]>()
    let pollThread = PollThread()
    let eventThread = PollThread()
    let phase = Mutex(Phase.created)
    /// Set when `close` starts: every commit from then on ends by it.
    let closeDeadline = Mutex<ContinuousClock.Instant?>(nil)
    /// True once `close` is done with librdkafka's handle (possibly in the background): destroyed,
    /// or deliberately left (``destroyClient(leaveGroup:)``).
    let destroyed = Flag()
    /// True once the group gave this consumer an assignment (see ``destroyClient(leaveGroup:)``).
    let assigned = Flag()
    let statisticsStream: AsyncStream<KafkaStatistics>
    let statisticsContinuation: AsyncStream<KafkaStatistics>.Continuation

    init(configuration: KafkaConsumerConfiguration) throws(KafkaError) {
        var properties = configuration.properties
        if let autoCommit = properties["enable.auto.commit"], autoCommit != "false" {
            throw KafkaError.configuration(
                property: "enable.auto.commit", "enable.auto.commit must stay false: this client commits explicitly")
        }
        guard !configuration.groupID.isEmpty else {
            throw KafkaError.configuration(property: "group.id", "group.id is required")
        }
        properties["enable.auto.commit"] = "false"
        properties["enable.auto.offset.store"] = "false"
        self.configuration = configuration
        buffer = ConsumerEventBuffer(capacity: configuration.bufferCapacity)
        (statisticsStream, statisticsContinuation) = AsyncStream.makeStream(of: KafkaStatistics.self, bufferingPolicy: .bufferingNewest(8))
        client = try RDKafkaClient(
            kind: .consumer, properties: properties, logHandler: configuration.logHandler,
            events: RDKafkaEventMask.error | RDKafkaEventMask.stats | RDKafkaEventMask.offsetCommit, rebalance: true)
        client.installRebalanceHandler { [weak self, buffer, client, configuration, assigned] event in
            switch event {
            case .assign(let partitions):
                assigned.set()
                buffer.push(.assigned(partitions.sorted()))
            case .revoke(let partitions, lost: true):
                buffer.push(.lost(partitions.sorted()))
            case .revoke(let partitions, lost: false):
                let closing = self?.phase.withLock { $0 != .running } ?? true
                if closing {
                    buffer.push(.revoked(partitions.sorted()))
                } else {
                    let ack = DispatchSemaphore(value: 0)
                    buffer.push(.revoked(partitions.sorted()), ack: ack)
                    _ = ack.wait(timeout: .now() + .milliseconds(Int(configuration.rebalanceTimeout.milliseconds)))
                }
                // Commit what the caller stored for these partitions before releasing them;
                // retry transient refusals (e.g. REBALANCE_IN_PROGRESS) until the deadline.
                let deadline = self?.commitDeadline() ?? .now + configuration.commitTimeout
                if let error = ConsumerCore.commitStoredBlocking(client, deadline: deadline) {
                    buffer.push(.error(error))
                }
            case .error(let error):
                buffer.push(.error(error))
            }
        }
    }

    /// Runs a short call on the librdkafka handle while the consumer is not closing: a close
    /// (which destroys the handle) waits for it, and once closing the call throws instead of
    /// touching a handle being destroyed (e.g. a pause from a task still draining).
    func withOpenClient<T>(_ what: String, _ body: (RDKafkaClient) throws(KafkaError) -> T) throws(KafkaError) -> T {
        try phase.withLock { phase throws(KafkaError) -> T in
            guard phase == .created || phase == .running else { throw KafkaError.closed(what) }
            return try body(client)
        }
    }

    func subscribe(_ topics: [String]) throws(KafkaError) {
        let start = try phase.withLock { phase throws(KafkaError) -> Bool in
            switch phase {
            case .closing, .closed: throw KafkaError.closed("subscribe")
            case .running: return false
            case .created:
                phase = .running
                return true
            }
        }
        try client.subscribe(topics)
        guard start else { return }
        let pollTimeoutMs: Int32 = 100
        pollThread.start(name: "kafka-consumer-poll") { [client, buffer, pollThread] in
            guard buffer.waitForSpace(timeout: .milliseconds(Int64(pollTimeoutMs))) else { return }
            switch client.consumerPoll(timeoutMs: pollTimeoutMs) {
            case .message(let message)?: buffer.push(.message(message))
            case .error(let error)?:
                if error.isFatal {
                    buffer.finish(error: error)
                    pollThread.requestStop()
                } else {
                    buffer.push(.error(error))
                }
            case nil: break
            }
        }
        eventThread.start(name: "kafka-consumer-events") { [client, buffer, commits, statisticsContinuation] in
            switch client.pollEvent(timeoutMs: pollTimeoutMs) {
            case .offsetCommit(let id, let result)?: commits.take(id)?.complete(result)
            case .statistics(let json)?:
                if let statistics = KafkaStatistics(json: json) { statisticsContinuation.yield(statistics) }
            case .error(let error)?:
                if error.isFatal { buffer.finish(error: error) } else { buffer.push(.error(error)) }
            default: break
            }
        }
    }

    /// Final commit, leave (or not), stop the threads, destroy.
    func close(leaveGroup: Bool) async throws(KafkaError) {
        let proceed = phase.withLock { phase -> Bool in
            guard phase == .created || phase == .running else { return false }
            phase = .closing
            return true
        }
        guard proceed else {
            // Another close is under way (the worker closes from its shutdown task and after its
            // poll loop): return once it is done, so the caller does not exit in the middle of it.
            let deadline = ContinuousClock.now + configuration.closeTimeout + .seconds(5)
            while phase.withLock({ $0 }) != .closed, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(10)) }
            return
        }
        let result: KafkaError? = await runOffPool("kafka-consumer-close") { [self] in closeBlocking(leaveGroup: leaveGroup) }
        if let result { throw result }
    }

    func shutdownDetached() {
        let proceed = phase.withLock { phase -> Bool in
            guard phase == .created || phase == .running else { return false }
            phase = .closing
            return true
        }
        guard proceed else { return }
        Task.detached { [self] in _ = await runOffPool("kafka-consumer-close") { [self] in closeBlocking(leaveGroup: true) } }
    }

    /// Commits the stored offsets of the current assignment, retrying retriable refusals until
    /// `deadline`. Returns the last error (nil on success or when nothing was stored).
    static func commitStoredBlocking(_ client: RDKafkaClient, deadline: ContinuousClock.Instant) -> KafkaError? {
        var backoff = Duration.milliseconds(50)
        while true {
            let left = deadline - .now
            guard left > .zero else { return .timedOut("offset commit") }
            switch client.commitBlocking(nil, timeoutMs: left.milliseconds) {
            case .success: return nil
            case .failure(let error) where error.code == .noOffset: return nil
            case .failure(let error) where error.isRetriable && !error.isFatal && deadline - .now > backoff:
                Thread.sleep(forTimeInterval: Double(backoff.milliseconds) / 1000)
                backoff = min(backoff * 2, .milliseconds(500))
            case .failure(let error): return error
            }
        }
    }

    /// Destroys librdkafka's handle, except where librdkafka before 2.3.0 would abort the
    /// process: a cooperative-sticky consumer that joined the group but never got an assignment
    /// (its sticky assignor state is still NULL; confluentinc/librdkafka#4312, e.g. a SIGTERM
    /// while a restarted static member waits for its old session). Such a handle is left as it
    /// is: its memory and idle threads stay until the process exits.
    private func destroyClient(leaveGroup: Bool) {
        if assigned.isSet || !RDKafkaClient.destroyAbortsBeforeFirstAssignment
            || !configuration.assignmentStrategy.contains("cooperative-sticky")
        {
            client.destroy(leaveGroup: leaveGroup)
        }
        destroyed.set()
    }

    /// How long a close that missed its deadline goes on in the background.
    static let abandonedCloseLimit: Duration = .seconds(120)

    /// A commit's deadline: `commitTimeout` from now, or the close deadline if sooner.
    func commitDeadline() -> ContinuousClock.Instant {
        let deadline = ContinuousClock.now + configuration.commitTimeout
        return closeDeadline.withLock { close in close.map { min($0, deadline) } ?? deadline }
    }

    /// Everything, the final commits (also the one of a revoke running meanwhile) and leaving
    /// the group included, ends by `closeTimeout`. A consumer not out of the group by then is
    /// finished on a background thread (librdkafka's teardown needs the close to complete):
    /// it keeps serving the close for up to ``abandonedCloseLimit`` more, then destroys.
    private func closeBlocking(leaveGroup: Bool) -> KafkaError? {
        var failure: KafkaError?
        let deadline = ContinuousClock.now + configuration.closeTimeout
        closeDeadline.withLock { $0 = deadline }
        buffer.finish()  // releases a revoke waiting for the caller
        pollThread.stopAndJoin()
        var closing: CloseQueue?
        var left = false
        if leaveGroup {
            if let error = ConsumerCore.commitStoredBlocking(client, deadline: commitDeadline()), error.code != .state {
                failure = error
            }
            closing = client.startClosingConsumer()
            left = closing.map { client.serveClose($0, until: deadline) } ?? false
            if !left, failure == nil {
                failure = .timedOut("leaving the consumer group")
            }
        }
        for pending in commits.takeAll() { pending.complete(.failure(.closed("commit"))) }
        if let queue = closing, !left {
            let thread = Thread { [self] in
                let closed = client.serveClose(queue, until: .now + ConsumerCore.abandonedCloseLimit)
                queue.destroy()
                eventThread.stopAndJoin()
                destroyClient(leaveGroup: closed)
            }
            thread.name = "kafka-consumer-close"
            thread.start()
        } else {
            closing?.destroy()
            eventThread.stopAndJoin()
            destroyClient(leaveGroup: leaveGroup && left)
        }
        statisticsContinuation.finish()
        phase.withLock { $0 = .closed }
        return failure
    }
}

final class Flag: Sendable {
    private let value = Atomic<Bool>(false)
    func set() { value.store(true, ordering: .releasing) }
    var isSet: Bool { value.load(ordering: .acquiring) }
}
