import NorBERT
import Tokenizers
import Wire

/// token-classification: the token-classification head on every token of `<s> text`, then
/// transformers' aggregation (`none`, `simple`, `first`, `average`, `max`), with the group word
/// decoded once from its raw tokens (the corrected rule; see the pipelines fixture README).
///
/// Long texts (option `overflow: window`): each token takes its logits from the window that sees
/// it farthest from a window edge; everything else is as for one window.
struct TokenClassificationPlan: EncoderPlan {
    typealias Strategy = AggregationStrategy

    let input: LongInput
    let encoding: Encoding
    let text: [Unicode.Scalar]
    let labels: [String]
    let strategy: Strategy
    let ignore: [String]
    let tokenizer: Tokenizer

    var sequences: [[Int]] { input.sequences }
    var needsHidden: Bool { false }
    func headRows(_ i: Int) -> [Int] { Array(0..<input.sequences[i].count) }

    init(_ r: PipelineRequest, head: LoadedHead, engine: PipelineEngine, stats: inout RunStats) throws(PipelineError) {
        let t = try r.textInput(for: .tokenClassification)
        let config = head.model.config
        let outputs = head.model.head?.outputs ?? config.numLabels
        labels = config.labels(count: outputs)
        let options = try TokenClassificationOptions(r.options, engine.optionBounds)
        strategy = options.aggregation
        ignore = options.ignoreLabels
        let (policy, stride) = (options.overflow.policy, options.overflow.stride)
        encoding = try engine.encode(
            t, limit: policy == .reject ? engine.maxInputTokens : nil, what: "the text", hint: policy == .reject ? LongInput.windowHint : ""
        )
        try engine.enforce(engine.taskCost(r, head: head, task: .tokenClassification, measure: .exact, known: encoding, planning: true))
        input = try LongInput.split(
            encoding, maxTokens: engine.maxInputTokens, policy: policy, stride: stride, what: "the text",
            built: &stats.builtSequences)
        text = Array(t.unicodeScalars)
        tokenizer = engine.tokenizer
    }

    /// One token's (or word's, or group's) entity before output.
    struct Entity {
        var label: String
        var score: Float
        var index: Int
        var ids: [Int]
        var start: Int
        var end: Int
        /// The raw vocabulary string (`none` output; the text itself for an unknown token).
        var word: String = ""
    }

    struct PreEntity {
        var index: Int
        var id: Int
        var scores: [Float]
        var start: Int
        var end: Int
        var isSubword: Bool
        var word: String
    }

    func logitsRow(_ out: PlanOutputs, token t: Int) throws(PipelineError) -> ArraySlice<Float> {
        let w = labels.count
        let (window, position) = input.sequences.count == 1 ? (0, t) : (input.bestPosition(ofToken: t) ?? (0, t))
        let storage = out.logits[window].storage
        guard (position + 1) * w <= storage.count else { throw PipelineError(.internalError, "missing logits for token \(t)") }
        return storage[(position * w)..<((position + 1) * w)]
    }

