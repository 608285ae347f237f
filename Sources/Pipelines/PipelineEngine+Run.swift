import NorBERT
import Tensors
import Wire

extension PipelineEngine {
    /// Decodes request lines and runs them as one batch; a line that does not decode gets an
    /// error response in its place. Responses come in line order (several for a `heads` request).
    public func respond(toLines lines: [[UInt8]], workspace: EncoderWorkspace) -> BatchResult {
        var requests: [PreparedRequest] = []
        var slots: [Int?] = []
        var failures: [Int: PipelineResponse] = [:]
        for (k, line) in lines.enumerated() {
            switch prepare(line) {
            case .success(let r):
                slots.append(requests.count)
                requests.append(r)
            case .failure(let f):
                slots.append(nil)
                failures[k] = f.response
            }
        }
        let ran = run(requests, workspace: workspace)
        var out: [[PipelineResponse]] = []
        for (k, slot) in slots.enumerated() {
            if let slot { out.append(ran.responses[slot]) } else if let f = failures[k] { out.append([f]) }
        }
        var partials: [[PipelineResponse]] = []
        for slot in slots { partials.append(slot.map { ran.partials[$0] } ?? []) }
        return BatchResult(responses: out, partials: partials, stats: ran.stats)
    }

    /// Runs a batch of requests: every encoder-task sequence of the batch is packed into shared
    /// encoder passes, text generation runs its requests step by step together.
    ///
    /// Streamed partial responses (`"stream": true`) go to `onPartial` the moment they are
    /// computed (a QA request's windows after the encoder pass that completes them, a generated
    /// token after its step), before the batch is done; without a handler they are collected in
    /// `BatchResult.partials`.
    ///
    /// `between` is called between steps — after each encoder pass and each generation step —
    /// on the caller's thread: a caller can record progress there, or run other short work (on
    /// another workspace) before the batch goes on, so a long generation holds no one up.
    public func run(
        _ requests: [PipelineRequest], workspace: EncoderWorkspace, onPartial: PartialHandler? = nil,
        between: (() -> Void)? = nil
    ) -> BatchResult {
        run(requests, prepared: nil, workspace: workspace, onPartial: onPartial, between: between)
    }

    /// `prepared`: the requests' heads when ``prepare(_:)-([UInt8])`` already resolved and priced them.
    func run(
        _ requests: [PipelineRequest], prepared: [PreparedRequest]?, workspace: EncoderWorkspace, onPartial: PartialHandler?,
        between: (() -> Void)?
    ) -> BatchResult {
        var responses: [[PipelineResponse?]] = []
        var plans: [PlanSlot] = []
        var generations: [GenerationJob] = []
        var stats = RunStats()
        for (ri, r) in requests.enumerated() {
            let pairs: [(LoadedHead, PipelineTask)]
            // Priced before any work: over a limit, the request gets one error response.
            do {
                if let prepared { pairs = try targets(of: prepared[ri]) } else { pairs = try priced(r).pairs }
            } catch {
                responses.append([PipelineResponse.failure(id: r.id, task: r.task, head: r.head, error)])
                continue
            }
            responses.append(Array(repeating: nil, count: pairs.count))
            for (k, (head, task)) in pairs.enumerated() {
                do {
                    if task == .textGeneration {
                        generations.append(try makeGeneration(r, head: head, slot: (ri, k)))
                    } else {
                        plans.append(
                            PlanSlot(
                                request: ri, index: k, head: head, task: task, plan: try makePlan(r, head: head, task: task, stats: &stats))
                        )
                    }
                } catch {
                    responses[ri][k] = PipelineResponse.failure(id: r.id, task: task, head: head.name, error)
                }
            }
        }
        var partials: [[PipelineResponse]] = requests.map { _ in [] }
        let emit: PartialHandler = { request, response in
            if let onPartial { onPartial(request, response) } else { partials[request].append(response) }
        }
        // Streamed plans report each newly encoded prefix of their sequences.
        let streamed = Set(plans.indices.filter { requests[plans[$0].request].stream })
        let outputs = runEncoderPlans(
            plans, workspace: workspace, stats: &stats, between: between,
            progress: streamed.isEmpty
                ? nil
                : PlanProgress(
                    plans: streamed,
                    report: { p, counts, out in
                        let slot = plans[p], r = requests[slot.request]
                        for k in counts where k < slot.plan.sequences.count {
                            guard let (result, usage) = slot.plan.partial(out, sequences: k) else { continue }
                            emit(
                                slot.request,
                                PipelineResponse(
                                    id: r.id, task: slot.task, head: slot.head.name, outcome: .success(result: result, usage: usage),
                                    isPartial: true))
                        }
                    }))
        for (p, slot) in plans.enumerated() {
            let r = requests[slot.request]
            let response: PipelineResponse
            switch outputs[p] {
            case .failure(let e):
                response = .failure(id: r.id, task: slot.task, head: slot.head.name, e)
            case .success(let out):
                do {
                    let (result, usage) = try slot.plan.finish(out)
                    response = PipelineResponse(
                        id: r.id, task: slot.task, head: slot.head.name, outcome: .success(result: result, usage: usage))
                } catch {
                    response = .failure(id: r.id, task: slot.task, head: slot.head.name, error)
                }
            }
            responses[slot.request][slot.index] = response
        }
        for (job, response) in runGenerations(generations, requests: requests, workspace: workspace, emit: emit, between: between) {
            responses[job.slot.request][job.slot.index] = response
        }
        let final = responses.enumerated().map { ri, list in
            list.map { $0 ?? .failure(id: requests[ri].id, PipelineError(.internalError, "no response was produced")) }
        }
        return BatchResult(responses: final, partials: partials, stats: stats)
    }

