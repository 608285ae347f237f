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
    public func run(_ requests: [PipelineRequest], workspace: EncoderWorkspace, onPartial: PartialHandler? = nil,
                    between: (() -> Void)? = nil) -> BatchResult {
        run(requests, prepared: nil, workspace: workspace, onPartial: onPartial, between: between)
    }

    /// `prepared`: the requests' heads when ``prepare(_:)-([UInt8])`` already resolved and priced them.
    func run(_ requests: [PipelineRequest], prepared: [PreparedRequest]?, workspace: EncoderWorkspace, onPartial: PartialHandler?,
             between: (() -> Void)?) -> BatchResult {
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
                        plans.append(PlanSlot(request: ri, index: k, head: head, task: task, plan: try makePlan(r, head: head, task: task, stats: &stats)))
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
        let outputs = runEncoderPlans(plans, workspace: workspace, stats: &stats, between: between, progress: streamed.isEmpty ? nil : (streamed, { p, counts, out in
            let slot = plans[p], r = requests[slot.request]
            for k in counts where k < slot.plan.sequences.count {
                guard let (result, usage) = slot.plan.partial(out, sequences: k) else { continue }
                emit(slot.request, PipelineResponse(id: r.id, task: slot.task, head: slot.head.name, outcome: .success(result: result, usage: usage), isPartial: true))
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
                    response = PipelineResponse(id: r.id, task: slot.task, head: slot.head.name, outcome: .success(result: result, usage: usage))
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

    func makePlan(_ r: PipelineRequest, head: LoadedHead, task: PipelineTask, stats: inout RunStats) throws(PipelineError) -> any EncoderPlan {
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

    /// Runs every plan's sequences: grouped by encoder, identical sequences merged, packed into
    /// passes of at most `maxTokensPerPass` tokens, each head applied once per pass.
    ///
    /// `progress`: after each pass, for each of the given plans whose leading run of encoded
    /// sequences grew, the plan's index, the counts it grew through (old + 1 ... new) and the
    /// outputs of those leading sequences.
    func runEncoderPlans(_ plans: [PlanSlot], workspace: EncoderWorkspace, stats: inout RunStats, between: (() -> Void)? = nil,
                         progress: (plans: Set<Int>, report: (Int, ClosedRange<Int>, PlanOutputs) -> Void)? = nil) -> [Result<PlanOutputs, PipelineError>] {
        var logits: [[Tensor?]] = plans.map { Array(repeating: nil, count: $0.plan.sequences.count) }
        var hidden: [[Tensor?]] = logits
        var failed: [PipelineError?] = Array(repeating: nil, count: plans.count)
        // Which sequences each plan has got (kept only when progress is reported).
        var encoded: [[Bool]] = progress == nil ? [] : plans.map { Array(repeating: false, count: $0.plan.sequences.count) }
        var ready = progress == nil ? [] : plans.map { _ in 0 }
        var groups: [Int: [Int]] = [:]
        var groupOrder: [Int] = []
        for (p, slot) in plans.enumerated() {
            let g = slot.head.encoderGroup * 2 + (slot.head.model.isCausal ? 1 : 0)
            if groups[g] == nil { groupOrder.append(g) }
            groups[g, default: []].append(p)
        }
        for g in groupOrder {
            let members = groups[g] ?? []
            guard let encoderModel = members.first.map({ plans[$0].head.model }) else { continue }
            // Distinct sequences of the group and who asked for them.
            var index: [[Int]: Int] = [:]
            var unique: [[Int]] = []
            var owners: [[(plan: Int, seq: Int)]] = []
            let vocab = encoderModel.config.vocabSize
            for p in members {
                // A sequence the encoder would reject fails its own request, not the whole pass.
                if let bad = plans[p].plan.sequences.first(where: { $0.isEmpty || $0.contains { $0 < 0 || $0 >= vocab } }) {
                    failed[p] = bad.isEmpty ? PipelineError(.emptyInput, "the input gives no tokens")
                        : PipelineError(.invalidInput, "the tokenizer gave a token id outside the model's vocabulary of \(vocab)")
                    continue
                }
                for (s, ids) in plans[p].plan.sequences.enumerated() {
                    stats.requestedSequences += 1
                    if let u = index[ids] { owners[u].append((p, s)); continue }
                    index[ids] = unique.count
                    unique.append(ids)
                    owners.append([(p, s)])
                }
            }
            var start = 0
            while start < unique.count {
                var end = start, tokens = 0
                while end < unique.count && (end == start || tokens + unique[end].count <= configuration.maxTokensPerPass) {
                    tokens += unique[end].count
                    end += 1
                }
                let batch = PackedBatch(Array(unique[start..<end]))
                let out: EncoderOutput
                do {
                    out = try encoderModel.encoder.forward(batch, causal: encoderModel.isCausal, workspace: workspace)
                } catch {
                    let e = PipelineError(.internalError, "encoder failed: \(error)")
                    for u in start..<end { for o in owners[u] { failed[o.plan] = e } }
                    start = end
                    continue
                }
                stats.encoderPasses += 1
                stats.encodedSequences += end - start
                stats.encodedTokens += tokens
                let h = encoderModel.config.hiddenSize
                // Per head: all rows its plans need from this pass, applied at once.
                var perHead: [ObjectIdentifier: (head: LoadedHead, rows: [Int], targets: [(plan: Int, seq: Int, count: Int)])] = [:]
                var headOrder: [ObjectIdentifier] = []
                for u in start..<end {
                    let base = batch.offsets[u - start]
                    let length = batch.length(u - start)
                    for o in owners[u] {
                        let slot = plans[o.plan]
                        if progress != nil { encoded[o.plan][o.seq] = true }
                        if slot.plan.needsHidden {
                            let from = base * h, to = (base + length) * h
                            hidden[o.plan][o.seq] = Tensor(shape: [length, h], storage: Array(out.lastHiddenState.storage[from..<to]))
                        }
                        let rows = slot.plan.headRows(o.seq)
                        guard !rows.isEmpty else { continue }
                        let key = ObjectIdentifier(slot.head)
                        if perHead[key] == nil { headOrder.append(key); perHead[key] = (slot.head, [], []) }
                        perHead[key]?.rows.append(contentsOf: rows.map { base + $0 })
                        perHead[key]?.targets.append((o.plan, o.seq, rows.count))
                    }
                }
                for key in headOrder {
                    guard let entry = perHead[key] else { continue }
                    guard let classifier = entry.head.model.head else {
                        let e = PipelineError(.internalError, "head '\(entry.head.name)' has no classifier")
                        for t in entry.targets { failed[t.plan] = e }
                        continue
                    }
                    let applied = classifier.apply(out.lastHiddenState, rows: entry.rows)
                    stats.headApplications += 1
                    let w = classifier.outputs
                    var row = 0
                    for t in entry.targets {
                        let slice = Array(applied.storage[(row * w)..<((row + t.count) * w)])
                        logits[t.plan][t.seq] = Tensor(shape: [t.count, w], storage: slice)
                        row += t.count
                    }
                }
                if let progress {
                    reportProgress(progress, range: start..<end, owners: owners, encoded: encoded, ready: &ready, failed: failed, logits: logits, hidden: hidden)
                }
                start = end
                between?()
            }
        }
        return plans.indices.map { p in
            if let e = failed[p] { return .failure(e) }
            let l = logits[p].map { $0 ?? Tensor(shape: [0, 0], storage: []) }
            let hs = hidden[p].map { $0 ?? Tensor(shape: [0, 0], storage: []) }
            return .success(PlanOutputs(logits: l, hidden: hs))
        }
    }
}

extension PipelineEngine {
    /// After a pass over `unique[range]`: reports the plans (of those asked for) whose leading run
    /// of encoded sequences grew.
    fileprivate func reportProgress(_ progress: (plans: Set<Int>, report: (Int, ClosedRange<Int>, PlanOutputs) -> Void), range: Range<Int>,
                                    owners: [[(plan: Int, seq: Int)]], encoded: [[Bool]], ready: inout [Int], failed: [PipelineError?],
                                    logits: [[Tensor?]], hidden: [[Tensor?]]) {
        var touched: [Int] = []
        for u in range { for o in owners[u] where progress.plans.contains(o.plan) && !touched.contains(o.plan) { touched.append(o.plan) } }
        for p in touched where failed[p] == nil {
            var count = ready[p]
            while count < encoded[p].count && encoded[p][count] { count += 1 }
            guard count > ready[p] else { continue }
            let grown = (ready[p] + 1)...count
            ready[p] = count
            let empty = Tensor(shape: [0, 0], storage: [])
            progress.report(p, grown, PlanOutputs(logits: logits[p].prefix(count).map { $0 ?? empty }, hidden: hidden[p].prefix(count).map { $0 ?? empty }))
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
