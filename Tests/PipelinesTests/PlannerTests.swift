import Tensors
import Testing

@testable import Pipelines

/// Sequence `sequence` of job `job`.
private func own(_ job: Int, _ sequence: Int) -> SequenceOwner { SequenceOwner(job: job, sequence: sequence) }

/// `EncoderPassPlanner` alone: sequences of jobs in, encoder passes and where their outputs go out.
@Suite("Pipelines: encoder pass planner")
struct PlannerTests {
    static let shared = EncoderKey(group: 0, causal: false)
    static let other = EncoderKey(group: 1, causal: false)

    /// A job whose head reads `rows` of each of its sequences (default: token 0).
    static func job(_ sequences: [[Int]], on encoder: EncoderKey = shared, head: Int = 0, rows: [Int] = [0]) -> EncoderJob {
        EncoderJob(encoder: encoder, head: head, sequences: sequences.map { EncoderJob.Input(tokens: $0, headRows: rows) })
    }

    /// `count` token ids from `first` (equal arguments, equal sequences).
    static func tokens(_ first: Int, count: Int) -> [Int] { (0..<count).map { first + $0 } }

    static func plan(_ jobs: [EncoderJob], budget: Int = 100) -> EncoderSchedule {
        EncoderPassPlanner(maxTokensPerPass: budget).plan(jobs)
    }

    @Test func emptyInputHasNoPasses() {
        #expect(Self.plan([]) == EncoderSchedule(passes: [], requestedSequences: 0))
        #expect(Self.plan([Self.job([])]).passes.isEmpty, "a job without sequences asks for nothing")
        #expect(EncoderPassPlanner(maxTokensPerPass: 8).pack([]).isEmpty)
    }

