import Kafka
import Testing

@testable import Worker

/// The worker's state type with injected events and an injected clock: no Kafka, no lanes.
@Suite("Worker state")
struct WorkerStateTests {
    typealias H = StateHarness
    let p0 = H.p0, p1 = H.p1

    @Test("commits only below the answered prefix, one periodic commit at a time")
    func commitsFollowAnswers() {
        var h = H()
        h.send(.assigned([p0]))
        let keys = h.answerUnacknowledged(p0, [0, 1, 2])
        #expect(keys.map(\.offset).sorted() == [0, 1, 2])
        #expect(h.state.gauges.pendingAnswers == 3)
        for key in keys where key.offset != 0 { h.send(.published(key, .open)) }
        h.send(.commitDue)
        #expect(h.commits.isEmpty, "offset 0 is unanswered")
        if let first = keys.first(where: { $0.offset == 0 }) { h.send(.published(first, .open)) }
        #expect(h.metrics.contains { if case .answered = $0 { true } else { false } })
        h.send(.commitDue)
        #expect(h.commits == [H.offsets((p0, 3))])
        h.answer(p0, [3])
        h.send(.commitDue)
        #expect(h.commits.isEmpty, "the previous commit is still in flight")
        h.send(.commitFinished(H.offsets((p0, 3)), nil))
        #expect(h.metrics == [.committed])
        h.send(.commitDue)
        #expect(h.commits == [H.offsets((p0, 4))])
        #expect(h.state.gauges.inFlight == 0 && h.state.gauges.pendingAnswers == 0 && h.state.gauges.inFlightBytes == 0)
    }

    @Test("a failing streak of commits: warning once, positions offered again, info when one lands")
    func commitFailureThenSuccess() {
        var h = H()
        h.send(.assigned([p0]))
        h.answer(p0, [0, 1])
        h.send(.commitDue)
        #expect(h.commits == [H.offsets((p0, 2))])
        let error = KafkaError(code: .notCoordinator, message: "moving")
        h.send(.commitFinished(H.offsets((p0, 2)), error))
        #expect(h.metrics == [.commitFailed])
        #expect(h.logs.map(\.level) == [.warning])
        h.send(.commitDue)
        #expect(h.commits == [H.offsets((p0, 2))], "the failed position is offered again")
        h.advance(.seconds(3))
        h.send(.commitFinished(H.offsets((p0, 2)), error))
        #expect(h.logs.map(\.level) == [.debug], "one warning per streak")
        h.send(.commitDue)
        h.send(.commitFinished(H.offsets((p0, 2)), nil))
        #expect(h.logs == [WorkerLogEntry(level: .info, message: "commits land again", metadata: ["failed_commits": "2", "seconds": "3"])])
        h.send(.commitDue)
        #expect(h.commits.isEmpty, "nothing moved since")
        h.send(.commitFinished(H.offsets((p0, 2)), error))
        #expect(h.logs.map(\.level) == [.warning], "a new streak warns again")
    }