    func finish(_ out: PlanOutputs) throws(PipelineError) -> (JSONValue, Usage) {
        var pre: [PreEntity] = []
        let unk = tokenizer.specialTokens.unkId
        for t in 0..<encoding.count where encoding.specialTokensMask[t] == 0 {
            let o = encoding.offsets[t]
            let a = min(max(o.start, 0), text.count)
            var isSubword = a > 0 && !text[(a - 1)..<min(a + 1, text.count)].contains(" ")
            var word = encoding.tokens[t]
            if encoding.ids[t] == unk {
                isSubword = false
                word = String(String.UnicodeScalarView(text[a..<min(max(o.end, a), text.count)]))
            }
            pre.append(
                PreEntity(
                    index: t, id: encoding.ids[t], scores: Scores.softmax(try logitsRow(out, token: t)),
                    start: o.start, end: o.end, isSubword: isSubword, word: word))
        }
        let usage = Usage(inputTokens: input.tokenCount, windows: input.sequences.count)
        switch strategy {
        case .none:
            let entities = pre.map(tokenEntity).filter { !ignore.contains($0.label) }
            return (
                .array(
                    entities.map { e in
                        .object([
                            ("entity", .string(e.label)), ("score", .double(Double(e.score))), ("index", .int(e.index)),
                            ("word", .string(e.word)), ("start", .int(e.start)), ("end", .int(e.end)),
                        ])
                    }), usage
            )
        case .simple:
            return (output(group(pre.map(tokenEntity))), usage)
        case .first, .average, .max:
            var words: [Entity] = []
            var current: [PreEntity] = []
            for p in pre {
                if !current.isEmpty && !p.isSubword {
                    words.append(word(current))
                    current = []
                }
                current.append(p)
            }
            if !current.isEmpty { words.append(word(current)) }
            return (output(group(words)), usage)
        }
    }

    func tokenEntity(_ p: PreEntity) -> Entity {
        let k = Scores.argmax(p.scores)
        return Entity(label: labels[k], score: p.scores[k], index: p.index, ids: [p.id], start: p.start, end: p.end, word: p.word)
    }

    /// A word's label and score by the strategy (first token, best token, or mean scores).
    func word(_ tokens: [PreEntity]) -> Entity {
        let ids = tokens.map(\.id)
        let start = tokens.first?.start ?? 0, end = tokens.last?.end ?? 0
        var scores = tokens.first?.scores ?? []
        switch strategy {
        case .max:
            var best = 0, bestValue = -Float.infinity
            for (k, t) in tokens.enumerated() {
                let m = t.scores.max() ?? -Float.infinity
                if m > bestValue {
                    best = k
                    bestValue = m
                }
            }
            scores = tokens[best].scores
        case .average:
            var sum = [Float](repeating: 0, count: labels.count)
            for t in tokens { for j in 0..<min(sum.count, t.scores.count) { sum[j] += t.scores[j] } }
            scores = sum.map { $0 / Float(tokens.count) }
        default:
            break
        }
        let k = Scores.argmax(scores)
        return Entity(label: labels[k], score: scores[k], index: tokens.first?.index ?? 0, ids: ids, start: start, end: end)
    }

    static func tag(_ label: String) -> (bi: Character, tag: Substring) {
        if label.hasPrefix("B-") { return ("B", label.dropFirst(2)) }
        if label.hasPrefix("I-") { return ("I", label.dropFirst(2)) }
        return ("I", label[...])
    }

    /// transformers' `group_entities`: consecutive entities with the same tag join unless one starts with `B-`.
    func group(_ entities: [Entity]) -> [Entity] {
        var groups: [Entity] = []
        var members: [Entity] = []
        func close() {
            guard let first = members.first, let last = members.last else { return }
            var sum: Float = 0
            for m in members { sum += m.score }
            let name =
                first.label.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false).last.map(String.init) ?? first.label
            groups.append(
                Entity(
                    label: name, score: sum / Float(members.count), index: first.index,
                    ids: members.flatMap(\.ids), start: first.start, end: last.end))
            members = []
        }
        for e in entities {
            if let last = members.last {
                let (bi, tag) = Self.tag(e.label), (_, lastTag) = Self.tag(last.label)
                if !(tag == lastTag && bi != "B") { close() }
            }
            members.append(e)
        }
        close()
        return groups
    }

    func output(_ groups: [Entity]) -> JSONValue {
        .array(
            groups.filter { !ignore.contains($0.label) }.map { g in
                .object([
                    ("entity_group", .string(g.label)), ("score", .double(Double(g.score))),
                    ("word", .string(tokenizer.decode(g.ids, skipSpecialTokens: false))),
                    ("start", .int(g.start)), ("end", .int(g.end)),
                ])
            })
    }
}