    func makePlan(_ r: PipelineRequest, head: LoadedHead, task: PipelineTask, stats: inout RunStats) throws(PipelineError)
        -> any EncoderPlan
    {
        switch task {
        case .textClassification: return try TextClassificationPlan(r, head: head, engine: self, stats: &stats)
        case .tokenClassification: return try TokenClassificationPlan(r, head: head, engine: self, stats: &stats)
        case .questionAnswering: return try QuestionAnsweringPlan(r, head: head, engine: self, stats: &stats)
        case .fillMask: return try FillMaskPlan(r, head: head, engine: self)
        case .multipleChoice: return try MultipleChoicePlan(r, head: head, engine: self, stats: &stats)
        case .featureExtraction: return try FeatureExtractionPlan(r, head: head, engine: self)
        case .textGeneration: throw PipelineError(.internalError, "text generation has no encoder plan")
        }
    }

    /// Runs every plan's sequences in the passes `EncoderPassPlanner` makes of them (grouped by
    /// encoder, identical sequences merged, at most `maxTokensPerPass` tokens a pass, each head
    /// applied once per pass), and hands each plan the outputs of its sequences.
    ///
    /// `between` is called after each pass that ran; `progress`, after each pass, with the streamed
    /// plans whose leading run of encoded sequences grew.
    func runEncoderPlans(
        _ plans: [PlanSlot], workspace: EncoderWorkspace, stats: inout RunStats, between: (() -> Void)? = nil,
        progress: PlanProgress? = nil
    ) -> [Result<PlanOutputs, PipelineError>] {
        var outputs = PlanOutputsSoFar(plans)
        let jobs = EncoderJobs(plans, outputs: &outputs)
        let schedule = EncoderPassPlanner(maxTokensPerPass: configuration.maxTokensPerPass).plan(jobs.jobs)
        stats.requestedSequences += schedule.requestedSequences
        var tracker = progress.map { ProgressTracker($0, plans: plans) }
        for pass in schedule.passes {
            guard let model = jobs.encoders[pass.encoder] else { continue }
            let out: EncoderOutput
            do {
                out = try model.encoder.forward(PackedBatch(pass.sequences.map(\.tokens)), causal: model.isCausal, workspace: workspace)
            } catch {
                outputs.fail(pass.sequences.flatMap(\.owners), PipelineError(.internalError, "encoder failed: \(error)"))
                continue
            }
            stats.encoderPasses += 1
            stats.encodedSequences += pass.sequences.count
            stats.encodedTokens += pass.tokenCount
            outputs.takeHidden(out.lastHiddenState, of: pass, width: model.config.hiddenSize)
            for application in pass.heads {
                guard let head = jobs.heads[application.head], let classifier = head.model.head else {
                    let name = jobs.heads[application.head]?.name ?? "?"
                    outputs.fail(application.targets.map(\.owner), PipelineError(.internalError, "head '\(name)' has no classifier"))
                    continue
                }
                let applied = classifier.apply(out.lastHiddenState, rows: application.rows)
                outputs.take(applied, width: classifier.outputs, for: application.targets)
                stats.headApplications += 1
            }
            EncoderPassRecord.observer?(EncoderPassRecord(pass, heads: jobs.heads))
            tracker?.passed(pass, outputs: outputs)
            between?()
        }
        return outputs.results
    }
}

