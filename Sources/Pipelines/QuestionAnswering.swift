import NorBERT
import Tokenizers
import Wire

/// question-answering: (question, context) encoded as a pair, the context split into windows of
/// `max_seq_len` tokens that share `doc_stride` tokens; per window the start/end probabilities
/// over the context and both `<s>` tokens, spans that start and end on context tokens (the
/// corrected rule), answers merged across windows ignoring case, the null answer with
/// `handle_impossible_answer`. Rules: Tests/Fixtures/pipelines/README.md.
struct QuestionAnsweringPlan: EncoderPlan {
    struct Window {
        var ids: [Int]
        var sequenceIds: [Int?]
        var wordIds: [Int?]
        var offsets: [Offset]
    }

    let windows: [Window]
    let context: [Unicode.Scalar]
    let topK: Int
    let maxAnswerLen: Int
    let handleImpossible: Bool
    let alignToWords: Bool
    let clsId: Int?

    var sequences: [[Int]] { windows.map(\.ids) }
    var needsHidden: Bool { false }
    func headRows(_ i: Int) -> [Int] { Array(0..<windows[i].ids.count) }

    init(_ r: PipelineRequest, head: LoadedHead, engine: PipelineEngine, stats: inout RunStats) throws(PipelineError) {
        let task = PipelineTask.questionAnswering
        guard case .questionContext(let question, let contextText) = try r.input(for: task) else {
            throw PipelineError(.internalError, "\(task.rawValue) reads no question and context")
        }
        let options = try QuestionAnsweringOptions(r.options, engine.optionBounds)
        topK = options.topK
        maxAnswerLen = options.maxAnswerLen
        let (maxSeqLen, docStride) = (options.maxSeqLen, options.docStride)
        handleImpossible = options.handleImpossibleAnswer
        alignToWords = options.alignToWords
        clsId = engine.tokenizer.specialTokens.clsId ?? head.model.config.bosTokenId

        // The whole pair first: the question's length, the total length and the windows are
        // checked (and priced) before any window is built.
        let whole: Encoding
        do {
            whole = try engine.tokenizer.encode(
                question, pair: contextText, addSpecialTokens: true, truncation: nil, padding: nil, maxTokens: engine.tokenLimit)
        } catch .tooManyTokens(let limit) {
            throw engine.tooManyTokens(what: "the question or the context", limit: limit)
        } catch {
            throw PipelineError(.invalidInput, "cannot tokenize the question and context: \(error.description)")
        }
        try engine.enforce(engine.taskCost(r, head: head, task: task, measure: .exact, known: whole, planning: true))
        let encoding: Encoding
        do {
            encoding = try engine.tokenizer.encode(
                question, pair: contextText, addSpecialTokens: true,
                truncation: TruncationParams(maxLength: maxSeqLen, stride: docStride, strategy: .onlySecond),
                padding: nil)
        } catch {
            if case .regexBudgetExceeded = error { throw PipelineError(.invalidInput, "cannot tokenize the context: \(error.description)") }
            throw PipelineError(
                .invalidInput,
                "cannot split the context into windows of max_seq_len \(maxSeqLen) with doc_stride \(docStride): \(error.description)")
        }
        var list: [Window] = []
        func add(_ e: Encoding) {
            list.append(Window(ids: e.ids, sequenceIds: e.sequenceIds, wordIds: e.wordIds, offsets: e.offsets))
            for sub in e.overflowing { add(sub) }
        }
        add(encoding)
        stats.builtSequences += list.count
        windows = list
        context = Array(contextText.unicodeScalars)
    }

    struct Span {
        var s: Int
        var e: Int
        var score: Float
        /// Higher score first; earlier start, then earlier end, on ties.
        func precedes(_ o: Span) -> Bool { score != o.score ? score > o.score : (s, e) < (o.s, o.e) }
    }

    struct Answer {
        var score: Double
        var start: Int
        var end: Int
        var text: String
    }

    /// Start and end probabilities of one window: context tokens and `<s>` tokens compete,
    /// question tokens get -10000.
    func probabilities(_ w: Window, column: Int, logits: [Float]) -> [Float] {
        let n = w.ids.count
        var x = [Float](repeating: -10000, count: n)
        for t in 0..<n where w.sequenceIds[t] == 1 || w.ids[t] == clsId { x[t] = logits[t * 2 + column] }
        return Scores.softmax(x)
    }

