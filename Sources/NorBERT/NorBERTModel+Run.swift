import Tensors

extension NorBERTModel {
    /// Runs the encoder and the head over a packed batch and names the outputs as the reference
    /// does, row-packed: `last_hidden_state` [N, H]; `hidden_states.i` [N, H] (when asked);
    /// `logits` [N, vocab] (LM heads; the masked LM shifted right per sequence with the constant
    /// BOS row first, as GptBertForMaskedLM returns it), [S, labels] (sequence classification),
    /// [N, labels] (token classification), [S, 1] (multiple choice: each choice's first token);
    /// `start_logits`, `end_logits` [N] (question answering).
    public func run(_ batch: PackedBatch, hiddenStates: Bool = false, workspace: EncoderWorkspace) throws -> [String: Tensor] {
        let out = try encoder.forward(batch, causal: isCausal, hiddenStates: hiddenStates, workspace: workspace)
        var result: [String: Tensor] = ["last_hidden_state": out.lastHiddenState]
        if let states = out.hiddenStates {
            for (i, s) in states.enumerated() { result["hidden_states.\(i)"] = s }
        }
        guard let head else { return result }
        let n = batch.totalTokens
        let firstRows = (0..<batch.count).map { batch.offsets[$0] }
        switch kind {
        case .base:
            break
        case .causalLM:
            result["logits"] = head.apply(out.lastHiddenState, rows: Array(0..<n))
        case .maskedLM:
            result["logits"] = maskedLMLogits(out.lastHiddenState, batch: batch)
        case .sequenceClassification, .multipleChoice:
            result["logits"] = head.apply(out.lastHiddenState, rows: firstRows)
        case .tokenClassification:
            result["logits"] = head.apply(out.lastHiddenState, rows: Array(0..<n))
        case .questionAnswering:
            let logits = head.apply(out.lastHiddenState, rows: Array(0..<n))
            let k = head.outputs
            result["start_logits"] = Tensor(shape: [n], storage: (0..<n).map { logits.storage[$0 * k] })
            result["end_logits"] = Tensor(shape: [n], storage: (0..<n).map { logits.storage[$0 * k + min(1, k - 1)] })
        }
        return result
    }

    /// GptBertForMaskedLM's output: position 0 of each sequence is 1.0 at bos_token_id and 0
    /// elsewhere; position t holds the prediction computed at position t − 1.
    func maskedLMLogits(_ hidden: Tensor, batch: PackedBatch) -> Tensor {
        guard let head else { return Tensor(zeros: [0]) }
        let v = head.outputs
        var rows: [Int] = []
        for s in 0..<batch.count {
            let start = batch.offsets[s]
            rows.append(contentsOf: (0..<max(batch.length(s) - 1, 0)).map { start + $0 })
        }
        let predicted = head.apply(hidden, rows: rows)
        var out = [Float](repeating: 0, count: batch.totalTokens * v)
        let bos = config.bosTokenId ?? 1
        var next = 0
        for s in 0..<batch.count {
            let start = batch.offsets[s]
            if bos < v { out[start * v + bos] = 1 }
            for t in 1..<max(batch.length(s), 1) {
                for j in 0..<v { out[(start + t) * v + j] = predicted.storage[next * v + j] }
                next += 1
            }
        }
        return Tensor(shape: [batch.totalTokens, v], storage: out)
    }

    /// Next-token logits [vocab] after feeding `tokens` to a causal LM whose earlier tokens are in `cache`.
    public func nextTokenLogits(_ tokens: [Int], cache: KVCache, workspace: EncoderWorkspace) throws -> [Float] {
        guard kind == .causalLM || kind == .maskedLM, let head else {
            throw NorBERTError.unsupportedHead(
                "generation needs a language-model head (causal-lm or masked-lm), this checkpoint is \(kind.rawValue)")
        }
        let out = try encoder.forward(PackedBatch([tokens]), causal: true, caches: [cache], workspace: workspace)
        return head.apply(out.lastHiddenState, rows: [tokens.count - 1]).storage
    }

    /// Greedy decoding with the key/value cache: the prompt is run once, then one token per step.
    /// Stops after `maxNewTokens`, or at `stopTokens` when given. Returns the new ids only.
    public func generateGreedy(
        prompt: [Int], maxNewTokens: Int, stopTokens: Set<Int> = [],
        workspace: EncoderWorkspace
    ) throws -> [Int] {
        guard !prompt.isEmpty else { throw NorBERTError.invalidInput("the prompt is empty") }
        let cache = KVCache(config: config)
        var generated: [Int] = []
        var feed = prompt
        while generated.count < maxNewTokens {
            let logits = try nextTokenLogits(feed, cache: cache, workspace: workspace)
            var best = 0
            for i in 1..<logits.count where logits[i] > logits[best] { best = i }
            generated.append(best)
            if stopTokens.contains(best) { break }
            feed = [best]
        }
        return generated
    }
}