/// Streamed plans' progress through the passes: after each pass, `report` gets each of `plans`
/// whose leading run of encoded sequences grew, the counts it grew through (old + 1 ... new) and
/// the outputs of those leading sequences.
struct PlanProgress {
    var plans: Set<Int>
    var report: (_ plan: Int, _ counts: ClosedRange<Int>, _ outputs: PlanOutputs) -> Void
}

/// The planner's jobs for the plans (job `p` is plan `p`), with the encoder and head behind each key.
private struct EncoderJobs {
    var jobs: [EncoderJob] = []
    /// The model whose encoder runs each key's passes: that of its first plan.
    var encoders: [EncoderKey: NorBERTModel] = [:]
    /// Heads by the numbers the jobs use (in order of first use).
    var heads: [Int: LoadedHead] = [:]

    /// A plan with a sequence the encoder would reject fails its own request (not the whole pass)
    /// and asks for nothing; it keeps its place in the order of encoders.
    init(_ plans: [PlanSlot], outputs: inout PlanOutputsSoFar) {
        var numbers: [ObjectIdentifier: Int] = [:]
        for (p, slot) in plans.enumerated() {
            let key = EncoderKey(group: slot.head.encoderGroup, causal: slot.head.model.isCausal)
            let model = encoders[key] ?? slot.head.model
            encoders[key] = model
            let head = numbers[ObjectIdentifier(slot.head)] ?? numbers.count
            numbers[ObjectIdentifier(slot.head)] = head
            heads[head] = slot.head
            let sequences = slot.plan.sequences
            var inputs: [EncoderJob.Input] = []
            if let error = Self.rejection(sequences, vocabulary: model.config.vocabSize) {
                outputs.failure[p] = error
            } else {
                inputs = sequences.indices.map { EncoderJob.Input(tokens: sequences[$0], headRows: slot.plan.headRows($0)) }
            }
            jobs.append(EncoderJob(encoder: key, head: head, sequences: inputs))
        }
    }

    static func rejection(_ sequences: [[Int]], vocabulary: Int) -> PipelineError? {
        guard let bad = sequences.first(where: { $0.isEmpty || $0.contains { $0 < 0 || $0 >= vocabulary } }) else { return nil }
        return bad.isEmpty
            ? PipelineError(.emptyInput, "the input gives no tokens")
            : PipelineError(.invalidInput, "the tokenizer gave a token id outside the model's vocabulary of \(vocabulary)")
    }
}

/// What the passes have delivered to each plan so far: per sequence, head outputs and hidden
/// states (when the plan needs them), or the plan's failure (the last one wins).
private struct PlanOutputsSoFar {
    var logits: [[Tensor?]]
    var hidden: [[Tensor?]]
    var failure: [PipelineError?]
    let needsHidden: [Bool]

    init(_ plans: [PlanSlot]) {
        logits = plans.map { Array(repeating: nil, count: $0.plan.sequences.count) }
        hidden = logits
        failure = Array(repeating: nil, count: plans.count)
        needsHidden = plans.map(\.plan.needsHidden)
    }

    mutating func fail(_ owners: [SequenceOwner], _ error: PipelineError) {
        for owner in owners { failure[owner.job] = error }
    }

