import Kafka

/// Answers, commits, drains, shutdown and failure.
extension WorkerState {
    // MARK: Answers

    /// Hands a request's final responses to its publish order; the request counts as answered
    /// once they are acknowledged.
    mutating func publish(_ answer: Answer, _ responses: [BackendResponse], final: Bool, now: ContinuousClock.Instant) {
        if final { pendingAnswers += 1 }
        switch publications.enqueue(answer, responses, final: final) {
        case .start(let responses): actions.append(.publish(answer.key, answer, responses))
        case .waiting: break
        case .ended(let step): ended(answer, step, now: now)
        }
    }

    mutating func published(_ key: RequestKey, _ step: AnswerRouter.Step, now: ContinuousClock.Instant) {
        let next = publications.finished(key, step)
        guard let answer = next.answer else { return }
        if let start = next.start { actions.append(.publish(key, answer, start)) }
        if let ended = next.ended { self.ended(answer, ended, now: now) }
    }

    /// A request's final publish ended.
    private mutating func ended(_ answer: Answer, _ step: AnswerRouter.Step, now: ContinuousClock.Instant) {
        pendingAnswers -= 1
        switch step {
        case .open, .closed(.delivered): answered(answer, now: now)
        case .closed(.fatal(let error)): fail(error)
        case .closed(.abandoned), .closed(.rejected): break
        }
    }

    private mutating func answered(_ answer: Answer, now: ContinuousClock.Instant) {
        let partition = answer.message.topicPartition
        guard generations[partition] == answer.generation else { return }
        tracker.complete(partition, offset: answer.message.offset)
        inFlightBytes[partition, default: 0] -= answer.message.byteCount
        actions.append(.metric(.answered(now - answer.received)))
    }

    // MARK: Periodic commits

    /// Starts an asynchronous commit of every position that moved, one at a time: librdkafka
    /// holds and retries a commit while the coordinator moves, so with several in flight an
    /// older position could be applied after a newer one and stay committed.
    mutating func commitDue() {
        guard failure == nil, !committing else { return }
        let offsets = tracker.takeCommits()
        guard !offsets.isEmpty else { return }
        committing = true
        actions.append(.commit(offsets))
    }

    /// The first failure of a streak is a warning, the streak's end an info line with its length.
    mutating func commitFinished(_ offsets: [KafkaTopicPartitionOffset], _ error: KafkaError?, now: ContinuousClock.Instant) {
        committing = false
        guard let error else {
            actions.append(.metric(.committed))
            if let streak = commitFailureStreak {
                commitFailureStreak = nil
                let seconds = (now - streak.since).components.seconds
                log(.info, "commits land again", ["failed_commits": "\(streak.count)", "seconds": "\(seconds)"])
            }
            return
        }
        actions.append(.metric(.commitFailed))
        tracker.commitFailed(offsets)
        if let streak = commitFailureStreak {
            commitFailureStreak = (streak.since, streak.count + 1)
            log(.debug, "commit failed; retried next time", ["error": "\(error.code.name)"])
        } else {
            commitFailureStreak = (now, 1)
            log(
                .warning,
                "commit failed; retried at every commit interval until one lands (answers above the committed offsets "
                    + "are answered again if the partition moves meanwhile)", ["error": "\(error.code.name)"])
        }
    }

    // MARK: Drains

    /// A revoke: stop taking the partitions' messages, finish their in-flight work within the
    /// drain deadline (during a shutdown, the shutdown's), commit, and forget them.
    mutating func startDrain(_ id: DrainID, partitions: [KafkaTopicPartition]?, now: ContinuousClock.Instant) {
        guard drains[id] == nil else { return }
        let deadline = min(now + settings.drainTimeout, shutdownDeadline ?? now + settings.drainTimeout)
        drains[id] = Drain(partitions: partitions, deadline: deadline)
        wake(at: deadline)
    }

    mutating func shutdown(_ id: DrainID, now: ContinuousClock.Instant) {
        guard !drains.keys.contains(id) else { return }
        if !stopping {
            stopping = true
            if !generations.isEmpty { actions.append(.pause(Array(generations.keys).sorted())) }
        }
        startDrain(id, partitions: nil, now: now)
        if shutdownDeadline == nil { shutdownDeadline = drains[id]?.deadline }
    }

    /// Ends the waits that are over (nothing left in flight, deadline passed, or a fatal error)
    /// and starts their commits.
    mutating func checkDrains(now: ContinuousClock.Instant) {
        for (id, drain) in drains.sorted(by: { $0.key < $1.key }) where drain.unfinished == nil {
            let left = tracker.inFlight(drain.partitions)
            guard left == 0 || now >= drain.deadline || failure != nil else { continue }
            drains[id]?.unfinished = left
            let offsets = failure == nil ? commitPositions(drain.partitions) : []
            if offsets.isEmpty {
                finishDrain(id)
            } else {
                actions.append(.commitDrain(id, offsets))
            }
        }
    }

    /// The answered position of every partition in `only` (all when nil).
    private func commitPositions(_ only: [KafkaTopicPartition]?) -> [KafkaTopicPartitionOffset] {
        let set = only.map(Set.init)
        return tracker.partitions.compactMap { partition, state -> KafkaTopicPartitionOffset? in
            guard set?.contains(partition) ?? true, let position = state.commitPosition else { return nil }
            return KafkaTopicPartitionOffset(topic: partition.topic, partition: partition.partition, offset: position)
        }.sorted { ($0.topic, $0.partition) < ($1.topic, $1.partition) }
    }

    mutating func drainCommitted(_ id: DrainID, _ error: KafkaError?) {
        guard drains[id]?.unfinished != nil else { return }
        if let error {
            actions.append(.metric(.commitFailed))
            log(.warning, "commit failed (the consumer retries the stored offsets)", ["error": "\(error)"])
        } else {
            actions.append(.metric(.committed))
        }
        finishDrain(id)
    }

    private mutating func finishDrain(_ id: DrainID) {
        guard let drain = drains.removeValue(forKey: id) else { return }
        let left = drain.unfinished ?? 0
        if let partitions = drain.partitions {
            drop(partitions)
            log(.info, "partitions revoked", ["partitions": Self.names(partitions), "unfinished": "\(left)"])
        } else {
            actions.append(.abandonPublishing)
            log(.info, "drained", ["unfinished": "\(left)"])
        }
        actions.append(.finishDrain(id))
    }

    // MARK: Failure

    /// A fatal error: stop without committing anything further.
    mutating func fail(_ error: KafkaError) {
        guard failure == nil else { return }
        failure = error
        stopping = true
        actions.append(.stop(error))
        log(.critical, "fatal error; stopping without committing further", ["error": "\(error)"])
    }
}