    @Test func oneSequenceIsOnePass() {
        let schedule = Self.plan([Self.job([[5, 6, 7]], rows: [0, 2])])
        #expect(schedule.requestedSequences == 1)
        #expect(
            schedule.passes == [
                EncoderPass(
                    encoder: Self.shared, sequences: [PassSequence(tokens: [5, 6, 7], owners: [own(0, 0)])], offsets: [0, 3],
                    heads: [HeadApplication(head: 0, rows: [0, 2], targets: [RowTarget(owner: own(0, 0), count: 2)])])
            ])
        #expect(schedule.passes[0].tokenCount == 3)
    }

    @Test func groupsByEncoderInOrderOfFirstJob() {
        let causal = EncoderKey(group: 0, causal: true)
        let jobs = [
            Self.job([[1, 2]], on: Self.other), Self.job([[3]], on: Self.shared),
            Self.job([[1, 2]], on: causal), Self.job([[4]], on: Self.other),
        ]
        let passes = Self.plan(jobs).passes
        #expect(passes.map(\.encoder) == [Self.other, Self.shared, causal], "one pass per encoder, in order of first job")
        #expect(passes[0].sequences.map(\.tokens) == [[1, 2], [4]], "jobs 0 and 3 share encoder 1")
        #expect(
            passes[2].sequences.map(\.owners) == [[own(2, 0)]],
            "a causal model's sequences are not merged with the same tokens on the bidirectional encoder")
        // A job without sequences (one the engine rejected) keeps its encoder's place.
        let rejectedFirst = [Self.job([], on: Self.shared), Self.job([[1]], on: Self.other), Self.job([[2]], on: Self.shared)]
        #expect(Self.plan(rejectedFirst).passes.map(\.encoder) == [Self.shared, Self.other])
    }

    @Test func packsUpToTheTokenBudget() {
        let jobs = [Self.job([Self.tokens(0, count: 3), Self.tokens(10, count: 3), Self.tokens(20, count: 4), Self.tokens(30, count: 1)])]
        #expect(
            Self.plan(jobs, budget: 6).passes.map { $0.sequences.map(\.tokens.count) } == [[3, 3], [4, 1]],
            "a pass may reach the budget exactly")
        #expect(Self.plan(jobs, budget: 5).passes.map { $0.sequences.map(\.tokens.count) } == [[3], [3], [4, 1]])
        #expect(Self.plan(jobs, budget: 11).passes.map(\.tokenCount) == [11])
        #expect(Self.plan(jobs, budget: 100).passes.count == 1)
        let planner = EncoderPassPlanner(maxTokensPerPass: 6)
        #expect(planner.pack([3, 3, 4, 1]) == [0..<2, 2..<4])
        #expect(planner.pack([6, 6]) == [0..<1, 1..<2])
    }

    @Test func aSequenceOverTheBudgetIsAPassOfItsOwn() {
        let jobs = [Self.job([Self.tokens(0, count: 2), Self.tokens(10, count: 10), Self.tokens(30, count: 2)])]
        let passes = Self.plan(jobs, budget: 5).passes
        #expect(passes.map { $0.sequences.map(\.tokens.count) } == [[2], [10], [2]])
        #expect(passes[1].offsets == [0, 10])
        let alone = Self.plan([Self.job([Self.tokens(0, count: 50)])], budget: 8)
        #expect(alone.passes.map(\.tokenCount) == [50], "never split, never dropped")
        for budget in [0, -1] {
            #expect(
                EncoderPassPlanner(maxTokensPerPass: budget).pack([1, 2, 3]) == [0..<1, 1..<2, 2..<3],
                "budget \(budget): one sequence a pass")
        }
    }

    @Test func keepsJobAndSequenceOrder() throws {
        let jobs = [Self.job([[9, 9], [1]]), Self.job([[5]]), Self.job([[3, 3, 3], [7]])]
        let pass = try #require(Self.plan(jobs).passes.first)
        #expect(pass.sequences.map(\.tokens) == [[9, 9], [1], [5], [3, 3, 3], [7]])
        #expect(pass.sequences.map(\.owners) == [[own(0, 0)], [own(0, 1)], [own(1, 0)], [own(2, 0)], [own(2, 1)]])
        #expect(pass.offsets == [0, 2, 3, 4, 7, 8])
    }

    @Test func headsSharingAnEncoderShareThePass() throws {
        // The same text asked of a sequence classifier (token 0) and a token classifier (every token).
        let text = [1, 40, 41, 42]
        let jobs = [
            Self.job([text], head: 0), Self.job([text], head: 1, rows: [0, 1, 2, 3]),
            Self.job([[1, 50]], head: 0), Self.job([[1, 60]], head: 2, rows: []),
        ]
        let schedule = Self.plan(jobs)
        #expect(schedule.requestedSequences == 4)
        let pass = try #require(schedule.passes.first)
        #expect(schedule.passes.count == 1 && pass.sequences.count == 3, "the shared text is encoded once")
        #expect(pass.sequences[0].owners == [own(0, 0), own(1, 0)])
        #expect(
            pass.heads == [
                HeadApplication(
                    head: 0, rows: [0, 4],
                    targets: [RowTarget(owner: own(0, 0), count: 1), RowTarget(owner: own(2, 0), count: 1)]),
                HeadApplication(head: 1, rows: [0, 1, 2, 3], targets: [RowTarget(owner: own(1, 0), count: 4)]),
            ], "one application per head, in order of first use; rows offset into the pack; a head with no rows is not applied")
        #expect(pass.sequences[2].owners == [own(3, 0)], "hidden states only: still encoded and owned")
    }

    @Test func windowsAndChoicesOfOneRequest() {
        // Four windows of one request over a budget of two windows, then three choices of another,
        // two of them equal.
        let windows = (0..<4).map { Self.tokens(100 * $0, count: 8) }
        let choices = [[1, 7, 8], [1, 7, 9], [1, 7, 8]]
        let jobs = [Self.job(windows, head: 0, rows: [0, 7]), Self.job(choices, head: 1)]
        let passes = Self.plan(jobs, budget: 16).passes
        #expect(
            passes.map { $0.sequences.flatMap(\.owners) } == [
                [own(0, 0), own(0, 1)], [own(0, 2), own(0, 3)], [own(1, 0), own(1, 2), own(1, 1)],
            ])
        #expect(
            passes[1].heads == [
                HeadApplication(
                    head: 0, rows: [0, 7, 8, 15],
                    targets: [
                        RowTarget(owner: own(0, 2), count: 2),
                        RowTarget(owner: own(0, 3), count: 2),
                    ])
            ])
        let last = passes[2]
        #expect(last.sequences.map(\.tokens) == [[1, 7, 8], [1, 7, 9]], "equal choices are encoded once")
        #expect(last.heads.first?.rows == [0, 0, 3])
        #expect(last.heads.first?.targets.map(\.owner) == [own(1, 0), own(1, 2), own(1, 1)])
    }

    @Test func duplicatesMergeAcrossPassesBoundaries() {
        // The repeat of the first sequence comes after a pass boundary: it is still encoded once, in the first pass.
        let jobs = [Self.job([Self.tokens(0, count: 4), Self.tokens(10, count: 4)]), Self.job([Self.tokens(0, count: 4)])]
        let passes = Self.plan(jobs, budget: 4).passes
        #expect(passes.count == 2)
        #expect(passes[0].sequences.first?.owners == [own(0, 0), own(1, 0)])
    }

    /// Random workloads (a fixed generator): the schedule is the same on every call, every job
    /// sequence gets exactly one pass with its own tokens, passes keep the budget unless alone, and
    /// every head row lands in its owner's part of the pack.
    @Test func deterministicAndComplete() {
        var random = SplitMix64(seed: 13)
        func draw(_ n: Int) -> Int { Int(random.next() % UInt64(n)) }
        for _ in 0..<50 {
            let jobs = (0..<(1 + draw(8))).map { _ in
                EncoderJob(
                    encoder: EncoderKey(group: draw(2), causal: draw(4) == 0), head: draw(3),
                    sequences: (0..<draw(5)).map { _ in
                        let length = 1 + draw(12)
                        let tokens = (0..<length).map { _ in draw(3) }
                        return EncoderJob.Input(tokens: tokens, headRows: draw(3) == 0 ? [] : [draw(length)])
                    })
            }
            let budget = draw(30)
            let schedule = Self.plan(jobs, budget: budget)
            #expect(schedule == Self.plan(jobs, budget: budget))
            var seen: [SequenceOwner: Int] = [:]
            for pass in schedule.passes {
                #expect(pass.tokenCount <= budget || pass.sequences.count == 1)
                #expect(Set(pass.sequences.map(\.tokens)).count == pass.sequences.count, "no duplicates in a pass")
                for (u, sequence) in pass.sequences.enumerated() {
                    #expect(pass.offsets[u + 1] - pass.offsets[u] == sequence.tokens.count)
                    for owner in sequence.owners {
                        seen[owner, default: 0] += 1
                        #expect(jobs[owner.job].sequences[owner.sequence].tokens == sequence.tokens)
                        #expect(jobs[owner.job].encoder == pass.encoder)
                    }
                }
                var place: [SequenceOwner: Int] = [:]
                for (u, sequence) in pass.sequences.enumerated() { for owner in sequence.owners { place[owner] = u } }
                for application in pass.heads {
                    #expect(application.targets.reduce(0) { $0 + $1.count } == application.rows.count)
                    var next = 0
                    for target in application.targets {
                        #expect(jobs[target.owner.job].head == application.head)
                        let u = place[target.owner] ?? -1
                        let asked = jobs[target.owner.job].sequences[target.owner.sequence].headRows
                        let expected = asked.map { $0 + (u < 0 ? -1 : pass.offsets[u]) }
                        #expect(
                            Array(application.rows[next..<(next + target.count)]) == expected,
                            "rows of \(target.owner) in its own sequence")
                        next += target.count
                    }
                }
            }
            let all = jobs.indices.flatMap { j in jobs[j].sequences.indices.map { own(j, $0) } }
            #expect(seen.count == all.count && seen.values.allSatisfy { $0 == 1 }, "every sequence once")
            #expect(schedule.requestedSequences == all.count)
        }
    }
}