    /// Each owner's rows of the pass's hidden states ([total tokens, width]), for plans that need them.
    mutating func takeHidden(_ states: Tensor, of pass: EncoderPass, width: Int) {
        for (u, sequence) in pass.sequences.enumerated() {
            let from = pass.offsets[u], to = pass.offsets[u + 1]
            for owner in sequence.owners where needsHidden[owner.job] {
                let rows = Array(states.storage[(from * width)..<(to * width)])
                hidden[owner.job][owner.sequence] = Tensor(shape: [to - from, width], storage: rows)
            }
        }
    }

    /// A head application's output ([rows, width]) cut into its targets' rows.
    mutating func take(_ applied: Tensor, width: Int, for targets: [RowTarget]) {
        var row = 0
        for target in targets {
            let slice = Array(applied.storage[(row * width)..<((row + target.count) * width)])
            logits[target.owner.job][target.owner.sequence] = Tensor(shape: [target.count, width], storage: slice)
            row += target.count
        }
    }

    /// Plan `p`'s outputs of its first `count` sequences (all by default); a sequence without any is empty.
    func outputs(_ p: Int, count: Int? = nil) -> PlanOutputs {
        let empty = Tensor(shape: [0, 0], storage: [])
        let n = count ?? logits[p].count
        return PlanOutputs(logits: logits[p].prefix(n).map { $0 ?? empty }, hidden: hidden[p].prefix(n).map { $0 ?? empty })
    }

    var results: [Result<PlanOutputs, PipelineError>] {
        failure.indices.map { p in failure[p].map { .failure($0) } ?? .success(outputs(p)) }
    }
}

/// Which sequences each streamed plan has got, and how many of them lead without a gap.
private struct ProgressTracker {
    let progress: PlanProgress
    var encoded: [[Bool]]
    var ready: [Int]

    init(_ progress: PlanProgress, plans: [PlanSlot]) {
        self.progress = progress
        encoded = plans.map { Array(repeating: false, count: $0.plan.sequences.count) }
        ready = plans.map { _ in 0 }
    }

    /// After `pass` ran: reports the streamed plans it served (that have not failed) whose leading run grew.
    mutating func passed(_ pass: EncoderPass, outputs: PlanOutputsSoFar) {
        var touched: [Int] = []
        for owner in pass.sequences.flatMap(\.owners) {
            encoded[owner.job][owner.sequence] = true
            if progress.plans.contains(owner.job) && !touched.contains(owner.job) { touched.append(owner.job) }
        }
        for p in touched where outputs.failure[p] == nil {
            var count = ready[p]
            while count < encoded[p].count && encoded[p][count] { count += 1 }
            guard count > ready[p] else { continue }
            let grown = (ready[p] + 1)...count
            ready[p] = count
            progress.report(p, grown, outputs.outputs(p, count: count))
        }
    }
}

/// One (request, head) with an encoder plan.
struct PlanSlot {
    var request: Int
    var index: Int
    var head: LoadedHead
    var task: PipelineTask
    var plan: any EncoderPlan
}

/// What one encoder pass ran, for tests: `EncoderPassRecord.$observer.withValue(record) { engine.run(…) }`
/// sees every pass of the runs inside, in order, without changing `run`'s signature.
struct EncoderPassRecord: Sendable, Equatable {
    struct HeadRows: Sendable, Equatable {
        var head: String
        var rows: [Int]
    }
    var encoderGroup: Int
    var causal: Bool
    /// The distinct token sequences packed into the pass, in packing order.
    var sequences: [[Int]]
    /// Each head applied after the pass, in order, with the packed rows it was applied to.
    var heads: [HeadRows]

    @TaskLocal static var observer: (@Sendable (EncoderPassRecord) -> Void)?

    fileprivate init(_ pass: EncoderPass, heads: [Int: LoadedHead]) {
        encoderGroup = pass.encoder.group
        causal = pass.encoder.causal
        sequences = pass.sequences.map(\.tokens)
        self.heads = pass.heads.map { HeadRows(head: heads[$0.head]?.name ?? "?", rows: $0.rows) }
    }
}
