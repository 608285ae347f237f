import Foundation
import Synchronization

/// A send that librdkafka accepted; ``result`` resolves to the broker's acknowledgement or
/// a typed error (after librdkafka's own retries, within `message.timeout.ms`).
public struct KafkaPendingDelivery: Sendable {
    let promise: Promise<KafkaDeliveryReport>
    public var result: Result<KafkaDeliveryReport, KafkaError> { get async { await promise.result } }
    /// The acknowledgement, or the delivery error thrown.
    public func get() async throws(KafkaError) -> KafkaDeliveryReport { try await promise.result.get() }
}

/// A Kafka producer. Idempotent by default. Each send resolves to its delivery result.
/// At most ``KafkaProducerConfiguration/maxInFlightMessages`` are unresolved at once: further
/// sends wait for room (backpressure). Delivery reports are served on a dedicated thread.
public final class KafkaProducer: Sendable {
    let core: ProducerCore

    public init(configuration: KafkaProducerConfiguration) throws {
        core = try ProducerCore(configuration: configuration)
    }

    deinit { core.shutdownDetached() }

    /// Sends `message` and waits for its delivery result.
    public func send(_ message: KafkaProducerMessage) async throws(KafkaError) -> KafkaDeliveryReport {
        try await enqueue(message).get()
    }

    /// Hands `message` to librdkafka once there is room in the in-flight window, without waiting
    /// for the broker; await the returned delivery for the result. Throws if the message could
    /// not be enqueued (closed, unknown partition, too large, ...).
    public func enqueue(_ message: KafkaProducerMessage) async throws(KafkaError) -> KafkaPendingDelivery {
        try await core.enqueue(message)
    }

    /// Waits until every enqueued message is resolved, at most `timeout`.
    public func flush(timeout: Duration) async throws(KafkaError) {
        try await core.flush(timeout: timeout)
    }

    /// Fetches the metadata of `topics` (each at most `timeout`), so the first message to each
    /// goes out without waiting for a metadata round trip (about a second otherwise). Per topic:
    /// its partition count, or the error (e.g. unknown topic: producing to it would wait or fail).
    public func loadMetadata(topics: [String], timeout: Duration = .seconds(5)) async -> [(topic: String, result: Result<Int, KafkaError>)]
    {
        let core = self.core, ms = timeout.milliseconds
        return await runOffPool("kafka-producer-metadata") {
            topics.map { topic -> (topic: String, result: Result<Int, KafkaError>) in
                guard core.phase.withLock({ $0 == .open }) else { return (topic, .failure(KafkaError.closed("metadata"))) }
                do throws(KafkaError) {
                    return (topic, .success(try core.client.loadTopicMetadata(topic, timeoutMs: ms)))
                } catch {
                    return (topic, .failure(error))
                }
            }
        }
    }

    /// Parsed `statistics.interval.ms` reports.
    public var statistics: AsyncStream<KafkaStatistics> { core.statisticsStream }

    /// Non-fatal and fatal errors librdkafka reports outside any one delivery.
    public var errors: AsyncStream<KafkaError> { core.errorStream }

    /// Messages enqueued but not yet resolved.
    public var inFlightCount: Int { core.slots.inUse }

    /// Flushes (at most `timeout`), fails whatever is left with `_PURGE_QUEUE`/`_DESTROY`, and
    /// destroys the producer. Throws `_TIMED_OUT` if messages had to be purged.
    public func close(timeout: Duration = .seconds(30)) async throws(KafkaError) {
        try await core.close(timeout: timeout)
    }
}

final class ProducerCore: Sendable {
    enum Phase { case open, closing, closed }

    let client: RDKafkaClient
    let configuration: KafkaProducerConfiguration
    let deliveries = PromiseRegistry<KafkaDeliveryReport>()
    let slots: AsyncSlots
    let eventThread = PollThread()
    let phase = Mutex(Phase.open)
    let statisticsStream: AsyncStream<KafkaStatistics>
    let statisticsContinuation: AsyncStream<KafkaStatistics>.Continuation
    let errorStream: AsyncStream<KafkaError>
    let errorContinuation: AsyncStream<KafkaError>.Continuation