    /// Characters of a span: whole words (within this window) or the raw token offsets.
    func characters(_ w: Window, _ s: Int, _ e: Int) -> (Int, Int) {
        if alignToWords, let ws = w.wordIds[s], let we = w.wordIds[e] {
            var a: Int? = nil, b: Int? = nil
            for t in 0..<w.ids.count where w.sequenceIds[t] == 1 {
                if w.wordIds[t] == ws && a == nil { a = w.offsets[t].start }
                if w.wordIds[t] == we { b = w.offsets[t].end }
            }
            if let a, let b { return (a, b) }
        }
        return (w.offsets[s].start, w.offsets[e].end)
    }

    func finish(_ out: PlanOutputs) throws(PipelineError) -> (JSONValue, Usage) {
        try answers(out, windows: windows.count)
    }

    /// Streamed: the answers after each window but the last (the final response has all windows).
    func partial(_ out: PlanOutputs, sequences count: Int) -> (JSONValue, Usage)? {
        guard count >= 1, count < windows.count else { return nil }
        return try? answers(out, windows: count)
    }

    /// The answers over the first `count` windows.
    func answers(_ out: PlanOutputs, windows count: Int) throws(PipelineError) -> (JSONValue, Usage) {
        var answers: [Answer] = []
        var seen: [[UInt32]: Int] = [:]
        var nullScore = Double(1_000_000)
        let keep = 2 * topK + 10
        for (k, w) in windows.prefix(count).enumerated() {
            let n = w.ids.count
            let logits = out.logits[k].storage
            guard logits.count == n * 2 else {
                throw PipelineError(.internalError, "question-answering head returned \(logits.count) values for \(n) tokens")
            }
            var pStart = probabilities(w, column: 0, logits: logits)
            var pEnd = probabilities(w, column: 1, logits: logits)
            nullScore = min(nullScore, Double(pStart[0] * pEnd[0]))
            pStart[0] = 0
            pEnd[0] = 0
            // The `keep` best allowed spans, best first (a bounded insertion list, no full sort).
            var spans: [Span] = []
            spans.reserveCapacity(min(keep, 4096) + 1)
            for s in 0..<n where w.sequenceIds[s] == 1 {
                for e in s..<min(n, s + maxAnswerLen) where w.sequenceIds[e] == 1 {
                    let span = Span(s: s, e: e, score: pStart[s] * pEnd[e])
                    guard span.score > 0 else { continue }
                    if spans.count == keep, let last = spans.last, !span.precedes(last) { continue }
                    var lo = 0, hi = spans.count
                    while lo < hi {
                        let mid = (lo + hi) / 2
                        if spans[mid].precedes(span) { lo = mid + 1 } else { hi = mid }
                    }
                    spans.insert(span, at: lo)
                    if spans.count > keep { spans.removeLast() }
                }
            }
            for span in spans {
                let (a0, b0) = characters(w, span.s, span.e)
                let a = min(max(a0, 0), context.count), b = min(max(b0, a), context.count)
                let text = String(String.UnicodeScalarView(context[a..<b]))
                let key = text.lowercased().unicodeScalars.map(\.value)
                if let i = seen[key] {
                    answers[i].score += Double(span.score)
                } else {
                    seen[key] = answers.count
                    answers.append(Answer(score: Double(span.score), start: a, end: b, text: text))
                }
            }
        }
        if handleImpossible { answers.append(Answer(score: nullScore, start: 0, end: 0, text: "")) }
        let ranked = answers.enumerated().sorted {
            $0.element.score != $1.element.score ? $0.element.score > $1.element.score : $0.offset < $1.offset
        }
        .prefix(topK).map(\.element)
        let json = ranked.map { a -> JSONValue in
            .object([("score", .double(a.score)), ("start", .int(a.start)), ("end", .int(a.end)), ("answer", .string(a.text))])
        }
        let usage = Usage(inputTokens: windows.prefix(count).reduce(0) { $0 + $1.ids.count }, windows: count)
        return (json.count == 1 ? json[0] : .array(json), usage)
    }
}