    @Test("rebalance during a stream: partials and the final answer in order, one publish at a time; the revoke waits for the answer")
    func rebalanceDuringStream() {
        var h = H()
        h.send(.assigned([p0, p1]))
        h.receive(p0, 7, H.job("long", steps: 100))
        h.advance(.milliseconds(10))
        h.send(.tick)
        guard let batch = h.dispatches.first else {
            Issue.record("no dispatch")
            return
        }
        h.send(.partial(batch.id, index: 0, H.partial("1")))
        guard let key = h.publishes.first?.key else {
            Issue.record("partial not published")
            return
        }
        #expect(h.publishes.map(\.responses) == [[H.partial("1")]])
        h.send(.partial(batch.id, index: 0, H.partial("2")))
        #expect(h.publishes.isEmpty, "waits for the first partial")
        h.send(.revoked([p0], drain: 1))
        #expect(h.finished.isEmpty && h.drainCommits.isEmpty)
        h.send(.published(key, .open))
        #expect(h.publishes.map(\.responses) == [[H.partial("2")]])
        h.send(.batchFinished(batch.id, results: [[H.answer("long")]], started: h.now))
        #expect(h.publishes.isEmpty, "the final answer waits for the second partial")
        h.send(.partial(batch.id, index: 0, H.partial("late")))
        h.send(.published(key, .open))
        #expect(h.publishes.map(\.responses) == [[H.answer("long")]])
        #expect(h.finished.isEmpty)
        h.send(.published(key, .open))
        #expect(h.drainCommits.map(\.1) == [H.offsets((p0, 8))])
        h.send(.drainCommitted(1, nil))
        #expect(h.finished == [1])
        #expect(
            h.logs.last
                == WorkerLogEntry(level: .info, message: "partitions revoked", metadata: ["partitions": "req[0]", "unfinished": "0"]))
        #expect(h.state.gauges.assigned == 1)
        h.receive(p0, 8)
        #expect(h.state.gauges.inFlight == 0, "a revoked partition's messages are not taken")
    }

    @Test("revoke with answers pending: at the deadline it commits what was answered and releases")
    func revokeWithAnswersPending() {
        var h = H(drainTimeout: .seconds(2))
        h.send(.assigned([p0, p1]))
        let keys = h.answerUnacknowledged(p0, [10, 11])
        h.answer(p1, [0])
        if let first = keys.first(where: { $0.offset == 10 }) { h.send(.published(first, .open)) }
        let start = h.now
        h.send(.revoked([p0], drain: 5))
        #expect(h.wakes == [start + .seconds(2)])
        #expect(h.finished.isEmpty)
        h.advance(.seconds(1))
        h.send(.tick)
        #expect(h.finished.isEmpty && h.drainCommits.isEmpty)
        h.advance(.seconds(1))
        h.send(.tick)
        #expect(h.drainCommits.map(\.0) == [5])
        #expect(h.drainCommits.map(\.1) == [H.offsets((p0, 11))], "only the revoked partition, only below the unanswered offset")
        h.send(.drainCommitted(5, KafkaError(code: .requestTimedOut, message: "slow")))
        #expect(h.finished == [5])
        #expect(h.metrics == [.commitFailed])
        #expect(h.logs.last?.metadata["unfinished"] == "1")
        // The late acknowledgement completes nothing: the partition is gone.
        if let late = keys.first(where: { $0.offset == 11 }) { h.send(.published(late, .open)) }
        #expect(h.state.gauges.pendingAnswers == 0)
        #expect(h.state.tracker.owns(p0) == false)
        h.send(.commitDue)
        #expect(h.commits == [H.offsets((p1, 1))])
    }

    @Test("lost partitions: queued and running work dropped, nothing committed for them; a new assignment starts clean")
    func lostPartitions() {
        var h = H(maxWait: .seconds(1), lanes: 1)
        h.send(.assigned([p0]))
        h.receive(p0, 0, H.job("long", steps: 10))
        h.advance(.seconds(2))
        h.send(.tick)
        guard let running = h.dispatches.first else {
            Issue.record("no dispatch")
            return
        }
        h.receive(p0, 1, H.job("queued", steps: 10))
        #expect(h.state.gauges.queuedTokens == 8, "a second generation waits for the lane")
        h.send(.lost([p0]))
        #expect(h.logs.map(\.message) == ["partitions lost; in-flight work dropped without committing"])
        #expect(h.logs.first?.metadata["dropped"] == "2")
        #expect(h.drainCommits.isEmpty && h.commits.isEmpty && h.finished.isEmpty)
        #expect(h.state.gauges == WorkerGauges())
        // The partition comes back: offset 0 is delivered again, and the old batch's answer is not its answer.
        h.send(.assigned([p0]))
        h.receive(p0, 0, H.job("again"))
        h.send(.batchFinished(running.id, results: [[H.answer("long")]], started: h.now))
        #expect(h.publishes.isEmpty, "the lost assignment's answer is not published")
        h.advance(.seconds(2))
        h.send(.tick)
        guard let again = h.dispatches.first else {
            Issue.record("no dispatch")
            return
        }
        h.send(.batchFinished(again.id, results: [[H.answer("again")]], started: h.now))
        for publish in h.publishes { h.send(.published(publish.key, .open)) }
        h.send(.commitDue)
        #expect(h.commits == [H.offsets((p0, 1))])
    }

    @Test("lost during a stream: the final answer waiting behind a partial is never sent; pending answers return to zero")
    func lostDuringStream() {
        var h = H(maxWait: .zero)
        h.send(.assigned([p0]))
        h.receive(p0, 4, H.job("gen", steps: 5))
        guard let batch = h.dispatches.first else {
            Issue.record("no dispatch")
            return
        }
        h.send(.partial(batch.id, index: 0, H.partial("1")))
        guard let key = h.publishes.first?.key else {
            Issue.record("no publish")
            return
        }
        h.send(.batchFinished(batch.id, results: [[H.answer("gen")]], started: h.now))
        #expect(h.publishes.isEmpty)
        #expect(h.state.gauges.pendingAnswers == 1)
        h.send(.lost([p0]))
        #expect(h.state.gauges.pendingAnswers == 0)
        h.send(.published(key, .open))
        #expect(h.publishes.isEmpty, "the lost request's final answer is not sent")
        #expect(h.state.gauges == WorkerGauges())
        // Assigned again and redelivered: the same offset is a new request.
        h.send(.assigned([p0]))
        h.answer(p0, [4])
        h.send(.commitDue)
        #expect(h.commits == [H.offsets((p0, 5))])
    }

    @Test(
        "flow control: pauses the assigned partitions above the in-flight bound, resumes at half; readiness says the broker holds answers")
    func flowControl() {
        var h = H(maxWait: .zero, maxInFlight: 4)
        h.send(.assigned([p0, p1]))
        var keys: [RequestKey] = []
        for offset in Int64(0)..<4 { keys += h.answerUnacknowledged(p0, [offset]) }
        #expect(h.state.gauges.paused == false)
        h.receive(p1, 0, H.rejected("bad"))
        #expect(h.pauses == [[p0, p1]])
        #expect(h.metrics.contains(.paused))
        #expect(h.publishes.count == 1, "a rejected message is answered at once")
        keys += h.publishes.map(\.key)
        #expect(h.state.gauges.awaitingBroker == 5)
        // Assigned while paused: paused at once.
        let p2 = KafkaTopicPartition(topic: "req", partition: 2)
        h.send(.assigned([p2]))
        #expect(h.pauses == [[p2]])
        for key in keys.prefix(2) { h.send(.published(key, .open)) }
        #expect(h.resumes.isEmpty, "3 in flight: above half of 4")
        h.send(.published(keys[2], .open))
        #expect(h.resumes == [[p0, p1, p2]])
        #expect(h.state.gauges.awaitingBroker == 0)
    }

    @Test("shutdown with in-flight work: pauses, runs what is queued at once, waits for the answers, commits, then drained")
    func shutdownWithInFlightWork() {
        var h = H(maxWait: .seconds(60))
        h.send(.assigned([p0]))
        h.receive(p0, 0)
        h.receive(p0, 1)
        #expect(h.dispatches.isEmpty, "the batch waits to fill")
        h.send(.shutdown(drain: 9))
        #expect(h.pauses == [[p0]])
        #expect(h.state.gauges.stopping)
        guard let batch = h.dispatches.first else {
            Issue.record("not flushed")
            return
        }
        h.receive(p0, 2)
        #expect(h.state.gauges.inFlight == 2, "nothing new is taken while stopping")
        h.send(.batchFinished(batch.id, results: batch.jobs.map { [H.answer($0)] }, started: h.now))
        let keys = h.publishes.map(\.key)
        #expect(keys.count == 2)
        h.send(.published(keys[0], .open))
        #expect(h.drainCommits.isEmpty)
        // A revoke while shutting down (the consumer leaving) shares the shutdown's deadline.
        h.advance(.seconds(1))
        h.send(.revoked([p0], drain: 10))
        #expect(h.wakes.isEmpty, "no later deadline than the shutdown's")
        h.send(.published(keys[1], .open))
        #expect(h.drainCommits.map(\.0) == [9, 10])
        #expect(h.drainCommits.map(\.1) == [H.offsets((p0, 2)), H.offsets((p0, 2))])
        h.send(.drainCommitted(9, nil))
        #expect(h.abandons == 1)
        #expect(h.logs == [WorkerLogEntry(level: .info, message: "drained", metadata: ["unfinished": "0"])])
        #expect(h.finished == [9])
        h.send(.drainCommitted(10, nil))
        #expect(h.finished == [10])
    }

    @Test("shutdown that runs out of time: the unanswered are left uncommitted")
    func shutdownDeadline() {
        var h = H(maxWait: .zero, drainTimeout: .seconds(15))
        h.send(.assigned([p0]))
        let keys = h.answerUnacknowledged(p0, [0, 1])
        h.send(.published(keys[0], .open))
        h.send(.shutdown(drain: 1))
        #expect(h.wakes == [h.now + .seconds(15)])
        h.advance(.seconds(15))
        h.send(.tick)
        #expect(h.drainCommits.map(\.1) == [H.offsets((p0, 1))])
        h.send(.drainCommitted(1, nil))
        #expect(h.logs.last?.metadata["unfinished"] == "1")
        #expect(h.finished == [1])
    }

    @Test("a fatal publish error stops everything: no further commits; drains end at once")
    func fatal() {
        var h = H(maxWait: .zero)
        h.send(.assigned([p0]))
        h.answer(p0, [0])
        let keys = h.answerUnacknowledged(p0, [1])
        let error = KafkaError(code: .topicAuthorizationFailed, message: "no")
        h.send(.published(keys[0], .closed(.fatal(error))))
        #expect(h.stops.map(\.code) == [.topicAuthorizationFailed])
        #expect(h.logs.map(\.level) == [.critical])
        h.send(.commitDue)
        #expect(h.commits.isEmpty)
        h.send(.revoked([p0], drain: 3))
        #expect(h.drainCommits.isEmpty)
        #expect(h.finished == [3])
        h.send(.shutdown(drain: 4))
        #expect(h.finished == [4])
        #expect(h.abandons == 1)
    }

    @Test("an answer closed by an undeliverable partial (rerouted) ends the request: the final is not published, the offset completes")
    func closedByPartial() {
        var h = H(maxWait: .zero)
        h.send(.assigned([p0]))
        h.receive(p0, 0, H.job("gen", steps: 5))
        guard let batch = h.dispatches.first else {
            Issue.record("no dispatch")
            return
        }
        h.send(.partial(batch.id, index: 0, H.partial("1")))
        guard let key = h.publishes.first?.key else {
            Issue.record("no publish")
            return
        }
        h.send(.published(key, .closed(.delivered)))
        h.send(.partial(batch.id, index: 0, H.partial("2")))
        #expect(h.publishes.isEmpty)
        h.send(.batchFinished(batch.id, results: [[H.answer("gen")]], started: h.now))
        #expect(h.publishes.isEmpty)
        h.send(.commitDue)
        #expect(h.commits == [H.offsets((p0, 1))])
        #expect(h.state.gauges.pendingAnswers == 0)
    }

    @Test("no head-of-line blocking: a short batch takes the side slot of the lane running a generation")
    func sideSlot() {
        var h = H(maxWait: .zero, lanes: 1)
        h.send(.assigned([p0]))
        h.receive(p0, 0, H.job("long", steps: 100))
        #expect(h.dispatches.map(\.slot) == [.init(lane: 0, side: false)])
        h.receive(p0, 1, H.job("long2", steps: 100))
        #expect(h.dispatches.isEmpty)
        h.receive(p0, 2, H.job("short"))
        #expect(h.dispatches.map(\.slot) == [.init(lane: 0, side: true)])
        #expect(h.dispatches.map(\.jobs) == [["short"]])
    }

    @Test("offsets going back: answers of the old offsets do not complete the new ones")
    func offsetReset() {
        var h = H(maxWait: .zero)
        h.send(.assigned([p0]))
        let old = h.answerUnacknowledged(p0, [5])
        h.receive(p0, 3)
        #expect(h.logs.map(\.level) == [.warning])
        h.send(.published(old[0], .open))
        h.send(.commitDue)
        #expect(h.commits.isEmpty)
        #expect(h.state.gauges.inFlight == 1)
    }
}
