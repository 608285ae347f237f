import Kafka
import Logging

/// What happens to the worker, fed one at a time to ``WorkerState/handle(_:now:)``.
enum WorkerEvent<Job: Sendable>: Sendable {
    /// Partitions added to the assignment.
    case assigned([KafkaTopicPartition])
    /// Partitions about to be taken away: drain them (the revoke completes with `.finishDrain(drain)`).
    case revoked([KafkaTopicPartition], drain: DrainID)
    /// Partitions lost (another member may own them): drop their work, commit nothing.
    case lost([KafkaTopicPartition])
    /// A message, classified by the poll task.
    case received(KafkaConsumerMessage, Classified<Job>)
    /// A streamed partial response of a running batch's `index`th request.
    case partial(BatchID, index: Int, BackendResponse)
    /// A batch finished: per request, the rest of its responses; when the lane started it.
    case batchFinished(BatchID, results: [[BackendResponse]], started: ContinuousClock.Instant)
    /// A publish of one request's responses ended.
    case published(RequestKey, AnswerRouter.Step)
    /// The commit interval passed.
    case commitDue
    /// A periodic commit ended.
    case commitFinished([KafkaTopicPartitionOffset], KafkaError?)
    /// A drain's commit ended.
    case drainCommitted(DrainID, KafkaError?)
    /// A wake-up asked for with `.wake(at:)` (or any later moment).
    case tick
    /// Stop fetching, drain everything, commit (completes with `.finishDrain(drain)`).
    case shutdown(drain: DrainID)
    /// A fatal Kafka error: stop without committing anything further.
    case failed(KafkaError)
}

/// Names a drain (a revoke or the shutdown), chosen by the driver.
typealias DrainID = UInt64
/// Names a batch handed to a lane.
typealias BatchID = UInt64

/// What ``WorkerState`` asks its driver to do, in order.
enum WorkerAction<Job: Sendable>: Sendable {
    /// Run `jobs` on `slot`'s lane; report `.partial` for each streamed response, then `.batchFinished`.
    case dispatch(BatchID, slot: LaneSlots.Slot, jobs: [Job])
    /// Publish a request's responses (in order); report `.published(key, step)`.
    case publish(RequestKey, Answer, [BackendResponse])
    /// Commit asynchronously; report `.commitFinished`.
    case commit([KafkaTopicPartitionOffset])
    /// Store the offsets (so the consumer's own revoke/close commit retries them), commit and
    /// wait; report `.drainCommitted`.
    case commitDrain(DrainID, [KafkaTopicPartitionOffset])
    case pause([KafkaTopicPartition])
    case resume([KafkaTopicPartition])
    /// Report `.tick` at this instant.
    case wake(at: ContinuousClock.Instant)
    /// The drain is over: let the revoke complete, or the shutdown go on.
    case finishDrain(DrainID)
    /// Publishes still retrying give up (`.abandoned`).
    case abandonPublishing
    /// Fatal: abandon publishing and close the consumer without committing.
    case stop(KafkaError)
    case log(WorkerLogEntry)
    case metric(WorkerMetric)
}

/// A log line the state asks for.
struct WorkerLogEntry: Sendable, Equatable {
    var level: Logger.Level
    var message: String
    var metadata: [String: String] = [:]
}

/// Counters and histograms the state feeds (gauges: ``WorkerGauges``).
enum WorkerMetric: Sendable, Equatable {
    case batch(tokens: Int, requests: Int)
    /// A request waited this long for its lane.
    case queued(Duration)
    /// A batch ran this long.
    case inference(Duration, tokens: Int)
    /// From receipt to the acknowledged answer.
    case answered(Duration)
    case paused
    case committed
    case commitFailed
}

/// The state's levels, for gauges and probes (read after every event).
struct WorkerGauges: Sendable, Equatable {
    var assigned = 0
    var inFlight = 0
    var inFlightBytes = 0
    var queuedTokens = 0
    var pendingAnswers = 0
    var paused = false
    /// Answers waiting for the broker while fetching is paused because of them (0: none).
    var awaitingBroker = 0
    var stopping = false
}
