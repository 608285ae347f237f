import NorBERT
import Tensors
import Wire

/// text-generation with the causal (or masked) LM and its key/value cache. Requests of one batch
/// on the same model advance together: one packed encoder step per new token.
struct GenerationJob {
    var slot: (request: Int, index: Int)
    var head: LoadedHead
    var prompt: [Int]
    var promptText: String
    var maxNewTokens: Int
    var sampler: Sampler
    var stopAtNewline: Bool
    var returnFullText: Bool
    var eos: Int?
}

extension PipelineEngine {
    func makeGeneration(_ r: PipelineRequest, head: LoadedHead, slot: (Int, Int)) throws(PipelineError) -> GenerationJob {
        let text = try r.textInput(for: .textGeneration)
        let o = r.options
        let e = try encode(text, limit: maxInputTokens, what: "the prompt")
        try checkLength(e.count, what: "the prompt")
        guard !e.ids.isEmpty else { throw PipelineError(.emptyInput, "the prompt gives no tokens") }
        guard e.ids.allSatisfy({ $0 >= 0 && $0 < head.model.config.vocabSize }) else {
            throw PipelineError(.invalidInput, "the tokenizer gave a token id outside the model's vocabulary")
        }
        let maxNew = try TextGenerationOptions.maxNewTokens(o, optionBounds)
        try enforce(taskCost(r, head: head, task: .textGeneration, measure: .exact, known: e, planning: true))
        if e.count + maxNew > maxInputTokens {
            throw PipelineError(
                .inputTooLong,
                "the prompt (\(e.count) tokens) plus max_new_tokens (\(maxNew)) is more than the maximum of \(maxInputTokens)")
        }
        let options = try TextGenerationOptions(o, optionBounds)
        var seed = options.seed ?? UInt64.random(in: 0...UInt64.max)
        if seed == 0 { seed = 0x5EED }
        let sampler = Sampler(
            doSample: options.doSample, temperature: options.temperature, topK: options.topK, topP: options.topP,
            rng: SplitMix64(seed: seed))
        return GenerationJob(
            slot: slot, head: head, prompt: e.ids, promptText: text, maxNewTokens: maxNew, sampler: sampler,
            stopAtNewline: options.stopAtNewline,
            returnFullText: options.returnFullText,
            eos: tokenizer.specialTokens.eosId ?? head.model.config.eosTokenId)
    }

    /// Text of the new tokens as transformers gets it: decode(prompt + new) minus decode(prompt).
    func newText(_ job: GenerationJob, _ generated: [Int]) -> String {
        let full = tokenizer.decode(job.prompt + generated).unicodeScalars
        let promptCount = tokenizer.decode(job.prompt).unicodeScalars.count
        var text = String(String.UnicodeScalarView(full.dropFirst(promptCount)))
        if job.stopAtNewline, let nl = text.firstIndex(of: "\n") { text = String(text[..<nl]) }
        return text
    }

    /// Runs the generation jobs; the token chunks of requests with `stream` go to `emit` (request
    /// index, partial response) as soon as each token is chosen.
    func runGenerations(
        _ jobs: [GenerationJob], requests: [PipelineRequest], workspace: EncoderWorkspace,
        emit: PartialHandler, between: (() -> Void)? = nil
    ) -> [(GenerationJob, PipelineResponse)] {
        var order: [ObjectIdentifier] = []
        var byModel: [ObjectIdentifier: [Int]] = [:]
        for (k, job) in jobs.enumerated() {
            let key = ObjectIdentifier(job.head.model)
            if byModel[key] == nil { order.append(key) }
            byModel[key, default: []].append(k)
        }
        var results: [PipelineResponse?] = Array(repeating: nil, count: jobs.count)
        var state = jobs
        for key in order {
            let members = byModel[key] ?? []
            guard let model = members.first.map({ jobs[$0].head.model }), let lm = model.head else { continue }
            let caches = members.map { _ in KVCache(config: model.config) }
            var generated: [[Int]] = members.map { _ in [] }
            var emitted: [Int] = members.map { _ in 0 }
            var done = members.map { jobs[$0].maxNewTokens == 0 }
            var failure: PipelineError? = nil
            while failure == nil, done.contains(false) {
                let active = members.indices.filter { !done[$0] }
                let feeds = active.map { generated[$0].last.map { [$0] } ?? jobs[members[$0]].prompt }
                let batch = PackedBatch(feeds)
                do {
                    let out = try model.encoder.forward(batch, causal: true, caches: active.map { caches[$0] }, workspace: workspace)
                    let rows = (0..<batch.count).map { batch.offsets[$0] + batch.length($0) - 1 }
                    let logits = lm.apply(out.lastHiddenState, rows: rows)
                    let v = lm.outputs
                    for (n, m) in active.enumerated() {
                        let j = members[m]
                        let token = state[j].sampler.next(Array(logits.storage[(n * v)..<((n + 1) * v)]))
                        generated[m].append(token)
                        let isNewline = state[j].stopAtNewline && tokenizer.decode([token], skipSpecialTokens: false).contains("\n")
                        if token == state[j].eos || isNewline || generated[m].count >= state[j].maxNewTokens { done[m] = true }
                        let r = requests[state[j].slot.request]
                        if r.stream {
                            var text = newText(state[j], generated[m])
                            if !done[m] { while text.unicodeScalars.last == "\u{FFFD}" { text.unicodeScalars.removeLast() } }
                            let scalars = text.unicodeScalars
                            let delta = scalars.count > emitted[m] ? String(String.UnicodeScalarView(scalars.dropFirst(emitted[m]))) : ""
                            emitted[m] = max(emitted[m], scalars.count)
                            let chunk: JSONValue = .object([("token", .int(token)), ("text", .string(delta))])
                            let usage = Usage(inputTokens: state[j].prompt.count, generatedTokens: generated[m].count)
                            emit(
                                state[j].slot.request,
                                PipelineResponse(
                                    id: r.id, task: .textGeneration, head: state[j].head.name,
                                    outcome: .success(result: chunk, usage: usage), isPartial: true))
                        }
                    }
                } catch {
                    failure = PipelineError(.internalError, "generation failed: \(error)")
                }
                between?()
            }
            for (m, j) in members.enumerated() {
                let job = state[j]
                let r = requests[job.slot.request]
                if let failure {
                    results[j] = .failure(id: r.id, task: .textGeneration, head: job.head.name, failure)
                    continue
                }
                let text = newText(job, generated[m])
                let result: JSONValue = .array([.object([("generated_text", .string(job.returnFullText ? job.promptText + text : text))])])
                results[j] = PipelineResponse(
                    id: r.id, task: .textGeneration, head: job.head.name,
                    outcome: .success(result: result, usage: Usage(inputTokens: job.prompt.count, generatedTokens: generated[m].count)))
            }
        }
        return jobs.indices.map { j in
            (
                jobs[j],
                results[j]
                    ?? .failure(
                        id: requests[jobs[j].slot.request].id, task: .textGeneration, head: jobs[j].head.name,
                        PipelineError(.internalError, "no result"))
            )
        }
    }
}