    init(configuration: KafkaProducerConfiguration) throws(KafkaError) {
        self.configuration = configuration
        var properties = configuration.properties
        let window = max(1, configuration.maxInFlightMessages)
        if properties["queue.buffering.max.messages"] == nil {
            properties["queue.buffering.max.messages"] = String(max(window, 100_000))
        }
        slots = AsyncSlots(capacity: window)
        (statisticsStream, statisticsContinuation) = AsyncStream.makeStream(of: KafkaStatistics.self, bufferingPolicy: .bufferingNewest(8))
        (errorStream, errorContinuation) = AsyncStream.makeStream(of: KafkaError.self, bufferingPolicy: .bufferingNewest(64))
        client = try RDKafkaClient(
            kind: .producer, properties: properties, logHandler: configuration.logHandler,
            events: RDKafkaEventMask.deliveryReport | RDKafkaEventMask.error | RDKafkaEventMask.stats, rebalance: false)
        eventThread.start(name: "kafka-producer-events") { [client, deliveries, slots, statisticsContinuation, errorContinuation] in
            switch client.pollEvent(timeoutMs: 100) {
            case .deliveries(let reports)?:
                for report in reports {
                    if let promise = deliveries.take(report.id) {
                        promise.complete(report.result)
                        slots.release()
                    }
                }
            case .statistics(let json)?:
                if let statistics = KafkaStatistics(json: json) { statisticsContinuation.yield(statistics) }
            case .error(let error)?:
                errorContinuation.yield(error)
            default: break
            }
        }
    }

    func enqueue(_ message: KafkaProducerMessage) async throws(KafkaError) -> KafkaPendingDelivery {
        guard phase.withLock({ $0 == .open }) else { throw KafkaError.closed("send") }
        do {
            try await slots.acquire()
        } catch {
            throw KafkaError(code: .fail, message: "send cancelled while waiting for room in the in-flight window", isRetriable: true)
        }
        let promise = Promise<KafkaDeliveryReport>()
        let id = deliveries.register(promise)
        var backoff = Duration.milliseconds(1)
        while true {
            do throws(KafkaError) {
                guard phase.withLock({ $0 == .open }) else { throw KafkaError.closed("send") }
                try client.produce(message, id: id)
                return KafkaPendingDelivery(promise: promise)
            } catch  where error.code == .queueFull {
                // librdkafka's own queue is full (it is sized above the window unless
                // configured smaller): wait for deliveries to drain it.
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, .milliseconds(100))
            } catch {
                _ = deliveries.take(id)
                slots.release()
                throw error
            }
        }
    }

    func flush(timeout: Duration) async throws(KafkaError) {
        let client = self.client
        let ms = timeout.milliseconds
        let deliveries = self.deliveries
        let remaining: Int = await runOffPool("kafka-producer-flush") {
            ProducerCore.drain(client, deliveries, deadline: .now + .milliseconds(Int64(ms)))
        }
        if remaining > 0 {
            throw KafkaError(
                code: .timedOut, message: "flush timed out with \(remaining) messages or requests outstanding", isRetriable: true)
        }
    }

    /// Flushes until every send is resolved (delivered or failed) or `deadline`; returns how
    /// many are still unresolved. Waits on our own deliveries rather than `rd_kafka_outq_len`,
    /// which also counts protocol requests (e.g. producer-id renewal waiting on a reconnect).
    static func drain(_ client: RDKafkaClient, _ deliveries: PromiseRegistry<KafkaDeliveryReport>, deadline: ContinuousClock.Instant) -> Int
    {
        while deliveries.count > 0 {
            let left = deadline - .now
            guard left > .zero else { break }
            // rd_kafka_flush sends lingering batches at once; the event thread resolves reports.
            _ = client.flush(timeoutMs: min(left, .milliseconds(50)).milliseconds)
        }
        return deliveries.count
    }

    func close(timeout: Duration) async throws(KafkaError) {
        let proceed = phase.withLock { phase -> Bool in
            guard phase == .open else { return false }
            phase = .closing
            return true
        }
        guard proceed else { return }
        let remaining = await runOffPool("kafka-producer-close") { [self] in closeBlocking(timeoutMs: timeout.milliseconds) }
        if remaining > 0 {
            throw KafkaError(
                code: .timedOut, message: "close: \(remaining) messages were not delivered within the deadline and were purged",
                isRetriable: true)
        }
    }

    func shutdownDetached() {
        let proceed = phase.withLock { phase -> Bool in
            guard phase == .open else { return false }
            phase = .closing
            return true
        }
        guard proceed else { return }
        Task.detached { [self] in _ = await runOffPool("kafka-producer-close") { [self] in closeBlocking(timeoutMs: 5_000) } }
    }

    /// Returns how many messages were still unresolved at the deadline.
    private func closeBlocking(timeoutMs: Int32) -> Int {
        let unresolved = ProducerCore.drain(client, deliveries, deadline: .now + .milliseconds(Int64(timeoutMs)))
        if unresolved > 0 {
            client.purge()
            _ = client.flush(timeoutMs: 1_000)  // serves the purge reports
        }
        eventThread.stopAndJoin()
        for pending in deliveries.takeAll() { pending.complete(.failure(.closed("delivery"))) }
        slots.failAll(KafkaError.closed("send"))
        client.destroy()
        statisticsContinuation.finish()
        errorContinuation.finish()
        phase.withLock { $0 = .closed }
        return unresolved
    }
}
