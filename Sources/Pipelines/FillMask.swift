import NorBERT
import Tokenizers
import Wire

/// fill-mask: the masked-LM head at every `<mask>` of `<s> text`. GptBertForMaskedLM predicts
/// token t from the hidden state at t − 1, so the head reads the row before each mask.
struct FillMaskPlan: EncoderPlan {
    let ids: [Int]
    let maskPositions: [Int]
    let topK: Int
    let targets: [Int]?
    let padId: Int?
    let tokenizer: Tokenizer

    var sequences: [[Int]] { [ids] }
    var needsHidden: Bool { false }
    func headRows(_ i: Int) -> [Int] { maskPositions.map { $0 - 1 } }

    init(_ r: PipelineRequest, head: LoadedHead, engine: PipelineEngine) throws(PipelineError) {
        let text = try r.textInput(for: .fillMask)
        tokenizer = engine.tokenizer
        let options = try FillMaskOptions(r.options, engine.optionBounds)
        topK = options.topK
        let vocab = head.model.head?.outputs ?? head.model.config.vocabSize
        if let names = options.targets {
            var list: [Int] = []
            for name in names {
                var id = engine.tokenizer.tokenToId(name)
                if id == nil {
                    let e = try? engine.tokenizer.encode(name, pair: nil, addSpecialTokens: false, truncation: nil, padding: nil)
                    id = e?.ids.first
                }
                if let id, id >= 0, id < vocab, !list.contains(id) { list.append(id) }
            }
            guard !list.isEmpty else { throw PipelineError(.invalidValue, "option 'targets' names no token of the vocabulary") }
            targets = list
        } else {
            targets = nil
        }
        let encoding = try engine.encode(text, limit: engine.maxInputTokens, what: "the text")
        try engine.checkLength(encoding.count, what: "the text")
        // Masks (a vocabulary-wide row of logits each) and the response (masks² × top_k × the text).
        try engine.enforce(engine.taskCost(r, head: head, task: .fillMask, measure: .exact, known: encoding, planning: true))
        ids = encoding.ids
        guard let mask = engine.tokenizer.specialTokens.maskId ?? head.model.config.maskTokenId else {
            throw PipelineError(.invalidInput, "the tokenizer has no mask token")
        }
        let positions = encoding.ids.indices.filter { encoding.ids[$0] == mask }
        maskPositions = positions
        guard !positions.isEmpty else {
            throw PipelineError(.invalidInput, "no mask token (\(engine.tokenizer.specialTokens.mask ?? "<mask>")) found in the text")
        }
        guard positions.allSatisfy({ $0 > 0 }) else { throw PipelineError(.invalidInput, "a mask token cannot be the first token") }
        padId = engine.tokenizer.specialTokens.padId
    }

    func finish(_ out: PlanOutputs) throws(PipelineError) -> (JSONValue, Usage) {
        guard let logits = out.logits.first else { throw PipelineError(.internalError, "no masked-LM output") }
        let v = logits.shape.count == 2 ? logits.shape[1] : 0
        guard v > 0, logits.storage.count == v * maskPositions.count else {
            throw PipelineError(.internalError, "masked-LM output has the wrong size")
        }
        let single = maskPositions.count == 1
        var perMask: [JSONValue] = []
        for (j, position) in maskPositions.enumerated() {
            let probs = Scores.softmax(logits.storage[(j * v)..<((j + 1) * v)])
            let ranked = Scores.top(topK, of: probs, among: targets ?? Array(0..<v))
            perMask.append(
                .array(
                    ranked.map { token in
                        var filled = ids
                        filled[position] = token
                        if let padId { filled.removeAll { $0 == padId } }
                        return .object([
                            ("score", .double(Double(probs[token]))), ("token", .int(token)),
                            ("token_str", .string(tokenizer.decode([token], skipSpecialTokens: false))),
                            ("sequence", .string(tokenizer.decode(filled, skipSpecialTokens: single))),
                        ])
                    }))
        }
        return (single ? perMask[0] : .array(perMask), Usage(inputTokens: ids.count))
    }
}
