/// An error from librdkafka or from this client, carrying librdkafka's error code and message.
///
/// `isRetriable` says that the same operation may succeed if tried again (a transient broker or
/// network condition); `isFatal` says that the client instance can no longer be used and must be
/// recreated. Errors never contain configuration values of secret properties.
public struct KafkaError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A librdkafka error code (`rd_kafka_resp_err_t`): negative values are client-side errors,
    /// positive values are Kafka protocol errors returned by a broker.
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public var rawValue: Int32
        public init(rawValue: Int32) { self.rawValue = rawValue }

        /// librdkafka's symbolic name, e.g. `REQUEST_TIMED_OUT` or `_MSG_TIMED_OUT`.
        public var name: String { RDKafkaErrorNames.name(of: rawValue) }
        public var description: String { "\(name) (\(rawValue))" }

        // Client-side (negative) codes.
        public static let badMessage = Code(rawValue: -199)
        public static let destroyed = Code(rawValue: -197)
        public static let fail = Code(rawValue: -196)
        public static let transport = Code(rawValue: -195)
        public static let messageTimedOut = Code(rawValue: -192)
        public static let partitionEOF = Code(rawValue: -191)
        public static let unknownPartition = Code(rawValue: -190)
        public static let unknownTopic = Code(rawValue: -188)
        public static let allBrokersDown = Code(rawValue: -187)
        public static let invalidArgument = Code(rawValue: -186)
        public static let timedOut = Code(rawValue: -185)
        public static let queueFull = Code(rawValue: -184)
        public static let unknownGroup = Code(rawValue: -179)
        public static let state = Code(rawValue: -172)
        public static let notImplemented = Code(rawValue: -170)
        public static let noOffset = Code(rawValue: -168)
        public static let outdated = Code(rawValue: -167)
        public static let timedOutQueue = Code(rawValue: -166)
        public static let purgeQueue = Code(rawValue: -152)
        public static let purgeInflight = Code(rawValue: -151)
        public static let fatal = Code(rawValue: -150)
        public static let inconsistent = Code(rawValue: -149)
        public static let assignmentLost = Code(rawValue: -142)
        /// `_AUTHENTICATION`: SASL/SSL authentication failed on one connection (librdkafka retries).
        public static let authentication = Code(rawValue: -169)

        // Broker (Kafka protocol) codes.
        public static let noError = Code(rawValue: 0)
        public static let unknown = Code(rawValue: -1)
        public static let corruptMessage = Code(rawValue: 2)
        public static let unknownTopicOrPartition = Code(rawValue: 3)
        public static let leaderNotAvailable = Code(rawValue: 5)
        public static let notLeaderForPartition = Code(rawValue: 6)
        public static let requestTimedOut = Code(rawValue: 7)
        public static let messageSizeTooLarge = Code(rawValue: 10)
        public static let networkException = Code(rawValue: 13)
        public static let coordinatorLoadInProgress = Code(rawValue: 14)
        public static let coordinatorNotAvailable = Code(rawValue: 15)
        public static let notCoordinator = Code(rawValue: 16)
        public static let invalidTopic = Code(rawValue: 17)
        public static let recordListTooLarge = Code(rawValue: 18)
        public static let notEnoughReplicas = Code(rawValue: 19)
        public static let notEnoughReplicasAfterAppend = Code(rawValue: 20)
        public static let illegalGeneration = Code(rawValue: 22)
        public static let unknownMemberID = Code(rawValue: 25)
        public static let rebalanceInProgress = Code(rawValue: 27)
        public static let topicAuthorizationFailed = Code(rawValue: 29)
        public static let groupAuthorizationFailed = Code(rawValue: 30)
        public static let clusterAuthorizationFailed = Code(rawValue: 31)
        public static let transactionalIDAuthorizationFailed = Code(rawValue: 53)
        public static let policyViolation = Code(rawValue: 44)
        public static let outOfOrderSequence = Code(rawValue: 45)
        public static let invalidProducerEpoch = Code(rawValue: 47)
        public static let concurrentTransactions = Code(rawValue: 51)
        public static let kafkaStorageError = Code(rawValue: 56)
        public static let fencedInstanceID = Code(rawValue: 82)
        public static let producerFenced = Code(rawValue: 90)
        public static let invalidRecord = Code(rawValue: 87)
    }

    public var code: Code
    /// librdkafka's message (or this client's, for client-side conditions).
    public var message: String
    /// The operation may succeed if tried again.
    public var isRetriable: Bool
    /// The client instance is unusable and must be recreated.
    public var isFatal: Bool
    /// Transactional producer: the current transaction must be aborted.
    public var transactionRequiresAbort: Bool
    /// The configuration property an error is about, if any.
    public var property: String?

    public init(
        code: Code, message: String, isRetriable: Bool? = nil, isFatal: Bool = false,
        transactionRequiresAbort: Bool = false, property: String? = nil
    ) {
        self.code = code
        self.message = message
        self.isRetriable = isRetriable ?? KafkaError.retriableCodes.contains(code)
        self.isFatal = isFatal
        self.transactionRequiresAbort = transactionRequiresAbort
        self.property = property
    }

    public var description: String {
        var flags: [String] = []
        if isFatal { flags.append("fatal") }
        if isRetriable { flags.append("retriable") }
        if transactionRequiresAbort { flags.append("transaction requires abort") }
        let suffix = flags.isEmpty ? "" : " [\(flags.joined(separator: ", "))]"
        return "KafkaError \(code.name) (\(code.rawValue)): \(message)\(suffix)"
    }

    /// Codes that describe transient conditions (Kafka's RetriableException set plus librdkafka's
    /// transient client-side conditions).
    static let retriableCodes: Set<Code> = [
        .transport, .messageTimedOut, .allBrokersDown, .timedOut, .queueFull, .timedOutQueue,
        .corruptMessage, .unknownTopicOrPartition, .leaderNotAvailable, .notLeaderForPartition,
        .requestTimedOut, .networkException, .coordinatorLoadInProgress, .coordinatorNotAvailable,
        .notCoordinator, .notEnoughReplicas, .notEnoughReplicasAfterAppend, .rebalanceInProgress,
        .concurrentTransactions, .kafkaStorageError,
        Code(rawValue: 70), Code(rawValue: 71), Code(rawValue: 72), Code(rawValue: 74),
        Code(rawValue: 75), Code(rawValue: 78), Code(rawValue: 80), Code(rawValue: 83),
        Code(rawValue: 88), Code(rawValue: 89),
    ]

    // Client-side conditions raised by this library.
    static func timedOut(_ what: String) -> KafkaError {
        KafkaError(code: .timedOut, message: "\(what) timed out", isRetriable: true)
    }
    static func closed(_ what: String) -> KafkaError {
        KafkaError(code: .destroyed, message: "\(what): the client is closed", isRetriable: false)
    }
    static func state(_ message: String) -> KafkaError {
        KafkaError(code: .state, message: message, isRetriable: false)
    }
    static func configuration(property: String, _ message: String) -> KafkaError {
        KafkaError(code: .invalidArgument, message: message, isRetriable: false, property: property)
    }
}
