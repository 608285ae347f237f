/// The engine's scheduler, without models or tensors: which token sequences go into which encoder
/// pass, and where each pass's outputs go. `PipelineEngine.runEncoderPlans` runs the passes it
/// returns; the unit tests (`PlannerTests`) check it alone.
///
/// The rules:
/// - Jobs are grouped by encoder (`EncoderKey`); encoders run one after the other, in the order of
///   their first job (a job without sequences, one the engine rejected, still takes its place).
/// - On one encoder, identical token sequences are encoded once, wherever they come from (the same
///   text for two heads, two requests, or two equal choices); the first occurrence fixes the place.
/// - The distinct sequences, in job order and then sequence order, are cut greedily into passes of
///   at most `maxTokensPerPass` tokens. A pass always takes at least one sequence, so a sequence
///   longer than the budget is a pass of its own. Sequences are packed back to back: a pass's
///   length is the sum of its sequences' lengths, with no padding.
/// - After a pass each head is applied once, to all the rows its owners asked for, heads in the
///   order of first use within the pass.
struct EncoderPassPlanner: Sendable, Equatable {
    /// Token budget of one pass (`EngineConfiguration.maxTokensPerPass`).
    var maxTokensPerPass: Int

    func plan(_ jobs: [EncoderJob]) -> EncoderSchedule {
        var encoders: [EncoderKey] = []
        var members: [EncoderKey: [Int]] = [:]
        for (j, job) in jobs.enumerated() {
            if members[job.encoder] == nil { encoders.append(job.encoder) }
            members[job.encoder, default: []].append(j)
        }
        var schedule = EncoderSchedule(passes: [], requestedSequences: jobs.reduce(0) { $0 + $1.sequences.count })
        for encoder in encoders {
            let distinct = Self.distinctSequences(of: members[encoder] ?? [], in: jobs)
            for range in pack(distinct.map(\.tokens.count)) {
                schedule.passes.append(Self.pass(encoder: encoder, Array(distinct[range]), jobs: jobs))
            }
        }
        return schedule
    }

    /// The sequences of `members` with duplicates merged, each with every job sequence that asked for it.
    static func distinctSequences(of members: [Int], in jobs: [EncoderJob]) -> [PassSequence] {
        var index: [[Int]: Int] = [:]
        var distinct: [PassSequence] = []
        for j in members {
            for (s, input) in jobs[j].sequences.enumerated() {
                let owner = SequenceOwner(job: j, sequence: s)
                if let u = index[input.tokens] {
                    distinct[u].owners.append(owner)
                } else {
                    index[input.tokens] = distinct.count
                    distinct.append(PassSequence(tokens: input.tokens, owners: [owner]))
                }
            }
        }
        return distinct
    }

    /// Consecutive runs of `lengths` of at most `maxTokensPerPass` in total (at least one each).
    func pack(_ lengths: [Int]) -> [Range<Int>] {
        var passes: [Range<Int>] = []
        var start = 0
        while start < lengths.count {
            var end = start + 1, tokens = lengths[start]
            while end < lengths.count && tokens + lengths[end] <= maxTokensPerPass {
                tokens += lengths[end]
                end += 1
            }
            passes.append(start..<end)
            start = end
        }
        return passes
    }

    /// One pass over `sequences`: their offsets and the head applications their owners need.
    static func pass(encoder: EncoderKey, _ sequences: [PassSequence], jobs: [EncoderJob]) -> EncoderPass {
        var offsets = [0]
        for s in sequences { offsets.append(offsets[offsets.count - 1] + s.tokens.count) }
        var heads: [HeadApplication] = []
        var slot: [Int: Int] = [:]
        for (u, sequence) in sequences.enumerated() {
            for owner in sequence.owners {
                let job = jobs[owner.job]
                let rows = job.sequences[owner.sequence].headRows
                guard !rows.isEmpty else { continue }
                let h: Int
                if let known = slot[job.head] {
                    h = known
                } else {
                    h = heads.count
                    slot[job.head] = h
                    heads.append(HeadApplication(head: job.head, rows: [], targets: []))
                }
                heads[h].rows.append(contentsOf: rows.map { offsets[u] + $0 })
                heads[h].targets.append(RowTarget(owner: owner, count: rows.count))
            }
        }
        return EncoderPass(encoder: encoder, sequences: sequences, offsets: offsets, heads: heads)
    }
}

/// Which encoder runs a sequence: heads with one `encoderGroup` share the encoder's weights, and a
/// causal model runs them with a causal mask, so its sequences go into passes of their own.
struct EncoderKey: Hashable, Sendable {
    var group: Int
    var causal: Bool
}

/// The sequences one (request, head) plan needs encoded, and what its head reads of each.
struct EncoderJob: Equatable, Sendable {
    struct Input: Equatable, Sendable {
        /// Token ids, special tokens included.
        var tokens: [Int]
        /// Positions of the sequence the head is applied to (none: the plan reads hidden states only).
        var headRows: [Int]
    }
    var encoder: EncoderKey
    /// Which head reads the outputs (any number that tells heads apart; one application per pass).
    var head: Int
    /// Windows, choices, or the one text, in the plan's order.
    var sequences: [Input]
}

/// Sequence `sequence` of job `job`: where an encoded sequence's outputs go.
struct SequenceOwner: Hashable, Sendable {
    var job: Int
    var sequence: Int
}

/// A distinct token sequence of a pass and every job sequence that gets its outputs, in job order.
struct PassSequence: Equatable, Sendable {
    var tokens: [Int]
    var owners: [SequenceOwner]
}

/// Rows of a head application that belong to one owner: the next `count` rows, in order.
struct RowTarget: Equatable, Sendable {
    var owner: SequenceOwner
    var count: Int
}

/// One head applied once after a pass, to the rows of every owner that uses it.
struct HeadApplication: Equatable, Sendable {
    var head: Int
    /// Rows of the packed pass (`EncoderPass.offsets` added), all owners' back to back.
    var rows: [Int]
    /// Who gets the outputs of `rows`, in order: the first target the first `count` rows, and so on.
    var targets: [RowTarget]
}

/// One encoder run: sequences packed back to back, then the heads.
struct EncoderPass: Equatable, Sendable {
    var encoder: EncoderKey
    var sequences: [PassSequence]
    /// Row of the packed pass where each sequence starts, then the total (`sequences.count + 1` values).
    var offsets: [Int]
    var heads: [HeadApplication]
    /// Tokens of the pass.
    var tokenCount: Int { offsets.last ?? 0 }
}

/// The passes of one batch, in the order they run.
struct EncoderSchedule: Equatable, Sendable {
    var passes: [EncoderPass]
    /// Sequences the jobs asked for, before identical ones were merged (`RunStats.requestedSequences`).
    var requestedSequences: Int
}
